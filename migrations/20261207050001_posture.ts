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

    // The restricted tests per assignee (red or blue; once when both): what a technician sees beyond their
    // classifications, counted without reading their tests
    await knex.schema.createTable('test_assignee_counts', (table) => {

        table.uuid('user_id').notNullable();
        table.text('technique_id').notNullable();
        table.text('state').notNullable();
        table.text('detection_outcome').notNullable().defaultTo('');
        table.bigInteger('count').notNullable().defaultTo(0);
        table.primary(['user_id', 'technique_id', 'state', 'detection_outcome']);
    });

    await knex.raw('alter table test_assignee_counts add constraint test_assignee_counts_count_check check (count >= 0)');

    // One statement per change of tests adds the net difference of its rows to both tables: decrements by UPDATE,
    // increments by an upsert in key order (a CHECK on the proposed row of an INSERT ... ON CONFLICT would refuse a
    // negative count before the conflict is resolved; the key order makes two transactions lock counters in the same
    // order). Rows whose key did not move cancel out and write nothing. The transition tables are visible to EXECUTE.
    await knex.raw(`create function test_counts_apply() returns trigger language plpgsql as $$
        declare
            changed text := case tg_op
                when 'INSERT' then 'select 1 as n, * from new_rows'
                when 'DELETE' then 'select -1 as n, * from old_rows'
                else 'select -1 as n, * from old_rows union all select 1 as n, * from new_rows' end;
        begin
            execute format($sql$
                with changed as (%s),
                delta as (
                    select technique_id, data_classification, state, coalesce(detection_outcome, '') as detection_outcome, sum(n) as n
                    from changed group by 1, 2, 3, 4 having sum(n) <> 0
                ),
                assigned as (
                    select a.user_id, c.technique_id, c.state, coalesce(c.detection_outcome, '') as detection_outcome, sum(c.n) as n
                    from changed c cross join lateral (select c.red_assignee_id union select c.blue_assignee_id) a(user_id)
                    where c.data_classification = 'restricted' and a.user_id is not null
                    group by 1, 2, 3, 4 having sum(c.n) <> 0
                ),
                decrements as (
                    update test_counts t set count = t.count + d.n from delta d
                    where d.n < 0 and t.technique_id = d.technique_id and t.data_classification = d.data_classification and t.state = d.state and t.detection_outcome = d.detection_outcome
                ),
                assignee_decrements as (
                    update test_assignee_counts t set count = t.count + d.n from assigned d
                    where d.n < 0 and t.user_id = d.user_id and t.technique_id = d.technique_id and t.state = d.state and t.detection_outcome = d.detection_outcome
                ),
                increments as (
                    insert into test_counts as t (technique_id, data_classification, state, detection_outcome, count)
                    select technique_id, data_classification, state, detection_outcome, n from delta where n > 0 order by 1, 2, 3, 4
                    on conflict (technique_id, data_classification, state, detection_outcome) do update set count = t.count + excluded.count
                )
                insert into test_assignee_counts as t (user_id, technique_id, state, detection_outcome, count)
                select user_id, technique_id, state, detection_outcome, n from assigned where n > 0 order by 1, 2, 3, 4
                on conflict (user_id, technique_id, state, detection_outcome) do update set count = t.count + excluded.count
            $sql$, changed);
            return null;
        end $$`);

    await knex.raw('create trigger tests_count_insert after insert on tests referencing new table as new_rows for each statement execute function test_counts_apply()');
    await knex.raw('create trigger tests_count_update after update on tests referencing old table as old_rows new table as new_rows for each statement execute function test_counts_apply()');
    await knex.raw('create trigger tests_count_delete after delete on tests referencing old table as old_rows for each statement execute function test_counts_apply()');
    await knex.raw(`create function test_counts_clear() returns trigger language plpgsql as $$ begin delete from test_counts; delete from test_assignee_counts; return null; end $$`);
    await knex.raw('create trigger tests_count_truncate after truncate on tests for each statement execute function test_counts_clear()');
    await knex.raw('lock table tests in share mode');
    await knex.raw(`insert into test_counts (technique_id, data_classification, state, detection_outcome, count)
        select technique_id, data_classification, state, coalesce(detection_outcome, ''), count(*) from tests group by 1, 2, 3, 4`);
    await knex.raw(`insert into test_assignee_counts (user_id, technique_id, state, detection_outcome, count)
        select a.user_id, t.technique_id, t.state, coalesce(t.detection_outcome, ''), count(*)
        from tests t cross join lateral (select t.red_assignee_id union select t.blue_assignee_id) a(user_id)
        where t.data_classification = 'restricted' and a.user_id is not null group by 1, 2, 3, 4`);

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
    await knex.schema.dropTable('test_assignee_counts');
    await knex.schema.dropTable('test_counts');
};
