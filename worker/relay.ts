import type { Knex } from 'knex';
import * as Pg from 'pg';

import { LockKey } from '../server/locks';
import type { Logger } from '../server/logger';
import { eventsChannel, retryNotice, type DomainEventType, type StoredEvent } from '../server/services/events';


// A consumer: the event types it takes and an idempotent handler. The handler runs inside the relay's transaction,
// which also moves the consumer's cursor, so what it writes with `trx` commits exactly once with the delivery; what
// it does outside the database may be repeated (at least once) and is keyed on `event.id`.
export interface Consumer<T extends DomainEventType = DomainEventType> {
    name: string;
    events: readonly T[];
    from?: 'oldest' | 'now';            // where it starts the first time it runs (default: the oldest event kept)
    handle: (event: StoredEvent<T>, trx: Knex.Transaction) => Promise<void>;
}


export interface RelayOptions {
    batchSize: number;
    batchMs: number;            // a batch stops early after this long, to keep the relay's own transaction short
    pollMs: number;             // the fallback when no notification arrives (a lost connection, a retry coming due)
    maxAttempts: number;
    retryBaseMs: number;        // back-off: base × 2^(attempt − 1), capped, plus up to a quarter of it
    retryCapMs: number;
}


export interface CycleResult {
    busy: boolean;              // another relay holds this consumer
    delivered: number;
    failed: number;
    retried: number;
    more: boolean;              // a full batch: call again at once
    blocked: boolean;           // committed events wait behind a transaction still running
}


interface Row extends StoredEvent {
    delivery_id?: string;
    attempts?: number;
}


// A batch run again with a savepoint around each handler, knowing which handler failed the first time (if one did)
interface Careful {
    failed: { eventId: string; message: string } | undefined;
}


interface BatchRow extends Row {
    horizon: string;
}


interface Lane {
    consumer: Consumer;
    running: Promise<void> | undefined;
    again: boolean;
    retries: boolean;                   // look for retries that came due (on the poll, and when an admin asks)
    timer: NodeJS.Timeout | undefined;
    blockedMs: number;
}


export const relayDefaults: RelayOptions = { batchSize: 500, batchMs: 200, pollMs: 1000, maxAttempts: 8, retryBaseMs: 1000, retryCapMs: 15 * 60_000 };


const internals = {
    columns: 'e.id, e.seq, e.xid::text as xid, e.type, e.entity_type, e.entity_id, e.payload, e.actor_id, e.created_at',

    // The horizon: every transaction below it has ended, so no event below it can still appear. The oldest
    // transaction still running in this snapshot, or its xmax when none runs. A running transaction that
    // pg_stat_activity shows in another database is left out: its events are not in this table (a transaction id
    // belongs to one database for good, so a stale row of pg_stat_activity cannot mislead). One it cannot place
    // (another role's session, without pg_read_all_stats) holds the horizon back: slower, never wrong.
    horizon: `
        select coalesce(min(ours.x), max(pg_snapshot_xmax(snapshot.s)))::text as horizon
        from (select pg_current_snapshot() as s) as snapshot
        left join lateral (
            select x from pg_snapshot_xip(snapshot.s) as x
            where not exists (
                select 1 from pg_stat_activity a
                where a.backend_xid = x::xid and a.datname is not null and a.datname <> current_database()
            )
        ) as ours on true`,

    message: (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 2000),

    reconnectMs: (options: RelayOptions) => Math.min(options.pollMs, 1000),

    sleep: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),

    HandlerFailed: class extends Error {

        constructor(readonly eventId: string, message: string) {

            super(message);
        }
    }
};


// The relay: hands each committed domain event to every consumer that takes its type (docs/architecture.md "The
// event relay"). Each consumer has its own cursor and runs on its own, so a slow or failing one holds no other.
export class EventRelay {

    private readonly options: RelayOptions;
    private readonly lanes: Lane[];
    private listener: Pg.Client | undefined;
    private poller: NodeJS.Timeout | undefined;
    private stopped = true;

