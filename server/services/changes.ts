import type { Knex } from 'knex';
import type { Model, QueryBuilder } from 'objection';

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


// One row of a test's timeline, written by every module that changes a test (tests, evidence)
export const appendTimeline = async (trx: Knex.Transaction, actor: Actor, testId: string, entry: TimelineEntry): Promise<void> => {

    await TestTimelineEntry.query(trx).insert({
        test_id: testId,
        actor_id: actor.id,
        actor_role: actor.role,
        action: entry.action,
        from_state: entry.from_state ?? null,
        to_state: entry.to_state ?? null,
        changes: entry.changes ?? {},
        comment: entry.comment ?? null
    });
};
