import * as Crypto from 'crypto';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import type { Knex } from 'knex';
import Pino from 'pino';

import { systemActor } from '../../server/policy';
import type { StoredEvent } from '../../server/services/events';
import { EventRelay, type Consumer } from '../../worker/relay';

import { createAgenda } from '../../server/jobs';

import { testDatabaseUrl } from '../helpers/db';
import { json, testRow } from '../helpers/factories';
import { spawnEntry, type Spawned } from '../helpers/processes';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    // A consumer of its own name, starting now, taking only `alert.fired`, which nothing else in the suite emits
    recorder: (options: { fail?: (event: StoredEvent) => boolean; write?: (trx: Knex.Transaction, event: StoredEvent) => Promise<void> } = {}) => {

        const seen: StoredEvent[] = [];
        const consumer: Consumer = {
            name: `test-${Crypto.randomBytes(4).toString('hex')}`,
            events: ['alert.fired'],
            from: 'now',
            handle: async (event, trx) => {

                seen.push(event);
                await options.write?.(trx, event);
                if (options.fail?.(event)) {
                    throw new Error(`handler failed on ${event.id}`);
                }
            }
        };

        return { consumer, seen, mine: (marks: string[]) => seen.filter((event) => marks.includes((event.payload as { mark: string }).mark)).map((event) => (event.payload as { mark: string }).mark) };
    },

    event: (mark: string) => ({ type: 'alert.fired' as const, entity_type: 'alert', entity_id: mark, payload: { mark } }),

    wait: async (until: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {

        const deadline = Date.now() + timeoutMs;
        while (!(await until())) {
            if (Date.now() > deadline) {
                throw new Error('timed out');
            }

            await new Promise((resolve) => setTimeout(resolve, 20));
        }
    }
};


