import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, responses } from '../schemas/common';
import { setting } from '../schemas/settings';
import { samlCallback, samlConfig, samlLogin, samlLoginQuery, samlMetadata, samlRedirect, samlSignedIn, ssoStatus } from '../schemas/sso';
import { session as sessionSchema } from '../schemas/users';
import type { SamlCallback, SamlConfigInput } from '../services/saml';

import { withSession } from './auth';
import { route } from './route';


// sso (issue 15): single sign-on (docs/sso.md). The SAML routes; the OIDC ones join this file's list.

// The cookie that binds an IdP's response to the browser that started the sign-in: sent back only to the callback,
// and on the IdP's cross-site POST (SameSite=None, which browsers accept only with Secure)
export const samlRequestCookie = 'aegis_saml_request';

const internals = {
    tags: ['api', 'sso'],
    // A script (Accept: application/json and not text/html) gets JSON; a browser gets the redirect
    wantsJson: (accept: unknown) => typeof accept === 'string' && accept.includes('application/json') && !accept.includes('text/html'),
    callbackPath: '/api/v1/sso/callback',
    cookieOptions: (secure: boolean, ttl: number) => ({
        ttl,
        path: internals.callbackPath,
        isHttpOnly: true,
        isSecure: secure,
        isSameSite: secure ? 'None' as const : false as const,
        encoding: 'none' as const,
        strictHeader: true
    })
};


export const ssoRoutes = [
    route({
        method: 'GET',
        path: '/api/v1/sso/status',
        options: {
            description: 'Whether single sign-on (SAML, OpenID Connect) is configured and enabled, per provider (nothing secret)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            response: { schema: ssoStatus }
        },
        handler: async (request) => ({ saml: await request.services().saml.status(actorOf(request)), oidc: await request.services().oidc.status() })
    }),

    route<{ Payload: SamlConfigInput }>({
        method: 'PUT',
        path: '/api/v1/sso/config',
        options: {
            description: 'Configure SAML 2.0 SSO: the IdP (entity id, SSO URL, signing certificates, or a metadata_url fetched once through the outbound client and read for what is left out), attribute names, group-to-role mapping, just-in-time provisioning, and whether AuthnRequests are signed (sp_private_key is write-only, kept when left out). Stored as the setting sso.saml; answers it with secrets as { set }',
            tags: internals.tags,
            auth: { access: { scope: [...Access.admin] } },
            validate: { payload: samlConfig },
            response: { schema: setting },
            plugins: answers(409)
        },
        handler: (request) => request.services().saml.configure(actorOf(request), request.payload)
    }),

    route({
        method: 'GET',
        path: '/api/v1/sso/metadata',
        options: {
            description: 'The service provider\'s SAML 2.0 metadata XML (public): give it to the identity provider',
            tags: internals.tags,
            auth: false,
            plugins: { 'hapi-swagger': { responses: { 200: samlMetadata } } }
        },
        handler: async (request, h) => h.response(await request.services().saml.metadata(actorOf(request))).type('application/samlmetadata+xml').header('x-content-type-options', 'nosniff')
    }),

    route<{ Query: { redirect_to?: string } }>({
        method: 'GET',
        path: '/api/v1/sso/login',
        options: {
            description: 'Start a SAML sign-in (public): redirects a browser to the identity provider with an AuthnRequest, or answers its URL as JSON to Accept: application/json; redirect_to is where to land afterwards (a path of this site)',
            tags: internals.tags,
            auth: false,
            validate: { query: samlLoginQuery },
            response: { status: { 200: samlLogin } },
            plugins: { 'hapi-swagger': { responses: { ...samlRedirect, ...responses(409) } } }
        },
        handler: async (request, h) => {

            const saml = request.services().saml;
            const login = await saml.login(actorOf(request), request.query.redirect_to);
            const response = internals.wantsJson(request.headers.accept) ? h.response({ url: login.url }) : h.redirect(login.url).code(302);
            return response.state(samlRequestCookie, login.requestId, internals.cookieOptions(saml.secureCookies, saml.requestTtlMs));
        }
    }),

    route<{ Payload: SamlCallback }>({
        method: 'POST',
        path: internals.callbackPath,
        options: {
            description: 'The SAML assertion consumer service (public; the IdP\'s HTTP-POST binding, form-encoded SAMLResponse and RelayState). Every check of docs/sso.md must pass; then the user is signed in (just-in-time provisioning as configured) and redirected with the same session cookie as a password login. A refusal is a 401 that creates nothing. To Accept: application/json, the Session as JSON (with the same cookie) instead of the redirect',
            tags: internals.tags,
            auth: false,
            response: { status: { 200: sessionSchema } },
            payload: { allow: ['application/x-www-form-urlencoded'], maxBytes: 1024 * 1024 },
            validate: { payload: samlCallback },
            plugins: { 'hapi-swagger': { consumes: ['application/x-www-form-urlencoded'], responses: { ...samlSignedIn, ...responses(401, 409) } } }
        },
        handler: async (request, h) => {

            const saml = request.services().saml;
            const bound = (request.state as Record<string, unknown> | null)?.[samlRequestCookie];
            const { session, redirectTo } = await saml.callback(actorOf(request), request.payload, typeof bound === 'string' ? bound : undefined);
            return withSession(h, session, internals.wantsJson(request.headers.accept) ? undefined : redirectTo).unstate(samlRequestCookie, internals.cookieOptions(saml.secureCookies, 0));
        }
    })
];
