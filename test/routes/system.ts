import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { AuditLog, WorkerHeartbeat } from '../../server/models';

import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('System and audit logs', () => {

    let context: TestContext;

    before(async () => {

        context = await init();
    });

    after(async () => {

        await context.stop();
    });

    describe('GET /system/health', () => {

        it('is public and reports each dependency, with the worker from its heartbeat', async () => {

            await WorkerHeartbeat.query(context.knex).delete();
            const first = await context.server.inject({ method: 'GET', url: '/api/v1/system/health' });
            expect(first.statusCode).to.equal(200);
            const body = JSON.parse(first.payload);
            expect(body.dependencies.database.status).to.equal('ok');
            expect(body.dependencies.redis.status).to.equal('ok');
            expect(body.dependencies.object_storage.status).to.equal('ok');
            expect(body.dependencies.worker).to.equal({ status: 'down', last_heartbeat_at: null });
            expect(body.status).to.equal('degraded');

            await context.services.system.heartbeat('test-worker', new Date());
            const second = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/health' })).payload);
            expect(second.dependencies.worker.status).to.equal('ok');
            expect(second.status).to.equal('ok');
            await context.services.system.removeHeartbeat('test-worker');
        });

        it('carries the security headers, on errors too', async () => {

            for (const url of ['/api/v1/system/health', '/api/v1/nowhere', '/api/v1/auth/me']) {
                const res = await context.server.inject({ method: 'GET', url });
                expect(res.headers['x-content-type-options']).to.equal('nosniff');
                expect(res.headers['strict-transport-security']).to.equal('max-age=31536000; includeSubDomains');
                expect(res.headers['content-security-policy']).to.include(`frame-ancestors 'none'`);
                expect(res.headers['referrer-policy']).to.equal('no-referrer');
                expect(res.headers['cache-control']).to.equal('no-store');
                expect(res.headers['x-frame-options']).to.equal('DENY');
            }

            const missing = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/nowhere' })).payload);
            expect(missing.request_id).to.be.a.string();
        });
    });

    describe('GET /system/scheduler', () => {

        it('lists the queue\'s jobs and the live workers', async () => {

            await context.services.system.heartbeat('scheduler-test', new Date());
            await context.services.system.pruneRevocations({ id: null, role: 'system' });
            const id = await context.queue.enqueue('system.prune-revocations', {});
            const res = await context.server.inject({ method: 'GET', url: '/api/v1/system/scheduler', auth: context.as('admin') });
            expect(res.statusCode).to.equal(200);
            const body = JSON.parse(res.payload);
            const job = body.items.find((item: { id: string }) => item.id === id);
            expect(job).to.include({ name: 'system.prune-revocations', fail_count: 0 });
            expect(job.next_run_at).to.exist();
            expect(body.workers.map((worker: { worker_id: string }) => worker.worker_id)).to.include('scheduler-test');
            await context.services.system.removeHeartbeat('scheduler-test');
        });
    });

    describe('GET /audit-logs', () => {

        it('filters by actor, action, entity, outcome and time range, newest first', async () => {

            const start = new Date(Date.now() - 1000);
            const user = await context.createUser('viewer');
            await context.services.users.update(context.actor('admin'), user.id, { display_name: 'Audited' });

            const query = `actor_id=${context.users.admin.id}&action=user.update&entity_type=user&entity_id=${user.id}&outcome=success&from=${start.toISOString()}`;
            const res = await context.server.inject({ method: 'GET', url: `/api/v1/audit-logs?${query}`, auth: context.as('admin') });
            expect(res.statusCode).to.equal(200);
            const body = JSON.parse(res.payload);
            expect(body.total).to.equal(1);
            expect(body.items[0]).to.include({ actor_id: context.users.admin.id, actor_role: 'admin', action: 'user.update', entity_type: 'user', entity_id: user.id, outcome: 'success' });

            const future = await context.server.inject({ method: 'GET', url: `/api/v1/audit-logs?from=${new Date(Date.now() + 60_000).toISOString()}`, auth: context.as('admin') });
            expect(JSON.parse(future.payload).total).to.equal(0);
        });

        it('records IP, user agent and request id from the HTTP request', async () => {

            const res = await context.server.inject({ method: 'PATCH', url: '/api/v1/users/me/preferences', auth: context.as('blue_lead'), payload: { theme: 'light' }, headers: { 'user-agent': 'aegis-test/1.0' }, remoteAddress: '10.1.2.3' });
            expect(res.statusCode).to.equal(200);
            const row = await AuditLog.query(context.knex).where({ action: 'user.preferences', actor_id: context.users.blue_lead.id }).orderBy('created_at', 'desc').first();
            expect(row).to.include({ ip: '10.1.2.3', user_agent: 'aegis-test/1.0' });
            expect(row!.request_id).to.be.a.string();
        });

        it('is append-only: even the table owner cannot update, delete or truncate a row', async () => {

            const row = await AuditLog.query(context.knex).first();
            await expect(context.knex('audit_logs').update({ action: 'tampered' }).where({ id: row!.id })).to.reject(/append-only/);
            await expect(context.knex('audit_logs').delete().where({ id: row!.id })).to.reject(/append-only/);
            await expect(context.knex.raw('truncate audit_logs')).to.reject(/append-only/);
        });

        it('records a refused request as denied, with who, what and where', async () => {

            const res = await context.server.inject({ method: 'GET', url: '/api/v1/users', auth: context.as('red_tech') });
            expect(res.statusCode).to.equal(403);
            let row;
            for (let i = 0; i < 20 && !row; ++i) {
                row = await AuditLog.query(context.knex).where({ action: 'access.denied', actor_id: context.users.red_tech.id }).first();
                await new Promise((resolve) => setTimeout(resolve, 25));
            }

            expect(row).to.include({ outcome: 'denied', actor_role: 'red_tech' });
            expect(row!.details).to.include({ method: 'get', path: '/api/v1/users' });
        });

        it('never stores a secret passed in details', async () => {

            await context.services.audit.record(context.knex, context.actor('admin'), { action: 'test.secret', details: { password: 'hunter2hunter2', nested: { api_key: 'aegis_x', ok: 1 } } });
            const row = await AuditLog.query(context.knex).where({ action: 'test.secret' }).first();
            expect(row!.details).to.equal({ password: '[redacted]', nested: { api_key: '[redacted]', ok: 1 } });
        });

        it('answers 400 to bad filters', async () => {

            for (const query of ['actor_id=nope', 'from=yesterday', 'outcome=maybe', 'sort=ip', `entity_id=${'x'.repeat(200)}`]) {
                const res = await context.server.inject({ method: 'GET', url: `/api/v1/audit-logs?${query}`, auth: context.as('admin') });
                expect(res.statusCode, query).to.equal(400);
            }

            expect(Crypto.randomUUID()).to.be.a.string();
        });
    });
});
