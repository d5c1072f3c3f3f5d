import type { Knex } from 'knex';


export const name = '20261208110000_osint';


// OSINT threat-intelligence feeds (issue 14, docs/osint.md): the feeds, their import runs, the provenance of every
// fact a feed reported (an actor, a technique an actor uses) and the prevalence per technique the risk recompute reads.
export const up = async (knex: Knex): Promise<void> => {

    const timestamps = (table: Knex.CreateTableBuilder) => {

        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };

    // An actor a STIX or TAXII feed reported that no existing actor is
    await knex.raw('alter table threat_actors drop constraint threat_actors_source_check');
    await knex.raw(`alter table threat_actors add constraint threat_actors_source_check check (source in ('mitre', 'custom', 'misp', 'osint'))`);

    await knex.schema.createTable('osint_feeds', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('name').notNullable();
        table.text('kind').notNullable().checkIn(['misp_galaxy', 'stix_bundle', 'taxii_collection'], 'osint_feeds_kind_check');
        table.text('url');
        table.text('file_path');
        table.text('collection');
        table.text('auth_type').notNullable().defaultTo('none').checkIn(['none', 'basic', 'api_key'], 'osint_feeds_auth_type_check');
        table.text('username');
        table.text('api_key_header');
        table.binary('secret_ciphertext');
        table.binary('secret_iv');
        table.binary('secret_tag');
        table.text('secret_key_id');
        table.text('cron');
        table.integer('interval_minutes');
        table.boolean('enabled').notNullable().defaultTo(true);
        table.timestamp('next_run_at', { useTz: true });
        table.timestamp('last_run_at', { useTz: true });
        table.timestamp('last_succeeded_at', { useTz: true });
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['next_run_at']);
    });

    await knex.raw('create unique index osint_feeds_name_unique on osint_feeds (lower(name))');
    await knex.raw(`alter table osint_feeds
        add constraint osint_feeds_location_check check ((url is null) <> (file_path is null)),
        add constraint osint_feeds_collection_check check ((kind = 'taxii_collection') = (collection is not null) and (kind <> 'taxii_collection' or url is not null)),
        add constraint osint_feeds_schedule_check check (cron is null or interval_minutes is null),
        add constraint osint_feeds_interval_check check (interval_minutes is null or interval_minutes between 5 and 525600),
        add constraint osint_feeds_secret_check check ((auth_type = 'none') = (secret_ciphertext is null)),
        add constraint osint_feeds_basic_check check ((auth_type = 'basic') = (username is not null)),
        add constraint osint_feeds_header_check check ((auth_type = 'api_key') = (api_key_header is not null))`);

    await knex.schema.createTable('osint_imports', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('feed_id').notNullable().references('osint_feeds.id').onDelete('CASCADE');
        table.text('trigger').notNullable().checkIn(['manual', 'schedule'], 'osint_imports_trigger_check');
        table.text('status').notNullable().checkIn(['queued', 'running', 'succeeded', 'failed'], 'osint_imports_status_check');
        table.text('source');
        table.integer('added').notNullable().defaultTo(0);
        table.integer('updated').notNullable().defaultTo(0);
        table.integer('unchanged').notNullable().defaultTo(0);
        table.integer('removed').notNullable().defaultTo(0);
        table.integer('rejected').notNullable().defaultTo(0);
        table.jsonb('rejections').notNullable().defaultTo('[]');
        table.text('error');
        table.timestamp('started_at', { useTz: true });
        table.timestamp('finished_at', { useTz: true });
        table.uuid('requested_by').references('users.id').onDelete('SET NULL');
        timestamps(table);
        table.index(['feed_id', 'created_at']);
    });

    // One row per fact a feed reported, keyed `<feed id>/<item id>`: the item ids are the feed's own
    const provenance = (table: Knex.CreateTableBuilder) => {

        table.text('key').primary();
        table.uuid('feed_id').notNullable().references('osint_feeds.id').onDelete('CASCADE');
        table.text('item_id').notNullable();
        table.uuid('threat_actor_id').notNullable().references('threat_actors.id').onDelete('CASCADE');
        table.timestamp('first_seen', { useTz: true }).notNullable();
        table.timestamp('last_seen', { useTz: true }).notNullable();
        table.timestamp('removed_at', { useTz: true });
        timestamps(table);
        table.index(['feed_id']);
        table.index(['threat_actor_id']);
    };

    await knex.schema.createTable('osint_actor_facts', (table) => {

        provenance(table);
        table.text('name').notNullable();
        table.specificType('aliases', 'text[]').notNullable().defaultTo('{}');
        table.text('mitre_id');
        table.text('country');
        table.text('description');
    });

    await knex.schema.createTable('osint_technique_facts', (table) => {

        provenance(table);
        table.text('technique_id').notNullable().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.text('description');
        table.index(['technique_id']);
    });

    await knex.schema.createTable('osint_technique_prevalence', (table) => {

        table.text('technique_id').primary().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.integer('actors').notNullable();
        table.integer('feeds').notNullable();
        table.double('weighted_actors').notNullable();
        table.double('prevalence').notNullable();
        table.timestamp('last_reported_at', { useTz: true }).notNullable();
        table.timestamp('computed_at', { useTz: true }).notNullable();
    });
};


export const down = async (knex: Knex): Promise<void> => {

    for (const table of ['osint_technique_prevalence', 'osint_technique_facts', 'osint_actor_facts', 'osint_imports', 'osint_feeds']) {
        await knex.schema.dropTable(table);
    }

    await knex.raw(`delete from threat_actors where source = 'osint'`);
    await knex.raw('alter table threat_actors drop constraint threat_actors_source_check');
    await knex.raw(`alter table threat_actors add constraint threat_actors_source_check check (source in ('mitre', 'custom', 'misp'))`);
};
