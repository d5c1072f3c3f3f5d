import type { Knex } from 'knex';


export const name = '20261128000003_tests';


export const testStates = ['draft', 'red_executing', 'blue_evaluating', 'in_review', 'validated', 'rejected'];
export const detectionOutcomes = ['prevented', 'alerted', 'logged', 'not_detected', 'not_applicable'];


export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    await knex.raw('create extension if not exists pg_trgm');

    await knex.schema.createTable('test_templates', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('name').notNullable();
        table.text('description');
        table.text('objective');
        table.text('procedure');
        table.text('expected_outcome');
        table.text('expected_detection');
        table.specificType('technique_ids', 'text[]').notNullable().defaultTo('{}');
        table.specificType('platforms', 'text[]').notNullable().defaultTo('{}');
        table.specificType('tags', 'text[]').notNullable().defaultTo('{}');
        table.text('priority').notNullable().defaultTo('medium').checkIn(['low', 'medium', 'high', 'critical']);
        table.text('tool');
        table.text('command');
        table.text('cleanup_command');
        table.jsonb('executor');
        table.jsonb('input_arguments').notNullable().defaultTo('{}');
        table.text('source').notNullable().defaultTo('manual').checkIn(['manual', 'test', 'atomic']);
        table.text('source_ref');
        table.uuid('source_test_id');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    // NULLs are distinct: hand-made templates have no source_ref; an atomic's GUID is unique (the idempotent import)
    await knex.raw('alter table test_templates add constraint test_templates_source_ref_unique unique (source, source_ref)');
    await knex.raw('create index test_templates_technique_ids_index on test_templates using gin (technique_ids)');

    await knex.schema.createTable('tests', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));

        // General fields
        table.text('title').notNullable();
        table.text('objective');
        table.text('description');
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE');
        table.text('platform');
        table.text('priority').notNullable().defaultTo('medium').checkIn(['low', 'medium', 'high', 'critical']);
        table.specificType('tags', 'text[]').notNullable().defaultTo('{}');
        table.uuid('red_assignee_id').references('users.id').onDelete('SET NULL');
        table.uuid('blue_assignee_id').references('users.id').onDelete('SET NULL');
        table.text('data_classification').notNullable().defaultTo('internal').checkIn(['public', 'internal', 'confidential', 'restricted']);
        table.uuid('template_id').references('test_templates.id').onDelete('SET NULL');
        table.uuid('retest_of_id').references('tests.id').onDelete('SET NULL');
        table.text('expected_outcome');
        table.specificType('expected_detection_asset_ids', 'uuid[]').notNullable().defaultTo('{}');

        table.text('state').notNullable().defaultTo('draft').checkIn(testStates);

        // Red side
        table.text('procedure');
        table.text('tool');
        table.text('command');
        table.text('target_host');
        table.timestamp('executed_at', { useTz: true });
        table.text('attack_result').checkIn(['succeeded', 'partially_succeeded', 'failed', 'blocked']);
        table.text('red_notes');

        // Blue side: per-tool results; the outcome and detection time are derived from them
        table.jsonb('detections').notNullable().defaultTo('[]');
        table.text('blue_notes');
        table.text('detection_outcome').checkIn(detectionOutcomes);
        table.timestamp('detected_at', { useTz: true });

        // Validation by both leads
        table.boolean('red_approved');
        table.uuid('red_validated_by').references('users.id').onDelete('SET NULL');
        table.timestamp('red_validated_at', { useTz: true });
        table.text('red_validation_comment');
        table.boolean('blue_approved');
        table.uuid('blue_validated_by').references('users.id').onDelete('SET NULL');
        table.timestamp('blue_validated_at', { useTz: true });
        table.text('blue_validation_comment');
        table.timestamp('validated_at', { useTz: true });
        table.timestamp('rejected_at', { useTz: true });

        // Timer: seconds banked per side, plus the start of the segment running now (null when paused or stopped)
        table.integer('red_seconds').notNullable().defaultTo(0);
        table.integer('blue_seconds').notNullable().defaultTo(0);
        table.timestamp('timer_started_at', { useTz: true });
        table.boolean('timer_paused').notNullable().defaultTo(false);

        // Remediation
        table.text('remediation_status').notNullable().defaultTo('none').checkIn(['none', 'open', 'in_progress', 'resolved', 'accepted_risk']);
        table.text('remediation_notes');
        table.uuid('remediation_owner_id').references('users.id').onDelete('SET NULL');
        table.date('remediation_due');
        table.text('jira_issue_key');

        table.integer('version').notNullable().defaultTo(1);
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);

        table.index(['state', 'created_at']);
        table.index(['technique_id', 'state', 'validated_at']);
        table.index(['red_assignee_id']);
        table.index(['blue_assignee_id']);
        table.index(['retest_of_id']);
        table.index(['created_at', 'id']);
        table.index(['remediation_status']);
        table.index(['priority', 'created_at']);
        table.index(['platform', 'created_at']);
    });

    await knex.raw('create index tests_tags_index on tests using gin (tags)');
    await knex.raw('create index tests_title_trgm_index on tests using gin (title gin_trgm_ops)');

    await knex.schema.createTable('test_timeline', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('test_id').notNullable().references('tests.id').onDelete('CASCADE');
        table.uuid('actor_id').references('users.id').onDelete('SET NULL');
        table.text('actor_role');
        table.text('action').notNullable();
        table.text('from_state');
        table.text('to_state');
        table.jsonb('changes').notNullable().defaultTo('{}');
        table.text('comment');
        timestamps(table);
        table.index(['test_id', 'created_at']);
    });

    await knex.schema.createTable('evidence', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('test_id').notNullable().references('tests.id').onDelete('RESTRICT');
        table.text('team').notNullable().checkIn(['red', 'blue']);
        table.text('storage_key').notNullable().unique();
        table.text('original_name').notNullable();
        table.text('content_type').notNullable();
        table.bigInteger('size').notNullable();
        table.text('sha256').notNullable();
        table.text('description');
        table.uuid('uploaded_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['test_id', 'created_at']);
        table.index(['created_at']);
    });

    await knex.schema.createTable('worklogs', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
        table.uuid('test_id').references('tests.id').onDelete('CASCADE');
        table.uuid('campaign_id');
        table.integer('minutes').notNullable().checkBetween([1, 1440]);
        table.date('date').notNullable();
        table.text('note');
        timestamps(table);
        table.check('test_id is not null or campaign_id is not null', [], 'worklogs_subject_check');
        table.index(['user_id', 'date']);
        table.index(['test_id']);
        table.index(['campaign_id']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    for (const table of ['worklogs', 'evidence', 'test_timeline', 'tests', 'test_templates']) {
        await knex.schema.dropTable(table);
    }
};
