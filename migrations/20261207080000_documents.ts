import type { Knex } from 'knex';


export const name = '20261207080000_documents';


const kinds = ['coverage-summary', 'executive-summary', 'quarterly-summary', 'technique'];


// Report documents (issue 13): a PDF render the worker prints (shared by identical requests while it runs), report
// schedules and their runs, one row per (schedule, period) so that a period is never sent twice.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('report_renders', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('kind').notNullable().checkIn(kinds);
        table.jsonb('params').notNullable().defaultTo('{}');
        table.text('content_sha256').notNullable();             // of the document's data (generated_at left out)
        table.text('html').notNullable();
        table.text('file_name').notNullable();
        table.text('status').notNullable().defaultTo('queued').checkIn(['queued', 'running', 'done', 'failed']);
        table.text('storage_key');
        table.bigInteger('size');
        table.text('error');
        table.integer('render_ms');
        table.specificType('readers', 'uuid[]').notNullable().defaultTo('{}');
        table.uuid('requested_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('finished_at', { useTz: true });
        table.index(['created_at']);
    });

    // Identical requests while a render is queued or running share it
    await knex.raw('create unique index report_renders_running on report_renders (content_sha256) where status in (\'queued\', \'running\')');
    await knex.raw('alter table report_renders add constraint report_renders_done check (status <> \'done\' or (storage_key is not null and size is not null))');

    await knex.schema.createTable('report_schedules', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('name').notNullable();
        table.uuid('owner_id').notNullable().references('users.id').onDelete('CASCADE');
        table.text('kind').notNullable().checkIn(kinds);
        table.jsonb('params').notNullable().defaultTo('{}');
        table.text('cron');
        table.text('period').checkIn(['daily', 'weekly', 'monthly', 'quarterly']);
        table.text('timezone').notNullable().defaultTo('UTC');
        table.specificType('recipient_user_ids', 'uuid[]').notNullable().defaultTo('{}');
        table.specificType('recipient_emails', 'text[]').notNullable().defaultTo('{}');
        table.boolean('enabled').notNullable().defaultTo(true);
        table.timestamp('next_run_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index(['enabled', 'next_run_at']);
        table.index(['owner_id']);
    });

    await knex.raw('alter table report_schedules add constraint report_schedules_when check ((cron is null) <> (period is null))');
    await knex.raw('alter table report_schedules add constraint report_schedules_recipients check (cardinality(recipient_user_ids) + cardinality(recipient_emails) > 0)');

    await knex.schema.createTable('report_schedule_runs', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('schedule_id').notNullable().references('report_schedules.id').onDelete('CASCADE');
        table.text('period_key').notNullable();                 // the occurrence it sends, as an ISO instant
        table.text('status').notNullable().checkIn(['running', 'sent', 'failed']);
        table.integer('attempts').notNullable().defaultTo(1);
        table.text('error');
        table.integer('recipients').notNullable().defaultTo(0);
        table.specificType('sent_to', 'text[]').notNullable().defaultTo('{}');     // a retry skips them
        table.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('finished_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.unique(['schedule_id', 'period_key']);
        table.index(['status', 'started_at']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('report_schedule_runs');
    await knex.schema.dropTable('report_schedules');
    await knex.schema.dropTable('report_renders');
};
