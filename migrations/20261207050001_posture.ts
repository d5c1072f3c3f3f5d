import type { Knex } from 'knex';


export const name = '20261207050001_posture';


const statuses = ['untested', 'not_covered', 'partial', 'covered'];


// Issue 12 (dashboards, snapshots, analytics, cost at a million tests), docs/dashboards.md.
//
// test_counts: how many tests there are per technique, classification, state and detection outcome, kept by statement
// triggers on tests in the transaction of every change (INSERT ... SELECT, the API, a bulk load: all of them), so that
// dashboards, the heatmap and the test list's total read a few thousand counter rows instead of every test. The
// classification is in the key so that a reader's visible count is a sum over the classifications they see (plus the
// restricted tests assigned to them, an indexed query): the counters never answer a hidden test.
//
// posture_snapshots / posture_snapshot_techniques: the coverage of every active technique at a point in time.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('test_counts', (table) => {

        table.text('technique_id').notNullable();
        table.text('data_classification').notNullable();
        table.text('state').notNullable();
        table.text('detection_outcome').notNullable().defaultTo('');           // '' while the test has none
        table.bigInteger('count').notNullable().defaultTo(0);
        table.primary(['technique_id', 'data_classification', 'state', 'detection_outcome']);
    });

    await knex.raw('alter table test_counts add constraint test_counts_count_check check (count >= 0)');

    // One statement per change of tests adds the net difference of its rows, in key order (two transactions touching
    // the same counters lock them in the same order). Rows whose key did not move cancel out and write nothing.
    await knex.raw(`create function test_counts_apply() returns trigger language plpgsql as $$
        begin
            if tg_op = 'INSERT' then
                insert into test_counts as c (technique_id, data_classification, state, detection_outcome, count)
                    select technique_id, data_classification, state, coalesce(detection_outcome, ''), count(*) from new_rows
                    group by 1, 2, 3, 4 order by 1, 2, 3, 4
                    on conflict (technique_id, data_classification, state, detection_outcome) do update set count = c.count + excluded.count;
            elsif tg_op = 'DELETE' then
                update test_counts c set count = c.count - d.n
                    from (select technique_id, data_classification, state, coalesce(detection_outcome, '') as detection_outcome, count(*) as n from old_rows group by 1, 2, 3, 4) d
                    where c.technique_id = d.technique_id and c.data_classification = d.data_classification and c.state = d.state and c.detection_outcome = d.detection_outcome;
            else
                -- The net change per key: decrements of existing counters, then increments (a CHECK on the proposed row
                -- of an INSERT ... ON CONFLICT would refuse a negative count before the conflict is resolved)
                with delta as (
                    select technique_id, data_classification, state, detection_outcome, sum(n) as n from (
                        select technique_id, data_classification, state, coalesce(detection_outcome, '') as detection_outcome, -1 as n from old_rows
                        union all
                        select technique_id, data_classification, state, coalesce(detection_outcome, ''), 1 from new_rows
                    ) d group by 1, 2, 3, 4 having sum(n) <> 0
                ), decrements as (
                    update test_counts c set count = c.count + delta.n from delta
                        where delta.n < 0 and c.technique_id = delta.technique_id and c.data_classification = delta.data_classification and c.state = delta.state and c.detection_outcome = delta.detection_outcome
                )
                insert into test_counts as c (technique_id, data_classification, state, detection_outcome, count)
                    select technique_id, data_classification, state, detection_outcome, n from delta where n > 0 order by 1, 2, 3, 4
                    on conflict (technique_id, data_classification, state, detection_outcome) do update set count = c.count + excluded.count;
            end if;
            return null;
        end $$`);

    await knex.raw('create trigger tests_count_insert after insert on tests referencing new table as new_rows for each statement execute function test_counts_apply()');
    await knex.raw('create trigger tests_count_update after update on tests referencing old table as old_rows new table as new_rows for each statement execute function test_counts_apply()');
    await knex.raw('create trigger tests_count_delete after delete on tests referencing old table as old_rows for each statement execute function test_counts_apply()');
    await knex.raw(`create function test_counts_clear() returns trigger language plpgsql as $$ begin delete from test_counts; return null; end $$`);
    await knex.raw('create trigger tests_count_truncate after truncate on tests for each statement execute function test_counts_clear()');
    await knex.raw('lock table tests in share mode');
    await knex.raw(`insert into test_counts (technique_id, data_classification, state, detection_outcome, count)
        select technique_id, data_classification, state, coalesce(detection_outcome, ''), count(*) from tests group by 1, 2, 3, 4`);

    // Analytics and the activity feed read a period: these keep them to the period's rows
    await knex.raw('create index tests_validated_at_index on tests (validated_at) where validated_at is not null');
    await knex.raw('create index test_timeline_created_at_index on test_timeline (created_at desc, id desc)');

    await knex.schema.createTable('posture_snapshots', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('kind').notNullable().checkIn(['manual', 'scheduled'], 'posture_snapshots_kind_check');
        table.text('note');
        table.timestamp('taken_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.jsonb('summary').notNullable();                                   // per domain: the figures of the KPIs
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index(['taken_at', 'id']);
    });

    await knex.schema.createTable('posture_snapshot_techniques', (table) => {

        table.uuid('snapshot_id').notNullable().references('posture_snapshots.id').onDelete('CASCADE');
        table.text('technique_id').notNullable();                               // no foreign key: history outlives a renamed id
        table.text('domain').notNullable();
        table.boolean('is_subtechnique').notNullable();
        table.text('coverage_status').notNullable().checkIn(statuses, 'posture_snapshot_techniques_status_check');
        table.smallint('score');
        table.text('own_coverage_status').notNullable().checkIn(statuses, 'posture_snapshot_techniques_own_status_check');
        table.smallint('own_score');
        table.boolean('needs_review').notNullable();
        table.timestamp('latest_validated_at', { useTz: true });
        table.primary(['snapshot_id', 'technique_id']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('posture_snapshot_techniques');
    await knex.schema.dropTable('posture_snapshots');
    await knex.raw('drop index test_timeline_created_at_index');
    await knex.raw('drop index tests_validated_at_index');
    await knex.raw('drop trigger tests_count_truncate on tests');
    await knex.raw('drop function test_counts_clear()');
    await knex.raw('drop trigger tests_count_delete on tests');
    await knex.raw('drop trigger tests_count_update on tests');
    await knex.raw('drop trigger tests_count_insert on tests');
    await knex.raw('drop function test_counts_apply()');
    await knex.schema.dropTable('test_counts');
};
