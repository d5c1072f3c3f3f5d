import type { Knex } from 'knex';


export const name = '20261206000302_custom_data_components';


// The organisation's own data components (telemetry ATT&CK does not name) beside the imported ones: no STIX id, an id
// under the reserved prefix XDC, and manual links to the techniques they can reveal.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.alterTable('data_components', (table) => {

        table.boolean('is_custom').notNullable().defaultTo(false);
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        table.setNullable('stix_id');
    });

    await knex.raw(`alter table data_components add constraint data_components_custom_check check (
        case when is_custom then stix_id is null and mitre_id ~ '^XDC[0-9]{4,6}$' else stix_id is not null and (mitre_id is null or mitre_id !~ '^XDC') end)`);
    await knex.raw('create unique index data_components_custom_id_unique on data_components (mitre_id) where is_custom');

    await knex.raw('alter table technique_data_components drop constraint technique_data_components_source_check');
    await knex.raw(`alter table technique_data_components add constraint technique_data_components_source_check check (source in ('detection_strategy', 'legacy', 'manual'))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex('data_components').where('is_custom', true).delete();
    await knex.raw('alter table technique_data_components drop constraint technique_data_components_source_check');
    await knex.raw(`alter table technique_data_components add constraint technique_data_components_source_check check (source in ('detection_strategy', 'legacy'))`);
    await knex.raw('drop index data_components_custom_id_unique');
    await knex.raw('alter table data_components drop constraint data_components_custom_check');
    await knex.schema.alterTable('data_components', (table) => {

        table.dropNullable('stix_id');
        table.dropColumn('created_by');
        table.dropColumn('is_custom');
    });
};
