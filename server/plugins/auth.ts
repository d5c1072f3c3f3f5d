import * as Net from 'net';

import * as Boom from '@hapi/boom';
import type * as Hapi from '@hapi/hapi';

import { UnavailableError } from '../errors';
import type { User } from '../models';


type AegisUser = User;
import { Role } from '../policy';
import { apiKeyPrefix, type Principal, type TokenPayload } from '../services/auth';

import { jwtScheme, refusedToken, type JwtSchemeOptions } from './jwt';
import { actorOf } from './services';


declare module '@hapi/hapi' {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging with hapi's empty interface
    interface UserCredentials extends AegisUser { }
    interface AppCredentials {
        apiKey?: Principal['apiKey'];
        token?: Principal['token'];
    }
    interface RequestApplicationState {
        // The client's address when TRUST_PROXY is on (see clientAddress); the socket's otherwise
        clientAddress?: string;
    }
    interface PluginProperties {
        'aegis/auth': { allowedOrigins: string[] };
    }
    interface PluginSpecificConfiguration {
        aegis?: {
            // The routes a user with a temporary password may still call (conventions.md)
            allowDuringPasswordChange?: boolean;
            // Credential management (API keys, the password): a login (JWT) only, never an API key, so that a key
            // can neither mint a stronger key nor outlive its own revocation through another
            interactiveOnly?: boolean;
        };
    }
}


export interface AuthPluginOptions {
    cookieName: string;
    allowedOrigins: string[];
    trustProxy: boolean | string[];
}


const internals = {
    safeMethods: new Set(['get', 'head', 'options']),
    apiKeyHeader: new RegExp(`^Bearer\\s+(${apiKeyPrefix}\\S*)$`, 'i'),
    // Bodies a browser form can send cross-site without a preflight; multipart stays possible only on the upload
    // routes that allow it (hapi answers 415 elsewhere)
    simpleTypes: /^\s*(application\/x-www-form-urlencoded|text\/plain)/i,

    credentials: (principal: Principal): Hapi.AuthCredentials => ({
        user: principal.user,
        scope: principal.scope,
        app: { apiKey: principal.apiKey, token: principal.token }
    }),

    csrfRejected: () => Object.assign(Boom.forbidden('Cross-site request refused'), { code: 'csrf_rejected' }),

    unavailable: (h: Hapi.ResponseToolkit) => {

        const error = Boom.serverUnavailable('Authentication is temporarily unavailable');
        error.output.headers['Retry-After'] = '1';
        return h.response(error.output.payload).code(503).header('Retry-After', '1');
    }
};


// The client's address behind TRUST_PROXY: X-Forwarded-For read from the right, each proxy appending the address it
// received from. `true` trusts one proxy, whatever its address: the right-most entry is the client. A list trusts only
// those addresses and ranges: a request whose socket peer is not one of them keeps the peer's address; otherwise
// entries are taken from the right while they are trusted proxies, and the first one that is not is the client. An
// entry that is not an IP address ends the walk (it can only have come from the client side).
export const clientAddress = (trust: boolean | string[]): ((peer: string, forwarded: string | undefined) => string) | null => {

    if (trust === false) {
        return null;
    }

    const normalise = (address: string) => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    const proxies = new Net.BlockList();
    for (const entry of Array.isArray(trust) ? trust : []) {
        const [address, prefix] = entry.split('/') as [string, string | undefined];
        const family = Net.isIP(address) === 4 ? 'ipv4' : 'ipv6';
        if (prefix === undefined) {
            proxies.addAddress(address, family);
        }
        else {
            proxies.addSubnet(address, Number(prefix), family);
        }
    }

    const trusted = (address: string) => trust === true || proxies.check(address, Net.isIP(address) === 4 ? 'ipv4' : 'ipv6');

    return (peer, forwarded) => {

        let client = normalise(peer);
        if (!forwarded || !trusted(client)) {
            return client;
        }

        const hops = forwarded.split(',');
        for (let i = hops.length - 1; i >= 0; --i) {
            const hop = normalise(hops[i]!.trim());
            if (!Net.isIP(hop)) {
                break;
            }

            client = hop;
            if (trust === true || !trusted(hop)) {
                break;
            }
        }

        return client;
    };
};


// Login CSRF (SEC-19): a cross-site form must not log a browser into an account the attacker chose. A browser's
// login must come from an allowed origin; a browser that sends no Origin is judged by Sec-Fetch-Site; scripts send
// neither and are unaffected. A route-level onPreAuth, so that it costs no other route anything and refuses the
// request before its body is read.
export const refuseCrossSite: Hapi.Lifecycle.Method = (request, h) => {

    const origin = request.headers.origin as string | undefined;
    const crossSite = origin === undefined ? request.headers['sec-fetch-site'] === 'cross-site' : !request.server.plugins['aegis/auth'].allowedOrigins.includes(origin);
    if (crossSite) {
        throw internals.csrfRejected();
    }

    return h.continue;
};


