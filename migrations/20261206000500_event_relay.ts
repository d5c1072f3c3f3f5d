import type { Knex } from 'knex';


export const name = '20261206000500_event_relay';


// The consumer side of the outbox (docs/architecture.md "The event relay"). Each event gets the id of the
// transaction that wrote it (xid8) and a sequence number: the relay delivers in (xid, seq) order and only below the
// oldest transaction still running, so an event committed late can never fall behind a consumer's cursor. Each
// consumer keeps its own cursor; a delivery that failed gets a row of its own, retried with back-off, then parked.
export const up = async (knex: Knex): Promise<void> => {

    // Existing rows get this migration's transaction id; their side effects happened in their own transactions
    await knex.raw('alter table domain_events add column seq bigint generated always as identity');
    await knex.raw('alter table domain_events add column xid xid8 not null default pg_current_xact_id()');
    await knex.raw('create index domain_events_position_index on domain_events (xid, seq)');
    await knex.raw('create index domain_events_created_at_index on domain_events (created_at)');

    // processed_at was never written: whether an event is done is a consumer's cursor and its failed deliveries
    await knex.raw('drop index domain_events_pending_index');
    await knex.raw('alter table domain_events drop column processed_at');

    // Wakes the relays at commit (NOTIFY is transactional); one per statement, the payload unused
    await knex.raw(`
        create function domain_events_notify() returns trigger language plpgsql as $$
        begin
            perform pg_notify('aegis_domain_events', '');
            return null;
        end $$`);
    await knex.raw('create trigger domain_events_notify after insert on domain_events for each statement execute function domain_events_notify()');

    await knex.schema.createTable('event_consumers', (table) => {

        table.text('name').primary();
        table.specificType('cursor_xid', 'xid8').notNullable().defaultTo(knex.raw(`'0'::xid8`));
        table.bigInteger('cursor_seq').notNullable().defaultTo(0);
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    // The consumer of this release starts after the events already there (their notifications were written with them)
    await knex.raw(`
        insert into event_consumers (name, cursor_xid, cursor_seq)
        select 'notifications', coalesce(max(xid), '0'::xid8), coalesce(max(seq), 0) from domain_events`);

    await knex.schema.createTable('event_deliveries', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('consumer').notNullable();
        table.uuid('event_id').notNullable().references('domain_events.id').onDelete('CASCADE');
        table.text('status').notNullable().checkIn(['pending', 'failed', 'processed']);
        table.integer('attempts').notNullable().defaultTo(0);
        table.timestamp('next_attempt_at', { useTz: true });
        table.text('last_error');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.unique(['consumer', 'event_id']);
        table.index(['event_id']);
    });

    await knex.raw(`create index event_deliveries_due_index on event_deliveries (consumer, next_attempt_at) where status = 'pending'`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('event_deliveries');
    await knex.schema.dropTable('event_consumers');
    await knex.raw('drop trigger domain_events_notify on domain_events');
    await knex.raw('drop function domain_events_notify()');
    await knex.raw('alter table domain_events add column processed_at timestamptz');
    await knex.raw('create index domain_events_pending_index on domain_events (created_at) where processed_at is null');
    await knex.raw('drop index domain_events_created_at_index');
    await knex.raw('drop index domain_events_position_index');
    await knex.raw('alter table domain_events drop column xid');
    await knex.raw('alter table domain_events drop column seq');
};
