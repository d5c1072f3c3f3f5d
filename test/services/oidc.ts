import * as Crypto from 'crypto';
import * as Http from 'http';
import type { AddressInfo } from 'net';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { UnauthorizedError, UpstreamError, ValidationError } from '../../server/errors';
import { OutboundHttp } from '../../integrations/http';
import { User } from '../../server/models';
import { OidcService } from '../../server/services/oidc';
import type { OidcSetting } from '../../server/settings';

import { b64 } from '../helpers/oidc-provider';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// sso (issue 15, OIDC): OidcService against a hand-written provider whose every answer the test chooses: the
// discovery and key-set checks, ES256 and kid-less tokens, the token endpoint's failures and a public client.
describe('OidcService', () => {

    let context: TestContext;
    let server: Http.Server;
    let base: string;
    let answers: Record<string, (request: Http.IncomingMessage, body: string) => { status?: number; body: unknown }>;
    const requests: { url: string; headers: Http.IncomingHttpHeaders; body: string }[] = [];

    const rsa = Crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = Crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = (key: Crypto.KeyObject, kid?: string) => ({ ...key.export({ format: 'jwk' }), ...(kid ? { kid } : {}), use: 'sig' });
    const anonymous = { id: null, role: 'viewer' as const, ip: '203.0.113.7' };
    const unique = () => Crypto.randomBytes(5).toString('hex');

    const discovery = (overrides: Record<string, unknown> = {}) => ({
        issuer: base,
        authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`,
        jwks_uri: `${base}/jwks`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        ...overrides
    });

    const setting = (overrides: Partial<OidcSetting> = {}): OidcSetting => ({
        enabled: true, issuer: base, client_id: 'aegis-client', client_secret: 'client-secret', scopes: ['openid'],
        claims: { username: 'preferred_username', email: 'email', display_name: 'name', groups: 'groups' },
        role_mapping: { blue: 'blue_tech' }, jit: true, ...overrides
    });

    const sign = (alg: 'RS256' | 'ES256', claims: Record<string, unknown>, kid?: string) => {

        const input = `${b64({ alg, ...(kid ? { kid } : {}) })}.${b64(claims)}`;
        const signature = alg === 'RS256' ? Crypto.sign('sha256', Buffer.from(input), rsa.privateKey) : Crypto.sign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
        return `${input}.${signature.toString('base64url')}`;
    };

    const claims = (nonce: string, overrides: Record<string, unknown> = {}) => {

        const now = Math.floor(Date.now() / 1000);
        const id = unique();
        return { iss: base, aud: 'aegis-client', sub: `s-${id}`, iat: now, exp: now + 300, nonce, preferred_username: `svc-oidc-${id}`, groups: ['blue'], ...overrides };
    };

    const serve = (overrides: Partial<typeof answers> = {}) => {

        answers = {
            '/.well-known/openid-configuration': () => ({ body: discovery() }),
            '/jwks': () => ({ body: { keys: [jwk(rsa.publicKey, 'r1'), jwk(ec.publicKey, 'e1')] } }),
            ...overrides
        };
    };

    const expectCode = async (work: Promise<unknown>, type: typeof UnauthorizedError | typeof UpstreamError | typeof ValidationError, code: string) => {

        const err = await expect(work).to.reject(type);
        expect((err as Error & { code: string }).code, err.message).to.equal(code);
    };

    const admin = () => context.actor('admin');

    before(async () => {

        context = await init({ env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1', AEGIS_PUBLIC_URL: 'https://aegis.example.test/' } });
        server = Http.createServer((request, response) => {

            let body = '';
            request.on('data', (chunk: Buffer) => (body += chunk.toString()));
            request.on('end', () => {

                requests.push({ url: request.url!, headers: request.headers, body });
                const answer = answers[request.url!.split('?')[0]!]?.(request, body) ?? { status: 404, body: { error: 'not_found' } };
                response.writeHead(answer.status ?? 200, { 'content-type': 'application/json' });
                response.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
            });
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        serve();
    });

    after(async () => {

        await context.services.settings.reset(admin(), 'sso.oidc');
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await context.stop();
    });

    it('refuses a discovery document or key set that does not fit, storing nothing', async () => {

        await context.services.settings.reset(admin(), 'sso.oidc');
        const cases: Partial<typeof answers>[] = [
            { '/.well-known/openid-configuration': () => ({ body: discovery({ issuer: 'https://elsewhere.example' }) }) },
            { '/.well-known/openid-configuration': () => ({ body: discovery({ code_challenge_methods_supported: ['plain'] }) }) },
            { '/.well-known/openid-configuration': () => ({ body: discovery({ response_types_supported: ['id_token'] }) }) },
            { '/.well-known/openid-configuration': () => ({ body: discovery({ id_token_signing_alg_values_supported: ['HS256'] }) }) },
            { '/.well-known/openid-configuration': () => ({ body: discovery({ token_endpoint: 'http://169.254.169.254/token' }) }) },
            { '/.well-known/openid-configuration': () => ({ body: discovery({ jwks_uri: 42 }) }) },
            { '/.well-known/openid-configuration': () => ({ body: 'not json' }) },
            { '/.well-known/openid-configuration': () => ({ body: [1, 2] }) },
            { '/.well-known/openid-configuration': () => ({ status: 500, body: {} }) },
            { '/jwks': () => ({ body: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }) },
            { '/jwks': () => ({ body: { keys: 'none' } }) }
        ];

        for (const overrides of cases) {
            serve(overrides);
            await expectCode(context.services.oidc.configure(admin(), setting()), ValidationError, 'oidc_discovery_failed');
        }

        expect(await context.knex('settings').where({ key: 'sso.oidc' }).first()).to.not.exist();
        serve();
    });

    it('verifies ES256 and RS256 ID tokens, and a token without kid when one key of its type fits', async () => {

        serve();
        // A key-set address of its own: another test's key set, fetched moments ago, would be kept for ten seconds
        const document = { issuer: base, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`, jwks_uri: `${base}/jwks?verify` };
        const client = { client_id: 'aegis-client' };
        for (const [alg, kid] of [['ES256', 'e1'], ['RS256', 'r1'], ['ES256', undefined], ['RS256', undefined]] as const) {
            const token = sign(alg, claims('n-1'), kid);
            const verified = await context.services.oidc.verifyIdToken(token, client, document, 'n-1');
            expect(verified.nonce, `${alg} ${kid}`).to.equal('n-1');
        }

        // An ES256 header on an RSA key's kid verifies nothing; several audiences are accepted with azp naming the client
        await expectCode(context.services.oidc.verifyIdToken(sign('ES256', claims('n-1'), 'r1'), client, document, 'n-1'), UnauthorizedError, 'oidc_token_signature');
        const several = await context.services.oidc.verifyIdToken(sign('RS256', claims('n-1', { aud: ['aegis-client', 'other'], azp: 'aegis-client' }), 'r1'), client, document, 'n-1');
        expect(several.azp).to.equal('aegis-client');
    });

    it('completes a sign-in as a public client, sending the client id and the PKCE verifier in the form', async () => {

        await context.services.oidc.configure(admin(), setting({ client_secret: null as never }));
        expect((await context.services.settings.get('sso.oidc'))!.client_secret).to.be.undefined();
        const state = 'A'.repeat(22);
        let subject = '';
        serve({
            '/token': () => {

                const body = claims(context.services.oidc.nonceFor(state));
                subject = body.sub;
                return { body: { access_token: 'at', token_type: 'Bearer', id_token: sign('ES256', body, 'e1') } };
            }
        });

        const session = await context.services.oidc.complete(anonymous, { code: 'the-code', state }, { nonce: state, codeVerifier: 'the-verifier', query: {} });
        const user = await User.query(context.knex).findById(session.user.id).throwIfNotFound();
        expect(user).to.include({ auth_provider: 'oidc', external_id: subject, role: 'blue_tech' });

        const exchange = requests.filter((request) => request.url === '/token').at(-1)!;
        expect(exchange.headers.authorization).to.not.exist();
        expect(Object.fromEntries(new URLSearchParams(exchange.body))).to.equal({
            grant_type: 'authorization_code', code: 'the-code', redirect_uri: 'https://aegis.example.test/api/v1/sso/oidc/callback', code_verifier: 'the-verifier', client_id: 'aegis-client'
        });
    });

    it('sends a confidential client\'s secret by HTTP Basic, and refuses a token answer without an ID token or not JSON', async () => {

        await context.services.oidc.configure(admin(), setting({ client_secret: 'a secret:with+symbols' }));
        const state = 'B'.repeat(22);
        const flow = { nonce: state, codeVerifier: 'v', query: {} };
        for (const body of [{ access_token: 'at' }, 'not json']) {
            serve({ '/token': () => ({ body }) });
            await expectCode(context.services.oidc.complete(anonymous, { code: 'c', state }, flow), UnauthorizedError, 'oidc_token_invalid');
        }

        const exchange = requests.filter((request) => request.url === '/token').at(-1)!;
        expect(Buffer.from(exchange.headers.authorization!.replace(/^Basic /, ''), 'base64').toString()).to.equal('aegis-client:a+secret%3Awith%2Bsymbols');
        expect(new URLSearchParams(exchange.body).get('client_id')).to.be.null();
    });

    it('answers 502 when the token endpoint cannot be reached, and 400 when OIDC is off', async () => {

        await context.services.oidc.configure(admin(), setting());
        const state = 'C'.repeat(22);
        serve({ '/token': (request) => {

            request.socket.destroy();
            return { body: {} };
        } });

        await expectCode(context.services.oidc.complete(anonymous, { code: 'c', state }, { nonce: state, codeVerifier: 'v' }), UpstreamError, 'oidc_unreachable');

        serve();
        await context.services.oidc.configure(admin(), setting({ enabled: false }));
        await expectCode(context.services.oidc.authorization(), ValidationError, 'oidc_not_configured');
        await expectCode(context.services.oidc.complete(anonymous, { code: 'c', state }, { nonce: state, codeVerifier: 'v' }), ValidationError, 'oidc_not_configured');
    });

    it('answers 502 when the provider cannot be read at login or its key set at verification, and 400 without AEGIS_PUBLIC_URL', async () => {

        serve();
        await context.services.oidc.configure(admin(), setting());
        // Fresh services: nothing cached from the calls above
        const fresh = (publicUrl: string | undefined) => new OidcService({
            audit: context.services.audit, settings: context.services.settings, outbound: new OutboundHttp(context.config.outbound),
            ssoIdentity: context.services.ssoIdentity, secretKey: Crypto.randomBytes(32), publicUrl
        });

        await expectCode(fresh(undefined).authorization(), ValidationError, 'oidc_not_configured');

        serve({ '/.well-known/openid-configuration': () => ({ status: 503, body: {} }) });
        await expectCode(fresh('https://aegis.example.test').authorization(), UpstreamError, 'oidc_unreachable');

        serve({ '/jwks': () => ({ status: 500, body: {} }) });
        const document = { issuer: base, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`, jwks_uri: `${base}/jwks` };
        await expectCode(fresh('https://aegis.example.test').verifyIdToken(sign('RS256', claims('n'), 'r1'), { client_id: 'aegis-client' }, document, 'n'), UpstreamError, 'oidc_unreachable');

        // A published key node cannot read verifies nothing
        serve({ '/jwks': () => ({ body: { keys: [{ kty: 'RSA', kid: 'broken', n: 'AA', e: 'AA' }] } }) });
        await expectCode(fresh('https://aegis.example.test').verifyIdToken(sign('RS256', claims('n'), 'broken'), { client_id: 'aegis-client' }, document, 'n'), UnauthorizedError, 'oidc_token_signature');
        serve();
    });
});