    constructor(private readonly deps: {
        knex: Knex;
        consumers: Consumer[];
        databaseUrl?: string;                               // for LISTEN; without it the relay only polls
        logger?: Logger;
        onDelivery?: (consumer: string, outcome: 'delivered' | 'failed' | 'retried' | 'parked', eventCreatedAt?: Date) => void;
        options?: Partial<RelayOptions>;
    }) {

        this.options = { ...relayDefaults, ...deps.options };
        this.lanes = deps.consumers.map((consumer) => ({ consumer, running: undefined, again: false, retries: true, timer: undefined, blockedMs: 0 }));
    }

    get consumers(): string[] {

        return this.lanes.map((lane) => lane.consumer.name);
    }

    async register(): Promise<void> {

        for (const lane of this.lanes) {
            await this.place(this.deps.knex, lane.consumer);
        }
    }

    // A consumer new to the database starts at the oldest event kept, or, with `from: 'now'`, just below the horizon:
    // every event whose transaction had not ended then is still ahead of it
    private async place(db: Knex, consumer: Consumer): Promise<void> {

        if (consumer.from !== 'now') {
            await db('event_consumers').insert({ name: consumer.name }).onConflict('name').ignore();
            return;
        }

        await db.raw(`
            insert into event_consumers (name, cursor_xid, cursor_seq)
            select ?, ((horizon::numeric) - 1)::text::xid8, 9223372036854775807 from (${internals.horizon}) as h
            on conflict (name) do nothing`, [consumer.name]);
    }

    async start(): Promise<void> {

        this.stopped = false;
        await this.register();
        await this.listen();
        this.poller = setInterval(() => this.wakeAll(true), this.options.pollMs);
        this.wakeAll();
    }

    async stop(): Promise<void> {

        this.stopped = true;
        clearInterval(this.poller);
        for (const lane of this.lanes) {
            clearTimeout(lane.timer);
        }

        const listener = this.listener;
        this.listener = undefined;
        await listener?.end().catch(() => undefined);
        await Promise.all(this.lanes.map((lane) => lane.running));
    }

    // Delivers, now, every event committed before the call, waiting behind transactions still running (tests, and
    // the bench, call it instead of waiting on the worker)
    async drain(timeoutMs = 15_000): Promise<void> {

        await this.register();
        const deadline = Date.now() + timeoutMs;
        for (const lane of this.lanes) {
            for (;;) {
                const result = await this.cycle(lane.consumer);
                if (!result.busy && !result.more && !result.blocked) {
                    break;
                }

                if (Date.now() > deadline) {
                    throw new Error(`The relay could not drain ${lane.consumer.name} within ${timeoutMs} ms`);
                }

                if (!result.more) {
                    await internals.sleep(5);
                }
            }
        }
    }

    // One batch for one consumer, in one transaction: the consumer's lock; its cursor, the horizon and the events
    // after the cursor in one statement; each handler; the cursor moved past the batch; the failures recorded; then
    // the retries that are due. Handlers run without savepoints (two round trips each) until one fails: then the
    // batch is rolled back and run again with a savepoint around each handler, so that only the failure is undone.
    async cycle(consumer: Consumer, options: { retries?: boolean } = {}): Promise<CycleResult> {

        const reports: Parameters<NonNullable<typeof this.deps.onDelivery>>[] = [];
        let result: CycleResult;
        try {
            result = await this.batch(consumer, { retries: options.retries ?? true }, reports);
        }
        catch (err) {
            // A handler that threw is known and recorded, not run again. Anything else (a handler that swallowed a
            // database error and left the transaction aborted, or the database itself) gets one careful run: the
            // savepoints isolate a broken handler, and an outage fails again and is thrown
            reports.length = 0;
            const careful = { failed: err instanceof internals.HandlerFailed ? err : undefined };
            result = await this.batch(consumer, { retries: options.retries ?? true, careful }, reports);
        }

        for (const report of reports) {
            this.deps.onDelivery?.(...report);
        }

        return result;
    }

