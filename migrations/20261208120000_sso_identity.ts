import type { Knex } from 'knex';


export const name = '20261208120000_sso_identity';


// sso (issue 15): users signed in through an identity provider (SAML, OIDC). Such a user is found by
// (auth_provider, external_id) — the SAML NameID or the OIDC `sub` — never by a matching username, and has no local
// password: the database keeps both rules.
export const up = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table users drop constraint users_auth_provider_check');
    await knex.raw(`alter table users add constraint users_auth_provider_check check (auth_provider in ('local', 'saml', 'oidc'))`);
    await knex.schema.alterTable('users', (table) => {

        table.text('external_id');
    });

    await knex.raw('create unique index users_external_identity_unique on users (auth_provider, external_id) where external_id is not null');
    await knex.raw(`alter table users add constraint users_external_identity_check check ((auth_provider = 'local') = (external_id is null))`);
    await knex.raw(`alter table users add constraint users_sso_password_check check (auth_provider = 'local' or password_hash is null)`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table users drop constraint users_sso_password_check');
    await knex.raw('alter table users drop constraint users_external_identity_check');
    await knex.raw('drop index users_external_identity_unique');
    await knex.schema.alterTable('users', (table) => {

        table.dropColumn('external_id');
    });
    await knex.raw('alter table users drop constraint users_auth_provider_check');
    await knex.raw(`alter table users add constraint users_auth_provider_check check (auth_provider in ('local', 'saml'))`);
};
