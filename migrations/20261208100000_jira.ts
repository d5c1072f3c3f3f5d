import type { Knex } from 'knex';


export const name = '20261208100000_jira';


// Jira remediation workflows (issue 14, docs/jira.md): the remediation status `awaiting_retest` (a Jira issue was
// resolved; the retest that validates closes the loop), the linked issue of a test with its last-known Jira status,
// every sync run, and the outbox of comments Aegis posts to Jira when a remediation changes.
export const up = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table tests drop constraint tests_remediation_status_check');
    await knex.raw(`alter table tests add constraint tests_remediation_status_check check (remediation_status in ('none', 'open', 'in_progress', 'awaiting_retest', 'resolved', 'accepted_risk'))`);
    await knex.raw('create unique index tests_jira_issue_key_unique on tests (jira_issue_key) where jira_issue_key is not null');

    // One linked issue per test and one test per issue: tests.jira_issue_key is the key, this row what Jira last said
    await knex.schema.createTable('jira_issues', (table) => {

        table.uuid('test_id').primary().references('tests.id').onDelete('CASCADE');
        table.text('issue_key').notNullable().unique();
        table.text('issue_id');
        table.text('origin').notNullable().checkIn(['created', 'linked']);
        table.text('status_name');
        table.text('status_category');
        table.text('resolution');
        table.timestamp('jira_updated_at', { useTz: true });
        table.timestamp('last_synced_at', { useTz: true });
        table.text('last_error');
        table.uuid('linked_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.schema.createTable('jira_sync_runs', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('trigger').notNullable().checkIn(['schedule', 'manual', 'webhook']);
        table.text('status').notNullable().checkIn(['queued', 'running', 'succeeded', 'partial', 'failed']);
        table.uuid('requested_by').references('users.id').onDelete('SET NULL');
        table.timestamp('since', { useTz: true });                 // the JQL lower bound on `updated` (null: every linked issue)
        table.timestamp('cursor', { useTz: true });                // where the next run starts when this one succeeded
        table.specificType('issue_keys', 'text[]');                 // a webhook run: the issues Jira named (re-read from Jira, never trusted)
        table.timestamp('not_before', { useTz: true });            // Jira asked to wait (429 Retry-After): no scheduled run before
        table.integer('issues_seen').notNullable().defaultTo(0);
        table.integer('issues_changed').notNullable().defaultTo(0);
        table.integer('issues_failed').notNullable().defaultTo(0);
        table.jsonb('failures').notNullable().defaultTo('[]');     // [{ issue_key, reason }]
        table.text('error');
        table.timestamp('started_at', { useTz: true });
        table.timestamp('finished_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index(['created_at']);
    });

    await knex.raw(`alter table jira_sync_runs add constraint jira_sync_runs_counts check (issues_seen >= 0 and issues_changed >= 0 and issues_failed >= 0)`);
    // One polling run at a time: a second request while one is queued or running answers that one (webhook runs,
    // one or a few issues each, are not held back by a poll)
    await knex.raw(`create unique index jira_sync_runs_one_active on jira_sync_runs ((true)) where status in ('queued', 'running') and trigger <> 'webhook'`);

    await knex.schema.createTable('jira_comments', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('test_id').notNullable().references('tests.id').onDelete('CASCADE');
        table.text('issue_key').notNullable();
        table.uuid('event_id').unique();                            // the idempotency key of the relay's at-least-once delivery
        table.text('body').notNullable();
        table.text('status').notNullable().checkIn(['pending', 'sent', 'failed']);
        table.integer('attempts').notNullable().defaultTo(0);
        table.timestamp('next_attempt_at', { useTz: true });
        table.text('last_error');
        table.timestamp('sent_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.raw(`create index jira_comments_due_index on jira_comments (next_attempt_at) where status = 'pending'`);
    await knex.raw(`alter table jira_comments add constraint jira_comments_pending_due check ((status = 'pending') = (next_attempt_at is not null))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('jira_comments');
    await knex.schema.dropTable('jira_sync_runs');
    await knex.schema.dropTable('jira_issues');
    await knex.raw('drop index tests_jira_issue_key_unique');
    await knex.raw(`update tests set remediation_status = 'resolved' where remediation_status = 'awaiting_retest'`);
    await knex.raw('alter table tests drop constraint tests_remediation_status_check');
    await knex.raw(`alter table tests add constraint tests_remediation_status_check check (remediation_status in ('none', 'open', 'in_progress', 'resolved', 'accepted_risk'))`);
};
