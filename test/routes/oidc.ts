import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { User } from '../../server/models';

import { authorize, b64, decodeJwt, signRs256, startProvider, type TestProvider } from '../helpers/oidc-provider';
import { init, origin, password, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    publicUrl: 'https://aegis.example.test',
    callbackPath: '/api/v1/sso/oidc/callback',
    unique: () => Crypto.randomBytes(5).toString('hex'),
    // a Set-Cookie header's value and attributes
    cookieOf: (headers: Record<string, unknown>, name: string): string | undefined => ([headers['set-cookie']].flat() as (string | undefined)[]).find((cookie) => cookie?.startsWith(`${name}=`)),
    valueOf: (cookie: string) => cookie.split(';')[0]!.split('=').slice(1).join('='),
    attributesOf: (cookie: string) => cookie.split(';').slice(1).map((part) => part.trim()).filter((part) => !/^(Max-Age|Expires)=/i.test(part)).sort()
};


describe('OpenID Connect sign-in (/sso/oidc)', () => {

    let context: TestContext;
    let idp: TestProvider;

    const admin = () => context.as('admin');

    const config = (overrides: Record<string, unknown> = {}) => ({
        enabled: true,
        issuer: idp.issuer,
        client_id: idp.clientId,
        client_secret: idp.clientSecret,
        role_mapping: { 'aegis-red': 'red_tech', 'aegis-red-leads': 'red_lead', 'aegis-admins': 'admin' },
        jit: true,
        ...overrides
    });

    const configure = async (overrides: Record<string, unknown> = {}) => {

        const res = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/oidc/config', auth: admin(), payload: config(overrides) });
        expect(res.statusCode, res.payload).to.equal(200);
        return res;
    };

    const account = (groups: string[] = ['aegis-red']) => {

        const id = internals.unique();
        const subject = `sub-${id}`;
        idp.accounts.set(subject, { username: `oidc-${id}`, email: `oidc-${id}@idp.example.test`, name: `OIDC ${id}`, groups });
        return { subject, username: `oidc-${id}` };
    };

    const usersOf = async (subject: string, username: string) => await User.query(context.knex).where({ auth_provider: 'oidc', external_id: subject }).orWhere({ username }).resultSize();
    const flowCookie = (res: { headers: Record<string, unknown> }) => internals.valueOf(internals.cookieOf(res.headers, 'aegis_oidc_flow')!);

    // The whole browser flow: Aegis's login, the provider's form, back to Aegis's callback (optionally altered)
    const signIn = async (subject: string, options: { query?: string; alter?: (callback: URL) => void; cookie?: (flow: string) => string | undefined } = {}) => {

        const login = await context.server.inject({ method: 'GET', url: `/api/v1/sso/oidc/login${options.query ?? ''}` });
        expect(login.statusCode, login.payload).to.equal(302);
        const flow = flowCookie(login);
        const back = new URL(await authorize(login.headers.location as string, subject));
        expect(back.origin + back.pathname).to.equal(internals.publicUrl + internals.callbackPath);
        options.alter?.(back);
        const cookie = options.cookie ? options.cookie(flow) : `aegis_oidc_flow=${flow}`;
        return await context.server.inject({ method: 'GET', url: back.pathname + back.search, headers: cookie ? { cookie } : {} });
    };

    const refusedWith = (res: { statusCode: number; payload: string; headers: Record<string, unknown> }, code: string) => {

        expect(res.statusCode, res.payload).to.equal(401);
        expect(JSON.parse(res.payload).code).to.equal(code);
        expect(internals.cookieOf(res.headers, 'aegis_token')).to.not.exist();
    };

    before(async () => {

        context = await init({ env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1', AEGIS_PUBLIC_URL: internals.publicUrl } });
        idp = await startProvider(internals.publicUrl + internals.callbackPath);
    });

    after(async () => {

        await context.services.settings.reset(context.actor('admin'), 'sso.oidc');
        await idp.stop();
        await context.stop();
    });

    describe('configuration', () => {

        it('saves a configuration whose discovery document and keys check out, and answers the secret as { set }', async () => {

            const res = await configure();
            const body = JSON.parse(res.payload);
            expect(body.configured).to.be.true();
            expect(body.redirect_uri).to.equal(internals.publicUrl + internals.callbackPath);
            expect(body.value).to.equal({
                enabled: true, issuer: `${idp.issuer}/`, client_id: idp.clientId, client_secret: { set: true },
                scopes: ['openid', 'profile', 'email', 'groups'],
                claims: { username: 'preferred_username', email: 'email', display_name: 'name', groups: 'groups' },
                role_mapping: { 'aegis-red': 'red_tech', 'aegis-red-leads': 'red_lead', 'aegis-admins': 'admin' },
                jit: true
            });
            expect(res.payload).to.not.include(idp.clientSecret);

            const read = await context.server.inject({ method: 'GET', url: '/api/v1/sso/oidc/config', auth: admin() });
            expect(read.statusCode).to.equal(200);
            const status = await context.server.inject({ method: 'GET', url: '/api/v1/sso/status', auth: context.as('viewer') });
            expect(JSON.parse(status.payload).oidc).to.equal({ configured: true, enabled: true });
            expect(JSON.parse(read.payload).value).to.equal(body.value);
            expect(read.payload).to.not.include(idp.clientSecret);

            const audit = await context.knex('audit_logs').where({ action: 'settings.update', entity_id: 'sso.oidc' }).orderBy('created_at', 'desc').first();
            expect(JSON.stringify(audit)).to.not.include(idp.clientSecret);
            expect(audit.details.write_only_changed).to.equal(['client_secret']);
        });

        it('keeps the secret when it is left out and adds openid to the scopes', async () => {

            await configure();
            const { client_secret: omitted, ...rest } = config({ scopes: ['profile'] });
            expect(omitted).to.exist();
            const res = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/oidc/config', auth: admin(), payload: rest });
            expect(res.statusCode, res.payload).to.equal(200);
            expect(JSON.parse(res.payload).value).to.include({ client_secret: { set: true }, scopes: ['openid', 'profile'] });
            expect((await context.services.settings.get('sso.oidc'))!.client_secret).to.equal(idp.clientSecret);
            await configure();
        });

        it('refuses a provider whose discovery fails, a blocked issuer and a bad value with 400, storing nothing', async () => {

            await configure();
            const stored = await context.knex('settings').where({ key: 'sso.oidc' }).first();
            const cases: [Record<string, unknown>, string][] = [
                [{ issuer: `${idp.issuer}/nowhere` }, 'oidc_discovery_failed'],
                [{ issuer: 'http://169.254.169.254' }, 'url_not_allowed'],
                [{ issuer: 'https://10.1.2.3' }, 'url_not_allowed'],
                [{ role_mapping: { x: 'god' } }, 'validation_failed'],
                [{ issuer: 'not a url' }, 'validation_failed'],
                [{ client_id: '' }, 'validation_failed'],
                [{ scopes: ['open id'] }, 'validation_failed']
            ];

            for (const [overrides, code] of cases) {
                const res = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/oidc/config', auth: admin(), payload: config({ ...overrides, client_secret: 'another-secret' }) });
                expect(res.statusCode, JSON.stringify(overrides)).to.equal(400);
                const body = JSON.parse(res.payload);
                expect(body.code, res.payload).to.equal(code);
                expect(body.message).to.be.a.string();
            }

            expect(await context.knex('settings').where({ key: 'sso.oidc' }).first()).to.equal(stored);
        });

        it('is for admins only', async () => {

            for (const role of ['red_lead', 'blue_lead', 'red_tech', 'viewer'] as const) {
                expect((await context.server.inject({ method: 'GET', url: '/api/v1/sso/oidc/config', auth: context.as(role) })).statusCode).to.equal(403);
                expect((await context.server.inject({ method: 'PUT', url: '/api/v1/sso/oidc/config', auth: context.as(role), payload: config() })).statusCode).to.equal(403);
            }

            expect((await context.server.inject({ method: 'GET', url: '/api/v1/sso/oidc/config' })).statusCode).to.equal(401);
        });
    });

    describe('login', () => {

        it('redirects to the provider with the code flow, PKCE S256, a state and a nonce bound to it', async () => {

            await configure();
            const res = await context.server.inject({ method: 'GET', url: '/api/v1/sso/oidc/login' });
            expect(res.statusCode).to.equal(302);
            const location = new URL(res.headers.location as string);
            expect(location.origin).to.equal(idp.issuer);
            const query = Object.fromEntries(location.searchParams);
            expect(query).to.include({ response_type: 'code', client_id: idp.clientId, redirect_uri: internals.publicUrl + internals.callbackPath, code_challenge_method: 'S256', scope: 'openid profile email groups' });
            expect(query.state).to.match(/^[A-Za-z0-9]{22}$/);
            expect(query.code_challenge).to.match(/^[A-Za-z0-9_-]{43}$/);
            expect(query.nonce).to.equal(context.services.oidc.nonceFor(query.state!));

            const cookie = internals.cookieOf(res.headers, 'aegis_oidc_flow')!;
            expect(internals.attributesOf(cookie)).to.include(['HttpOnly', 'SameSite=Lax', 'Secure', 'Path=/api/v1/sso/oidc']);
            expect(cookie).to.not.include(query.state!);           // sealed
        });

        it('answers 400 when OIDC is turned off or the landing path leaves the site', async () => {

            await configure({ enabled: false });
            const off = await context.server.inject({ method: 'GET', url: '/api/v1/sso/oidc/login' });
            expect(off.statusCode).to.equal(400);
            expect(JSON.parse(off.payload).code).to.equal('oidc_not_configured');
            expect(off.headers['set-cookie']).to.not.exist();

            await configure();
            for (const target of ['//evil.example/x', 'https://evil.example/', '/\\evil.example']) {
                const res = await context.server.inject({ method: 'GET', url: `/api/v1/sso/oidc/login?redirect_to=${encodeURIComponent(target)}` });
                expect(res.statusCode, target).to.equal(400);
            }
        });
    });

    describe('callback', () => {

        it('signs a new user in just in time with the mapped role, with the session of a password login', async () => {

            await configure();
            const { subject, username } = account(['aegis-red', 'unmapped']);
            const res = await signIn(subject, { query: '?redirect_to=%2Ftests%3Fmine%3D1' });
            expect(res.statusCode, res.payload).to.equal(303);
            expect(res.headers.location).to.equal('/tests?mine=1');

            const user = await User.query(context.knex).findOne({ auth_provider: 'oidc', external_id: subject });
            expect(user).to.include({ username, role: 'red_tech', password_hash: null, email: `${username}@idp.example.test`, display_name: `OIDC ${username.slice(5)}` });
            expect(user!.last_login_at).to.be.a.date();

            // The same cookie as a password login: same flags, same lifetime
            const cookie = internals.cookieOf(res.headers, 'aegis_token')!;
            const local = await context.createUser('viewer');
            const passwordLogin = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: local.username, password } });
            const localCookie = internals.cookieOf(passwordLogin.headers, 'aegis_token')!;
            expect(internals.attributesOf(cookie)).to.equal(internals.attributesOf(localCookie));
            expect(/Max-Age=(\d+)/.exec(cookie)![1]).to.equal(/Max-Age=(\d+)/.exec(localCookie)![1]);
            const token = internals.valueOf(cookie);
            const claims = decodeJwt(token).claims as { exp: number; iat: number };
            expect(claims.exp - claims.iat).to.equal(context.config.jwt.ttlSeconds);

            // The flow cookie is spent
            expect(internals.cookieOf(res.headers, 'aegis_oidc_flow')).to.include('Max-Age=0');

            const me = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: `aegis_token=${token}` } });
            expect(me.statusCode).to.equal(200);
            expect(JSON.parse(me.payload)).to.include({ id: user!.id, username, role: 'red_tech' });

            const login = await context.knex('audit_logs').where({ action: 'auth.login', actor_id: user!.id }).first();
            expect(login.details).to.equal({ provider: 'oidc' });

            // Revocation: logging out ends the session at once
            const logout = await context.server.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { cookie: `aegis_token=${token}`, origin } });
            expect(logout.statusCode).to.equal(204);
            const revoked = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: `aegis_token=${token}` } });
            expect(revoked.statusCode).to.equal(401);
        });

        it('updates the role when the groups change and ends the earlier sessions', async () => {

            await configure();
            const { subject, username } = account(['aegis-red']);
            const first = await signIn(subject);
            expect(first.statusCode, first.payload).to.equal(303);
            expect(first.headers.location).to.equal('/');
            const firstToken = internals.valueOf(internals.cookieOf(first.headers, 'aegis_token')!);

            idp.accounts.get(subject)!.groups = ['aegis-red', 'aegis-red-leads'];
            const second = await signIn(subject);
            expect(second.statusCode, second.payload).to.equal(303);
            const user = await User.query(context.knex).findOne({ username });
            expect(user!.role).to.equal('red_lead');
            expect(await usersOf(subject, username)).to.equal(1);

            expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: `aegis_token=${firstToken}` } })).statusCode).to.equal(401);
            const secondToken = internals.valueOf(internals.cookieOf(second.headers, 'aegis_token')!);
            const me = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: `aegis_token=${secondToken}` } });
            expect(JSON.parse(me.payload).role).to.equal('red_lead');
        });

        it('refuses a deactivated user, and an unknown one when just-in-time provisioning is off', async () => {

            await configure();
            const known = account();
            expect((await signIn(known.subject)).statusCode).to.equal(303);
            await User.query(context.knex).where({ username: known.username }).patch({ is_active: false });
            const stored: unknown = await context.knex('users').where({ username: known.username }).first();
            refusedWith(await signIn(known.subject), 'sso_user_inactive');
            expect(await context.knex('users').where({ username: known.username }).first()).to.equal(stored);

            await configure({ jit: false });
            const unknown = account();
            refusedWith(await signIn(unknown.subject), 'sso_unknown_user');
            expect(await usersOf(unknown.subject, unknown.username)).to.equal(0);
            await configure();
        });

        it('refuses a username that belongs to a local account (no takeover)', async () => {

            await configure();
            const local = await context.createUser('admin');
            const subject = `sub-${internals.unique()}`;
            idp.accounts.set(subject, { username: local.username, email: `x-${internals.unique()}@idp.example.test`, name: 'Impostor', groups: ['aegis-admins'] });
            refusedWith(await signIn(subject), 'sso_identity_conflict');
            expect(await User.query(context.knex).where({ auth_provider: 'oidc', external_id: subject }).resultSize()).to.equal(0);
        });

        it('refuses a wrong state, a missing flow cookie and a provider error, before any token is asked for', async () => {

            await configure();
            const cases: [Parameters<typeof signIn>[1], string][] = [
                [{ alter: (url) => url.searchParams.set('state', `${url.searchParams.get('state')!.slice(0, -1)}X`) }, 'oidc_state_mismatch'],
                [{ alter: (url) => url.searchParams.delete('state') }, 'oidc_state_mismatch'],
                [{ cookie: () => undefined }, 'oidc_flow_missing'],
                [{ cookie: () => 'aegis_oidc_flow=Fe26.2**forged' }, 'oidc_flow_missing'],
                [{ alter: (url) => url.searchParams.set('iss', 'https://evil.example') }, 'oidc_issuer_mismatch'],
                [{ alter: (url) => url.searchParams.delete('code') }, 'oidc_code_missing'],
                [{ alter: (url) => url.searchParams.set('code', 'forged-code') }, 'oidc_code_refused'],
                [{ alter: (url) => url.searchParams.set('error', 'access_denied') }, 'oidc_provider_error']
            ];

            for (const [options, code] of cases) {
                const { subject, username } = account();
                const tokens = idp.tokenRequests;
                refusedWith(await signIn(subject, options), code);
                expect(idp.tokenRequests, code).to.equal(tokens + (code === 'oidc_code_refused' ? 1 : 0));
                expect(await usersOf(subject, username), code).to.equal(0);
            }

            // Each refusal is audited as a failed login, as a failed password is
            const failures = await context.knex('audit_logs').where({ action: 'auth.login', outcome: 'failure' }).whereRaw(`details->>'provider' = 'oidc' and details->>'reason' = 'oidc_state_mismatch'`);
            expect(failures.length).to.be.at.least(2);
        });

        it('refuses every forged ID token (the forged-response table), creating nothing', async () => {

            await configure();
            const { privateKey: otherKey } = Crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
            const { privateKey: ecKey } = Crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
            const now = Math.floor(Date.now() / 1000);
            const resign = (change: (claims: Record<string, unknown>) => Record<string, unknown>) => {

                return (token: string) => signRs256(decodeJwt(token).header, change(decodeJwt(token).claims), idp.privateKey);
            };

            const table: [string, (token: string) => string, string][] = [
                ['expired', resign((claims) => ({ ...claims, exp: now - 3600, iat: now - 7200 })), 'oidc_token_expired'],
                ['issued in the future', resign((claims) => ({ ...claims, iat: now + 3600, exp: now + 7200 })), 'oidc_token_expired'],
                ['another audience', resign((claims) => ({ ...claims, aud: 'another-client' })), 'oidc_token_audience'],
                ['several audiences without azp', resign((claims) => ({ ...claims, aud: [claims.aud, 'another-client'], azp: 'another-client' })), 'oidc_token_audience'],
                ['another issuer', resign((claims) => ({ ...claims, iss: 'https://evil.example' })), 'oidc_token_issuer'],
                ['a wrong nonce', resign((claims) => ({ ...claims, nonce: 'forged-nonce' })), 'oidc_token_nonce'],
                ['no nonce', resign(({ nonce, ...claims }) => claims), 'oidc_token_nonce'],
                ['alg none', (token) => `${b64({ alg: 'none', typ: 'JWT' })}.${token.split('.')[1]}.`, 'oidc_token_algorithm'],
                ['HS256 with the client secret', (token) => {

                    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${token.split('.')[1]}`;
                    return `${input}.${Crypto.createHmac('sha256', idp.clientSecret).update(input).digest('base64url')}`;
                }, 'oidc_token_algorithm'],
                ['another key with the provider\'s kid', (token) => signRs256(decodeJwt(token).header, decodeJwt(token).claims, otherKey), 'oidc_token_signature'],
                ['another key with an unknown kid', (token) => signRs256({ ...decodeJwt(token).header, kid: 'unknown' }, decodeJwt(token).claims, otherKey), 'oidc_token_signature'],
                ['ES256 by a key not in the key set', (token) => {

                    const input = `${b64({ alg: 'ES256', kid: idp.kid })}.${token.split('.')[1]}`;
                    return `${input}.${Crypto.sign('sha256', Buffer.from(input), { key: ecKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
                }, 'oidc_token_signature'],
                ['altered claims under the original signature', (token) => {

                    const [header, , signature] = token.split('.');
                    return `${header}.${b64({ ...decodeJwt(token).claims, email: 'admin@aegis.example.test' })}.${signature}`;
                }, 'oidc_token_signature'],
                ['not a JWT', () => 'garbage', 'oidc_token_invalid'],
                ['no subject', resign(({ sub, ...claims }) => claims), 'oidc_token_invalid']
            ];

            for (const [name, forge, code] of table) {
                const { subject, username } = account(['aegis-admins']);
                idp.forge = forge;
                const res = await signIn(subject);
                expect(idp.forge, name).to.be.undefined();
                expect(res.statusCode, `${name}: ${res.payload}`).to.equal(401);
                expect(JSON.parse(res.payload).code, name).to.equal(code);
                expect(internals.cookieOf(res.headers, 'aegis_token'), name).to.not.exist();
                expect(await usersOf(subject, username), name).to.equal(0);
            }

            // The same flow untouched signs in: the table's refusals are the forgeries'
            const { subject } = account(['aegis-admins']);
            idp.forge = resign((claims) => claims);
            expect((await signIn(subject)).statusCode).to.equal(303);
        });
    });
});
