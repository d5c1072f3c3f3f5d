import { Agenda } from 'agenda';
import { PostgresBackend } from '@agendajs/postgres-backend';
import * as Pg from 'pg';


// Every job the worker knows, with its payload. Payloads carry ids, never entities (they would go stale).
export interface Jobs {
    'system.prune-revocations': Record<string, never>;
    'attack-sync': { reason: 'first-start' | 'schedule' | 'manual'; requested_by?: string | null };
    'evidence.sweep': Record<string, never>;
    'test-templates.import-atomics': { dir: string };
    'coverage.mark-stale': Record<string, never>;
    'events.prune': Record<string, never>;
    // scores (issue 12: scores, risk, compliance)
    'risk-recompute': { reason: 'manual' | 'coverage' | 'schedule' | 'osint'; requested_by?: string | null };
    // alerts
    'alerts.evaluate': { reason: 'schedule' | 'manual' | 'risk'; requested_by?: string | null };
    // documents (issue 13)
    'documents.render': { render_id: string };
    'documents.prune': Record<string, never>;
    'reports.schedules': Record<string, never>;
    // dashboards (issue 12)
    'snapshots.daily': Record<string, never>;
    // detection (issue 11)
    'detection-rules.import-sigma': { dir: string };
    // osint (issue 14)
    'osint.import': { import_id: string };
    'osint.schedules': Record<string, never>;
    // jira (issue 14)
    'jira.sync': { run_id: string };
    'jira.sync-due': Record<string, never>;
}

export type JobName = keyof Jobs;


export interface ScheduledJob {
    id: string;
    name: string;
    state: string;
    schedule: string | null;
    last_run_at: Date | null;
    last_finished_at: Date | null;
    next_run_at: Date | null;
    failed_at: Date | null;
    fail_reason: string | null;
    fail_count: number;
    progress: number | null;
}


// What services see of the queue: they enqueue, they never process.
export interface Queue {
    enqueue<N extends JobName>(name: N, data: Jobs[N]): Promise<string>;
    // One job for a burst of requests: it runs debounceMs after the last one, and at most maxWaitMs after the first
    enqueueDebounced<N extends JobName>(name: N, data: Jobs[N], options: { key: string; debounceMs: number; maxWaitMs: number }): Promise<string>;
    pending(name: JobName): Promise<string | null>;         // the id of a job of that name queued or running now
    list(): Promise<ScheduledJob[]>;
    stop(): Promise<void>;
}


export interface AgendaOptions {
    databaseUrl: string;
    mongodbUrl?: string | undefined;
    name: string;
    lockLifetimeMs?: number;
    onError?: (err: Error) => void;
}


export const createAgenda = async (options: AgendaOptions): Promise<{ agenda: Agenda; close: () => Promise<void> }> => {

    if (options.mongodbUrl) {
        const { MongoBackend } = await import('@agendajs/mongo-backend');
        const agenda = new Agenda({ backend: new MongoBackend({ address: options.mongodbUrl }), name: options.name, defaultLockLifetime: options.lockLifetimeMs, processEvery: '5 seconds' });
        agenda.on('error', (err: Error) => options.onError?.(err));
        return { agenda, close: () => agenda.stop() };
    }

    // Our own pool, with the 'error' listener the backend's pool lacks (an idle-client error would crash the process)
    const pool = new Pg.Pool({ connectionString: options.databaseUrl, max: 5, application_name: options.name });
    pool.on('error', (err) => options.onError?.(err));

    const agenda = new Agenda({ backend: new PostgresBackend({ pool, ensureSchema: false }), name: options.name, defaultLockLifetime: options.lockLifetimeMs, processEvery: '5 seconds' });
    agenda.on('error', (err: Error) => options.onError?.(err));

    return {
        agenda,
        close: async () => {

            await agenda.stop();
            await pool.end();
        }
    };
};


export class AgendaQueue implements Queue {

    constructor(private readonly agenda: Agenda, private readonly onClose: () => Promise<void>) { }

    async enqueue<N extends JobName>(name: N, data: Jobs[N]): Promise<string> {

        const job = await this.agenda.now(name, data);
        return String(job.attrs._id);
    }

    async enqueueDebounced<N extends JobName>(name: N, data: Jobs[N], options: { key: string; debounceMs: number; maxWaitMs: number }): Promise<string> {

        const job = await this.agenda.nowDebounced(name, { ...data, debounce_key: options.key }, { 'data.debounce_key': options.key }, options.debounceMs, { maxWait: options.maxWaitMs });
        return String(job.attrs._id);
    }

    async pending(name: JobName): Promise<string | null> {

        for (const state of ['running', 'queued'] as const) {
            const { jobs } = await this.agenda.queryJobs({ name, state, limit: 1 });
            if (jobs[0]) {
                return String(jobs[0]._id);
            }
        }

        return null;
    }

    async list(): Promise<ScheduledJob[]> {

        const { jobs } = await this.agenda.queryJobs({ sort: { name: 1 }, limit: 500 } as never);
        return jobs.map((job) => ({
            id: String(job._id),
            name: job.name,
            state: job.state,
            schedule: job.repeatInterval === undefined ? null : String(job.repeatInterval),
            last_run_at: job.lastRunAt ?? null,
            last_finished_at: job.lastFinishedAt ?? null,
            next_run_at: job.nextRunAt ?? null,
            failed_at: job.failedAt ?? null,
            fail_reason: job.failReason ?? null,
            fail_count: job.failCount ?? 0,
            progress: job.progress ?? null
        }));
    }

    stop(): Promise<void> {

        return this.onClose();
    }
}
