import type { Knex } from 'knex';


export const name = '20261128000001_foundation';


const roles = ['admin', 'red_lead', 'blue_lead', 'red_tech', 'blue_tech', 'viewer'];


export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    await knex.schema.createTable('users', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('username').notNullable();
        table.text('email');
        table.text('display_name');
        table.text('role').notNullable().checkIn(roles, 'users_role_check');
        table.boolean('is_active').notNullable().defaultTo(true);
        table.boolean('must_change_password').notNullable().defaultTo(true);
        table.text('password_hash');
        table.text('auth_provider').notNullable().defaultTo('local').checkIn(['local', 'saml'], 'users_auth_provider_check');
        table.integer('token_version').notNullable().defaultTo(0);
        table.jsonb('preferences').notNullable().defaultTo('{}');
        table.timestamp('last_login_at', { useTz: true });
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    await knex.raw('create unique index users_username_unique on users (lower(username))');
    await knex.raw('create unique index users_email_unique on users (lower(email)) where email is not null');
    await knex.raw('create index users_role_index on users (role)');

    await knex.schema.createTable('api_keys', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
        table.text('name').notNullable();
        table.text('scope').notNullable().checkIn(['read', 'write', 'admin'], 'api_keys_scope_check');
        table.text('prefix').notNullable();
        table.text('key_hash').notNullable().unique();
        table.timestamp('expires_at', { useTz: true });
        table.timestamp('last_used_at', { useTz: true });
        table.timestamp('revoked_at', { useTz: true });
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['user_id']);
    });

    await knex.schema.createTable('revoked_tokens', (table) => {

        table.text('jti').primary();
        table.uuid('user_id').references('users.id').onDelete('CASCADE');
        table.timestamp('expires_at', { useTz: true }).notNullable();
        timestamps(table);
        table.index(['expires_at']);
    });

    await knex.schema.createTable('audit_logs', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('actor_id');
        table.text('actor_role');
        table.text('action').notNullable();
        table.text('entity_type');
        table.text('entity_id');
        table.text('outcome').notNullable().checkIn(['success', 'failure', 'denied'], 'audit_logs_outcome_check');
        table.text('ip');
        table.text('user_agent');
        table.text('request_id');
        table.jsonb('details').notNullable().defaultTo('{}');
        timestamps(table);
        table.index(['created_at']);
        table.index(['actor_id', 'created_at']);
        table.index(['entity_type', 'entity_id']);
        table.index(['action', 'created_at']);
    });

    // Append-only by construction: no role, not even the table owner, can change or remove an audit row.
    await knex.raw(`
        create function audit_logs_append_only() returns trigger language plpgsql as $$
        begin
            raise exception 'audit_logs is append-only' using errcode = 'insufficient_privilege';
        end;
        $$`);
    await knex.raw('create trigger audit_logs_no_update before update or delete on audit_logs for each row execute function audit_logs_append_only()');
    await knex.raw('create trigger audit_logs_no_truncate before truncate on audit_logs for each statement execute function audit_logs_append_only()');

    await knex.schema.createTable('notifications', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
        table.text('type').notNullable();
        table.text('title').notNullable();
        table.text('body');
        table.text('entity_type');
        table.text('entity_id');
        table.timestamp('read_at', { useTz: true });
        timestamps(table);
        table.index(['user_id', 'created_at']);
    });

    await knex.raw('create index notifications_unread_index on notifications (user_id) where read_at is null');

    await knex.schema.createTable('worker_heartbeats', (table) => {

        table.text('worker_id').primary();
        table.text('hostname').notNullable();
        table.integer('pid').notNullable();
        table.timestamp('started_at', { useTz: true }).notNullable();
        table.timestamp('beat_at', { useTz: true }).notNullable();
        timestamps(table);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('worker_heartbeats');
    await knex.schema.dropTable('notifications');
    await knex.raw('drop trigger audit_logs_no_truncate on audit_logs');
    await knex.schema.dropTable('audit_logs');
    await knex.raw('drop function audit_logs_append_only()');
    await knex.schema.dropTable('revoked_tokens');
    await knex.schema.dropTable('api_keys');
    await knex.schema.dropTable('users');
};
