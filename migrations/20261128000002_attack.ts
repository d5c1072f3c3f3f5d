import type { Knex } from 'knex';


export const name = '20261128000002_attack';


const domains = ['enterprise-attack', 'mobile-attack', 'ics-attack'];


export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    // The columns every imported STIX object carries
    const stix = (table: Knex.CreateTableBuilder, options: { mitreId?: boolean } = {}) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('stix_id').notNullable().unique();
        if (options.mitreId !== false) {
            table.text('mitre_id');
        }

        table.text('domain').notNullable().checkIn(domains);
        table.specificType('domains', 'text[]').notNullable().defaultTo('{}');
        table.text('name').notNullable();
        table.text('description');
        table.text('url');
        table.text('version');
        table.boolean('revoked').notNullable().defaultTo(false);
        table.boolean('deprecated').notNullable().defaultTo(false);
        table.timestamp('modified', { useTz: true });
        table.text('attack_version');
        timestamps(table);
    };

    await knex.schema.createTable('attack_imports', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('kind').notNullable().checkIn(['attack', 'd3fend']);
        table.text('domain');
        table.text('source').notNullable();
        table.text('attack_version');
        table.text('status').notNullable().checkIn(['running', 'succeeded', 'failed']);
        table.jsonb('counts').notNullable().defaultTo('{}');
        table.text('error');
        table.timestamp('started_at', { useTz: true }).notNullable();
        table.timestamp('finished_at', { useTz: true });
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
    });

    await knex.schema.createTable('tactics', (table) => {

        stix(table);
        table.text('shortname').notNullable();
        table.integer('matrix_order');
        table.index(['mitre_id']);
        table.index(['domain', 'matrix_order']);
    });

    // Techniques are keyed on their MITRE id (T1059.001); custom ones on a reserved prefix (X0001)
    await knex.schema.createTable('techniques', (table) => {

        table.text('mitre_id').primary();
        table.text('stix_id').unique();
        table.text('domain').notNullable().checkIn(domains);
        table.specificType('domains', 'text[]').notNullable().defaultTo('{}');
        table.text('name').notNullable();
        table.text('description');
        table.text('url');
        table.text('version');
        table.boolean('is_subtechnique').notNullable().defaultTo(false);
        table.text('parent_id').references('techniques.mitre_id').onUpdate('CASCADE').onDelete('SET NULL');
        table.specificType('platforms', 'text[]').notNullable().defaultTo('{}');
        table.text('detection');
        table.specificType('legacy_data_sources', 'text[]').notNullable().defaultTo('{}');
        table.boolean('is_custom').notNullable().defaultTo(false);
        table.boolean('revoked').notNullable().defaultTo(false);
        table.boolean('deprecated').notNullable().defaultTo(false);
        table.text('revoked_by_id');
        table.timestamp('modified', { useTz: true });
        table.text('attack_version');

        // The organisation's own view, never touched by a sync
        table.smallint('impact').checkBetween([1, 5]);
        table.boolean('needs_review').notNullable().defaultTo(false);
        table.text('review_reason');
        table.timestamp('review_requested_at', { useTz: true });
        table.uuid('review_requested_by').references('users.id').onDelete('SET NULL');
        table.text('notes');

        // Derived by the coverage service from validated tests (domain.md "Coverage"), stored for fast reads
        table.text('coverage_status').notNullable().defaultTo('untested').checkIn(['untested', 'not_covered', 'partial', 'covered']);
        table.uuid('latest_validated_test_id');
        table.timestamp('latest_validated_at', { useTz: true });
        table.timestamp('coverage_updated_at', { useTz: true });

        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['parent_id']);
        table.index(['domain', 'revoked', 'deprecated']);
        table.index(['coverage_status']);
    });

    await knex.raw('create index techniques_platforms_index on techniques using gin (platforms)');

    await knex.schema.createTable('technique_tactics', (table) => {

        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.uuid('tactic_id').notNullable().references('tactics.id').onDelete('CASCADE');
        table.primary(['technique_id', 'tactic_id']);
        table.index(['tactic_id']);
    });

    await knex.schema.createTable('mitigations', (table) => {

        stix(table);
        table.index(['mitre_id']);
    });

    await knex.schema.createTable('technique_mitigations', (table) => {

        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.uuid('mitigation_id').notNullable().references('mitigations.id').onDelete('CASCADE');
        table.text('description');
        table.primary(['technique_id', 'mitigation_id']);
        table.index(['mitigation_id']);
    });

    // MITRE groups (stix_id set, kept current by the sync) and the organisation's own actors (stix_id null)
    await knex.schema.createTable('threat_actors', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('stix_id').unique();
        table.text('mitre_id');
        table.text('source').notNullable().defaultTo('custom').checkIn(['mitre', 'custom', 'misp']);
        table.specificType('domains', 'text[]').notNullable().defaultTo('{}');
        table.text('name').notNullable();
        table.specificType('aliases', 'text[]').notNullable().defaultTo('{}');
        table.text('description');
        table.text('url');
        table.jsonb('references').notNullable().defaultTo('[]');
        table.text('country');
        table.specificType('motivations', 'text[]').notNullable().defaultTo('{}');
        table.boolean('tracked').notNullable().defaultTo(true);
        table.boolean('revoked').notNullable().defaultTo(false);
        table.boolean('deprecated').notNullable().defaultTo(false);
        table.timestamp('modified', { useTz: true });
        table.text('attack_version');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['mitre_id']);
    });

    await knex.raw('create index threat_actors_name_index on threat_actors (lower(name))');

    await knex.schema.createTable('threat_actor_techniques', (table) => {

        table.uuid('threat_actor_id').notNullable().references('threat_actors.id').onDelete('CASCADE');
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.text('source').notNullable().defaultTo('manual').checkIn(['mitre', 'manual']);
        table.text('description');
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.primary(['threat_actor_id', 'technique_id']);
        table.index(['technique_id']);
    });

    await knex.schema.createTable('software', (table) => {

        stix(table);
        table.text('type').notNullable().checkIn(['malware', 'tool']);
        table.specificType('aliases', 'text[]').notNullable().defaultTo('{}');
        table.specificType('platforms', 'text[]').notNullable().defaultTo('{}');
        table.index(['mitre_id']);
    });

    await knex.schema.createTable('software_techniques', (table) => {

        table.uuid('software_id').notNullable().references('software.id').onDelete('CASCADE');
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.primary(['software_id', 'technique_id']);
        table.index(['technique_id']);
    });

    await knex.schema.createTable('threat_actor_software', (table) => {

        table.uuid('threat_actor_id').notNullable().references('threat_actors.id').onDelete('CASCADE');
        table.uuid('software_id').notNullable().references('software.id').onDelete('CASCADE');
        table.primary(['threat_actor_id', 'software_id']);
    });

    // ATT&CK's own campaigns (C0001...); Aegis's purple-team campaigns are another module
    await knex.schema.createTable('attack_campaigns', (table) => {

        stix(table);
        table.specificType('aliases', 'text[]').notNullable().defaultTo('{}');
        table.text('first_seen');
        table.text('last_seen');
        table.index(['mitre_id']);
    });

    await knex.schema.createTable('attack_campaign_techniques', (table) => {

        table.uuid('attack_campaign_id').notNullable().references('attack_campaigns.id').onDelete('CASCADE');
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.primary(['attack_campaign_id', 'technique_id']);
        table.index(['technique_id']);
    });

    await knex.schema.createTable('attack_campaign_actors', (table) => {

        table.uuid('attack_campaign_id').notNullable().references('attack_campaigns.id').onDelete('CASCADE');
        table.uuid('threat_actor_id').notNullable().references('threat_actors.id').onDelete('CASCADE');
        table.primary(['attack_campaign_id', 'threat_actor_id']);
    });

    // Telemetry: legacy data sources, data components (with the organisation's view of each), and the v18 chain
    await knex.schema.createTable('data_sources', (table) => {

        stix(table);
        table.specificType('platforms', 'text[]').notNullable().defaultTo('{}');
        table.specificType('collection_layers', 'text[]').notNullable().defaultTo('{}');
        table.index(['mitre_id']);
    });

    await knex.schema.createTable('data_components', (table) => {

        stix(table);
        table.uuid('data_source_id').references('data_sources.id').onDelete('SET NULL');
        table.jsonb('log_sources').notNullable().defaultTo('[]');
        table.boolean('collected').notNullable().defaultTo(false);
        table.jsonb('quality').notNullable().defaultTo('{}');
        table.text('notes');
        table.uuid('assessed_by').references('users.id').onDelete('SET NULL');
        table.timestamp('assessed_at', { useTz: true });
        table.index(['mitre_id']);
        table.index(['data_source_id']);
    });

    await knex.schema.createTable('detection_strategies', (table) => {

        stix(table);
        table.index(['mitre_id']);
    });

    await knex.schema.createTable('analytics', (table) => {

        stix(table);
        table.uuid('detection_strategy_id').references('detection_strategies.id').onDelete('SET NULL');
        table.specificType('platforms', 'text[]').notNullable().defaultTo('{}');
        table.jsonb('log_source_references').notNullable().defaultTo('[]');
        table.index(['mitre_id']);
    });

    // technique <- detection strategy <- analytic -> data component, flattened: what telemetry can reveal a technique
    await knex.schema.createTable('technique_data_components', (table) => {

        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.uuid('data_component_id').notNullable().references('data_components.id').onDelete('CASCADE');
        table.uuid('detection_strategy_id').references('detection_strategies.id').onDelete('CASCADE');
        table.uuid('analytic_id').references('analytics.id').onDelete('CASCADE');
        table.text('source').notNullable().defaultTo('detection_strategy').checkIn(['detection_strategy', 'legacy']);
        table.index(['technique_id']);
        table.index(['data_component_id']);
    });

    await knex.raw('create unique index technique_data_components_unique on technique_data_components (technique_id, data_component_id, coalesce(analytic_id, \'00000000-0000-0000-0000-000000000000\'::uuid))');

    await knex.schema.createTable('d3fend_countermeasures', (table) => {

        table.text('d3fend_id').primary();
        table.text('name').notNullable();
        table.text('tactic').notNullable();
        table.text('parent_id');
        table.smallint('level');
        table.text('definition');
        table.specificType('synonyms', 'text[]').notNullable().defaultTo('{}');
        table.jsonb('artifact_relations').notNullable().defaultTo('[]');
        table.text('d3fend_version');
        timestamps(table);
    });

    await knex.schema.createTable('d3fend_mappings', (table) => {

        table.text('d3fend_id').notNullable().references('d3fend_countermeasures.d3fend_id').onDelete('CASCADE');
        table.text('technique_id').notNullable();
        table.jsonb('inferences').notNullable().defaultTo('[]');
        timestamps(table);
        table.primary(['d3fend_id', 'technique_id']);
        table.index(['technique_id']);
    });

    // Domain events (coverage.changed, test.validated, ...) written in the transaction of the change, relayed after
    // commit to webhooks and alerts by the worker (the outbox pattern)
    await knex.schema.createTable('domain_events', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('type').notNullable();
        table.text('entity_type');
        table.text('entity_id');
        table.jsonb('payload').notNullable().defaultTo('{}');
        table.uuid('actor_id');
        table.timestamp('processed_at', { useTz: true });
        timestamps(table);
        table.index(['type', 'created_at']);
    });

    await knex.raw('create index domain_events_pending_index on domain_events (created_at) where processed_at is null');
};


export const down = async (knex: Knex): Promise<void> => {

    for (const table of [
        'domain_events', 'd3fend_mappings', 'd3fend_countermeasures', 'technique_data_components', 'analytics', 'detection_strategies',
        'data_components', 'data_sources', 'attack_campaign_actors', 'attack_campaign_techniques', 'attack_campaigns', 'threat_actor_software',
        'software_techniques', 'software', 'threat_actor_techniques', 'threat_actors', 'technique_mitigations', 'mitigations', 'technique_tactics',
        'techniques', 'tactics', 'attack_imports'
    ]) {
        await knex.schema.dropTable(table);
    }
};