describe('Event relay', () => {

    let context: TestContext;
    const emit = (trx: Knex.Transaction, ...marks: string[]) => context.services.events.emit(trx, systemActor, marks.map(internals.event));
    const emitNow = (...marks: string[]) => context.knex.transaction((trx) => emit(trx, ...marks));

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('never skips an event whose transaction commits after a later one was relayed (lower position, later commit)', async () => {

        const { consumer, mine } = internals.recorder();
        const relay = new EventRelay({ knex: context.knex, consumers: [consumer] });
        await relay.register();

        // A writes first (the lower xid and seq) and stays open; B writes after it and commits first
        const a = await context.knex.transaction();
        await emit(a, 'A');
        await emitNow('B');

        const first = await relay.cycle(consumer);
        expect(first).to.include({ delivered: 0, blocked: true });         // B waits behind A's transaction
        expect(mine(['A', 'B'])).to.equal([]);

        await a.commit();
        await relay.drain();
        expect(mine(['A', 'B'])).to.equal(['A', 'B']);

        // A cursor on the commit order of seq alone would have passed A: B's seq is higher and was relayable first
        const rows = await context.knex('domain_events').whereIn('entity_id', ['A', 'B']).orderBy('seq').select('entity_id');
        expect(rows.map((row: { entity_id: string }) => row.entity_id)).to.equal(['A', 'B']);
    });

    it('never skips an event written late by a transaction that started first (higher seq, lower xid)', async () => {

        const { consumer, mine } = internals.recorder();
        const relay = new EventRelay({ knex: context.knex, consumers: [consumer] });
        await relay.register();

        // C takes its transaction id first but writes its event last: C's seq is above D's, its xid below
        const c = await context.knex.transaction();
        await c.raw('select pg_current_xact_id()');
        await emitNow('D');
        await emit(c, 'C');

        expect(await relay.cycle(consumer)).to.include({ delivered: 0, blocked: true });
        await c.commit();
        await relay.drain();
        expect(mine(['C', 'D'])).to.equal(['C', 'D']);                   // (xid, seq) order: C's transaction began first

        await emitNow('E');
        await relay.drain();
        expect(mine(['C', 'D', 'E'])).to.equal(['C', 'D', 'E']);         // each once
    });

    it('never delivers one event to one consumer from two relays at once, and drops nothing', async () => {

        const { consumer, seen } = internals.recorder();
        const slow = { ...consumer, handle: async (event: StoredEvent, trx: Knex.Transaction) => {

            await new Promise((resolve) => setTimeout(resolve, 1));
            await consumer.handle(event, trx);
        } };

        const relays = [0, 1].map(() => new EventRelay({ knex: context.knex, consumers: [slow], options: { batchSize: 20 } }));
        await relays[0]!.register();
        const marks = Array.from({ length: 120 }, (_, i) => `many-${i}`);
        for (let i = 0; i < marks.length; i += 10) {
            await emitNow(...marks.slice(i, i + 10));
        }

        await Promise.all(relays.map((relay) => relay.drain()));
        const delivered = seen.map((event) => (event.payload as { mark: string }).mark).filter((mark) => mark.startsWith('many-'));
        expect(delivered).to.equal(marks);
    });

    it('goes on one event per cycle when a batch outlasts its time, registers a consumer it meets, and gives up draining behind a transaction that never ends', async () => {

        const { consumer, mine } = internals.recorder();
        const relay = new EventRelay({ knex: context.knex, consumers: [consumer], options: { batchMs: 0 } });
        expect(await relay.cycle(consumer)).to.include({ more: true, delivered: 0 });      // the cursor row is created

        // Without `from: 'now'`, a consumer starts at the oldest event kept
        const oldest = { ...consumer, name: `${consumer.name}-oldest`, from: undefined };
        await new EventRelay({ knex: context.knex, consumers: [oldest] }).register();
        expect(await context.knex('event_consumers').where('name', oldest.name).first(context.knex.raw('cursor_xid::text as xid'), 'cursor_seq')).to.equal({ xid: '0', cursor_seq: 0 });

        await emitNow('S1', 'S2', 'S3');
        expect(await relay.cycle(consumer)).to.include({ more: true, delivered: 1 });
        await relay.drain();
        expect(mine(['S1', 'S2', 'S3'])).to.equal(['S1', 'S2', 'S3']);

        const open = await context.knex.transaction();
        await emit(open, 'S4');
        await emitNow('S5');
        await expect(relay.drain(100)).to.reject(`The relay could not drain ${consumer.name} within 100 ms`);
        await open.rollback();
        await relay.drain();
        expect(mine(['S1', 'S2', 'S3', 'S4', 'S5'])).to.equal(['S1', 'S2', 'S3', 'S5']);   // a rolled-back event never existed
    });

    it('isolates a handler that swallows a database error and leaves the transaction aborted', async () => {

        const { consumer, mine } = internals.recorder({ write: async (trx, event) => {

            if ((event.payload as { mark: string }).mark === 'Q1') {
                await trx.raw('select 1/0').catch(() => undefined);
            }
        } });

        const logged: string[] = [];
        const logger = Pino({ level: 'warn' }, { write: (line: string) => logged.push(JSON.parse(line).msg) });
        const relay = new EventRelay({ knex: context.knex, consumers: [consumer], logger, options: { maxAttempts: 1 } });
        await relay.register();
        await emitNow('Q1', 'Q2');
        await relay.drain();

        expect(mine(['Q1', 'Q2'])).to.equal(['Q1', 'Q2', 'Q1', 'Q2']);   // the careless run, then the careful one
        const [delivery] = await context.knex('event_deliveries').where({ consumer: consumer.name }).select('status', 'last_error');
        expect(delivery).to.equal({ status: 'failed', last_error: 'release savepoint relay_handler - current transaction is aborted, commands ignored until end of transaction block' });
        expect(logged).to.equal(['event handler failed']);
    });

    it('writes a handler\'s effects once when its connection dies in the middle of a batch (a worker killed mid-batch)', async () => {

        const marker = Crypto.randomUUID();
        let killed = false;
        const { consumer, mine } = internals.recorder({ write: async (trx, event) => {

            await trx('notifications').insert({ user_id: context.users.viewer.id, type: 'relay.test', title: `${marker} ${(event.payload as { mark: string }).mark}` });
            if (!killed && (event.payload as { mark: string }).mark === 'K2') {
                killed = true;
                await trx.raw('select pg_terminate_backend(pg_backend_pid())').catch(() => undefined);
            }
        } });

        const relay = new EventRelay({ knex: context.knex, consumers: [consumer] });
        await relay.register();
        await emitNow('K1', 'K2', 'K3');
        await relay.drain();

        expect(mine(['K1', 'K2', 'K3']).slice(0, 2)).to.equal(['K1', 'K2']);
        expect(mine(['K1', 'K2', 'K3']).slice(-3)).to.equal(['K1', 'K2', 'K3']);           // the batch again, on a new connection
        const titles = await context.knex('notifications').where('title', 'like', `${marker} %`).orderBy('title').pluck('title');
        expect(titles).to.equal([`${marker} K1`, `${marker} K2`, `${marker} K3`]);
        expect(await context.knex('event_deliveries').where({ consumer: consumer.name })).to.equal([]);
    });

    it('retries a failing handler with back-off, parks it, shows it to an admin, and holds no other consumer', { timeout: 30_000 }, async () => {

        let broken = true;
        const marker = Crypto.randomUUID();
        const flaky = internals.recorder({
            fail: (event) => broken && (event.payload as { mark: string }).mark === 'F1',
            // A write of the failed attempt is undone with it
            write: (trx, event) => trx('notifications').insert({ user_id: context.users.viewer.id, type: 'relay.test', title: `${marker} ${event.id}` })
        });
        const steady = internals.recorder();
        const outcomes: string[] = [];
        const relay = new EventRelay({
            knex: context.knex,
            consumers: [flaky.consumer, steady.consumer],
            onDelivery: (name, outcome) => name === flaky.consumer.name && outcomes.push(outcome),
            options: { maxAttempts: 3, retryBaseMs: 300, retryCapMs: 500 }
        });
        await relay.register();

        await emitNow('F1');
        await emitNow('F2');
        await relay.drain();
        expect(steady.mine(['F1', 'F2'])).to.equal(['F1', 'F2']);
        expect(flaky.mine(['F1', 'F2'])).to.equal(['F1', 'F2']);        // F2 went on past the failure

        const eventId = (await context.knex('domain_events').where({ entity_id: 'F1' }).first('id')).id;
        const delivery = () => context.knex('event_deliveries').where({ consumer: flaky.consumer.name, event_id: eventId }).first();
        const delay = (row: { next_attempt_at: Date; updated_at: Date }) => row.next_attempt_at.getTime() - row.updated_at.getTime();

        const first = await delivery();
        expect(first).to.include({ status: 'pending', attempts: 1, last_error: `handler failed on ${eventId}` });
        expect(delay(first)).to.be.within(300, 300 * 1.25 + 250);

        // Not due yet: nothing happens
        await relay.drain();
        expect((await delivery()).attempts).to.equal(1);

        await internals.wait(async () => (await relay.cycle(flaky.consumer)).failed > 0 || (await delivery()).attempts > 1);
        const second = await delivery();
        expect(second).to.include({ status: 'pending', attempts: 2 });
        expect(delay(second)).to.be.within(500, 500 * 1.25 + 250);        // doubled, then capped

        await internals.wait(async () => {

            await relay.cycle(flaky.consumer);
            return (await delivery()).status === 'failed';
        });

        expect(await delivery()).to.include({ status: 'failed', attempts: 3, next_attempt_at: null });
        expect(await context.knex('notifications').where('title', `${marker} ${eventId}`)).to.equal([]);
        expect((await context.services.events.status()).find((item) => item.name === flaky.consumer.name)).to.include({ failed: 1, pending: 0 });

        // The administrator sees it, and hands it back
        const list = await context.server.inject({ method: 'GET', url: `/api/v1/system/events/failed?consumer=${flaky.consumer.name}`, auth: context.as('admin') });
        expect(list.statusCode).to.equal(200);
        const parked = json(list);
        expect(parked.total).to.equal(1);
        expect(parked.items[0]).to.include({ consumer: flaky.consumer.name, event_id: eventId, status: 'failed', attempts: 3, event_type: 'alert.fired', entity_id: 'F1', payload: { mark: 'F1' }, last_error: `handler failed on ${eventId}` });
        expect(json(await context.server.inject({ method: 'GET', url: '/api/v1/system/events/failed?event_type=test.validated&consumer=nobody', auth: context.as('admin') })).total).to.equal(0);
        expect(json(await context.server.inject({ method: 'GET', url: '/api/v1/system/events/failed?event_type=alert.fired&limit=500', auth: context.as('admin') })).items.map((item: { id: string }) => item.id)).to.include(parked.items[0].id);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/system/events/failed?sort=last_error', auth: context.as('admin') })).statusCode).to.equal(400);

        const scheduler = json(await context.server.inject({ method: 'GET', url: '/api/v1/system/scheduler', auth: context.as('admin') }));
        expect(scheduler.consumers.find((item: { name: string }) => item.name === flaky.consumer.name)).to.include({ failed: 1, pending: 0, lag_seconds: 0 });

        broken = false;
        const retried = await context.server.inject({ method: 'POST', url: `/api/v1/system/events/failed/${parked.items[0].id}/retry`, auth: context.as('admin') });
        expect(retried.statusCode).to.equal(200);
        expect(json(retried)).to.include({ status: 'pending', attempts: 0 });
        expect(await context.knex('audit_logs').where({ action: 'event_delivery.retry', entity_id: parked.items[0].id }).first()).to.include({ actor_id: context.users.admin.id });

        const again = await context.server.inject({ method: 'POST', url: `/api/v1/system/events/failed/${parked.items[0].id}/retry`, auth: context.as('admin') });
        expect(again.statusCode).to.equal(409);
        expect(json(again).code).to.equal('delivery_not_failed');
        expect((await context.server.inject({ method: 'POST', url: `/api/v1/system/events/failed/${Crypto.randomUUID()}/retry`, auth: context.as('admin') })).statusCode).to.equal(404);
        expect((await context.server.inject({ method: 'POST', url: '/api/v1/system/events/failed/nope/retry', auth: context.as('admin') })).statusCode).to.equal(400);

        await relay.drain();
        expect(await delivery()).to.include({ status: 'processed', attempts: 1, last_error: null });
        expect((await context.knex('notifications').where('title', `${marker} ${eventId}`)).length).to.equal(1);
        expect(flaky.mine(['F1', 'F2'])).to.equal(['F1', 'F2', 'F1', 'F1', 'F1']);
        expect(outcomes).to.equal(['delivered', 'failed', 'failed', 'parked', 'retried']);       // failed, F2, retried twice, then once more by hand
    });

    it('parks at once when a single attempt is allowed', async () => {

        const { consumer, mine } = internals.recorder({ fail: () => true });
        const relay = new EventRelay({ knex: context.knex, consumers: [consumer], options: { maxAttempts: 1 } });
        await relay.register();
        await emitNow('P1', 'P2');
        await relay.drain();
        expect(await context.knex('event_deliveries').where({ consumer: consumer.name }).select('status', 'attempts')).to.equal([{ status: 'failed', attempts: 1 }, { status: 'failed', attempts: 1 }]);
        expect(mine(['P1', 'P2'])).to.equal(['P1', 'P2']);                // P1 failed first and is not run again when the batch is redone
    });

    it('wakes on NOTIFY at commit, and polls when it cannot listen', async () => {

        const listening = internals.recorder();
        const url = await testDatabaseUrl();
        const notified = new EventRelay({ knex: context.knex, consumers: [listening.consumer], databaseUrl: url, options: { pollMs: 60_000 } });
        await notified.start();

        // N1 waits behind an open transaction (the relay looks again shortly), then goes at once
        const open = await context.knex.transaction();
        await emit(open, 'N0');
        await emitNow('N1');
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(listening.mine(['N0', 'N1'])).to.equal([]);
        await open.commit();
        await internals.wait(() => listening.mine(['N0', 'N1']).length === 2, 5000);

        // A lost listener comes back, and catches up
        const listeners = () => context.knex('pg_stat_activity').where({ application_name: 'aegis-relay', datname: context.knex.raw('current_database()') }).pluck('pid');
        const [pid] = await listeners();
        await context.knex.raw('select pg_terminate_backend(?)', [pid]);
        await internals.wait(async () => (await listeners()).some((other) => other !== pid), 5000);
        await emitNow('N2');
        await internals.wait(() => listening.mine(['N2']).length === 1, 5000);
        await notified.stop();
        expect(listening.mine(['N0', 'N1', 'N2'])).to.equal(['N0', 'N1', 'N2']);

        const polling = internals.recorder();
        const polled = new EventRelay({ knex: context.knex, consumers: [polling.consumer], databaseUrl: 'postgres://postgres@127.0.0.1:1/none', options: { pollMs: 100 } });
        await polled.start();
        await emitNow('N3');
        await internals.wait(() => polling.mine(['N3']).length === 1, 5000);
        await polled.stop();
        expect(polling.mine(['N3'])).to.equal(['N3']);
    });

    it('prunes events every consumer has passed once they are older than the retention, and keeps the rest', async () => {

        const { consumer } = internals.recorder({ fail: (event) => (event.payload as { mark: string }).mark === 'R-parked' });
        const behind = internals.recorder();
        const relay = new EventRelay({ knex: context.knex, consumers: [consumer], options: { maxAttempts: 1 } });
        await new EventRelay({ knex: context.knex, consumers: [consumer, behind.consumer] }).register();

        await emitNow('R-done', 'R-parked', 'R-recent');
        await relay.drain();
        await context.knex('domain_events').whereIn('entity_id', ['R-done', 'R-parked']).update({ created_at: new Date(Date.now() - 30 * 86_400_000) });

        const olderThan = new Date(Date.now() - 7 * 86_400_000);
        const remaining = () => context.knex('domain_events').whereIn('entity_id', ['R-done', 'R-parked', 'R-recent']).orderBy('seq').pluck('entity_id');

        // A consumer that has not been handed them yet holds them
        expect(await context.services.events.prune(systemActor, { consumers: [consumer.name, behind.consumer.name], olderThan })).to.equal(0);
        expect(await remaining()).to.equal(['R-done', 'R-parked', 'R-recent']);

        expect(await context.services.events.prune(systemActor, { consumers: [consumer.name], olderThan, batchSize: 1 })).to.be.at.least(1);
        expect(await remaining()).to.equal(['R-parked', 'R-recent']);
    });

    it('announces a state change to the users who act next, after the commit; nothing for a test that is gone', async () => {

        const test = await testRow(context.knex, { red_assignee_id: context.users.red_tech.id });
        await context.services.tests.transition(context.actor('red_lead'), test.id, 'start-execution');
        const sent = () => context.knex('notifications').where({ entity_id: test.id }).select('user_id', 'type', 'title');
        expect(await sent()).to.equal([]);

        await context.relay.drain();
        expect(await sent()).to.equal([{ user_id: context.users.red_tech.id, type: 'test.assigned', title: `${test.title}: start execution (red executing)` }]);

        await context.relay.drain();
        expect((await sent()).length).to.equal(1);                        // once

        const gone = Crypto.randomUUID();
        await context.knex.transaction((trx) => context.services.tests.announce(trx, { actor_id: null, payload: { test_id: gone, action: 'submit-red', from: 'red_executing', to: 'blue_evaluating', technique_id: 'T1059.001' } }));
        expect(await context.knex('notifications').where({ entity_id: gone })).to.equal([]);
    });

    describe('in the worker process', () => {

        let worker: Spawned | undefined;

        after(() => {

            worker?.child.kill('SIGKILL');
        });

        it('relays on NOTIFY, runs the retention job, serves its metrics, and drains on SIGTERM', { timeout: 60_000 }, async () => {

            const url = await testDatabaseUrl();
            const dataDir = Path.join(Os.tmpdir(), `aegis-relay-test-${process.pid}`);
            worker = spawnEntry('worker/index.js', { DATABASE_URL: url, LOG_LEVEL: 'info', AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'relay-test-secret-relay-test-secret-0123456', WORKER_METRICS_PORT: '0', RELAY_POLL_MS: '60000', ATTACK_SOURCE: Path.join(dataDir, 'none.json'), D3FEND_SOURCE: Path.join(dataDir, 'none.json') });
            await worker.waitFor((line) => line.msg === 'worker started');
            const { port } = await worker.waitFor((line) => line.msg === 'metrics listening');

            const test = await testRow(context.knex, { state: 'red_executing', blue_assignee_id: context.users.blue_tech.id, attack_result: 'succeeded' });
            await context.services.tests.transition(context.actor('red_tech'), test.id, 'submit-red');
            await internals.wait(async () => (await context.knex('notifications').where({ entity_id: test.id, user_id: context.users.blue_tech.id })).length === 1, 10_000);

            const { agenda, close } = await createAgenda({ databaseUrl: url, name: 'relay-test' });
            await agenda.start();
            const job = await agenda.now('events.prune', {});
            await close();
            await worker.waitFor((line) => line.msg === 'job succeeded' && line.id === String(job.attrs._id));

            const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
            expect(text).to.match(/^aegis_relay_deliveries_total\{consumer="notifications",outcome="delivered",process="worker"\} [1-9]/m);
            expect(text).to.match(/^aegis_job_runs_total\{job="events.prune",outcome="success",process="worker"\} 1$/m);
            expect(text).to.match(/^aegis_relay_lag_seconds\{consumer="notifications",process="worker"\} /m);

            worker.child.kill('SIGTERM');
            expect(await worker.exit()).to.equal(0);
            expect(worker.lines().some((line) => line.msg === 'worker drained')).to.be.true();
        });
    });
});
