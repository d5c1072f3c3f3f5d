import type { Knex } from 'knex';


export const name = '20261206000100_api_key_lifetime';


// Every API key now has a lifetime (API_KEY_MAX_LIFETIME_DAYS, 365 days by default): a key created without one gets
// the default counted from its creation.
export const up = async (knex: Knex): Promise<void> => {

    await knex.raw(`update api_keys set expires_at = created_at + interval '365 days' where expires_at is null`);
    await knex.raw('alter table api_keys alter column expires_at set not null');
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table api_keys alter column expires_at drop not null');
};
