import type { Knex } from 'knex';


export const name = '20261207020100_knowledge';


export const playbookTypes = ['attack', 'detection', 'response', 'hunting', 'remediation'];
export const lessonSeverities = ['low', 'medium', 'high', 'critical'];
export const lessonStatuses = ['open', 'in_progress', 'resolved'];


// Playbooks with their immutable versions, and lessons learned (docs/knowledge.md). A playbook's `version` is the
// number of its latest row in playbook_versions, which holds the whole content of every version; versions are never
// updated (a trigger refuses it) and go only with their playbook.
export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    await knex.schema.createTable('playbooks', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('title').notNullable();
        table.text('type').notNullable().checkIn(playbookTypes);
        table.specificType('technique_ids', 'text[]').notNullable().defaultTo('{}');
        table.text('body').notNullable().defaultTo('');
        table.specificType('tags', 'text[]').notNullable().defaultTo('{}');
        table.integer('version').notNullable().defaultTo(1).checkPositive();
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        table.uuid('updated_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    await knex.raw('create index playbooks_technique_ids_index on playbooks using gin (technique_ids)');

    await knex.schema.createTable('playbook_versions', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('playbook_id').notNullable().references('playbooks.id').onDelete('CASCADE');
        table.integer('version').notNullable().checkPositive();
        table.text('title').notNullable();
        table.text('type').notNullable().checkIn(playbookTypes);
        table.specificType('technique_ids', 'text[]').notNullable();
        table.text('body').notNullable();
        table.specificType('tags', 'text[]').notNullable();
        table.integer('restored_from');
        table.uuid('author_id').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.unique(['playbook_id', 'version']);
    });

    await knex.raw(`
        create function playbook_versions_immutable() returns trigger language plpgsql as $$
        begin
            raise exception 'playbook versions are immutable' using errcode = 'insufficient_privilege';
        end $$`);
    await knex.raw('create trigger playbook_versions_no_update before update on playbook_versions for each row execute function playbook_versions_immutable()');

    await knex.schema.createTable('lessons', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('title').notNullable();
        table.text('severity').notNullable().checkIn(lessonSeverities);
        table.text('status').notNullable().defaultTo('open').checkIn(lessonStatuses);
        table.text('technique_id').references('techniques.mitre_id').onUpdate('CASCADE');
        // The foreign key to campaigns is added when the campaigns module lands (docs/knowledge.md)
        table.uuid('campaign_id');
        table.uuid('test_id').references('tests.id').onDelete('SET NULL');
        table.text('body').notNullable().defaultTo('');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index('technique_id');
        table.index('campaign_id');
        table.index('test_id');
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('lessons');
    await knex.schema.dropTable('playbook_versions');
    await knex.raw('drop function playbook_versions_immutable()');
    await knex.schema.dropTable('playbooks');
};
