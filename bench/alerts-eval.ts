import * as Pg from 'pg';

import { OutboundHttp } from '../integrations/http';
import { loadConfig } from '../server/config';
import { createKnex, migrate, type Knex } from '../server/db';
import { AgendaQueue, createAgenda } from '../server/jobs';
import { systemActor } from '../server/policy';
import { serviceDeps } from '../server/runtime';
import { createServices, type Services } from '../server/services';

import { createDatabase } from './lib';
import type { Suite } from './suites';


export interface Timing {
    p50: number;
    p99: number;
    runs: number;
}

export interface AlertEvaluationFigures {
    tests: number;
    rules: number;
    instances: number;
    first: number;                  // ms: the evaluation that raises every instance
    evaluation: Timing;             // one evaluation of every rule when nothing changed (the usual run)
    bareSql: Timing;                // the same condition queries, read through pg without the service
}


const internals = {
    techniques: 500,

    percentile: (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? 0,

    time: async (runs: number, work: () => Promise<unknown>): Promise<Timing> => {

        const latencies: number[] = [];
        for (let i = 0; i < runs; ++i) {
            const started = process.hrtime.bigint();
            await work();
            latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        }

        return { p50: internals.percentile(latencies, 0.5), p99: internals.percentile(latencies, 0.99), runs };
    },

    // `tests` tests over 500 techniques: every technique a retest chain of validated tests (outcomes cycling, so that
    // some chains end worse than they were), validations from 0 to 400 days old, a remediation past due on every tenth
    seed: async (knex: Knex, tests: number) => {

        await knex.raw(`insert into techniques (mitre_id, domain, name, impact) select 'T' || (5000 + i), 'enterprise-attack', 'Technique ' || i, 1 + i % 5
            from generate_series(0, ?::int - 1) i on conflict do nothing`, [internals.techniques]);
        await knex.raw(`insert into tests (title, technique_id, state, detection_outcome, validated_at, red_approved, red_validated_at, blue_approved, blue_validated_at, remediation_status, remediation_due)
            select 'bench ' || g, 'T' || (5000 + g % ?::int), 'validated', (array['prevented','alerted','logged','not_detected'])[1 + (g / ?::int + g) % 4],
                now() - ((g % 400) || ' days')::interval, true, now() - ((g % 400) || ' days')::interval, true, now() - ((g % 400) || ' days')::interval,
                case when g % 10 = 0 then 'open' else 'none' end, case when g % 10 = 0 then current_date - (g % 30) end
            from generate_series(1, ?::int) g`, [internals.techniques, internals.techniques, tests]);

        // Each test a retest of the one before it on its technique
        await knex.raw(`update tests t set retest_of_id = p.prev from (
            select id, lag(id) over (partition by technique_id order by validated_at, id) as prev from tests) p
            where p.id = t.id and p.prev is not null`);
        // Each chain's root is its technique's first test: set in a second statement, after the trigger (which, in one
        // statement setting many retest_of_id, reads parents whose root is not set yet; docs/alerts.md)
        await knex.raw(`update tests t set retest_root_id = r.root from (
            select id, first_value(id) over (partition by technique_id order by validated_at, id) as root from tests) r
            where r.id = t.id and t.retest_of_id is not null and t.retest_root_id is distinct from r.root`);
        await knex.raw('analyze');              // as autovacuum would have by then
    },

    rules: async (services: Services) => {

        const admin = systemActor;
        // risk_threshold reads the stored risk profiles (docs/alerts.md): computed once from the seeded coverage
        await services.risk.recompute(admin);
        await services.alerts.createRule(admin, { name: 'bench regression', rule_type: 'coverage_regression' });
        await services.alerts.createRule(admin, { name: 'bench stale', rule_type: 'stale_validation', parameters: { max_age_days: 180 } });
        await services.alerts.createRule(admin, { name: 'bench failure', rule_type: 'detection_failure' });
        await services.alerts.createRule(admin, { name: 'bench risk', rule_type: 'risk_threshold', parameters: { min_risk: 10 } });
        await services.alerts.createRule(admin, { name: 'bench sla', rule_type: 'sla_breach' });
    }
};


// One evaluation of the five rule types over a database of `tests` tests, next to its condition queries as bare SQL
// through pg (the same statements, captured from the evaluation itself). The posture suite calls this with its own
// database; `databaseUrl` must be migrated and hold no alert rules.
export const measureAlertEvaluation = async (options: { databaseUrl: string; tests?: number; runs?: number }): Promise<AlertEvaluationFigures> => {

    const tests = options.tests ?? 10_000;
    const runs = options.runs ?? 20;
    const knex = createKnex({ url: options.databaseUrl, poolMax: 5 });
    const { agenda, close } = await createAgenda({ databaseUrl: options.databaseUrl, name: 'bench-alerts' });
    const pool = new Pg.Pool({ connectionString: options.databaseUrl, max: 2 });
    try {
        const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: options.databaseUrl, JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123', LOG_LEVEL: 'silent', AEGIS_DATA_DIR: `/tmp/aegis-bench-${process.pid}` });
        const services = createServices(serviceDeps(config, { knex, queue: new AgendaQueue(agenda, close), outbound: new OutboundHttp(config.outbound), version: 'bench' }));

        await internals.seed(knex, tests);
        const ids = await knex('techniques').pluck('mitre_id') as string[];
        await knex.transaction((trx) => services.coverage.recompute(trx, systemActor, ids));
        await internals.rules(services);

        const started = process.hrtime.bigint();
        await services.alerts.evaluate(systemActor);
        const first = Number(process.hrtime.bigint() - started) / 1e6;
        const instances = Number((await knex('alerts').count('* as n'))[0]!.n);

        // The condition queries, as the evaluation sends them to PostgreSQL
        const conditions: { sql: string; bindings: unknown[] }[] = [];
        const capture = (query: { sql: string; bindings?: unknown[] }) => {

            if (/^\s*(select t\.mitre_id as technique_id, x\.id as test_id|select (mitre_id, latest_validated_at|t\.mitre_id, x\.id|id, technique_id, remediation_due|technique_id, likelihood)|select "rp"\."technique_id", "rp"\."risk")/.test(query.sql)) {
                conditions.push({ sql: query.sql, bindings: query.bindings ?? [] });
            }
        };

        knex.on('query', capture);
        await services.alerts.evaluate(systemActor);
        knex.off('query', capture);
        if (conditions.length !== 5) {
            throw new Error(`expected the five condition queries of one evaluation, captured ${conditions.length}`);
        }

        // knex reports a statement as sent: numbered placeholders and their values
        const native = conditions;
        const evaluation = await internals.time(runs, () => services.alerts.evaluate(systemActor));
        const bareSql = await internals.time(runs, async () => {

            for (const query of native) {
                await pool.query(query.sql, query.bindings as unknown[]);
            }
        });

        return { tests, rules: 5, instances, first, evaluation, bareSql };
    }
    finally {
        await pool.end();
        await close();
        await knex.destroy();
    }
};


export const printAlertEvaluation = (figures: AlertEvaluationFigures) => {

    const row = (name: string, timing: Timing) => `  ${name.padEnd(44)} p50 ${timing.p50.toFixed(1).padStart(7)} ms   p99 ${timing.p99.toFixed(1).padStart(7)} ms   (${timing.runs} runs)`;
    process.stdout.write(`One alert evaluation: ${figures.rules} rules (one per type) over ${figures.tests.toLocaleString('en')} tests, ${figures.instances} live instances\n`);
    process.stdout.write(`  first evaluation (raises every instance)    ${figures.first.toFixed(1)} ms\n`);
    process.stdout.write(`${row('aegis: one evaluation, nothing changed', figures.evaluation)}\n${row('baseline: the condition queries, bare pg', figures.bareSql)}\n`);
    process.stdout.write(`  ratio p50 ${(figures.evaluation.p50 / figures.bareSql.p50).toFixed(2)}\n`);
};


export const alerts: Suite = {
    description: 'one alert evaluation (five rules, one per type) at 10,000 tests vs its condition queries as bare SQL through pg',
    run: async () => {

        const database = await createDatabase(`aegis_bench_alerts_${process.pid}`);
        try {
            await migrate(database.url);
            printAlertEvaluation(await measureAlertEvaluation({ databaseUrl: database.url }));
        }
        finally {
            await database.drop();
        }
    }
};
