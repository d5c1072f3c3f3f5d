import Joi from 'joi';

import { settingDefinitions } from '../settings';

import { sameOriginPath } from './common';


// sso (issue 15): the SSO routes' schemas (docs/sso.md)

// PUT /sso/config: the stored shape (server/settings.ts, 'sso.saml'), where the IdP's entity id, SSO URL and
// certificates may come from metadata_url instead
export const samlConfig = (settingDefinitions['sso.saml'].schema as Joi.ObjectSchema)
    .fork(['idp_entity_id', 'sso_url', 'certificates'], (field) => field.optional())
    .label('SamlConfig');

const providerStatus = Joi.object({
    configured: Joi.boolean().required(),
    enabled: Joi.boolean().required()
}).label('SsoProviderStatus');

export const ssoStatus = Joi.object({
    saml: providerStatus.required(),
    // sso (issue 15, OIDC)
    oidc: providerStatus.required()
}).label('SsoStatus');

export const samlLoginQuery = Joi.object({
    redirect_to: sameOriginPath.description('Where to land after signing in: a path of this site starting with a single /')
});

// What the IdP's browser form posts (HTTP-POST binding); other fields an IdP adds are ignored
export const samlCallback = Joi.object({
    SAMLResponse: Joi.string().max(512 * 1024).pattern(/^[A-Za-z0-9+/=\s]+$/).required().description('The base64 SAML Response'),
    RelayState: Joi.string().max(1024).allow('')
}).unknown(true).label('SamlCallback');

// GET /sso/login asked for JSON (Accept: application/json, as a script or single-page app asks)
export const samlLogin = Joi.object({
    url: Joi.string().uri().required().description('The identity provider URL to send the browser to')
}).label('SamlLogin');

export const samlMetadata = {
    description: 'The service provider\'s SAML 2.0 metadata (entity id, assertion consumer service, signing certificate when AuthnRequests are signed)',
    'x-content': { 'application/samlmetadata+xml': { schema: { type: 'string' } } }
};

export const samlRedirect = {
    302: { description: 'A browser: to the identity provider\'s SSO URL with the AuthnRequest (HTTP-Redirect binding, signed when configured); sets the aegis_saml_request cookie that binds the response to this browser' }
};

export const samlSignedIn = {
    303: { description: 'Signed in (a browser): to RelayState (or /) with the aegis_token cookie set as by POST /auth/login' }
};