export const authPlugin: Hapi.Plugin<AuthPluginOptions> = {
    name: 'aegis/auth',
    dependencies: ['aegis/services'],
    register: (server, options) => {

        server.expose('allowedOrigins', options.allowedOrigins);

        const resolve = clientAddress(options.trustProxy);
        if (resolve) {
            server.ext('onRequest', (request, h) => {

                const forwarded = request.headers['x-forwarded-for'] as string | string[] | undefined;
                request.app.clientAddress = resolve(request.info.remoteAddress, Array.isArray(forwarded) ? forwarded.join(',') : forwarded);
                return h.continue;
            });
        }

        // Authorization: Bearer aegis_<hex>. Anything else is left to the other strategies ("missing"); like
        // @hapi/jwt, one "missing" error is made once, not a new Error with its stack trace on every request.
        const missing = Boom.unauthorized(null, 'Bearer');
        server.auth.scheme('api-key', () => ({
            authenticate: async (request, h) => {

                const match = internals.apiKeyHeader.exec(String(request.headers.authorization ?? ''));
                if (!match) {
                    throw missing;
                }

                const principal = await request.services().auth.resolveApiKey(match[1]!, actorOf(request));
                if (!principal) {
                    return h.unauthenticated(refusedToken('token_invalid'));
                }

                return h.authenticated({ credentials: internals.credentials(principal) });
            }
        }));

        const { secret, ttlSeconds, issuer, audience } = server.services().auth.jwtSettings;
        const validate = async (payload: Record<string, unknown>, request: Hapi.Request, h: Hapi.ResponseToolkit) => {

            try {
                const principal = await request.services().auth.resolveToken(payload as unknown as TokenPayload);
                return typeof principal === 'string' ? { isValid: false, code: principal } : { isValid: true, credentials: internals.credentials(principal) };
            }
            catch (err) {
                // A store that cannot answer is a 503, always generic (the database or Redis being down is no reason
                // to tell the client its token is bad, nor to show it the error's text)
                if (!(err instanceof UnavailableError)) {
                    request.log(['error', 'auth'], { err });
                }

                return { isValid: false, response: internals.unavailable(h) };
            }
        };

        // Cookie-authenticated changes must come from an allowed origin with a body no form can send (SEC-19).
        // Checked while authenticating, so that a refused request gets its 403 before its body is even parsed.
        const validateCookie = (payload: Record<string, unknown>, request: Hapi.Request, h: Hapi.ResponseToolkit) => {

            if (!internals.safeMethods.has(request.method)) {
                const origin = String(request.headers.origin ?? '');
                if (!options.allowedOrigins.includes(origin) || internals.simpleTypes.test(String(request.headers['content-type'] ?? ''))) {
                    const error = internals.csrfRejected();
                    return Promise.resolve({ isValid: false, response: h.response({ ...error.output.payload, code: error.code, request_id: request.info.id }).code(403) });
                }
            }

            return validate(payload, request, h);
        };

        const jwt = { key: secret, verify: { aud: audience, iss: issuer, maxAgeSec: ttlSeconds, timeSkewSec: 30 } };
        server.auth.scheme('jwt', jwtScheme);
        server.auth.strategy('api-key', 'api-key');
        server.auth.strategy('jwt-bearer', 'jwt', { ...jwt, source: { header: true }, validate } satisfies JwtSchemeOptions);
        server.auth.strategy('jwt-cookie', 'jwt', { ...jwt, source: { cookie: options.cookieName }, validate: validateCookie } satisfies JwtSchemeOptions);

        // Order matters: an API key or a Bearer token wins over the cookie (domain.md). The two header strategies
        // never both claim a request (an `aegis_` token is an API key), so the JWT, the common case, is tried first.
        // A route that forgets to declare its roles is closed to everyone: no role carries this scope.
        server.auth.default({ strategies: ['jwt-bearer', 'api-key', 'jwt-cookie'], access: { scope: ['deny-by-default'] } });

        server.ext('onPostAuth', (request, h) => {

            const credentials = request.auth.credentials;
            if (!request.auth.isAuthenticated || !credentials?.user) {
                return h.continue;
            }

            const aegis = request.route.settings.plugins?.aegis;
            if (credentials.app?.apiKey && aegis?.interactiveOnly) {
                throw Object.assign(Boom.forbidden('This needs an interactive login, not an API key'), { code: 'interactive_session_required' });
            }

            // Temporary password: only me, change-password and logout (SEC-13)
            if (credentials.user.must_change_password && !aegis?.allowDuringPasswordChange) {
                throw Object.assign(Boom.forbidden('You must change your password first'), { code: 'password_change_required' });
            }

            // An API key is its owner narrowed by its scope (SEC-11)
            const keyScope = credentials.app?.apiKey?.scope;
            if (keyScope === 'read' && !internals.safeMethods.has(request.method)) {
                throw Object.assign(Boom.forbidden('This API key is read-only'), { code: 'insufficient_key_scope' });
            }

            if (keyScope === 'write') {
                const scope = request.route.settings.auth && request.route.settings.auth.access?.[0]?.scope;
                const selection = scope && scope.selection;
                if (selection && selection.length === 1 && selection[0] === Role.admin) {
                    throw Object.assign(Boom.forbidden('This API key cannot call admin routes'), { code: 'insufficient_key_scope' });
                }
            }

            return h.continue;
        });
    }
};
