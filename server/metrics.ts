import * as Http from 'http';
import type * as Net from 'net';

import type { Agenda } from 'agenda';
import type { Knex } from 'knex';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { ConsumerStatus } from './services/events';


export type DeliveryOutcome = 'delivered' | 'failed' | 'retried' | 'parked';


const internals = {
    seconds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    jobSeconds: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800],
    statusMaxAgeMs: 1000
};


// The Prometheus registry of one process (API or worker), served by serveMetrics() on its own port. Labels are
// bounded: a route is its path template, never the URL; a job its name; a target its host.
export class Metrics {

    readonly registry = new Registry();

    private readonly requests: Counter<'method' | 'route' | 'status'>;
    private readonly requestSeconds: Histogram<'method' | 'route'>;
    private readonly jobRuns: Counter<'job' | 'outcome'>;
    private readonly jobSeconds: Histogram<'job'>;
    private readonly deliveries: Counter<'consumer' | 'outcome'>;
    private readonly deliverySeconds: Histogram<'consumer'>;
    private readonly outboundCalls: Counter<'host' | 'status'>;
    private relayStatus: { at: number; promise: Promise<ConsumerStatus[]> } | undefined;

    constructor(processName: 'api' | 'worker') {

        const registers = [this.registry];
        this.registry.setDefaultLabels({ process: processName });
        collectDefaultMetrics({ register: this.registry });

        this.requests = new Counter({ name: 'aegis_http_requests_total', help: 'HTTP requests answered, by method, route template and status', labelNames: ['method', 'route', 'status'], registers });
        this.requestSeconds = new Histogram({ name: 'aegis_http_request_duration_seconds', help: 'Time from receiving a request to answering it', labelNames: ['method', 'route'], buckets: internals.seconds, registers });
        this.jobRuns = new Counter({ name: 'aegis_job_runs_total', help: 'Jobs run by this process, by job name and outcome', labelNames: ['job', 'outcome'], registers });
        this.jobSeconds = new Histogram({ name: 'aegis_job_duration_seconds', help: 'Job run time', labelNames: ['job'], buckets: internals.jobSeconds, registers });
        this.deliveries = new Counter({ name: 'aegis_relay_deliveries_total', help: 'Domain events handed to a consumer by this process, by outcome', labelNames: ['consumer', 'outcome'], registers });
        this.deliverySeconds = new Histogram({ name: 'aegis_relay_delivery_latency_seconds', help: 'From the event written to its handler started', labelNames: ['consumer'], buckets: internals.seconds, registers });
        this.outboundCalls = new Counter({ name: 'aegis_outbound_requests_total', help: 'Outbound HTTP calls, by target host and status (0: no answer)', labelNames: ['host', 'status'], registers });
    }

    request(method: string, route: string, status: number, seconds: number): void {

        this.requests.inc({ method, route, status: String(status) });
        this.requestSeconds.observe({ method, route }, seconds);
    }

    delivery(consumer: string, outcome: DeliveryOutcome, eventCreatedAt?: Date): void {

        this.deliveries.inc({ consumer, outcome });
        if (eventCreatedAt) {
            this.deliverySeconds.observe({ consumer }, Math.max(0, Date.now() - eventCreatedAt.getTime()) / 1000);
        }
    }

    // The hook of the outbound HTTP client
    outbound(host: string, status: number): void {

        this.outboundCalls.inc({ host, status: String(status) });
    }

    // Job runs of this process (Agenda re-emits other processes' events with remote = true: those are not ours)
    watchJobs(agenda: Agenda): void {

        const started = new Map<string, number>();
        const done = (job: { attrs: { _id?: unknown; name: string } }, outcome: 'success' | 'fail') => {

            const id = String(job.attrs._id);
            const start = started.get(id);
            started.delete(id);
            this.jobRuns.inc({ job: job.attrs.name, outcome });
            if (start !== undefined) {
                this.jobSeconds.observe({ job: job.attrs.name }, (performance.now() - start) / 1000);
            }
        };

        agenda.on('start', (job, remote?: boolean) => !remote && started.set(String(job.attrs._id), performance.now()));
        agenda.on('success', (job, remote?: boolean) => !remote && done(job, 'success'));
        agenda.on('fail', (_err: unknown, job, remote?: boolean) => !remote && done(job, 'fail'));
    }

    // Read at each scrape: the database pool of this process, and the relay's progress from the database, so that the
    // API reports a worker that has fallen behind or stopped
    watch(sources: { knex?: Knex; relayStatus?: () => Promise<ConsumerStatus[]> }): void {

        const registers = [this.registry];
        const { knex, relayStatus } = sources;
        if (knex) {
            const pool = () => (knex.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
            new Gauge({
                name: 'aegis_db_pool_connections', help: 'Database pool connections: used, free, and requests waiting for one', labelNames: ['state'], registers,
                collect() {

                    const current = pool();
                    this.set({ state: 'used' }, current?.numUsed() ?? 0);
                    this.set({ state: 'free' }, current?.numFree() ?? 0);
                    this.set({ state: 'pending' }, current?.numPendingAcquires() ?? 0);
                }
            });
        }

        if (relayStatus) {
            const read = async (gauge: Gauge<'consumer'>, field: 'lag_seconds' | 'pending' | 'failed') => {

                const consumers = await this.readRelay(relayStatus);
                gauge.reset();
                for (const consumer of consumers) {
                    gauge.set({ consumer: consumer.name }, consumer[field]);
                }
            };

            const gauges = [
                ['aegis_relay_lag_seconds', 'Age of the oldest event a consumer has not been handed yet (0: caught up)', 'lag_seconds'],
                ['aegis_relay_retrying_deliveries', 'Failed deliveries waiting for their next attempt', 'pending'],
                ['aegis_relay_parked_deliveries', 'Deliveries parked after their last attempt, waiting for an administrator (GET /system/events/failed)', 'failed']
            ] as const;

            for (const [name, help, field] of gauges) {
                new Gauge({ name, help, labelNames: ['consumer'], registers, collect() {

                    return read(this, field);
                } });
            }
        }
    }

    // One database read serves the three relay gauges of a scrape; a failed read leaves them empty, not the scrape
    private readRelay(relayStatus: () => Promise<ConsumerStatus[]>): Promise<ConsumerStatus[]> {

        if (!this.relayStatus || Date.now() - this.relayStatus.at > internals.statusMaxAgeMs) {
            this.relayStatus = { at: Date.now(), promise: relayStatus().catch(() => []) };
        }

        return this.relayStatus.promise;
    }
}


// GET /metrics on a port of its own (METRICS_PORT, WORKER_METRICS_PORT): nothing else is served there, and the
// API's routes, authentication and logs are not involved. Bind it where only the Prometheus server reaches it.
export const serveMetrics = async (metrics: Metrics, options: { host: string; port: number }): Promise<{ port: number; close: () => Promise<void> }> => {

    const server = Http.createServer((req, res) => {

        if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
            res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
            return;
        }

        metrics.registry.metrics().then(
            (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(body),
            () => res.writeHead(500, { 'content-type': 'text/plain' }).end('Metrics unavailable\n'));
    });

    await new Promise<void>((resolve, reject) => {

        server.once('error', reject);
        server.listen(options.port, options.host, () => resolve());
    });

    return {
        port: (server.address() as Net.AddressInfo).port,
        close: () => new Promise<void>((resolve) => {

            server.close(() => resolve());
            server.closeAllConnections();
        })
    };
};
