import type { Knex } from 'knex';

import { testAccess, type Actor } from '../policy';


// The filters the counters can answer: their own keys
export interface CountedFilters {
    states?: string[];
    technique_id?: string;
}

export interface TestCountRow {
    technique_id: string;
    state: string;
    detection_outcome: string;              // '' while the test has none
    count: number;
}


// The tests an actor may see, counted per technique, state and detection outcome, without reading the tests: the
// counters of `test_counts` (kept by triggers on tests, migrations/20261207050001_posture.ts) summed over the
// classifications the actor sees, plus their own counters of the restricted tests assigned to them
// (`test_assignee_counts`). The same rule as `Test.visibleTo` (policy.ts testAccess): a hidden test is never counted.
// `only` narrows them to some states and one technique (the keys of the counters: GET /tests filtered by those alone).
export const visibleTestCounts = async (knex: Knex | Knex.Transaction, actor: Actor, only: CountedFilters = {}): Promise<TestCountRow[]> => {

    const access = testAccess(actor);
    const narrow = (query: Knex.QueryBuilder) => query
        .modify((q) => (only.states?.length ? q.whereIn('state', only.states) : q))
        .modify((q) => (only.technique_id !== undefined ? q.where('technique_id', only.technique_id) : q));

    const counters = narrow(knex('test_counts').select('technique_id', 'state', 'detection_outcome', 'count').where('count', '>', 0));
    if (access) {
        counters.whereIn('data_classification', access.classifications);
    }

    const parts: Knex.QueryBuilder[] = [counters];
    if (access?.assignee) {
        parts.push(narrow(knex('test_assignee_counts').select('technique_id', 'state', 'detection_outcome', 'count').where('user_id', access.assignee).where('count', '>', 0)));
    }

    const rows: { technique_id: string; state: string; detection_outcome: string; count: string }[] = await knex
        .select('technique_id', 'state', 'detection_outcome').sum('count as count')
        .from(knex.unionAll(parts, true).as('c'))
        .groupBy('technique_id', 'state', 'detection_outcome');

    return rows.map((row) => ({ ...row, count: Number(row.count) }));
};


// How many tests the actor may see, in all or in some states and one technique
export const visibleTestTotal = async (knex: Knex, actor: Actor, only: CountedFilters = {}): Promise<number> => (await visibleTestCounts(knex, actor, only)).reduce((sum, row) => sum + row.count, 0);
