import type { Knex } from 'knex';


export const name = '20261206000101_login_attempts';


// The login throttle's counters without Redis: rate-limiter-flexible's RateLimiterPostgres table (its own schema,
// created here rather than by the library at run time), shared by every API instance.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('login_attempts', (table) => {

        table.string('key', 255).primary();
        table.integer('points').notNullable().defaultTo(0);
        table.bigInteger('expire');                         // ms since the epoch, as the library writes it
        table.index(['expire']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('login_attempts');
};
