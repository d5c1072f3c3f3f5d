import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { OutboundHttp } from '../../integrations/http';
import { ApiKey, AuditLog } from '../../server/models';
import { serviceDeps } from '../../server/runtime';
import { createServices } from '../../server/services';
import { hashApiKey } from '../../server/services/auth';

import { init, login, origin, password, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('API keys', () => {

    let context: TestContext;

    const create = async (role: 'admin' | 'viewer' | 'red_lead' | 'blue_tech', scope: string, extra: Record<string, unknown> = {}) => {

        const res = await context.server.inject({ method: 'POST', url: '/api/v1/api-keys', auth: context.as(role), payload: { name: `${role}-${scope}`, scope, ...extra } });
        expect(res.statusCode).to.equal(201);
        return JSON.parse(res.payload) as { id: string; key: string; scope: string; prefix: string };
    };

    before(async () => {

        context = await init();
    });

    after(async () => {

        await context.stop();
    });

    it('creates a key shown once, stored only as its SHA-256, and lists it without the key', async () => {

        const key = await create('viewer', 'read');
        expect(key.key).to.match(/^aegis_[0-9a-f]{64}$/);
        expect(key.prefix).to.equal(key.key.slice(0, 14));

        const row = await ApiKey.query(context.knex).findById(key.id);
        expect(row!.key_hash).to.equal(hashApiKey(key.key));
        expect(JSON.stringify(await context.knex('api_keys').where({ id: key.id }))).to.not.include(key.key);

        const list = await context.server.inject({ method: 'GET', url: '/api/v1/api-keys', auth: context.as('viewer') });
        const body = JSON.parse(list.payload);
        expect(body.items.map((item: { id: string }) => item.id)).to.include(key.id);
        expect(list.payload).to.not.include(key.key);
        expect(list.payload).to.not.include('key_hash');
    });

    it('authenticates as the owner with Authorization: Bearer aegis_..., and never from the URL', async () => {

        const key = await create('red_lead', 'write');
        const me = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${key.key}` } });
        expect(me.statusCode).to.equal(200);
        expect(JSON.parse(me.payload).id).to.equal(context.users.red_lead.id);

        const url = await context.server.inject({ method: 'GET', url: `/api/v1/auth/me?api_key=${key.key}` });
        expect(url.statusCode).to.equal(401);

        const wrong = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer aegis_${'0'.repeat(64)}` } });
        expect(wrong.statusCode).to.equal(401);
    });

    it('narrows the owner by scope: read keys only read, write keys cannot call admin routes, role ∩ scope', async () => {

        const read = await create('admin', 'read');
        const write = await create('admin', 'write');
        const admin = await create('admin', 'admin');
        const viewerAdmin = await create('viewer', 'admin');

        const call = (key: string, method: string, url: string, payload?: object) => context.server.inject({ method, url, headers: { authorization: `Bearer ${key}` }, payload });

        expect((await call(read.key, 'GET', '/api/v1/users')).statusCode).to.equal(200);
        const readWrite = await call(read.key, 'PATCH', '/api/v1/users/me/preferences', { theme: 'dark' });
        expect(readWrite.statusCode).to.equal(403);
        expect(JSON.parse(readWrite.payload).code).to.equal('insufficient_key_scope');

        expect((await call(write.key, 'PATCH', '/api/v1/users/me/preferences', { theme: 'dark' })).statusCode).to.equal(200);
        expect((await call(write.key, 'GET', '/api/v1/users')).statusCode).to.equal(403);

        expect((await call(admin.key, 'GET', '/api/v1/users')).statusCode).to.equal(200);
        expect((await call(viewerAdmin.key, 'GET', '/api/v1/users')).statusCode).to.equal(403);
    });

    it('keeps working without an Origin (keys are not cookies) and stops at once on revocation, expiry or deactivation', async () => {

        const key = await create('blue_tech', 'write');
        const del = await context.server.inject({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, auth: context.as('blue_tech') });
        expect(del.statusCode).to.equal(204);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${key.key}` } })).statusCode).to.equal(401);

        const expiring = await create('blue_tech', 'read', { expires_at: new Date(Date.now() + 60_000).toISOString() });
        await ApiKey.query(context.knex).findById(expiring.id).patch({ expires_at: new Date(Date.now() - 1000) });
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${expiring.key}` } })).statusCode).to.equal(401);

        const user = await context.createUser('red_tech');
        const own = await context.server.inject({ method: 'POST', url: '/api/v1/api-keys', auth: { strategy: 'jwt-bearer', credentials: { user, scope: ['red_tech'], app: {} } }, payload: { name: 'mine', scope: 'read' } });
        const raw = JSON.parse(own.payload).key;
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${raw}`, origin } })).statusCode).to.equal(200);
        await context.services.users.deactivate(context.actor('admin'), user.id);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${raw}` } })).statusCode).to.equal(401);
    });

    it('lets only the owner or an admin revoke a key; others get 404 and nothing changes', async () => {

        const key = await create('red_lead', 'read');
        const other = await context.server.inject({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, auth: context.as('blue_tech') });
        expect(other.statusCode).to.equal(404);
        expect((await ApiKey.query(context.knex).findById(key.id))!.revoked_at).to.be.null();

        const admin = await context.server.inject({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, auth: context.as('admin') });
        expect(admin.statusCode).to.equal(204);
        const twice = await context.server.inject({ method: 'DELETE', url: `/api/v1/api-keys/${key.id}`, auth: context.as('admin') });
        expect(twice.statusCode).to.equal(404);

        const listed = await context.server.inject({ method: 'GET', url: '/api/v1/api-keys?include_revoked=true', auth: context.as('red_lead') });
        expect(JSON.parse(listed.payload).items.find((item: { id: string }) => item.id === key.id).revoked_at).to.exist();
    });

    it('answers 400 to a bad scope, a past expiry, a missing name or an unknown field', async () => {

        for (const payload of [{ name: 'x', scope: 'root' }, { name: 'x', scope: 'read', expires_at: '2001-01-01T00:00:00Z' }, { name: 'x', scope: 'read', expires_at: null }, { scope: 'read' }, { name: 'x', scope: 'read', user_id: Crypto.randomUUID() }]) {
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/api-keys', auth: context.as('viewer'), payload });
            expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
        }

        expect((await context.server.inject({ method: 'DELETE', url: '/api/v1/api-keys/nope', auth: context.as('viewer') })).statusCode).to.equal(400);
    });

    describe('credential management needs an interactive login', () => {

        it('refuses an API key creating or revoking keys or changing the password (403 interactive_session_required), and changes nothing', async () => {

            // The review's request: an admin's write key minting an admin key (which could then create admin users)
            const write = await create('admin', 'write');
            const adminKey = await create('admin', 'admin');
            const victim = await create('blue_tech', 'read');
            const headers = (key: string) => ({ authorization: `Bearer ${key}` });
            const keys = await ApiKey.query(context.knex).resultSize();

            for (const key of [write.key, adminKey.key]) {
                const requests = [
                    { method: 'POST', url: '/api/v1/api-keys', payload: { name: 'stronger', scope: 'admin' } },
                    { method: 'DELETE', url: `/api/v1/api-keys/${victim.id}` },
                    { method: 'POST', url: '/api/v1/auth/change-password', payload: { current_password: password, new_password: 'A-much-better-one-42' } }
                ];

                for (const request of requests) {
                    const res = await context.server.inject({ ...request, headers: headers(key) });
                    expect(res.statusCode, `${request.method} ${request.url}`).to.equal(403);
                    const { request_id: requestId, ...body } = JSON.parse(res.payload);
                    expect(body).to.equal({ statusCode: 403, error: 'Forbidden', message: 'This needs an interactive login, not an API key', code: 'interactive_session_required' });
                }
            }

            expect(await ApiKey.query(context.knex).resultSize()).to.equal(keys);
            expect((await ApiKey.query(context.knex).findById(victim.id))!.revoked_at).to.be.null();
            expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: headers(victim.key) })).statusCode).to.equal(200);

            // A login (JWT) still manages credentials; reads with a key still work
            const session = await login(context.server, context.users.blue_tech.username);
            expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/api-keys/${victim.id}`, headers: { authorization: session.authorization } })).statusCode).to.equal(204);
            expect((await context.server.inject({ method: 'GET', url: '/api/v1/api-keys', headers: headers(write.key) })).statusCode).to.equal(200);
        });
    });

    describe('lifetime', () => {

        it('expires every key: by default and at most after API_KEY_MAX_LIFETIME_DAYS, earlier when asked', async () => {

            const day = 86_400_000;
            const start = Date.now();
            const fallback = await create('viewer', 'read');
            const row = await ApiKey.query(context.knex).findById(fallback.id);
            expect(row!.expires_at.getTime()).to.be.within(start + 365 * day - 5000, Date.now() + 365 * day);

            const soon = new Date(Date.now() + 7 * day);
            const short = await create('viewer', 'read', { expires_at: soon.toISOString() });
            expect(new Date((short as unknown as { expires_at: string }).expires_at).getTime()).to.equal(soon.getTime());

            const long = await context.server.inject({ method: 'POST', url: '/api/v1/api-keys', auth: context.as('viewer'), payload: { name: 'forever', scope: 'read', expires_at: new Date(Date.now() + 366 * day).toISOString() } });
            expect(long.statusCode).to.equal(400);
            expect(JSON.parse(long.payload)).to.include({ code: 'lifetime_exceeded', fields: ['expires_at'], message: 'An API key lives at most 365 days' });
        });

        it('refuses a key older than the maximum lifetime now configured, whatever its expires_at', async () => {

            const key = await create('viewer', 'read');
            await context.knex('api_keys').where({ id: key.id }).update({ created_at: new Date(Date.now() - 366 * 86_400_000), expires_at: new Date(Date.now() + 86_400_000) });
            const res = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${key.key}` } });
            expect(res.statusCode).to.equal(401);
            expect(JSON.parse(res.payload).code).to.equal('token_invalid');
        });
    });

    describe('last_used_at', () => {

        it('is stamped at most once a minute per key, never per request', async () => {

            const key = await create('red_lead', 'read');
            const updates: string[] = [];
            const listener = (query: { sql: string }) => {

                if (/^update api_keys/i.test(query.sql)) {
                    updates.push(query.sql);
                }
            };

            context.knex.on('query', listener);
            try {
                const results = await Promise.all(Array.from({ length: 20 }, () => context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${key.key}` } })));
                expect(results.map((res) => res.statusCode)).to.equal(Array(20).fill(200));
                expect(updates).to.have.length(1);
                const stamped = (await ApiKey.query(context.knex).findById(key.id))!.last_used_at!;
                expect(stamped.getTime()).to.be.within(Date.now() - 10_000, Date.now() + 1000);

                // This process remembers its stamp even when the row looks older
                await context.knex('api_keys').where({ id: key.id }).update({ last_used_at: new Date(Date.now() - 120_000) });
                await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${key.key}` } });
                expect(updates).to.have.length(1);

                // Another instance: a row stamped within the minute is left alone, an older one is stamped once
                const other = createServices(serviceDeps(context.config, { knex: context.knex, queue: context.queue, outbound: new OutboundHttp(context.config.outbound), version: 'test' })).auth;
                await context.knex('api_keys').where({ id: key.id }).update({ last_used_at: new Date(Date.now() - 30_000) });
                expect(await other.resolveApiKey(key.key, { id: null, role: 'viewer' })).to.exist();
                expect(updates).to.have.length(1);

                await context.knex('api_keys').where({ id: key.id }).update({ last_used_at: new Date(Date.now() - 120_000) });
                await Promise.all([other.resolveApiKey(key.key, { id: null, role: 'viewer' }), other.resolveApiKey(key.key, { id: null, role: 'viewer' })]);
                expect(updates).to.have.length(2);
                expect((await ApiKey.query(context.knex).findById(key.id))!.last_used_at!.getTime()).to.be.above(Date.now() - 10_000);
            }
            finally {
                context.knex.removeListener('query', listener);
            }
        });
    });

    describe('failed attempts', () => {

        it('audits every refused key like a failed login, with the reason and never the key', async () => {

            const revoked = await create('blue_tech', 'read');
            await context.server.inject({ method: 'DELETE', url: `/api/v1/api-keys/${revoked.id}`, auth: context.as('blue_tech') });
            const expired = await create('blue_tech', 'read');
            await context.knex('api_keys').where({ id: expired.id }).update({ expires_at: new Date(Date.now() - 1000) });
            const unknown = `aegis_${Crypto.randomBytes(32).toString('hex')}`;
            const malformed = 'aegis_not-hex';
            const address = `10.77.${Crypto.randomInt(0, 255)}.1`;

            for (const key of [unknown, malformed, revoked.key, expired.key]) {
                const res = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${key}`, 'user-agent': 'key-prober' }, remoteAddress: address });
                expect(res.statusCode).to.equal(401);
                const { request_id: requestId, ...body } = JSON.parse(res.payload);
                expect(body).to.equal({ statusCode: 401, error: 'Unauthorized', message: 'Missing, invalid or expired credentials', code: 'token_invalid' });
                expect(res.headers['www-authenticate']).to.equal('Bearer error="invalid_token"');
            }

            const rows = await AuditLog.query(context.knex).where({ action: 'auth.api_key', ip: address }).orderBy('created_at');
            expect(rows.map((row) => ({ outcome: row.outcome, entity_id: row.entity_id, actor_id: row.actor_id, user_agent: row.user_agent, details: row.details }))).to.equal([
                { outcome: 'failure', entity_id: null, actor_id: null, user_agent: 'key-prober', details: { reason: 'unknown' } },
                { outcome: 'failure', entity_id: null, actor_id: null, user_agent: 'key-prober', details: { reason: 'unknown' } },
                { outcome: 'failure', entity_id: revoked.id, actor_id: context.users.blue_tech.id, user_agent: 'key-prober', details: { reason: 'revoked', prefix: revoked.prefix } },
                { outcome: 'failure', entity_id: expired.id, actor_id: context.users.blue_tech.id, user_agent: 'key-prober', details: { reason: 'expired', prefix: expired.prefix } }
            ]);

            const text = JSON.stringify(rows);
            for (const key of [unknown, revoked.key, expired.key]) {
                expect(text).to.not.include(key.slice(14));
            }
        });
    });
});
