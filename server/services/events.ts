import type { Knex } from 'knex';

import { ConflictError, NotFoundError } from '../errors';
import { EventDelivery } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { chunks } from './bulk-upsert';
import { page, type ListQuery, type Page } from './lists';
import type { TestAction, TestState } from './test-lifecycle';


export type RemediationSource = 'aegis' | 'jira' | 'retest';


// What each event carries: ids and the facts of the change, never whole entities (a consumer re-reads what it needs)
export interface DomainEventPayloads {
    'test.state_changed': { test_id: string; action: TestAction; from: TestState; to: TestState; technique_id: string };
    'test.validated': { test_id: string; technique_id: string; detection_outcome: string | null };
    'coverage.changed': { technique_id: string; from: string; to: string; test_id: string | null };
    'campaign.completed': Record<string, unknown>;
    // alerts
    'alert.fired': { alert_id: string; rule_id: string; rule_type: string; severity: string; subject_type: string; subject_id: string; technique_id: string | null };
    // jira (issue 14): a remediation changed (source: who changed it; jira and the retest loop are told apart so that
    // a change Jira made is not commented back to Jira)
    'test.remediation_changed': { test_id: string; from: string; to: string; fields: string[]; source: RemediationSource };
}

export type DomainEventType = keyof DomainEventPayloads;


export interface DomainEvent {
    type: DomainEventType;
    entity_type: string;
    entity_id: string;
    payload: Record<string, unknown>;
}


// An event as the relay hands it to a consumer. `id` is the idempotency key of every handler.
export interface StoredEvent<T extends DomainEventType = DomainEventType> {
    id: string;
    seq: number;
    xid: string;
    type: T;
    entity_type: string | null;
    entity_id: string | null;
    payload: DomainEventPayloads[T];
    actor_id: string | null;
    created_at: Date;
}


export interface ConsumerStatus {
    name: string;
    lag_seconds: number;                    // age of the first event the consumer has not been handed yet; 0 when none
    pending: number;                        // deliveries waiting for a retry
    failed: number;                         // deliveries parked after their last attempt
    updated_at: Date;
}


export interface FailedDeliveryFilters extends ListQuery {
    consumer?: string;
    event_type?: string;
}


// The channel the outbox trigger notifies at commit and the relays listen on; a parked delivery handed back says so
export const eventsChannel = 'aegis_domain_events';
export const retryNotice = 'retry';


// The outbox: an event is a row written in the transaction of the change it describes, so it exists exactly when
// the change does. The relay in the worker (worker/relay.ts) hands each committed event to its consumers.
export class EventsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService }) { }

    async emit(trx: Knex.Transaction, actor: Actor, events: DomainEvent[]): Promise<void> {

        if (!events.length) {
            return;
        }

        // 500 rows a statement: PostgreSQL takes at most 65,535 parameters in one (an alert evaluation raising 66,667
        // sla_breach instances at once emitted as many alert.fired events, bench/alerts-eval.ts at a million tests)
        for (const chunk of chunks(this.rows(actor, events), 500)) {
            await trx('domain_events').insert(chunk);
        }
    }

    // The outbox rows of events, as they are written: `emit` writes them, and `writeRecords` (changes.ts) with the
    // other rows of a change, in one statement
    rows(actor: Actor, events: DomainEvent[]): Record<string, unknown>[] {

        return events.map((event) => ({ ...event, payload: JSON.stringify(event.payload), actor_id: actor.id }));
    }

    // Per consumer: how far behind it is and what failed (GET /system/scheduler, the metrics)
    async status(): Promise<ConsumerStatus[]> {

        const { rows } = await this.deps.knex.raw<{ rows: ConsumerStatus[] }>(`
            select c.name, c.updated_at,
                coalesce(extract(epoch from now() - (
                    select e.created_at from domain_events e where (e.xid, e.seq) > (c.cursor_xid, c.cursor_seq) order by e.xid, e.seq limit 1
                )), 0)::float8 as lag_seconds,
                (select count(*) from event_deliveries d where d.consumer = c.name and d.status = 'pending')::int as pending,
                (select count(*) from event_deliveries d where d.consumer = c.name and d.status = 'failed')::int as failed
            from event_consumers c
            order by c.name`);

        return rows;
    }

    failed(actor: Actor, filters: FailedDeliveryFilters): Promise<Page<EventDelivery>> {

        const query = EventDelivery.query(this.deps.knex)
            .join('domain_events', 'domain_events.id', 'event_deliveries.event_id')
            .select('event_deliveries.*', 'domain_events.type as event_type', 'domain_events.entity_type', 'domain_events.entity_id', 'domain_events.payload', 'domain_events.created_at as event_created_at')
            .where('event_deliveries.status', 'failed');

        if (filters.consumer) {
            query.where('event_deliveries.consumer', filters.consumer);
        }

        if (filters.event_type) {
            query.where('domain_events.type', filters.event_type);
        }

        return page(query, filters, { sort: 'updated_at', order: 'desc' });
    }

    // A parked delivery goes back to the relay with a fresh set of attempts, at once
    async retry(actor: Actor, id: string): Promise<EventDelivery> {

        return await EventDelivery.transaction(this.deps.knex, async (trx) => {

            const delivery = await EventDelivery.query(trx).findById(id).forUpdate();
            if (!delivery) {
                throw new NotFoundError('Failed delivery');
            }

            if (delivery.status !== 'failed') {
                throw new ConflictError(`The delivery is ${delivery.status}, not failed`, 'delivery_not_failed', { status: delivery.status });
            }

            const updated = await delivery.$patchReturning(trx, { status: 'pending', attempts: 0, next_attempt_at: new Date() });
            await this.deps.audit.record(trx, actor, { action: 'event_delivery.retry', entity_type: 'event_delivery', entity_id: id, details: { consumer: delivery.consumer, event_id: delivery.event_id } });
            await trx.raw('select pg_notify(?, ?)', [eventsChannel, retryNotice]);
            return updated;
        });
    }

    // Retention: events older than the cut-off that every given consumer has passed and none still owes a delivery
    // (pending or parked). Only the consumers the worker runs count: a removed consumer would otherwise hold
    // everything forever. In batches: a long delete would hold a transaction id, and with it every relay (the horizon).
    async prune(actor: Actor, options: { consumers: string[]; olderThan: Date; batchSize?: number }): Promise<number> {

        const batchSize = options.batchSize ?? 5000;
        let deleted = 0;
        for (;;) {
            const { rowCount } = await this.deps.knex.raw(`
                delete from domain_events where id in (
                    select e.id from domain_events e
                    where e.created_at < ?
                      and (select count(*) from event_consumers c where c.name = any(?)) = ?
                      and not exists (select 1 from event_consumers c where c.name = any(?) and (e.xid, e.seq) > (c.cursor_xid, c.cursor_seq))
                      and not exists (select 1 from event_deliveries d where d.event_id = e.id and d.status <> 'processed')
                    limit ?
                )`, [options.olderThan, options.consumers, options.consumers.length, options.consumers, batchSize]);

            deleted += rowCount ?? 0;
            if ((rowCount ?? 0) < batchSize) {
                return deleted;
            }
        }
    }
}
