import type { Knex } from 'knex';


export const name = '20261207060001_detection';


// Issue 11, detection engineering: per-tool detections as rows, detection assets and their techniques, validations,
// infrastructure changes, detection rules (Sigma import) and their evaluations, ownership and the revalidation queue.
export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    const id = (table: Knex.CreateTableBuilder) => table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));

    await knex.schema.createTable('detection_assets', (table) => {

        id(table);
        table.text('name').notNullable().unique();
        table.text('type').notNullable().checkIn(['siem', 'edr', 'ndr', 'log_source', 'analytics', 'other']);
        table.text('platform');
        table.uuid('owner_id').references('users.id').onDelete('SET NULL');
        table.text('description');
        table.specificType('data_sources', 'text[]').notNullable().defaultTo('{}');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    await knex.schema.createTable('detection_asset_techniques', (table) => {

        table.uuid('asset_id').notNullable().references('detection_assets.id').onDelete('CASCADE');
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.primary(['asset_id', 'technique_id']);
        table.index(['technique_id']);
    });

    await knex.schema.createTable('detection_rules', (table) => {

        id(table);
        table.text('name').notNullable();
        table.text('language').notNullable().checkIn(['sigma', 'kql', 'spl', 'eql', 'yara', 'other']);
        table.text('query').notNullable();
        table.text('description');
        table.specificType('technique_ids', 'text[]').notNullable().defaultTo('{}');
        table.specificType('platforms', 'text[]').notNullable().defaultTo('{}');
        table.uuid('asset_id').references('detection_assets.id').onDelete('RESTRICT');
        table.text('status').notNullable().defaultTo('experimental').checkIn(['stable', 'test', 'experimental', 'deprecated', 'unsupported', 'disabled']);
        table.text('severity').notNullable().defaultTo('medium').checkIn(['informational', 'low', 'medium', 'high', 'critical']);
        table.text('author');
        table.text('license');
        table.text('source').notNullable().defaultTo('manual').checkIn(['manual', 'sigma']);
        table.text('source_ref');
        table.text('source_path');
        // Atomic Red Team GUIDs a Sigma rule names in its `simulation:` block (the atomics that should make it fire)
        table.specificType('atomic_refs', 'text[]').notNullable().defaultTo('{}');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    // NULLs are distinct: hand-made rules have no source_ref; a Sigma rule's own id is unique (the idempotent import)
    await knex.raw('alter table detection_rules add constraint detection_rules_source_ref_unique unique (source, source_ref)');
    await knex.raw('create index detection_rules_technique_ids_index on detection_rules using gin (technique_ids)');

    // One row per detection of a test (domain.md: the blue side's per-tool results), in the order the test lists them
    await knex.schema.createTable('test_detections', (table) => {

        id(table);
        table.uuid('test_id').notNullable().references('tests.id').onDelete('CASCADE');
        table.integer('position').notNullable();
        table.uuid('asset_id').references('detection_assets.id').onDelete('RESTRICT');
        table.text('tool');
        table.text('outcome').notNullable().checkIn(['prevented', 'alerted', 'logged', 'not_detected', 'not_applicable']);
        table.timestamp('detected_at', { useTz: true });
        table.specificType('rule_ids', 'uuid[]').notNullable().defaultTo('{}');
        table.text('alert_reference');
        table.text('notes');
        timestamps(table);
        table.unique(['test_id', 'position']);
        table.index(['asset_id']);
    });

    await knex.raw('create index test_detections_rule_ids_index on test_detections using gin (rule_ids)');

    // Existing tests: their JSON list becomes rows (asset ids that name no asset cannot exist yet: there were none)
    await backfillDetections(knex);

    await knex.schema.createTable('detection_validations', (table) => {

        id(table);
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.uuid('asset_id').notNullable().references('detection_assets.id').onDelete('CASCADE');
        table.uuid('test_id').references('tests.id').onDelete('CASCADE');
        table.text('source').notNullable().checkIn(['test', 'manual']);
        table.text('outcome').notNullable().checkIn(['prevented', 'alerted', 'logged']);
        table.timestamp('validated_at', { useTz: true }).notNullable();
        table.text('reason');
        table.text('status').notNullable().defaultTo('valid').checkIn(['valid', 'invalidated']);
        table.timestamp('invalidated_at', { useTz: true });
        table.uuid('invalidated_by').references('users.id').onDelete('SET NULL');
        table.text('invalidation_reason');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['technique_id', 'status']);
    });

    await knex.raw('alter table detection_validations add constraint detection_validations_test_asset_unique unique (test_id, asset_id)');
    await knex.raw(`alter table detection_validations add constraint detection_validations_origin_check check ((source = 'test') = (test_id is not null) and (source = 'test' or reason is not null))`);
    await knex.raw(`alter table detection_validations add constraint detection_validations_invalidated_check check ((status = 'invalidated') = (invalidated_at is not null and invalidation_reason is not null))`);

    await knex.schema.createTable('detection_rule_evaluations', (table) => {

        id(table);
        table.uuid('rule_id').notNullable().references('detection_rules.id').onDelete('CASCADE');
        table.uuid('test_id').notNullable().references('tests.id').onDelete('CASCADE');
        table.boolean('fired').notNullable();
        table.text('notes');
        table.timestamp('evaluated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.unique(['rule_id', 'test_id']);
        table.index(['test_id']);
    });

    await knex.schema.createTable('infrastructure_changes', (table) => {

        id(table);
        table.text('title').notNullable();
        table.text('description').notNullable();
        table.timestamp('changed_at', { useTz: true }).notNullable();
        table.specificType('asset_ids', 'uuid[]').notNullable().defaultTo('{}');
        table.specificType('platforms', 'text[]').notNullable().defaultTo('{}');
        table.specificType('data_sources', 'text[]').notNullable().defaultTo('{}');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    await knex.raw(`alter table infrastructure_changes add constraint infrastructure_changes_scope_check check (cardinality(asset_ids) + cardinality(platforms) + cardinality(data_sources) > 0)`);

    await knex.schema.createTable('technique_assignments', (table) => {

        id(table);
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.uuid('user_id').references('users.id').onDelete('CASCADE');
        table.text('team');
        table.text('role').notNullable().checkIn(['detection_owner', 'detection_engineer', 'red_owner', 'reviewer']);
        table.text('notes');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['technique_id']);
    });

    await knex.raw('alter table technique_assignments add constraint technique_assignments_owner_check check ((user_id is null) <> (team is null))');
    await knex.raw('create unique index technique_assignments_unique on technique_assignments (technique_id, role, coalesce(user_id::text, \'\'), coalesce(team, \'\'))');

    await knex.schema.createTable('asset_ownerships', (table) => {

        id(table);
        table.uuid('asset_id').notNullable().references('detection_assets.id').onDelete('CASCADE');
        table.uuid('user_id').references('users.id').onDelete('CASCADE');
        table.text('team');
        table.text('role').notNullable().defaultTo('owner').checkIn(['owner', 'operator', 'escalation']);
        table.text('notes');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['asset_id']);
    });

    await knex.raw('alter table asset_ownerships add constraint asset_ownerships_owner_check check ((user_id is null) <> (team is null))');
    await knex.raw('create unique index asset_ownerships_unique on asset_ownerships (asset_id, role, coalesce(user_id::text, \'\'), coalesce(team, \'\'))');

    await knex.schema.createTable('revalidation_queue', (table) => {

        id(table);
        table.uuid('change_id').notNullable().references('infrastructure_changes.id').onDelete('CASCADE');
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.uuid('asset_id').references('detection_assets.id').onDelete('SET NULL');
        table.text('matched_by').notNullable().checkIn(['asset', 'platform', 'data_source']);
        table.text('matched_value').notNullable();
        table.text('reason').notNullable();
        table.decimal('priority', 6, 2).notNullable();
        table.text('priority_basis').notNullable();
        table.uuid('owner_user_id').references('users.id').onDelete('SET NULL');
        table.text('owner_team');
        table.text('status').notNullable().defaultTo('open').checkIn(['open', 'closed']);
        table.timestamp('closed_at', { useTz: true });
        table.uuid('closed_by_test_id').references('tests.id').onDelete('SET NULL');
        timestamps(table);
        table.unique(['change_id', 'technique_id']);
        table.index(['technique_id', 'status']);
    });

    // Detection confidence per technique (docs/detection.md): the strongest valid validation, its outcome's weight
    // halved every `half_life_days`; an invalidated validation also voids the older ones of its asset and technique. A function rather than a view: the half-life and weights are settings.
    await knex.raw(`
        create function technique_detection_confidence(half_life_days float8, w_prevented float8, w_alerted float8, w_logged float8, at timestamptz)
        returns table (technique_id text, confidence float8, valid_validations bigint, latest_validated_at timestamptz)
        language sql stable as $$
            select v.technique_id,
                   max((case v.outcome when 'prevented' then w_prevented when 'alerted' then w_alerted else w_logged end) / 100
                       * power(0.5::float8, greatest(date_part('epoch', at - v.validated_at), 0) / 86400 / half_life_days)),
                   count(*),
                   max(v.validated_at)
            from detection_validations v
            where v.status = 'valid'
              and not exists (select 1 from detection_validations i
                              where i.status = 'invalidated' and i.technique_id = v.technique_id and i.asset_id = v.asset_id and i.validated_at >= v.validated_at)
            group by v.technique_id
        $$`);
};


// The detections of existing tests (all, or those named) as rows, from the JSON list each test holds
export const backfillDetections = async (knex: Knex, testIds?: string[]): Promise<void> => {

    await knex.raw(`
        insert into test_detections (test_id, position, tool, outcome, detected_at, rule_ids, alert_reference, notes)
        select t.id, d.position - 1, d.item->>'tool', d.item->>'outcome', (d.item->>'detected_at')::timestamptz, '{}', d.item->>'alert_reference', d.item->>'notes'
        from tests t cross join lateral jsonb_array_elements(t.detections) with ordinality as d(item, position)
        where d.item->>'outcome' in ('prevented', 'alerted', 'logged', 'not_detected', 'not_applicable') and (?::uuid[] is null or t.id = any(?::uuid[]))`, [testIds ?? null, testIds ?? null]);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.raw('drop function if exists technique_detection_confidence(float8, float8, float8, float8, timestamptz)');
    for (const table of ['revalidation_queue', 'asset_ownerships', 'technique_assignments', 'infrastructure_changes', 'detection_rule_evaluations', 'detection_validations', 'test_detections', 'detection_rules', 'detection_asset_techniques', 'detection_assets']) {
        await knex.schema.dropTableIfExists(table);
    }
};