    private async batch(consumer: Consumer, mode: { retries: boolean; careful?: Careful }, reports: Parameters<NonNullable<typeof this.deps.onDelivery>>[]): Promise<CycleResult> {

        const result: CycleResult = { busy: false, delivered: 0, failed: 0, retried: 0, more: false, blocked: false };
        const started = Date.now();

        await this.deps.knex.transaction(async (trx) => {

            // An advisory lock, not a row lock: it takes no transaction id, so the relay holds no horizon back
            // until its handlers write. The cursor is read after it, by a statement of its own.
            const { rows: [lock] } = await trx.raw('select pg_try_advisory_xact_lock(?, hashtext(?)) as locked', [LockKey.eventRelay, consumer.name]);
            if (!lock.locked) {
                result.busy = true;
                return;
            }

            // The horizon and the events come from the same snapshot: every event below the horizon is in it
            const { rows } = await trx.raw<{ rows: BatchRow[] }>(`
                with cursor as (select cursor_xid, cursor_seq from event_consumers where name = ?),
                horizon as (${internals.horizon})
                select horizon.horizon, e.*
                from cursor cross join horizon
                left join lateral (
                    select ${internals.columns} from domain_events e
                    where (e.xid, e.seq) > (cursor.cursor_xid, cursor.cursor_seq)
                    order by e.xid, e.seq limit ?
                ) as e on true`, [consumer.name, this.options.batchSize]);

            if (!rows.length) {
                await this.place(trx, consumer);
                result.more = true;
                return;
            }

            const events = rows[0]!.id === null ? [] : rows;
            const limit = BigInt(rows[0]!.horizon);
            const failures: { event: Row; error: string }[] = [];
            let last: Row | undefined;
            for (const event of events) {
                if (BigInt(event.xid) >= limit) {
                    result.blocked = true;
                    break;
                }

                if (last && Date.now() - started > this.options.batchMs) {
                    result.more = true;
                    break;
                }

                if (consumer.events.includes(event.type)) {
                    const error = await this.handle(trx, consumer, event, mode.careful);
                    if (error === null) {
                        result.delivered++;
                        reports.push([consumer.name, 'delivered', event.created_at]);
                    }
                    else {
                        failures.push({ event, error });
                    }
                }

                last = event;
            }

            result.more ||= !result.blocked && events.length === this.options.batchSize;
            if (last) {
                await trx('event_consumers').where('name', consumer.name).update({ cursor_xid: last.xid, cursor_seq: last.seq, updated_at: trx.fn.now() });
            }

            for (const { event, error } of failures) {
                const parked = this.options.maxAttempts <= 1;
                await trx('event_deliveries').insert({ consumer: consumer.name, event_id: event.id, status: parked ? 'failed' : 'pending', attempts: 1, next_attempt_at: parked ? null : this.nextAttempt(1), last_error: error });
                result.failed++;
                reports.push([consumer.name, parked ? 'parked' : 'failed']);
                this.deps.logger?.warn({ consumer: consumer.name, event_id: event.id, type: event.type, attempt: 1, err: error }, 'event handler failed');
            }

            if (mode.retries || failures.length) {
                await this.retry(trx, consumer, result, mode.careful, reports);
            }
        });

        return result;
    }

    private async retry(trx: Knex.Transaction, consumer: Consumer, result: CycleResult, careful: Careful | undefined, reports: Parameters<NonNullable<typeof this.deps.onDelivery>>[]): Promise<void> {

        const { rows } = await trx.raw<{ rows: Row[] }>(`
            select d.id as delivery_id, d.attempts, ${internals.columns}
            from event_deliveries d join domain_events e on e.id = d.event_id
            where d.consumer = ? and d.status = 'pending' and d.next_attempt_at <= now()
            order by d.next_attempt_at limit ?`, [consumer.name, this.options.batchSize]);

        for (const event of rows) {
            const error = await this.handle(trx, consumer, event, careful);
            const attempts = event.attempts! + 1;
            if (error === null) {
                await trx('event_deliveries').where('id', event.delivery_id).update({ status: 'processed', attempts, next_attempt_at: null, last_error: null, updated_at: trx.fn.now() });
                result.retried++;
                reports.push([consumer.name, 'retried']);
                continue;
            }

            const parked = attempts >= this.options.maxAttempts;
            await trx('event_deliveries').where('id', event.delivery_id).update({ status: parked ? 'failed' : 'pending', attempts, next_attempt_at: parked ? null : this.nextAttempt(attempts), last_error: error, updated_at: trx.fn.now() });
            result.failed++;
            reports.push([consumer.name, parked ? 'parked' : 'failed']);
            this.deps.logger?.[parked ? 'error' : 'warn']({ consumer: consumer.name, event_id: event.id, type: event.type, attempt: attempts, err: error }, parked ? 'event delivery parked' : 'event handler failed');
        }

        result.more ||= rows.length === this.options.batchSize;
    }

