import type { Knex } from 'knex';


export const name = '20261208120001_saml';


// sso (issue 15, SAML): the caches every API instance shares (SEC-09). saml_requests: the AuthnRequest ids this
// service provider sent, for InResponseTo, each consumed by the one response that answers it; saml_assertions: the ids
// of the assertions accepted, kept until they expire, so that none is accepted twice.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('saml_requests', (table) => {

        table.text('id').primary();
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index('created_at');
    });

    await knex.schema.createTable('saml_assertions', (table) => {

        table.text('id').primary();
        table.text('issuer').notNullable();
        table.timestamp('expires_at', { useTz: true }).notNullable();
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.index('expires_at');
    });

    await knex.raw(`alter table saml_requests add constraint saml_requests_id_check check (length(id) between 1 and 256)`);
    await knex.raw(`alter table saml_assertions add constraint saml_assertions_id_check check (length(id) between 1 and 256)`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('saml_assertions');
    await knex.schema.dropTable('saml_requests');
};
