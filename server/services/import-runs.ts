import type { Knex } from 'knex';
import type { PartialModelObject } from 'objection';

import { AttackImport } from '../models';
import type { Actor } from '../policy';

import { changedRows, type WriteCounts } from './bulk-upsert';


// The bookkeeping of one import run in attack_imports: a running row first (so that a crash leaves a trace), then
// succeeded with what the work reports, or failed with the error's message. The caller's error is rethrown unchanged.
export const recordImportRun = async <T>(
    knex: Knex,
    actor: Actor,
    run: { kind: AttackImport['kind']; source: string },
    work: (importId: string) => Promise<{ result: T; finished: PartialModelObject<AttackImport> }>
): Promise<T> => {

    const record = await AttackImport.insertReturning(knex, { kind: run.kind, source: run.source, status: 'running', started_at: new Date(), created_by: actor.id });
    try {
        const { result, finished } = await work(record.id);
        await record.$query(knex).patch({ status: 'succeeded', finished_at: new Date(), ...finished });
        return result;
    }
    catch (err) {
        await record.$query(knex).patch({ status: 'failed', error: String((err as Error).message).slice(0, 2000), finished_at: new Date() }).catch(() => undefined);
        throw err;
    }
};


// Fresh planner statistics for the tables a bulk import changed: with the counts of an empty table, PostgreSQL
// picks nested loops that turn a 30 ms gap query into seconds
export const analyzeChanged = async (knex: Knex, written: Record<string, WriteCounts>): Promise<void> => {

    const tables = Object.keys(written).filter((table) => changedRows({ [table]: written[table]! }));
    if (tables.length) {
        await knex.raw(`analyze ${tables.map(() => '??').join(', ')}`, tables);
    }
};
