import type { Knex } from 'knex';


export const name = '20261209110000_revalidation_notify';


// The revalidation queue notifies (issue 11, docs/detection.md): each entry keeps the users it was addressed to when
// it was generated (its owner, or the blue leads for a team owner or none), so that the entry says who was told.
export const up = async (knex: Knex): Promise<void> => {

    await knex.raw(`alter table revalidation_queue add column notify_user_ids uuid[] not null default '{}'`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('alter table revalidation_queue drop column notify_user_ids');
};
