import type { Knex } from 'knex';


export const name = '20261206000300_integrity';


// The rules the services keep, also kept by the database: a row no code path can write is refused whoever writes it.
const checks: [table: string, constraint: string, condition: string][] = [

    // A test's state and its fields: a validated test was approved by both leads and has its outcome; a rejected one
    // was rejected by one of them; a decision has its time; only a running state has a timer
    ['tests', 'tests_validated_check', `(state = 'validated') = (validated_at is not null) and (state <> 'validated' or (detection_outcome is not null and red_approved is true and blue_approved is true))`],
    ['tests', 'tests_rejected_check', `(state = 'rejected') = (rejected_at is not null) and (state <> 'rejected' or red_approved is false or blue_approved is false)`],
    ['tests', 'tests_red_decision_check', '(red_approved is null) = (red_validated_at is null)'],
    ['tests', 'tests_blue_decision_check', '(blue_approved is null) = (blue_validated_at is null)'],
    ['tests', 'tests_timer_check', `(timer_started_at is null or not timer_paused) and (state in ('red_executing', 'blue_evaluating') or (timer_started_at is null and not timer_paused))`],
    ['tests', 'tests_counters_check', 'red_seconds >= 0 and blue_seconds >= 0 and version >= 1'],
    ['tests', 'tests_detected_after_executed_check', 'detected_at is null or executed_at is null or detected_at >= executed_at'],
    ['evidence', 'evidence_size_check', 'size >= 0'],

    // A sub-technique has its parent; the review fields exist only while a review is asked for
    ['techniques', 'techniques_subtechnique_check', 'is_subtechnique = (parent_id is not null)'],
    ['techniques', 'techniques_review_check', 'case when needs_review then review_requested_at is not null else review_reason is null and review_requested_at is null and review_requested_by is null end'],
    ['techniques', 'techniques_latest_validated_check', '(latest_validated_test_id is null) = (latest_validated_at is null)'],

    // A local account signs in with a password; only an external provider's has none
    ['users', 'users_local_password_check', `auth_provider <> 'local' or password_hash is not null`]
];


export const up = async (knex: Knex): Promise<void> => {

    // What earlier code left behind and can be repaired without a guess: review fields kept after the flag was
    // cleared, the flag of a sub-technique whose parent was never imported
    await knex.raw('update techniques set review_reason = null, review_requested_at = null, review_requested_by = null where not needs_review and (review_reason is not null or review_requested_at is not null or review_requested_by is not null)');
    await knex.raw('update techniques set is_subtechnique = (parent_id is not null) where is_subtechnique <> (parent_id is not null)');
    await knex.raw('update techniques t set latest_validated_test_id = null, latest_validated_at = null where latest_validated_test_id is not null and not exists (select 1 from tests x where x.id = t.latest_validated_test_id)');
    await knex.raw('update test_templates t set source_test_id = null where source_test_id is not null and not exists (select 1 from tests x where x.id = t.source_test_id)');

    for (const [table, constraint, condition] of checks) {
        await knex.raw(`alter table ?? add constraint ?? check (${condition})`, [table, constraint]);
    }

    await knex.schema.alterTable('techniques', (table) => {

        table.foreign('latest_validated_test_id', 'techniques_latest_validated_test_id_foreign').references('tests.id').onDelete('RESTRICT');
    });

    await knex.schema.alterTable('test_templates', (table) => {

        table.foreign('source_test_id', 'test_templates_source_test_id_foreign').references('tests.id').onDelete('SET NULL');
        table.index(['source_test_id']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.alterTable('test_templates', (table) => {

        table.dropIndex(['source_test_id']);
        table.dropForeign(['source_test_id'], 'test_templates_source_test_id_foreign');
    });

    await knex.schema.alterTable('techniques', (table) => {

        table.dropForeign(['latest_validated_test_id'], 'techniques_latest_validated_test_id_foreign');
    });

    for (const [table, constraint] of [...checks].reverse()) {
        await knex.raw('alter table ?? drop constraint ??', [table, constraint]);
    }
};
