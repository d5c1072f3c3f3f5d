import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { ApiKey } from '../../server/models';
import { hashApiKey } from '../../server/services/auth';

import { init, origin, type TestContext } from '../helpers/server';


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

        for (const payload of [{ name: 'x', scope: 'root' }, { name: 'x', scope: 'read', expires_at: '2001-01-01T00:00:00Z' }, { scope: 'read' }, { name: 'x', scope: 'read', user_id: Crypto.randomUUID() }]) {
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/api-keys', auth: context.as('viewer'), payload });
            expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
        }

        expect((await context.server.inject({ method: 'DELETE', url: '/api/v1/api-keys/nope', auth: context.as('viewer') })).statusCode).to.equal(400);
    });
});
