import type { Knex } from 'knex';


export const name = '20261207010000_campaigns';


// Purple-team campaigns (docs/campaigns.md): the campaign, its tests (a test may belong to several campaigns), its
// history. `tests.campaign_ids` is the membership as every reader of a test shows it, kept by statement triggers on
// campaign_tests so that no writer can forget it. The worklogs' campaign_id becomes a foreign key.


// Until now a time entry's campaign_id could name anything. Each id that names no campaign becomes a draft campaign of
// that id (the minutes logged on it are kept, and a lead can rename or fill it in); then the foreign key.
export const worklogCampaignKey = async (knex: Knex): Promise<void> => {

    await knex.raw(`
        insert into campaigns (id, name, description)
        select distinct w.campaign_id, 'Recovered campaign ' || left(w.campaign_id::text, 8),
            'Created by the campaigns migration: time entries named this campaign id before campaigns existed'
        from worklogs w where w.campaign_id is not null and not exists (select 1 from campaigns c where c.id = w.campaign_id)`);
    await knex.raw('alter table worklogs add constraint worklogs_campaign_id_foreign foreign key (campaign_id) references campaigns (id) on delete restrict');
};


// See the top of the file
export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    await knex.schema.createTable('campaigns', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('name').notNullable();
        table.text('description');
        table.text('type').notNullable().defaultTo('purple_team').checkIn(['purple_team', 'adversary_emulation', 'regression', 'threat_actor'], 'campaigns_type_check');
        table.text('status').notNullable().defaultTo('draft').checkIn(['draft', 'active', 'completed'], 'campaigns_status_check');
        table.uuid('threat_actor_id').references('threat_actors.id').onDelete('SET NULL');
        table.date('start_date');
        table.date('end_date');
        table.boolean('blind').notNullable().defaultTo(false);
        table.text('notes');
        table.timestamp('activated_at', { useTz: true });
        table.timestamp('completed_at', { useTz: true });
        table.integer('version').notNullable().defaultTo(1);
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.check('start_date is null or end_date is null or start_date <= end_date', [], 'campaigns_schedule_check');
        table.check('(status = \'draft\') = (activated_at is null) and (status = \'completed\') = (completed_at is not null)', [], 'campaigns_status_stamps_check');
        table.index(['status', 'end_date']);
        table.index(['type', 'created_at']);
        table.index(['created_at', 'id']);
        table.index(['threat_actor_id']);
    });

    await knex.schema.createTable('campaign_tests', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('campaign_id').notNullable().references('campaigns.id').onDelete('CASCADE');
        table.uuid('test_id').notNullable().references('tests.id').onDelete('CASCADE');
        table.uuid('added_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.unique(['campaign_id', 'test_id']);
        table.index(['test_id']);
    });

    await knex.schema.createTable('campaign_history', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('campaign_id').notNullable().references('campaigns.id').onDelete('CASCADE');
        table.uuid('actor_id').references('users.id').onDelete('SET NULL');
        table.text('actor_role');
        table.text('action').notNullable();
        table.text('from_status');
        table.text('to_status');
        table.uuid('test_id');
        table.jsonb('changes').notNullable().defaultTo('{}');
        table.bigIncrements('seq', { primaryKey: false });
        timestamps(table);
        table.index(['campaign_id', 'created_at', 'seq']);
    });

    // The membership on the test row: one statement updates every test it touched, whatever the number of rows; and
    // `blind`: the test is in a blind campaign (the visibility rule, policy.ts hidesRedFrom)
    await knex.raw('alter table tests add column campaign_ids uuid[] not null default \'{}\'');
    await knex.raw('alter table tests add column blind boolean not null default false');
    await knex.raw('create index tests_campaign_ids_index on tests using gin (campaign_ids)');
    await knex.raw(`
        create function campaign_tests_sync() returns trigger language plpgsql as $$
        begin
            update tests t set campaign_ids = coalesce((select array_agg(ct.campaign_id order by ct.created_at, ct.campaign_id) from campaign_tests ct where ct.test_id = t.id), '{}'),
                    blind = exists (select 1 from campaign_tests ct join campaigns c on c.id = ct.campaign_id where ct.test_id = t.id and c.blind)
                where t.id in (select test_id from changed);
            return null;
        end $$`);
    await knex.raw('create trigger campaign_tests_inserted after insert on campaign_tests referencing new table as changed for each statement execute function campaign_tests_sync()');
    await knex.raw('create trigger campaign_tests_deleted after delete on campaign_tests referencing old table as changed for each statement execute function campaign_tests_sync()');
    await knex.raw(`
        create function campaigns_blind_sync() returns trigger language plpgsql as $$
        begin
            update tests t set blind = exists (select 1 from campaign_tests ct join campaigns c on c.id = ct.campaign_id where ct.test_id = t.id and c.blind)
                where t.id in (select test_id from campaign_tests where campaign_id = new.id);
            return null;
        end $$`);
    await knex.raw('create trigger campaigns_blind_changed after update of blind on campaigns for each row when (old.blind is distinct from new.blind) execute function campaigns_blind_sync()');
    await knex.raw('create function campaign_tests_fixed() returns trigger language plpgsql as $$ begin raise exception \'campaign_tests rows are added or removed, never changed\'; end $$');
    await knex.raw('create trigger campaign_tests_no_update before update of campaign_id, test_id on campaign_tests for each row execute function campaign_tests_fixed()');

    await worklogCampaignKey(knex);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table worklogs drop constraint worklogs_campaign_id_foreign');
    await knex.raw('drop trigger campaign_tests_inserted on campaign_tests');
    await knex.raw('drop trigger campaign_tests_deleted on campaign_tests');
    await knex.raw('drop trigger campaign_tests_no_update on campaign_tests');
    await knex.raw('drop trigger campaigns_blind_changed on campaigns');
    await knex.raw('drop function campaigns_blind_sync()');
    await knex.raw('drop function campaign_tests_sync()');
    await knex.raw('drop function campaign_tests_fixed()');
    await knex.raw('alter table tests drop column campaign_ids');
    await knex.raw('alter table tests drop column blind');
    await knex.schema.dropTable('campaign_history');
    await knex.schema.dropTable('campaign_tests');
    await knex.schema.dropTable('campaigns');
};
