import type { Knex } from 'knex';
import * as Pg from 'pg';

import { createKnex, migrate } from '../server/db';
import { systemActor } from '../server/policy';
import { AuditService } from '../server/services/audit';
import { EventsService, type StoredEvent } from '../server/services/events';
import { EventRelay, type Consumer } from '../worker/relay';

import { createDatabase } from './lib';
import type { Suite } from './suites';


type Resolve = () => void;


const internals = {
    roundTrips: 500,
    latencyEvents: 500,
    backlog: 20_000,
    liveWriters: 4,
    liveEvents: 2500,                   // per writer, one event per transaction

    percentile: (values: number[], p: number) => {

        const sorted = [...values].sort((a, b) => a - b);
        return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
    },

    now: () => performance.now(),

    row: (name: string, value: string) => `  ${name.padEnd(52)} ${value}\n`,

    latencies: (values: number[]) => `p50 ${internals.percentile(values, 0.5).toFixed(2).padStart(6)} ms   p99 ${internals.percentile(values, 0.99).toFixed(2).padStart(6)} ms`,

    // A consumer that starts now, and calls back with each event
    consumer: (name: string, onEvent: (event: StoredEvent) => void): Consumer => ({
        name,
        events: ['alert.fired'],
        from: 'now',
        handle: (event) => {

            onEvent(event);
            return Promise.resolve();
        }
    }),

    // The floor: a NOTIFY sent by one connection and received by another, nothing else
    listenNotify: async (url: string): Promise<number[]> => {

        const listener = new Pg.Client({ connectionString: url });
        const sender = new Pg.Client({ connectionString: url });
        await Promise.all([listener.connect(), sender.connect()]);
        await listener.query('listen bench_round_trip');
        const times: number[] = [];
        try {
            for (let i = 0; i < internals.roundTrips; ++i) {
                const received = new Promise<void>((resolve) => listener.once('notification', () => resolve()));
                const started = internals.now();
                await sender.query('notify bench_round_trip');
                await received;
                times.push(internals.now() - started);
            }
        }
        finally {
            await Promise.all([listener.end(), sender.end()]);
        }

        return times;
    }
};


export const events: Suite = {
    description: 'the event relay: commit to handler start (p50/p99) and events per second through a no-op handler, beside a bare LISTEN/NOTIFY round trip',
    run: async () => {

        const database = await createDatabase(`aegis_bench_events_${process.pid}`);
        const knex = createKnex({ url: database.url, poolMax: 10 });
        const service = new EventsService({ knex, audit: new AuditService({ knex }) });
        const emit = (trx: Knex.Transaction, count = 1) => service.emit(trx, systemActor, Array.from({ length: count }, () => ({ type: 'alert.fired', entity_type: 'bench', entity_id: 'x', payload: {} })));
        try {
            await migrate(database.url);
            const out = process.stdout;

            const roundTrip = await internals.listenNotify(database.url);
            out.write(internals.row(`bare LISTEN/NOTIFY round trip (${internals.roundTrips})`, internals.latencies(roundTrip)));

            // Latency: one event per transaction, the next once the handler has started; from just before COMMIT
            const started = new Map<number, Resolve>();
            let seen = 0;
            const latency = internals.consumer('bench-latency', () => started.get(seen++)?.());
            const relay = new EventRelay({ knex, consumers: [latency], databaseUrl: database.url });
            await relay.start();
            const latencies: number[] = [];
            for (let i = 0; i < internals.latencyEvents; ++i) {
                const handled = new Promise<number>((resolve) => started.set(i, () => resolve(internals.now())));
                let committing = 0;
                await knex.transaction(async (trx) => {

                    await emit(trx);
                    committing = internals.now();
                });

                latencies.push(await handled - committing);
            }

            await relay.stop();
            const p50 = internals.percentile(latencies, 0.5);
            out.write(internals.row(`commit to handler start (${internals.latencyEvents}, one at a time)`, `${internals.latencies(latencies)}   (target p50 < 50 ms: ${p50 < 50 ? 'met' : 'NOT met'})`));

            // Throughput of a backlog: events already committed, drained through a no-op handler
            let drained = 0;
            const noop = internals.consumer('bench-backlog', () => drained++);
            const backlogRelay = new EventRelay({ knex, consumers: [noop] });
            await backlogRelay.register();
            for (let i = 0; i < internals.backlog; i += 1000) {
                await knex.transaction((trx) => emit(trx, 1000));
            }

            const drainStarted = internals.now();
            await backlogRelay.drain(120_000);
            const backlogRate = drained / ((internals.now() - drainStarted) / 1000);
            out.write(internals.row(`no-op handler, backlog of ${internals.backlog} events`, `${backlogRate.toFixed(0).padStart(7)} events/s   (target >= 1,000: ${backlogRate >= 1000 ? 'met' : 'NOT met'})`));

            // Throughput live: writers committing one event per transaction while the relay runs
            let live = 0;
            const total = internals.liveWriters * internals.liveEvents;
            let done: Resolve = () => undefined;
            const finished = new Promise<void>((resolve) => (done = resolve));
            const liveConsumer = internals.consumer('bench-live', () => ++live === total && done());
            const liveRelay = new EventRelay({ knex, consumers: [liveConsumer], databaseUrl: database.url });
            await liveRelay.start();
            const liveStarted = internals.now();
            await Promise.all(Array.from({ length: internals.liveWriters }, async () => {

                for (let i = 0; i < internals.liveEvents; ++i) {
                    await knex.transaction((trx) => emit(trx));
                }
            }));
            const written = internals.now();
            await finished;
            const liveSeconds = (internals.now() - liveStarted) / 1000;
            await liveRelay.stop();
            out.write(internals.row(`no-op handler, ${internals.liveWriters} writers live (${total} transactions)`, `${(total / liveSeconds).toFixed(0).padStart(7)} events/s   (writers alone: ${(total / ((written - liveStarted) / 1000)).toFixed(0)} commits/s; last handled ${(internals.now() - written).toFixed(0)} ms after the last commit)`));
        }
        finally {
            await knex.destroy();
            await database.drop();
        }
    }
};