    // Until a handler fails, a failure aborts the batch, to be run again carefully; then each handler runs in a
    // savepoint that undoes a failure's writes, and the batch goes on. The handler that failed first is not run twice.
    private async handle(trx: Knex.Transaction, consumer: Consumer, event: StoredEvent, careful: Careful | undefined): Promise<string | null> {

        if (!careful) {
            try {
                await consumer.handle(event, trx);
                return null;
            }
            catch (err) {
                throw new internals.HandlerFailed(event.id, internals.message(err));
            }
        }

        if (careful.failed?.eventId === event.id) {
            return careful.failed.message;
        }

        await trx.raw('savepoint relay_handler');
        try {
            await consumer.handle(event, trx);
            await trx.raw('release savepoint relay_handler');
            return null;
        }
        catch (err) {
            await trx.raw('rollback to savepoint relay_handler');
            return internals.message(err);
        }
    }

    // Exponential, capped, and spread by up to a quarter, so that deliveries that failed together do not retry together
    private nextAttempt(attempts: number): Date {

        const delay = Math.min(this.options.retryCapMs, this.options.retryBaseMs * 2 ** (attempts - 1));
        return new Date(Date.now() + delay * (1 + Math.random() / 4));
    }

    private wakeAll(retries = false): void {

        for (const lane of this.lanes) {
            lane.retries ||= retries;
            this.wake(lane);
        }
    }

    // Wakes coalesce: a lane runs one cycle at a time, and once more if woken meanwhile
    private wake(lane: Lane): void {

        if (this.stopped) {
            return;
        }

        if (lane.running) {
            lane.again = true;
            return;
        }

        clearTimeout(lane.timer);
        lane.running = this.run(lane).finally(() => (lane.running = undefined));
    }

    private async run(lane: Lane): Promise<void> {

        do {
            lane.again = false;
            try {
                const retries = lane.retries;
                lane.retries = false;
                const result = await this.cycle(lane.consumer, { retries });
                if (result.more) {
                    lane.again = true;
                }
                else if (result.blocked) {
                    // Nothing notifies when the transaction ahead ends: look again soon, a little later each time
                    lane.blockedMs = Math.min(this.options.pollMs, Math.max(2, lane.blockedMs * 2));
                    lane.timer = setTimeout(() => this.wake(lane), lane.blockedMs);
                }
                else {
                    lane.blockedMs = 0;
                }
            }
            catch (err) {
                this.deps.logger?.warn({ consumer: lane.consumer.name, err: internals.message(err) }, 'event relay cycle failed');
                return;                                                 // the poller tries again
            }
        }
        while (lane.again && !this.stopped);
    }

    private async listen(): Promise<void> {

        if (!this.deps.databaseUrl || this.stopped) {
            return;
        }

        const client = new Pg.Client({ connectionString: this.deps.databaseUrl, application_name: 'aegis-relay' });
        client.on('notification', (message) => this.wakeAll(message.payload === retryNotice));
        client.on('error', (err) => {

            // Polling carries on; the listener comes back after a pause, then a sweep catches what was missed
            this.deps.logger?.warn({ err: err.message }, 'event relay listener lost');
            if (this.listener === client) {
                this.listener = undefined;
                void client.end().catch(() => undefined);
                setTimeout(() => void this.listen().then(() => this.wakeAll()).catch(() => undefined), internals.reconnectMs(this.options)).unref();
            }
        });

        try {
            await client.connect();
            await client.query(`listen ${eventsChannel}`);
            if (this.stopped) {
                await client.end();
                return;
            }

            this.listener = client;
        }
        catch (err) {
            this.deps.logger?.warn({ err: internals.message(err) }, 'event relay listener failed to start; polling');
            await client.end().catch(() => undefined);
            setTimeout(() => void this.listen().catch(() => undefined), internals.reconnectMs(this.options)).unref();
        }
    }
}
