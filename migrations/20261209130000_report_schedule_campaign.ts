import type { Knex } from 'knex';


export const name = '20261209130000_report_schedule_campaign';


// Report schedules take the purple-campaign document too (issue 13: "which document"): a schedule's params.id is then
// the campaign's id (docs/documents.md). Its kind check is replaced by one that names the five documents.
const constraint = async (knex: Knex, kinds: string[]): Promise<void> => {

    const { rows } = await knex.raw<{ rows: { conname: string }[] }>(`select conname from pg_constraint where conrelid = 'report_schedules'::regclass and contype = 'c' and pg_get_constraintdef(oid) like '%kind%'`);
    for (const row of rows) {
        await knex.raw('alter table report_schedules drop constraint ??', [row.conname]);
    }

    // DDL takes no bind parameters: the kinds are this file's constants, quoted as literals
    await knex.raw(`alter table report_schedules add constraint report_schedules_kind_check check (kind in (${kinds.map((kind) => `'${kind}'`).join(', ')}))`);
};


export const up = async (knex: Knex): Promise<void> => {

    await constraint(knex, ['coverage-summary', 'executive-summary', 'quarterly-summary', 'technique', 'purple-campaign']);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex('report_schedules').where('kind', 'purple-campaign').delete();
    await constraint(knex, ['coverage-summary', 'executive-summary', 'quarterly-summary', 'technique']);
};
