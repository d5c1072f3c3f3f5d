import * as Os from 'os';

import type { Knex } from 'knex';

import type { Queue, ScheduledJob } from '../jobs';
import { RevokedToken, WorkerHeartbeat } from '../models';
import type { Actor } from '../policy';

import type { ConsumerStatus } from './events';


export type DependencyStatus = { status: 'ok' | 'down' | 'not_configured'; latency_ms?: number };


export interface Health {
    status: 'ok' | 'degraded';
    version: string;
    time: string;
    dependencies: {
        database: DependencyStatus;
        redis: DependencyStatus;
        object_storage: DependencyStatus;
        worker: { status: 'ok' | 'stale' | 'down'; last_heartbeat_at: string | null };
    };
}


export interface Pingable {
    ping(): Promise<unknown>;
}


const internals = {
    timeoutMs: 1000,

    probe: async (target: Pingable | undefined, timeoutMs: number): Promise<DependencyStatus> => {

        if (!target) {
            return { status: 'not_configured' };
        }

        const start = Date.now();
        let timer: NodeJS.Timeout | undefined;
        try {
            await Promise.race([
                target.ping(),
                new Promise((resolve, reject) => {

                    timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
                })
            ]);

            return { status: 'ok', latency_ms: Date.now() - start };
        }
        catch {
            return { status: 'down', latency_ms: Date.now() - start };
        }
        finally {
            clearTimeout(timer);
        }
    }
};


export class SystemService {

    constructor(private readonly deps: {
        knex: Knex;
        queue: Queue;
        relayStatus: () => Promise<ConsumerStatus[]>;
        redis?: Pingable | undefined;
        storage?: Pingable | undefined;
        version: string;
        heartbeatSeconds: number;
    }) { }

    // Answers in about a second at most, whatever is down: every probe has its own timeout.
    async health(): Promise<Health> {

        const database = { ping: () => this.deps.knex.raw('select 1') };
        const [db, redis, storage, beat] = await Promise.all([
            internals.probe(database, internals.timeoutMs),
            internals.probe(this.deps.redis, internals.timeoutMs),
            internals.probe(this.deps.storage, internals.timeoutMs),
            WorkerHeartbeat.query(this.deps.knex).max('beat_at as last').first().timeout(internals.timeoutMs).catch(() => undefined) as Promise<{ last: Date | null } | undefined>
        ]);

        const last = beat?.last ?? null;
        const age = last ? Date.now() - new Date(last).getTime() : Infinity;
        const worker = { status: age <= this.deps.heartbeatSeconds * 3000 ? 'ok' as const : last ? 'stale' as const : 'down' as const, last_heartbeat_at: last ? new Date(last).toISOString() : null };
        const down = [db, redis, storage].some((dependency) => dependency.status === 'down') || worker.status !== 'ok';

        return {
            status: down ? 'degraded' : 'ok',
            version: this.deps.version,
            time: new Date().toISOString(),
            dependencies: { database: db, redis, object_storage: storage, worker }
        };
    }

    async scheduler(actor: Actor): Promise<{ items: ScheduledJob[]; workers: WorkerHeartbeat[]; consumers: ConsumerStatus[] }> {

        const [items, workers, consumers] = await Promise.all([
            this.deps.queue.list(),
            WorkerHeartbeat.query(this.deps.knex).orderBy('beat_at', 'desc'),
            this.deps.relayStatus()
        ]);

        return { items, workers, consumers };
    }

    async heartbeat(workerId: string, startedAt: Date): Promise<void> {

        const now = new Date();
        await WorkerHeartbeat.query(this.deps.knex)
            .insert({ worker_id: workerId, hostname: Os.hostname(), pid: process.pid, started_at: startedAt, beat_at: now })
            .onConflict('worker_id')
            .merge(['beat_at', 'updated_at']);
    }

    async removeHeartbeat(workerId: string): Promise<void> {

        await WorkerHeartbeat.query(this.deps.knex).deleteById(workerId);
    }

    // Expired revocations are dead weight: the tokens they name no longer pass the `exp` check.
    async pruneRevocations(actor: Actor): Promise<number> {

        return await RevokedToken.query(this.deps.knex).delete().where('expires_at', '<', new Date());
    }
}
