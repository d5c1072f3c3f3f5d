import * as Crypto from 'crypto';
import * as Http from 'http';
import type { AddressInfo } from 'net';

import * as OidcProvider from 'oidc-provider';


// sso (issue 15, OIDC): a real OpenID Connect provider (panva's oidc-provider) on loopback, with one confidential
// client, accounts whose claims (groups included) the test changes, its dev login form, and a hook that rewrites the
// ID token of the next token answer, which is how the forged-response table is played.

export interface TestAccount {
    username: string;
    email: string;
    name: string;
    groups: string[];
}

export interface TestProvider {
    issuer: string;
    clientId: string;
    clientSecret: string;
    accounts: Map<string, TestAccount>;
    privateKey: Crypto.KeyObject;
    kid: string;
    forge: ((idToken: string) => string) | undefined;       // applied to the next token answer only
    tokenRequests: number;
    stop: () => Promise<void>;
}


export const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export const decodeJwt = (token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } => {

    const [header, claims] = token.split('.');
    return { header: JSON.parse(Buffer.from(header!, 'base64url').toString()), claims: JSON.parse(Buffer.from(claims!, 'base64url').toString()) };
};

// An RS256 JWT of the given header and claims, signed with the given key
export const signRs256 = (header: Record<string, unknown>, claims: Record<string, unknown>, key: Crypto.KeyObject): string => {

    const input = `${b64({ ...header, alg: 'RS256' })}.${b64(claims)}`;
    return `${input}.${Crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
};


export const startProvider = async (redirectUri: string): Promise<TestProvider> => {

    const { privateKey } = Crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const kid = `test-${Crypto.randomBytes(4).toString('hex')}`;
    const accounts = new Map<string, TestAccount>();
    let handler: Http.RequestListener = (req, res) => res.end();

    const server = Http.createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const state: TestProvider = {
        issuer,
        clientId: `aegis-${Crypto.randomBytes(4).toString('hex')}`,
        clientSecret: Crypto.randomBytes(24).toString('base64url'),
        accounts,
        privateKey,
        kid,
        forge: undefined,
        tokenRequests: 0,
        stop: () => new Promise<void>((resolve) => {

            server.closeAllConnections();
            server.close(() => resolve());
        })
    };

    const Provider = OidcProvider.default;
    const provider = new Provider(issuer, {
        clients: [{
            client_id: state.clientId,
            client_secret: state.clientSecret,
            redirect_uris: [redirectUri],
            response_types: ['code'],
            grant_types: ['authorization_code'],
            token_endpoint_auth_method: 'client_secret_basic'
        }],
        claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'], groups: ['groups'] },
        scopes: ['openid', 'profile', 'email', 'groups'],
        conformIdTokenClaims: false,                    // the claims in the ID token itself, not only at userinfo
        pkce: { required: () => true },
        jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] },
        cookies: { keys: [Crypto.randomBytes(16).toString('hex')] },
        features: { devInteractions: { enabled: true } },
        // Lifetimes set, so that the provider does not print a notice for each default it falls back to
        ttl: { AccessToken: 600, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
        findAccount: (ctx, sub) => {

            const account = accounts.get(sub);
            return account && {
                accountId: sub,
                claims: () => ({ sub, preferred_username: account.username, email: account.email, name: account.name, groups: account.groups })
            };
        }
    });

    const callback = provider.callback();
    handler = (req, res) => {

        if (req.url?.startsWith('/token')) {
            state.tokenRequests++;
        }

        const forge = state.forge;
        if (forge && req.method === 'POST' && req.url?.startsWith('/token')) {
            state.forge = undefined;
            const end = res.end.bind(res) as (chunk?: unknown) => Http.ServerResponse;
            res.end = ((chunk?: unknown) => {

                const body = JSON.parse(String(chunk)) as { id_token?: string };
                if (body.id_token) {
                    body.id_token = forge(body.id_token);
                }

                const text = JSON.stringify(body);
                res.setHeader('content-length', Buffer.byteLength(text));
                return end(text);
            }) as typeof res.end;
        }

        void callback(req, res);
    };

    return state;
};


// A browser at the provider: follows its redirects, keeps its cookies, and signs in through the dev login form (and
// the consent form) until the provider sends the browser back to the client. Answers that last Location.
export const authorize = async (location: string, accountId: string): Promise<string> => {

    const jar = new Map<string, string>();
    const keep = (response: Response) => {

        for (const cookie of response.headers.getSetCookie()) {
            const [pair] = cookie.split(';');
            const at = pair!.indexOf('=');
            jar.set(pair!.slice(0, at), pair!.slice(at + 1));
        }
    };

    const cookie = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    let url = location;
    const origin = new URL(location).origin;
    for (let i = 0; i < 12; ++i) {
        if (new URL(url).origin !== origin) {
            return url;
        }

        const response = await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } });
        keep(response);
        if (response.status >= 300 && response.status < 400) {
            url = new URL(response.headers.get('location')!, url).href;
            continue;
        }

        const html = await response.text();
        const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
        const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
        if (!action || !prompt) {
            throw new Error(`The provider answered ${response.status} without a form: ${html.slice(0, 300)}`);
        }

        const form = new URLSearchParams(prompt === 'login' ? { prompt, login: accountId, password: 'any' } : { prompt });
        const posted = await fetch(new URL(action, url), { method: 'POST', redirect: 'manual', body: form, headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' } });
        keep(posted);
        url = new URL(posted.headers.get('location')!, url).href;
    }

    throw new Error('The provider kept redirecting');
};
