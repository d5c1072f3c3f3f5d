import type { Knex } from 'knex';


export const name = '20261207070001_webhooks';


// Webhook subscriptions (admin-owned), one delivery per event and subscription, and each attempt of a delivery.
// A delivery keeps its own body (built when the event was relayed): it survives the retention of domain_events, and
// every retry sends the same bytes under the same `webhook-id`.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('webhooks', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('name').notNullable();
        table.text('url').notNullable();
        table.specificType('events', 'text[]').notNullable();
        table.text('description');
        table.boolean('enabled').notNullable().defaultTo(true);
        table.text('disabled_reason');
        table.timestamp('failing_since', { useTz: true });
        table.binary('secret_ciphertext').notNullable();
        table.binary('secret_iv').notNullable();
        table.binary('secret_tag').notNullable();
        table.text('secret_key_id').notNullable();
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.raw(`alter table webhooks add constraint webhooks_events_not_empty check (cardinality(events) > 0)`);
    await knex.raw(`alter table webhooks add constraint webhooks_disabled_reason check (enabled or disabled_reason is not null)`);
    await knex.raw(`alter table webhooks add constraint webhooks_secret_sizes check (octet_length(secret_iv) = 12 and octet_length(secret_tag) = 16)`);

    await knex.schema.createTable('webhook_deliveries', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('webhook_id').notNullable().references('webhooks.id').onDelete('CASCADE');
        table.uuid('event_id');                                             // null for a ping
        table.text('event_type').notNullable();
        table.text('body').notNullable();
        table.text('status').notNullable().checkIn(['pending', 'delivered', 'failed']);
        table.integer('attempts').notNullable().defaultTo(0);
        table.timestamp('next_attempt_at', { useTz: true });
        table.timestamp('retry_until', { useTz: true }).notNullable();
        table.integer('last_status_code');
        table.integer('last_latency_ms');
        table.text('last_error');
        table.timestamp('delivered_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.unique(['webhook_id', 'event_id']);
        table.index(['webhook_id', 'created_at']);
    });

    await knex.raw(`create index webhook_deliveries_due_index on webhook_deliveries (next_attempt_at) where status = 'pending'`);
    await knex.raw(`alter table webhook_deliveries add constraint webhook_deliveries_pending_due check ((status = 'pending') = (next_attempt_at is not null))`);

    await knex.schema.createTable('webhook_attempts', (table) => {

        table.bigIncrements('id').primary();
        table.uuid('delivery_id').notNullable().references('webhook_deliveries.id').onDelete('CASCADE');
        table.integer('attempt').notNullable();
        table.integer('status_code');
        table.integer('latency_ms').notNullable();
        table.text('error');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index(['delivery_id']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('webhook_attempts');
    await knex.schema.dropTable('webhook_deliveries');
    await knex.schema.dropTable('webhooks');
};
