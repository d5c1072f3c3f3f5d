import type { Knex } from 'knex';


export const name = '20261209130000_report_schedule_campaign';


// Report schedules take the purple-campaign document too (issue 13: "which document"); a schedule's params.id is then
// the campaign's id (docs/documents.md). The kind check (PostgreSQL's name for the column check of the documents
// migration) is replaced by one that names the five documents.
const kinds = (withCampaign: boolean) => ['coverage-summary', 'executive-summary', 'quarterly-summary', 'technique', ...(withCampaign ? ['purple-campaign'] : [])].map((kind) => `'${kind}'`).join(', ');


export const up = async (knex: Knex): Promise<void> => {

    await knex.raw(`alter table report_schedules drop constraint if exists report_schedules_kind_check, add constraint report_schedules_kind_check check (kind in (${kinds(true)}))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex('report_schedules').where('kind', 'purple-campaign').delete();
    await knex.raw(`alter table report_schedules drop constraint if exists report_schedules_kind_check, add constraint report_schedules_kind_check check (kind in (${kinds(false)}))`);
};
