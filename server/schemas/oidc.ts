import Joi from 'joi';

import { roles } from '../policy';
import { settingDefinitions } from '../settings';

import { sameOriginPath, timestamp, uuid } from './common';


// sso (issue 15, OIDC): the schemas of /sso/oidc/* (docs/sso.md#openid-connect)

// PUT /sso/oidc/config: the value of the `sso.oidc` setting (server/settings.ts owns its schema)
export const oidcConfigUpdate = settingDefinitions['sso.oidc'].schema.label('OidcConfigUpdate');

const claimNames = Joi.object({
    username: Joi.string().required(),
    email: Joi.string().required(),
    display_name: Joi.string().required(),
    groups: Joi.string().required()
}).label('OidcClaimNames');

export const oidcConfig = Joi.object({
    configured: Joi.boolean().required().description('false: never set (value is null)'),
    redirect_uri: Joi.string().allow(null).required().description('The callback address to register at the provider (AEGIS_PUBLIC_URL + /api/v1/sso/oidc/callback); null without AEGIS_PUBLIC_URL'),
    value: Joi.object({
        enabled: Joi.boolean().required(),
        issuer: Joi.string().required(),
        client_id: Joi.string().required(),
        client_secret: Joi.object({ set: Joi.boolean().required() }).required().label('SecretState').description('Write-only: whether a secret is stored'),
        scopes: Joi.array().items(Joi.string()).required(),
        claims: claimNames.required(),
        role_mapping: Joi.object().pattern(Joi.string(), Joi.string().valid(...roles)).required().description('Group name -> role'),
        jit: Joi.boolean().required()
    }).allow(null).required().label('OidcConfigValue'),
    updated_by: uuid.allow(null).required(),
    updated_at: timestamp.allow(null).required()
}).label('OidcConfig');

export const oidcLoginQuery = Joi.object({
    redirect_to: sameOriginPath.description('A path of this site to land on after the sign-in (default /)')
});

// What a provider sends back (RFC 6749 4.1.2, RFC 9207 iss); providers add parameters of their own, which are ignored
export const oidcCallbackQuery = Joi.object({
    code: Joi.string().max(4096),
    state: Joi.string().max(1024),
    iss: Joi.string().max(2000),
    error: Joi.string().max(200),
    error_description: Joi.string().max(2000).allow(''),
    error_uri: Joi.string().max(2000)
}).unknown(true);
