import type { Knex } from 'knex';


export const name = '20261209130001_report_run_in_flight';


// A scheduled report is sent at most once per recipient and period, even when its worker dies between the SMTP
// server's acceptance and the record of it (issue 13): the address being sent to is written first (`in_flight`); a
// worker that takes the run over does not send to it again but lists it as `unconfirmed` (docs/documents.md).
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.alterTable('report_schedule_runs', (table) => {

        table.text('in_flight');
        table.specificType('unconfirmed', 'text[]').notNullable().defaultTo('{}');
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.alterTable('report_schedule_runs', (table) => {

        table.dropColumn('in_flight');
        table.dropColumn('unconfirmed');
    });
};
