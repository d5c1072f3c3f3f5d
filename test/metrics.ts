import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import { Gauge } from 'prom-client';

import { createAgenda } from '../server/jobs';
import { Metrics, serveMetrics } from '../server/metrics';
import { systemActor } from '../server/policy';
import { EventRelay } from '../worker/relay';

import { testDatabaseUrl } from './helpers/db';
import { init, type TestContext } from './helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    // The value of one series of the text format, or undefined when absent
    value: (text: string, name: string, labels: Record<string, string>): number | undefined => {

        for (const line of text.split('\n')) {
            const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
            if (match?.[1] !== name) {
                continue;
            }

            const found = Object.fromEntries([...match[2]!.matchAll(/([a-z_]+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]));
            if (Object.entries(labels).every(([key, value]) => found[key] === value)) {
                return Number(match[3]);
            }
        }

        return undefined;
    }
};


describe('Metrics', () => {

    let context: TestContext;
    let endpoint: Awaited<ReturnType<typeof serveMetrics>>;
    const scrape = async () => {

        const res = await fetch(`http://127.0.0.1:${endpoint.port}/metrics`);
        expect(res.status).to.equal(200);
        expect(res.headers.get('content-type')!).to.startWith('text/plain; version=0.0.4');
        return await res.text();
    };

    before(async () => {

        context = await init({ redis: false });
        endpoint = await serveMetrics(context.metrics, { host: '127.0.0.1', port: 0 });
    });

    after(async () => {

        await endpoint.close();
        await context.stop();
    });

    it('counts requests per route template and status, with their latency, never per URL', async () => {

        const first = await scrape();
        const route = { method: 'GET', route: '/api/v1/tests/{id}', process: 'api' };
        expect(internals.value(first, 'aegis_http_requests_total', { ...route, status: '404' })).to.be.undefined();

        for (const id of ['6c1a3c52-7d3f-4a8e-9d54-0a5d7f1c2b11', '0b1e4a9e-2f4c-4a44-8d2b-5b3c1f2a9e77']) {
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/tests/${id}`, auth: context.as('admin') })).statusCode).to.equal(404);
        }

        await context.server.inject({ method: 'GET', url: '/api/v1/nowhere/at/all' });
        await context.server.inject({ method: 'GET', url: '/api/v1/system/health' });

        const second = await scrape();
        expect(internals.value(second, 'aegis_http_requests_total', { ...route, status: '404' })).to.equal(2);
        expect(internals.value(second, 'aegis_http_request_duration_seconds_count', route)).to.equal(2);
        expect(internals.value(second, 'aegis_http_request_duration_seconds_bucket', { ...route, le: '+Inf' })).to.equal(2);
        expect(internals.value(second, 'aegis_http_requests_total', { method: 'GET', route: '/{p*}', status: '404' })!).to.be.at.least(1);
        expect(internals.value(second, 'aegis_http_requests_total', { method: 'GET', route: '/api/v1/system/health', status: '200' })!).to.be.at.least(1);
        expect(second).to.not.include('6c1a3c52');
        expect(second).to.not.include('nowhere');
    });

    it('reports the database pool, the relay\'s lag and parked deliveries, and answers 404 elsewhere', async () => {

        const text = await scrape();
        for (const state of ['used', 'free', 'pending']) {
            expect(internals.value(text, 'aegis_db_pool_connections', { state })!).to.be.at.least(0);
        }

        expect(internals.value(text, 'aegis_relay_parked_deliveries', { consumer: 'notifications' })!).to.be.at.least(0);
        expect(text).to.include('process_cpu_user_seconds_total');

        // An event a consumer has not been handed yet makes its lag grow; its relay brings it back to zero
        const consumer = { name: `metrics-${Date.now()}`, events: [], handle: () => Promise.resolve() };
        await context.knex.transaction((trx) => context.services.events.emit(trx, systemActor, [{ type: 'alert.fired', entity_type: 'alert', entity_id: consumer.name, payload: {} }]));
        const event = await context.knex('domain_events').where('entity_id', consumer.name).update({ created_at: new Date(Date.now() - 60_000) }).returning(['xid', 'seq']);
        await context.knex('event_consumers').insert({ name: consumer.name, cursor_xid: event[0].xid, cursor_seq: event[0].seq - 1 });
        await new Promise((resolve) => setTimeout(resolve, 1100));            // the status is read at most once a second
        expect(internals.value(await scrape(), 'aegis_relay_lag_seconds', { consumer: consumer.name })!).to.be.within(59, 120);

        await new EventRelay({ knex: context.knex, consumers: [consumer] }).drain();
        await new Promise((resolve) => setTimeout(resolve, 1100));
        expect(internals.value(await scrape(), 'aegis_relay_lag_seconds', { consumer: consumer.name })).to.equal(0);

        const other = await fetch(`http://127.0.0.1:${endpoint.port}/api/v1/system/health`);
        expect(other.status).to.equal(404);
        expect((await fetch(`http://127.0.0.1:${endpoint.port}/metrics`, { method: 'POST' })).status).to.equal(404);
    });

    it('counts job runs and durations per job, deliveries per consumer, and outbound calls per host', async () => {

        const metrics = new Metrics('worker');
        const { agenda, close } = await createAgenda({ databaseUrl: await testDatabaseUrl(), name: 'metrics-test' });
        metrics.watchJobs(agenda);
        agenda.define('metrics-test.ok', async () => { });
        agenda.define('metrics-test.broken', () => Promise.reject(new Error('broken')));
        await agenda.start();

        const finished = new Promise<void>((resolve) => {

            let count = 0;
            const done = () => ++count === 2 && resolve();
            agenda.on('success:metrics-test.ok', done);
            agenda.on('fail:metrics-test.broken', done);
        });

        await agenda.now('metrics-test.ok', {});
        await agenda.now('metrics-test.broken', {});
        await finished;
        await close();

        metrics.delivery('notifications', 'delivered', new Date(Date.now() - 20));
        metrics.delivery('notifications', 'parked');
        metrics.outbound('jira.example.com', 201);
        metrics.outbound('jira.example.com', 201);

        // A relay status that cannot be read leaves its gauges empty, and the scrape answers
        metrics.watch({ relayStatus: () => Promise.reject(new Error('database down')) });
        const text = await metrics.registry.metrics();
        expect(text).to.not.match(/^aegis_relay_lag_seconds\{/m);
        expect(text).to.not.include('aegis_db_pool_connections');
        expect(internals.value(text, 'aegis_job_runs_total', { job: 'metrics-test.ok', outcome: 'success', process: 'worker' })).to.equal(1);
        expect(internals.value(text, 'aegis_job_runs_total', { job: 'metrics-test.broken', outcome: 'fail' })).to.equal(1);
        expect(internals.value(text, 'aegis_job_duration_seconds_count', { job: 'metrics-test.ok' })).to.equal(1);
        expect(internals.value(text, 'aegis_relay_deliveries_total', { consumer: 'notifications', outcome: 'delivered' })).to.equal(1);
        expect(internals.value(text, 'aegis_relay_deliveries_total', { consumer: 'notifications', outcome: 'parked' })).to.equal(1);
        expect(internals.value(text, 'aegis_relay_delivery_latency_seconds_count', { consumer: 'notifications' })).to.equal(1);
        expect(internals.value(text, 'aegis_outbound_requests_total', { host: 'jira.example.com', status: '201' })).to.equal(2);
    });

    it('answers 500 without a body of metrics when a collector fails', async () => {

        const metrics = new Metrics('api');
        new Gauge({ name: 'aegis_test_broken', help: 'fails to collect', registers: [metrics.registry], collect: () => Promise.reject(new Error('broken')) });
        const broken = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 });
        const res = await fetch(`http://127.0.0.1:${broken.port}/metrics`);
        await broken.close();
        expect(res.status).to.equal(500);
        expect(await res.text()).to.equal('Metrics unavailable\n');
    });
});
