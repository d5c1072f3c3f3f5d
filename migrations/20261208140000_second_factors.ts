import type { Knex } from 'knex';


export const name = '20261208140000_second_factors';


// Second factors of local accounts (issue 15, docs/second-factors.md): one TOTP factor per user (pending until its
// first code is confirmed), its one-time recovery codes (SHA-256 of each, never the code), and the short-lived login
// challenges that stand between the password step and a session.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('user_second_factors', (table) => {

        table.uuid('user_id').primary().references('users.id').onDelete('CASCADE');
        table.text('method').notNullable().defaultTo('totp').checkIn(['totp'], 'user_second_factors_method_check');
        // The TOTP secret, AES-256-GCM under AEGIS_SECRET_KEY (services/secret-box.ts), bound to its user
        table.binary('secret_ciphertext').notNullable();
        table.binary('secret_iv').notNullable();
        table.binary('secret_tag').notNullable();
        table.text('secret_key_id').notNullable();
        table.timestamp('confirmed_at', { useTz: true });
        // The last 30 s time step whose code was accepted: a code is accepted once
        table.bigInteger('last_used_step');
        table.timestamp('last_used_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.raw(`alter table user_second_factors add constraint user_second_factors_secret_check check (octet_length(secret_iv) = 12 and octet_length(secret_tag) = 16)`);

    await knex.schema.createTable('user_recovery_codes', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
        table.text('code_hash').notNullable().unique();
        table.timestamp('used_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index(['user_id']);
    });

    await knex.schema.createTable('second_factor_challenges', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('token_hash').notNullable().unique();
        table.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
        // verify: the user has a factor and proves it; enrol: the user's role requires one and they must set it up
        table.text('purpose').notNullable().checkIn(['verify', 'enrol'], 'second_factor_challenges_purpose_check');
        table.timestamp('expires_at', { useTz: true }).notNullable();
        table.timestamp('used_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index(['user_id']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('second_factor_challenges');
    await knex.schema.dropTable('user_recovery_codes');
    await knex.schema.dropTable('user_second_factors');
};
