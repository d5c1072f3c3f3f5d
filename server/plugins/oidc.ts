import type * as Hapi from '@hapi/hapi';


// sso (issue 15, OIDC): the cookie in which @hapi/bell keeps a sign-in in progress (its state, the PKCE verifier, the
// login's query), sealed with iron under a key derived from AEGIS_SECRET_KEY. SameSite=Lax, not bell's Strict: the
// browser comes back from the provider's site by a top-level GET, which a Strict cookie would not follow.
export const oidcFlowCookie = 'aegis_oidc_flow';

export const oidcPlugin: Hapi.Plugin<{ password: string; secure: boolean }> = {
    name: 'aegis/oidc',
    register: (server, options) => {

        server.state(oidcFlowCookie, {
            encoding: 'iron',
            password: options.password,
            path: '/api/v1/sso/oidc',
            isSecure: options.secure,
            isHttpOnly: true,
            isSameSite: 'Lax',
            ttl: 10 * 60 * 1000,
            ignoreErrors: true,
            clearInvalid: true
        });
    }
};
