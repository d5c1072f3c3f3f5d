import * as Crypto from 'crypto';
import * as Http from 'http';
import type { AddressInfo } from 'net';
import { pipeline, Transform, Writable, type Readable } from 'stream';

import type { Knex } from 'knex';
import QueryStream from 'pg-query-stream';

import { OutboundHttp } from '../integrations/http';
import { createKnex, migrate } from '../server/db';
import { Role, systemActor } from '../server/policy';
import { AuditService } from '../server/services/audit';
import { EventsService } from '../server/services/events';
import { NotificationsService } from '../server/services/notifications';
import { ReportsService } from '../server/services/reports';
import { signWebhook, WebhooksService } from '../server/services/webhooks';
import { EventRelay, type Consumer } from '../worker/relay';
import { WebhookSender } from '../worker/webhook-sender';

import { documentPdfBench } from './documents';
import { createDatabase } from './lib';
import type { Suite } from './suites';


const internals = {
    csvRows: 100_000,
    deliveries: 2000,
    latencyEvents: 200,
    concurrency: 10,

    now: () => performance.now(),

    percentile: (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? 0,

    row: (name: string, value: string) => `  ${name.padEnd(56)} ${value}\n`,

    sink: () => new Writable({ write: (chunk, encoding, callback) => callback() }),

    // Time and peak RSS growth (sampled every 5 ms) while a stream is written to a sink
    measure: async (open: () => Promise<Readable>): Promise<{ ms: number; peakMb: number; bytes: number }> => {

        global.gc?.();
        const base = process.memoryUsage().rss;
        let peak = base;
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
        const started = internals.now();
        let bytes = 0;
        const stream = await open();
        stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
        await new Promise<void>((resolve, reject) => pipeline(stream, internals.sink(), (err) => (err ? reject(err) : resolve())));
        clearInterval(sampler);
        return { ms: internals.now() - started, peakMb: (Math.max(peak, process.memoryUsage().rss) - base) / 1024 / 1024, bytes };
    },

    // The baseline: the same columns from a plain cursor, joined by hand (no quoting, no neutralising, no visibility)
    plainCsv: async (knex: Knex): Promise<Readable> => {

        const connection = await knex.client.acquireConnection();
        const rows = connection.query(new QueryStream('select id, title, technique_id, state, priority, data_classification, detection_outcome, executed_at, created_at from tests', [], { batchSize: 500 })) as Readable;
        const join = new Transform({ objectMode: true, transform: (row: Record<string, unknown>, encoding, callback) => callback(null, `${Object.values(row).map((value) => (value instanceof Date ? value.toISOString() : String(value ?? ''))).join(',')}\r\n`) });
        return pipeline(rows, join, () => knex.client.releaseConnection(connection));
    },

    // A receiver that checks every signature and counts, calling back on each delivery
    receiver: async (secret: string, onDelivery: () => void) => {

        const key = Buffer.from(secret.slice(6), 'base64');
        let bad = 0;
        const server = Http.createServer((req, res) => {

            const chunks: Buffer[] = [];
            req.on('data', (chunk: Buffer) => chunks.push(chunk));
            req.on('end', () => {

                const id = String(req.headers['webhook-id']);
                const expected = `v1,${Crypto.createHmac('sha256', key).update(`${id}.${req.headers['webhook-timestamp']}.${Buffer.concat(chunks).toString()}`).digest('base64')}`;
                bad += req.headers['webhook-signature'] === expected ? 0 : 1;
                res.writeHead(204).end();
                onDelivery();
            });
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bad: () => bad, close: () => new Promise((resolve) => server.close(resolve)) };
    },

    // The baseline: a signed POST with node's http client and a keep-alive agent, nothing else
    barePost: (url: string, secret: string, agent: Http.Agent) => new Promise<void>((resolve, reject) => {

        const body = JSON.stringify({ type: 'test.validated', timestamp: new Date().toISOString(), data: { test_id: Crypto.randomUUID() } });
        const id = Crypto.randomUUID();
        const timestamp = Math.floor(Date.now() / 1000);
        const req = Http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signWebhook(secret, id, timestamp, body) } }, (res) => {

            res.resume();
            res.on('end', resolve);
        });
        req.on('error', reject);
        req.end(body);
    })
};


// CSV of 100,000 test results (time, peak RSS growth) beside a plain CSV write of the same rows
export const csvBench = async (knex: Knex): Promise<void> => {

    const out = process.stdout;
    await knex.raw(`insert into techniques (mitre_id, domain, name) values ('T1059', 'enterprise-attack', 'Command and Scripting Interpreter') on conflict do nothing`);
    await knex.raw(`insert into tests (title, technique_id, state, data_classification, priority, platform)
        select case when g % 10 = 0 then '=cmd|' || g else 'Bench test ' || g end, 'T1059', 'draft', (array['public', 'internal', 'confidential', 'restricted'])[1 + g % 4], 'medium', 'windows'
        from generate_series(1, ?) g`, [internals.csvRows]);

    const reports = new ReportsService({ knex });
    const plain = await internals.measure(() => internals.plainCsv(knex));
    const admin = await internals.measure(() => reports.testResultsCsv({ id: Crypto.randomUUID(), role: Role.admin }, {}));
    const viewer = await internals.measure(() => reports.testResultsCsv({ id: Crypto.randomUUID(), role: Role.viewer }, {}));
    const line = (result: typeof plain) => `${result.ms.toFixed(0).padStart(6)} ms   peak RSS +${result.peakMb.toFixed(1).padStart(5)} MB   ${(result.bytes / 1024 / 1024).toFixed(1)} MB written`;
    out.write(internals.row(`baseline: plain CSV write, ${internals.csvRows} rows (cursor, join)`, line(plain)));
    out.write(internals.row(`test-results CSV, admin (${internals.csvRows} rows)`, `${line(admin)}   (target RSS < 50 MB: ${admin.peakMb < 50 ? 'met' : 'NOT met'})`));
    out.write(internals.row(`test-results CSV, viewer (half the rows visible)`, `${line(viewer)}   (target RSS < 50 MB: ${viewer.peakMb < 50 ? 'met' : 'NOT met'})`));
};


