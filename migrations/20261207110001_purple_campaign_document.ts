import type { Knex } from 'knex';


export const name = '20261207110001_purple_campaign_document';


// The purple-campaign document (docs/documents.md) is printed like the others: report_renders takes its kind. Report
// schedules do not (a schedule names no campaign), so their check stays as it is.
const constraint = async (knex: Knex, kinds: string[]): Promise<void> => {

    const { rows } = await knex.raw<{ rows: { conname: string }[] }>(`select conname from pg_constraint where conrelid = 'report_renders'::regclass and contype = 'c' and pg_get_constraintdef(oid) like '%kind%'`);
    for (const row of rows) {
        await knex.raw('alter table report_renders drop constraint ??', [row.conname]);
    }

    // DDL takes no bind parameters: the kinds are this file's constants, quoted as literals
    await knex.raw(`alter table report_renders add constraint report_renders_kind_check check (kind in (${kinds.map((kind) => `'${kind}'`).join(', ')}))`);
};


export const up = async (knex: Knex): Promise<void> => {

    await constraint(knex, ['coverage-summary', 'executive-summary', 'quarterly-summary', 'technique', 'purple-campaign']);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex('report_renders').where('kind', 'purple-campaign').delete();
    await constraint(knex, ['coverage-summary', 'executive-summary', 'quarterly-summary', 'technique']);
};
