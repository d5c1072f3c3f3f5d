import type { Knex } from 'knex';


export const name = '20261207020000_attack_paths';


export const executionStates = ['pending', 'running', 'completed', 'aborted'];
export const stepOutcomes = ['succeeded', 'failed', 'blocked', 'detected', 'skipped'];


// Attack paths (ordered steps) and their executions (docs/attack-paths.md). A path's positions are 1..n with no gap
// or duplicate: the unique (path, position) is deferred to the commit so that a reorder can shift rows in one
// statement, and every change of the steps locks the path row first. An execution copies the steps it runs when it
// is created, and outlives its path (path_id set null, the name kept).
export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    await knex.schema.createTable('attack_paths', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('name').notNullable();
        table.text('description');
        table.specificType('tags', 'text[]').notNullable().defaultTo('{}');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    await knex.schema.createTable('attack_path_steps', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('path_id').notNullable().references('attack_paths.id').onDelete('CASCADE');
        table.integer('position').notNullable().checkPositive();
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE');
        table.text('notes');
        table.uuid('template_id').references('test_templates.id').onDelete('SET NULL');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    await knex.raw('alter table attack_path_steps add constraint attack_path_steps_position_unique unique (path_id, position) deferrable initially deferred');

    await knex.schema.createTable('attack_path_executions', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('path_id').references('attack_paths.id').onDelete('SET NULL');
        table.text('path_name').notNullable();
        table.text('state').notNullable().defaultTo('pending').checkIn(executionStates);
        table.text('notes');
        table.timestamp('started_at', { useTz: true });
        table.uuid('started_by').references('users.id').onDelete('SET NULL');
        table.timestamp('completed_at', { useTz: true });
        table.timestamp('aborted_at', { useTz: true });
        table.text('abort_reason');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['path_id', 'created_at']);
    });

    // The state and its times go together
    await knex.raw(`alter table attack_path_executions add constraint attack_path_executions_state_times check (
        (state = 'pending' and started_at is null and completed_at is null)
        or (state = 'running' and started_at is not null and completed_at is null and aborted_at is null)
        or (state = 'completed' and started_at is not null and completed_at is not null and aborted_at is null)
        or (state = 'aborted' and aborted_at is not null and completed_at is null))`);

    await knex.schema.createTable('attack_path_execution_steps', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('execution_id').notNullable().references('attack_path_executions.id').onDelete('CASCADE');
        table.uuid('path_step_id');                         // the step it was copied from; no FK: the path may change
        table.integer('position').notNullable().checkPositive();
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE');
        table.text('step_notes');
        table.uuid('template_id').references('test_templates.id').onDelete('SET NULL');
        table.text('outcome').checkIn(stepOutcomes);
        table.text('notes');
        table.timestamp('executed_at', { useTz: true });
        table.uuid('test_id').references('tests.id').onDelete('SET NULL');
        table.uuid('recorded_by').references('users.id').onDelete('SET NULL');
        table.timestamp('recorded_at', { useTz: true });
        timestamps(table);
        table.unique(['execution_id', 'position']);
        table.index('test_id');
    });

    await knex.raw(`alter table attack_path_execution_steps add constraint attack_path_execution_steps_recorded check (
        (outcome is null and recorded_at is null and executed_at is null) or (outcome is not null and recorded_at is not null))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('attack_path_execution_steps');
    await knex.schema.dropTable('attack_path_executions');
    await knex.schema.dropTable('attack_path_steps');
    await knex.schema.dropTable('attack_paths');
};
