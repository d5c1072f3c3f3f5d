import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import * as Hapi from '@hapi/hapi';
import * as Jwt from '@hapi/jwt';

import { jwtScheme, VerifiedTokens, type JwtSchemeOptions } from '../../server/plugins/jwt';
import type { TokenFailure } from '../../server/services/auth';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


type Validate = JwtSchemeOptions['validate'];


const internals: {
    key: string;
    server: (validate?: Validate) => Promise<Hapi.Server>;
    token: (claims?: Record<string, unknown>, key?: string) => string;
    refused: (res: Awaited<ReturnType<Hapi.Server['inject']>>, code: TokenFailure, label?: string) => void;
} = {
    key: 'jwt-scheme-test-key-jwt-scheme-test-key-0000',

    // The scheme on a server of its own, without skew, so that a token can expire while the test waits
    server: async (validate: Validate = (payload) => Promise.resolve({ isValid: true, credentials: { user: { id: payload.sub } } as unknown as Hapi.AuthCredentials })) => {

        const server = Hapi.server();
        server.auth.scheme('jwt', jwtScheme);
        const settings = { key: internals.key, verify: { aud: 'aud', iss: 'iss', maxAgeSec: 3600, timeSkewSec: 0 }, validate };
        server.auth.strategy('bearer', 'jwt', { ...settings, source: { header: true } } satisfies JwtSchemeOptions);
        server.auth.strategy('cookie', 'jwt', { ...settings, source: { cookie: 'token' } } satisfies JwtSchemeOptions);
        server.state('token', { encoding: 'none', strictHeader: true, ignoreErrors: true });
        server.route({ method: 'GET', path: '/', options: { auth: { strategies: ['bearer', 'cookie'] } }, handler: (request) => request.auth.credentials.user! });
        await server.initialize();
        return server;
    },

    token: (claims: Record<string, unknown> = {}, key = internals.key) => {

        const now = Math.floor(Date.now() / 1000);
        const payload: Record<string, unknown> = { sub: 'u1', aud: 'aud', iss: 'iss', jti: 'j1', iat: now, exp: now + 60, ...claims };
        for (const [name, value] of Object.entries(payload)) {
            if (value === undefined) {
                delete payload[name];
            }
        }

        return Jwt.token.generate(payload, { key, algorithm: 'HS256' }, { iat: false });
    },

    // The scheme's refusal: the generic message, the code on the error (the errors plugin puts it in the body), and
    // no library text in the body or the challenge
    refused: (res, code, label: string = code) => {

        expect(res.statusCode, label).to.equal(401);
        expect(JSON.parse(res.payload), label).to.equal({ statusCode: 401, error: 'Unauthorized', message: 'Missing, invalid or expired credentials' });
        expect(res.headers['www-authenticate'], label).to.equal('Bearer error="invalid_token"');
        expect((res.request.auth.error as Error & { code?: string }).code, label).to.equal(code);
    }
};


describe('The jwt auth scheme', () => {

    it('accepts a token from the header or the cookie, and again from its memory of verified tokens', async () => {

        const server = await internals.server();
        const token = internals.token();
        for (const headers of [{ authorization: `Bearer ${token}` }, { authorization: `bearer  ${token}` }, { cookie: `token=${token}` }, { authorization: `Bearer ${token}` }]) {
            const res = await server.inject({ url: '/', headers });
            expect(res.statusCode, JSON.stringify(headers)).to.equal(200);
            expect(JSON.parse(res.payload)).to.equal({ id: 'u1' });
        }
    });

    it('checks the claims of a remembered token on every request: it expires on time', async () => {

        const server = await internals.server();
        const token = internals.token({ exp: Math.floor(Date.now() / 1000) + 1 });
        expect((await server.inject({ url: '/', headers: { authorization: `Bearer ${token}` } })).statusCode).to.equal(200);

        await new Promise((resolve) => setTimeout(resolve, 2100));
        internals.refused(await server.inject({ url: '/', headers: { authorization: `Bearer ${token}` } }), 'token_expired');
    });

    it('never remembers a token that failed, and refuses other keys, algorithms and claims', async () => {

        const server = await internals.server();
        const forged = internals.token({}, 'another-key-another-key-another-key-00000');
        for (let i = 0; i < 2; ++i) {
            internals.refused(await server.inject({ url: '/', headers: { authorization: `Bearer ${forged}` } }), 'token_invalid');
        }

        const now = Math.floor(Date.now() / 1000);
        const hs512 = Jwt.token.generate({ sub: 'u1', aud: 'aud', iss: 'iss', jti: 'j1', iat: now, exp: now + 60 }, { key: internals.key, algorithm: 'HS512' }, { iat: false });
        const cases: [string, TokenFailure][] = [
            [hs512, 'token_invalid'],
            [internals.token({ aud: 'other' }), 'token_invalid'],
            [internals.token({ iss: 'other' }), 'token_invalid'],
            [internals.token({ nbf: now + 600 }), 'token_invalid'],
            [internals.token({ iat: now - 7200, exp: now + 60 }), 'token_invalid'],
            [internals.token({ iat: now + 60, exp: now + 120 }), 'token_invalid'],
            [internals.token({ iat: undefined }), 'token_invalid'],
            [internals.token({ iat: now - 7200, exp: now - 3600 }), 'token_expired'],
            ['not-a-token', 'token_invalid']
        ];

        for (const [token, code] of cases) {
            internals.refused(await server.inject({ url: '/', headers: { authorization: `Bearer ${token}` } }), code, token);
        }
    });

    it('answers 401 to a malformed header and leaves a missing one to the next strategy', async () => {

        const server = await internals.server();
        internals.refused(await server.inject({ url: '/', headers: { authorization: `Bearer ${internals.token()} extra` } }), 'token_invalid');

        for (const headers of [{}, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: 'Bearer ' }, { authorization: 'Bearer aegis_0123abcd' }]) {
            const res = await server.inject({ url: '/', headers });
            expect(res.statusCode).to.equal(401);
            expect(JSON.parse(res.payload).message).to.equal('Missing authentication');
        }
    });

    it('answers what validate decides: refused credentials or a response of its own', async () => {

        const refused = await internals.server(() => Promise.resolve({ isValid: false }));
        internals.refused(await refused.inject({ url: '/', headers: { authorization: `Bearer ${internals.token()}` } }), 'token_invalid');
        const revoked = await internals.server(() => Promise.resolve({ isValid: false, code: 'token_revoked' }));
        internals.refused(await revoked.inject({ url: '/', headers: { authorization: `Bearer ${internals.token()}` } }), 'token_revoked');

        const unavailable = await internals.server((_payload, _request, h) => Promise.resolve({ isValid: false, response: h.response({ message: 'later' }).code(503) }));
        const res = await unavailable.inject({ url: '/', headers: { authorization: `Bearer ${internals.token()}` } });
        expect(res.statusCode).to.equal(503);
        expect(JSON.parse(res.payload)).to.equal({ message: 'later' });
    });

    it('remembers a bounded number of tokens, forgetting the oldest first', () => {

        const tokens = new VerifiedTokens(2);
        const artifacts = (sub: string) => Jwt.token.decode(internals.token({ sub }));
        tokens.set('a', artifacts('a'));
        tokens.set('b', artifacts('b'));
        tokens.set('c', artifacts('c'));
        expect(tokens.get('a')).to.be.undefined();
        expect(tokens.get('b')!.decoded.payload.sub).to.equal('b');
        expect(tokens.get('c')!.decoded.payload.sub).to.equal('c');
    });
});
