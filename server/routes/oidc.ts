import Bell from '@hapi/bell';
import type * as Hapi from '@hapi/hapi';

import { oidcFlowCookie } from '../plugins/oidc';
import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { isSameOriginPath } from '../schemas/common';
import { oidcCallbackQuery, oidcConfig, oidcConfigUpdate, oidcLoginQuery } from '../schemas/oidc';
import type { OidcAuthorization, OidcCallback, OidcFlow } from '../services/oidc';
import type { OidcSetting } from '../settings';

import { withSession } from './auth';
import { route } from './route';


// sso (issue 15, OIDC): docs/sso.md#openid-connect

type BellAuthenticate = (request: Hapi.Request, h: Hapi.ResponseToolkit) => Promise<Hapi.ResponseObject>;

const internals = {
    // bell's OAuth 2.0 flow, which its typings do not export: the function a bell strategy authenticates with
    bell: (Bell as unknown as { oauth: { v2: (settings: Record<string, unknown>) => BellAuthenticate } }).oauth,

    // bell's settings are fixed when a strategy is registered, and hapi cannot register one again: the login route
    // builds bell's flow from the configuration of the moment instead (a closure, no strategy), so a change of
    // provider, client or scopes applies to the next login without a restart.
    redirect: async (request: Hapi.Request, h: Hapi.ResponseToolkit, authorization: OidcAuthorization): Promise<Hapi.ResponseObject> => {

        const authenticate = internals.bell.v2({
            name: 'oidc',
            cookie: oidcFlowCookie,
            clientId: authorization.client_id,
            clientSecret: authorization.client_secret ?? '',
            provider: { name: 'oidc', protocol: 'oauth2', auth: authorization.authorization_endpoint, token: authorization.token_endpoint, pkce: 'S256', scope: authorization.scopes, useParamsAuth: false, profileMethod: 'get' },
            providerParams: {},
            allowRuntimeProviderParams: false,
            location: () => authorization.redirect_uri,
            isSecure: false,            // the cookie's own flags are the server's (plugins/oidc.ts)
            skipProfile: true
        });

        // bell answers a refusal through the authentication toolkit, which a handler does not have
        const toolkit = Object.assign(Object.create(h) as Hapi.ResponseToolkit, { unauthenticated: (err: Error) => {

            throw err;
        } });

        const response = await authenticate(request, toolkit);
        const location = new URL(String(response.headers.location));
        location.searchParams.set('nonce', request.services().oidc.nonceFor(location.searchParams.get('state') ?? ''));
        return response.location(location.href);
    }
};


export const oidcRoutes = [
    route({
        method: 'GET',
        path: '/api/v1/sso/oidc/config',
        options: {
            description: 'The OpenID Connect configuration (the client secret answered as { set }) and the callback address to register at the provider',
            tags: ['api', 'sso'],
            auth: { access: { scope: [...Access.admin] } },
            response: { schema: oidcConfig }
        },
        handler: (request) => request.services().oidc.describe(actorOf(request))
    }),

    route<{ Payload: OidcSetting }>({
        method: 'PUT',
        path: '/api/v1/sso/oidc/config',
        options: {
            description: 'Set the OpenID Connect provider: its discovery document (/.well-known/openid-configuration) and key set are fetched and checked first, and nothing is stored when they fail (400 says why). The client secret is write-only: a string sets it, null clears it, left out keeps it',
            tags: ['api', 'sso'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { payload: oidcConfigUpdate },
            response: { schema: oidcConfig }
        },
        handler: (request) => request.services().oidc.configure(actorOf(request), request.payload)
    }),

    route({
        method: 'GET',
        path: '/api/v1/sso/oidc/login',
        options: {
            description: 'Start an OpenID Connect sign-in: a redirect to the provider (authorisation code with PKCE S256, state and nonce); 400 when OIDC is not configured',
            tags: ['api', 'sso'],
            auth: false,
            plugins: { 'hapi-swagger': { responses: { 302: { description: 'To the provider\'s authorisation endpoint; sets the aegis_oidc_flow cookie' } } } },
            validate: { query: oidcLoginQuery }
        },
        handler: async (request, h) => await internals.redirect(request, h, await request.services().oidc.authorization())
    }),

    route<{ Query: OidcCallback }>({
        method: 'GET',
        path: '/api/v1/sso/oidc/callback',
        options: {
            description: 'Where the provider sends the browser back: the state is checked, the code exchanged, the ID token verified, and the user signed in (just-in-time provisioning and role mapping as SAML); sets the aegis_token cookie as a password login does',
            tags: ['api', 'sso'],
            auth: false,
            plugins: { 'hapi-swagger': { responses: { 303: { description: 'Signed in: the aegis_token cookie is set; to redirect_to of the login, or /' } } } },
            validate: { query: oidcCallbackQuery }
        },
        handler: async (request, h) => {

            // A sign-in in progress is used once, whatever the outcome
            const flow = (request.state as Record<string, OidcFlow | undefined>)[oidcFlowCookie];
            h.unstate(oidcFlowCookie);
            const session = await request.services().oidc.complete(actorOf(request), request.query, flow);
            const landing = (flow?.query as { redirect_to?: unknown } | undefined)?.redirect_to;
            return withSession(h, session, typeof landing === 'string' && isSameOriginPath(landing) ? landing : '/');
        }
    })
];
