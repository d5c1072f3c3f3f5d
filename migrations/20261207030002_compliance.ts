import type { Knex } from 'knex';


export const name = '20261207030002_compliance';


// Compliance frameworks, their controls and the control -> technique mappings (docs/compliance.md). A mapping keeps
// the ATT&CK id it was written for (attack_id) and the technique of today it was matched to (technique_id), or why
// none could be (unmatched_reason).
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('compliance_frameworks', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('key').notNullable().unique();
        table.text('name').notNullable();
        table.text('version').notNullable();
        table.text('attack_version');
        table.text('attack_domain');
        table.text('source_file').notNullable();
        table.text('provenance').notNullable();
        table.text('licence').notNullable();
        table.text('mapping_updated');
        table.timestamp('imported_at', { useTz: true }).notNullable();
        table.uuid('imported_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.schema.createTable('compliance_controls', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('framework_id').notNullable().references('compliance_frameworks.id').onDelete('CASCADE');
        table.text('control_id').notNullable();
        table.text('family').notNullable();
        table.text('family_name');
        table.text('name').notNullable();
        table.text('description');
        table.boolean('mappable').notNullable().defaultTo(true);
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.unique(['framework_id', 'control_id']);
        table.index(['framework_id', 'family']);
    });

    await knex.schema.createTable('compliance_mappings', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('control_id').notNullable().references('compliance_controls.id').onDelete('CASCADE');
        table.text('attack_id').notNullable();
        table.text('attack_name');
        table.text('mapping_type').notNullable();
        table.text('comments');
        // No foreign key: a mapping is matched again at each import, and reads join the techniques of the moment
        table.text('technique_id');
        table.text('match').notNullable().checkIn(['exact', 'revoked', 'unmatched']);
        table.text('unmatched_reason').checkIn(['unknown', 'deprecated', 'revoked']);
        table.unique(['control_id', 'attack_id']);
        table.index(['technique_id']);
    });

    await knex.raw(`alter table compliance_mappings add constraint compliance_mappings_matched_check check (
        (match = 'unmatched' and technique_id is null and unmatched_reason is not null) or (match <> 'unmatched' and technique_id is not null and unmatched_reason is null))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('compliance_mappings');
    await knex.schema.dropTable('compliance_controls');
    await knex.schema.dropTable('compliance_frameworks');
};