// Deliveries per second through the sender, and event commit to delivery p50, beside bare signed POSTs
export const webhookBench = async (knex: Knex, databaseUrl: string): Promise<void> => {

    const out = process.stdout;
    const audit = new AuditService({ knex });
    const events = new EventsService({ knex, audit });
    const webhooks = new WebhooksService({ knex, audit, notifications: new NotificationsService({ knex, audit }), outbound: new OutboundHttp({ allow: ['127.0.0.1'], allowHttp: true }), secretKey: Crypto.randomBytes(32), settings: { batchSize: internals.concurrency } });
    const consumer: Consumer = { name: 'webhooks', events: ['test.validated'], from: 'now', handle: async (event, trx) => void await webhooks.enqueue(systemActor, event, trx) };
    const emit = (count: number) => knex.transaction((trx) => events.emit(trx, systemActor, Array.from({ length: count }, () => ({ type: 'test.validated', entity_type: 'test', entity_id: Crypto.randomUUID(), payload: { test_id: Crypto.randomUUID() } }))));

    let received = 0;
    let waiting: (() => void) | undefined;
    const secret = `whsec_${Crypto.randomBytes(32).toString('base64')}`;
    const receiver = await internals.receiver(secret, () => {

        received++;
        waiting?.();
    });

    try {
        // Baseline: bare signed POSTs, as many at once as the sender sends
        const agent = new Http.Agent({ keepAlive: true, maxSockets: internals.concurrency });
        let started = internals.now();
        for (let i = 0; i < internals.deliveries; i += internals.concurrency) {
            await Promise.all(Array.from({ length: internals.concurrency }, () => internals.barePost(receiver.url, secret, agent)));
        }

        const bareRate = internals.deliveries / ((internals.now() - started) / 1000);
        const bareLatency: number[] = [];
        for (let i = 0; i < internals.latencyEvents; ++i) {
            const sent = internals.now();
            await internals.barePost(receiver.url, secret, agent);
            bareLatency.push(internals.now() - sent);
        }

        agent.destroy();

        // Aegis: the deliveries written by the relay's consumer, then sent by the sender (claim, sign, POST, record)
        await webhooks.create(systemActor, { name: 'bench', url: receiver.url, events: ['test.validated'], secret });
        const relay = new EventRelay({ knex, consumers: [consumer], databaseUrl });
        await relay.drain();
        for (let i = 0; i < internals.deliveries; i += 500) {
            await emit(500);
        }

        await relay.drain(120_000);
        received = 0;
        started = internals.now();
        const sender = new WebhookSender({ webhooks });
        await sender.drain();
        const rate = received / ((internals.now() - started) / 1000);

        // Event to delivery: commit, relay (LISTEN), consumer, sender woken by the relay, POST received
        const live = new EventRelay({ knex, consumers: [consumer], databaseUrl, onDelivery: () => sender.wake() });
        await live.start();
        sender.start();
        const latency: number[] = [];
        const next = () => new Promise<number>((resolve) => (waiting = () => resolve(internals.now())));
        for (let i = 0; i < internals.latencyEvents; ++i) {
            const arrived = next();
            let committing = 0;
            await knex.transaction(async (trx) => {

                await events.emit(trx, systemActor, [{ type: 'test.validated', entity_type: 'test', entity_id: Crypto.randomUUID(), payload: {} }]);
                committing = internals.now();
            });
            latency.push(await arrived - committing);
        }

        waiting = undefined;
        await live.stop();
        await sender.stop();

        const latencies = (values: number[]) => `p50 ${internals.percentile(values, 0.5).toFixed(2).padStart(7)} ms   p99 ${internals.percentile(values, 0.99).toFixed(2).padStart(7)} ms`;
        out.write(internals.row(`baseline: bare signed POSTs, ${internals.concurrency} at a time`, `${bareRate.toFixed(0).padStart(6)} /s`));
        out.write(internals.row(`webhook deliveries through the sender (${internals.deliveries})`, `${rate.toFixed(0).padStart(6)} /s   (bad signatures: ${receiver.bad()})`));
        out.write(internals.row('baseline: one bare signed POST', latencies(bareLatency)));
        out.write(internals.row(`event commit to delivery received (${internals.latencyEvents})`, latencies(latency)));
    }
    finally {
        await receiver.close();
    }
};


export const reports: Suite = {
    description: 'reports: a 100,000-row CSV (time, peak RSS) beside a plain CSV write; webhook deliveries/s and event-to-delivery p50 beside bare signed POSTs; a 500-test campaign PDF beside Chromium printing the same HTML (also alone: documents)',
    run: async () => {

        const database = await createDatabase(`aegis_bench_reports_${process.pid}`);
        const knex = createKnex({ url: database.url, poolMax: 10 });
        try {
            await migrate(database.url);
            await csvBench(knex);
            await webhookBench(knex, database.url);
        }
        finally {
            await knex.destroy();
            await database.drop();
        }

        await documentPdfBench();
    }
};
