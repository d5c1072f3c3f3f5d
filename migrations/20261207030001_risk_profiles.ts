import type { Knex } from 'knex';


export const name = '20261207030001_risk_profiles';


// Scores and risk (docs/posture.md): one row per active technique, written by the risk-recompute job from the stored
// coverage, the threat actors and the settings, so that /scores and /risk/* read ~2,000 rows and never the tests.
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('risk_profiles', (table) => {

        table.text('technique_id').primary().references('techniques.mitre_id').onUpdate('CASCADE').onDelete('CASCADE');
        table.text('domain').notNullable();
        table.boolean('is_subtechnique').notNullable();
        table.specificType('tactics', 'text[]').notNullable().defaultTo('{}');
        table.text('coverage_status').notNullable().checkIn(['untested', 'not_covered', 'partial', 'covered']);
        table.text('outcome');
        table.timestamp('validated_at', { useTz: true });
        table.double('decay');
        table.double('confidence').notNullable().defaultTo(1);
        table.smallint('own_score').checkBetween([0, 100]);
        table.smallint('score').checkBetween([0, 100]);
        table.integer('actor_count').notNullable().defaultTo(0);
        table.double('likelihood').notNullable().checkBetween([1, 5]);
        table.smallint('impact').notNullable().checkBetween([1, 5]);
        table.text('impact_source').notNullable();
        table.double('risk').notNullable().checkBetween([0, 25]);
        table.text('band').notNullable().checkIn(['critical', 'high', 'medium', 'low']);
        table.text('reason').notNullable();
        table.timestamp('computed_at', { useTz: true }).notNullable();
        table.index(['risk']);
        table.index(['domain', 'is_subtechnique']);
    });
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('risk_profiles');
};
