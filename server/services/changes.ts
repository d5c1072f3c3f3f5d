import type { Knex } from 'knex';
import { Model, type QueryBuilder } from 'objection';

import { NotFoundError } from '../errors';
import { TestTimelineEntry } from '../models';
import type { Actor } from '../policy';


// The recipe for a change (docs/architecture.md, "How to build a module"): one transaction per change, joined when
// the caller already holds one; the changed row locked or a 404; the timeline row written in that transaction.

// What every mutating service method accepts last: a caller's transaction makes the change part of a larger one (a
// bulk change over a campaign's tests commits or rolls back as a whole).
export interface ChangeOptions {
    trx?: Knex.Transaction;
}


// Runs `work` in the caller's transaction when there is one, otherwise in a transaction of its own
export const withTransaction = async <T>(knex: Knex, trx: Knex.Transaction | undefined, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> => {

    return trx ? await work(trx) : await knex.transaction(work);
};


// The row, locked for the rest of the transaction (concurrent changes to it serialise), or a NotFoundError naming the
// entity. The query carries the visibility rule: what the actor may not see is as absent as what does not exist.
export const lockOr404 = async <M extends Model>(query: QueryBuilder<M, M | undefined>, entity: string): Promise<M> => {

    const row = await query.forUpdate();
    if (!row) {
        throw new NotFoundError(entity);
    }

    return row;
};


export interface TimelineEntry {
    action: string;
    from_state?: string | null;
    to_state?: string | null;
    changes?: Record<string, unknown>;
    comment?: string | null;
}


// One row of a test's timeline, as it is written (its `changes` as JSON text)
export const timelineRow = (actor: Actor, testId: string, entry: TimelineEntry): Record<string, unknown> => ({
    test_id: testId,
    actor_id: actor.id,
    actor_role: actor.role,
    action: entry.action,
    from_state: entry.from_state ?? null,
    to_state: entry.to_state ?? null,
    changes: JSON.stringify(entry.changes ?? {}),
    comment: entry.comment ?? null
});


// One row of a test's timeline, written by every module that changes a test (tests, evidence)
export const appendTimeline = async (trx: Knex.Transaction, actor: Actor, testId: string, entry: TimelineEntry): Promise<void> => {

    await TestTimelineEntry.query(trx).insert({ ...timelineRow(actor, testId, entry), changes: entry.changes ?? {} });
};


// Rows to insert into a table with a change
export interface RecordRows {
    table: string;
    rows: Record<string, unknown>[];
}


// The rows that record a change (its timeline row, its audit rows, its events: `AuditService.rows`,
// `EventsService.rows`) written by the statement of the change itself, as data-modifying CTEs: `with record_0 as
// (insert …), record_1 as (insert …) update tests … returning *` is one round trip of the transaction instead of one
// per table (docs/performance.md). PostgreSQL runs every CTE to the end whatever the main statement reads, fires every
// trigger as for an INSERT of its own, and checks foreign keys at the end of the statement (a timeline row may name
// the test that the main statement inserts). JSON columns come as JSON text: knex would send an array as a
// PostgreSQL array.
export const withRecords = <Q extends { with: (alias: string, query: Knex.QueryBuilder) => unknown }>(trx: Knex.Transaction, query: Q, writes: RecordRows[]): Q => {

    writes.filter((write) => write.rows.length).forEach((write, i) => query.with(`record_${i}`, trx(write.table).insert(write.rows)));
    return query;
};


// A table whose rows are written as they come (JSON columns as JSON text), through objection all the same, so that a
// database error is mapped as every other one is (plugins/errors.ts: a value too long is a 400, never a 500)
const tables = new Map<string, typeof Model>();
export const tableOf = (table: string): typeof Model => {

    let model = tables.get(table);
    if (!model) {
        model = class extends Model {
            static override tableName = table;
            static override jsonAttributes = [];
        };

        tables.set(table, model);
    }

    return model;
};


// The same rows when the change itself is written otherwise: one INSERT statement with the others as its CTEs
export const writeRecords = async (trx: Knex.Transaction, writes: RecordRows[]): Promise<void> => {

    const present = writes.filter((write) => write.rows.length);
    const last = present.pop();
    if (last) {
        await withRecords(trx, tableOf(last.table).query(trx), present).insert(last.rows);
    }
};
