import type { Knex } from 'knex';


export const name = '20261206000600_settings';


// The run-time settings store: one row per key an admin has set (a key without a row has its default). Secret fields
// never reach `value`: they are one AES-256-GCM ciphertext per row, with its IV, tag and key id.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('settings', (table) => {

        table.text('key').primary();
        table.jsonb('value').notNullable();
        table.binary('secret_ciphertext');
        table.binary('secret_iv');
        table.binary('secret_tag');
        table.text('secret_key_id');
        table.uuid('updated_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.raw(`alter table settings add constraint settings_secret_complete check (
        (secret_ciphertext is null and secret_iv is null and secret_tag is null and secret_key_id is null)
        or (secret_ciphertext is not null and octet_length(secret_iv) = 12 and octet_length(secret_tag) = 16 and secret_key_id is not null))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('settings');
};
