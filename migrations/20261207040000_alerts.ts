import type { Knex } from 'knex';


export const name = '20261207040000_alerts';


const internals = {
    ruleTypes: ['coverage_regression', 'stale_validation', 'detection_failure', 'risk_threshold', 'sla_breach'],
    severities: ['low', 'medium', 'high', 'critical'],
    statuses: ['open', 'acknowledged', 'resolved', 'dismissed']
};


// Alerts (docs/alerts.md): the rules admins and leads configure, and the instances their evaluation raises. One
// instance per rule and subject may be live (open or acknowledged) at a time: a partial unique index, so that two
// evaluations running at once cannot both raise it (the second's insert waits for the first and then does nothing).
export const up = async (knex: Knex): Promise<void> => {

    await knex.schema.createTable('alert_rules', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.text('name').notNullable();
        table.text('description');
        table.text('rule_type').notNullable().checkIn(internals.ruleTypes, 'alert_rules_rule_type_check');
        table.jsonb('parameters').notNullable().defaultTo('{}');
        table.text('severity').notNullable().defaultTo('medium').checkIn(internals.severities, 'alert_rules_severity_check');
        table.boolean('enabled').notNullable().defaultTo(true);
        table.timestamp('last_evaluated_at', { useTz: true });
        table.uuid('created_by').references('users.id').onDelete('SET NULL');
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.schema.createTable('alerts', (table) => {

        table.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
        table.uuid('rule_id').notNullable().references('alert_rules.id').onDelete('CASCADE');
        table.text('rule_type').notNullable().checkIn(internals.ruleTypes, 'alerts_rule_type_check');
        table.text('severity').notNullable().checkIn(internals.severities, 'alerts_severity_check');
        table.text('subject_type').notNullable().checkIn(['technique', 'test', 'campaign'], 'alerts_subject_type_check');
        table.text('subject_id').notNullable();
        table.text('technique_id');
        // Every test the instance refers to: readers who may not see one of them do not see the instance
        table.specificType('test_ids', 'uuid[]').notNullable().defaultTo('{}');
        table.text('status').notNullable().defaultTo('open').checkIn(internals.statuses, 'alerts_status_check');
        table.text('title').notNullable();
        table.jsonb('details').notNullable().defaultTo('{}');
        table.timestamp('fired_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('acknowledged_at', { useTz: true });
        table.uuid('acknowledged_by').references('users.id').onDelete('SET NULL');
        table.timestamp('resolved_at', { useTz: true });
        table.uuid('resolved_by').references('users.id').onDelete('SET NULL');
        table.timestamp('dismissed_at', { useTz: true });
        table.uuid('dismissed_by').references('users.id').onDelete('SET NULL');
        table.text('note');
        // When the condition of a dismissed instance cleared: until then, a dismissal keeps the rule quiet on its subject
        table.timestamp('cleared_at', { useTz: true });
        table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });

    await knex.raw(`create unique index alerts_one_live_per_subject on alerts (rule_id, subject_type, subject_id) where status in ('open', 'acknowledged')`);
    await knex.raw('create index alerts_rule_subject_index on alerts (rule_id, subject_type, subject_id)');
    await knex.raw('create index alerts_status_index on alerts (status, fired_at desc)');
    await knex.raw('create index alerts_technique_index on alerts (technique_id)');
    await knex.raw(`alter table alerts add constraint alerts_status_fields check (
        (status <> 'acknowledged' or acknowledged_at is not null)
        and (status <> 'resolved' or resolved_at is not null)
        and (status <> 'dismissed' or dismissed_at is not null))`);
};


export const down = async (knex: Knex): Promise<void> => {

    await knex.schema.dropTable('alerts');
    await knex.schema.dropTable('alert_rules');
};
