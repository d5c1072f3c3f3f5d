
import { OutboundHttp } from '../integrations/http';
import { JiraClient } from '../integrations/jira';
import { loadConfig } from '../server/config';
import { createKnex, migrate } from '../server/db';
import { AgendaQueue, createAgenda } from '../server/jobs';
import { systemActor } from '../server/policy';
import { serviceDeps } from '../server/runtime';
import { createServices } from '../server/services';
import { startFakeJira } from '../test/helpers/jira-server';

import { createDatabase } from './lib';
import type { Suite } from './suites';


// jira (issue 14): a sync of 1,000 linked issues against the local Jira-compatible server, next to its floor
// measured in the same run: the same paged search through the same client (the Jira reads alone) plus one bare
// UPDATE per issue through pg (the writes alone, without timeline, audit, event, lock or mapping).
const internals = {
    issues: 1000,
    pageSize: 100,
    ms: (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6,
    row: (name: string, ms: number, per: number) => `  ${name.padEnd(46)} ${ms.toFixed(0).padStart(7)} ms   ${(ms / per).toFixed(2).padStart(6)} ms/issue\n`
};


export const integrationsJira = async (): Promise<void> => {

    const database = await createDatabase(`jira_bench_${process.pid}`);
    const jira = await startFakeJira({ deployment: 'data_center', token: 'bench-pat-0123456789abcdef', maxResults: internals.pageSize });
    const knex = createKnex({ url: database.url, poolMax: 10 });
    const { agenda, close } = await createAgenda({ databaseUrl: database.url, name: 'bench' });
    try {
        await migrate(database.url);
        const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: database.url, JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123', LOG_LEVEL: 'silent', AEGIS_DATA_DIR: `/tmp/aegis-bench-${process.pid}` });
        const outbound = new OutboundHttp({ allow: ['127.0.0.1'], allowHttp: true });
        const services = createServices(serviceDeps(config, { knex, queue: new AgendaQueue(agenda, close), outbound, version: 'bench' }));

        jira.addProject('BENCH');
        await services.settings.set(systemActor, 'jira', { url: jira.url, deployment: 'data_center', personal_access_token: jira.auth.token, project_key: 'BENCH' });
        await knex.raw(`insert into techniques (mitre_id, domain, name) values ('T9999', 'enterprise-attack', 'Bench technique') on conflict do nothing`);
        const now = new Date();
        const { rows: tests } = await knex.raw<{ rows: { id: string }[] }>(`
            insert into tests (title, technique_id, state, executed_at, attack_result, detections, detection_outcome, detected_at, red_approved, red_validated_at, blue_approved, blue_validated_at, validated_at, remediation_status)
            select 'Bench test ' || g, 'T9999', 'validated', ?::timestamptz - interval '1 minute', 'succeeded', '[]', 'not_detected', null, true, ?, true, ?, ?, 'open'
            from generate_series(1, ?) g returning id`, [now, now, now, now, internals.issues]);
        const links = tests.map((test) => ({ test, issue: jira.addIssue('BENCH') }));
        await knex.batchInsert('jira_issues', links.map(({ test, issue }) => ({ test_id: test.id, issue_key: issue.key, issue_id: issue.id, origin: 'linked', status_name: 'To Do', status_category: 'new', last_synced_at: now })), 500);
        for (const { test, issue } of links) {
            await knex('tests').where('id', test.id).update({ jira_issue_key: issue.key });
        }

        const sync = async () => {

            await knex('jira_sync_runs').whereIn('status', ['queued', 'running']).update({ status: 'failed', finished_at: new Date() });
            const { run } = await services.jira.requestSync(systemActor);
            return await services.jira.runSync(systemActor, run.id);
        };

        // Every issue moved in Jira: the sync applies 1,000 changes
        for (const { issue } of links) {
            jira.setStatus(issue.key, 'In Progress', 'indeterminate');
        }

        let start = process.hrtime.bigint();
        const changed = await sync();
        const changedMs = internals.ms(start);
        if (changed.issues_changed !== internals.issues) {
            throw new Error(`the sync changed ${changed.issues_changed} issues, not ${internals.issues}: ${changed.error ?? JSON.stringify(changed.failures.slice(0, 3))}`);
        }

        // Nothing moved since: the same window read again, nothing written but the last-known rows
        start = process.hrtime.bigint();
        const quiet = await sync();
        const quietMs = internals.ms(start);

        // Baseline: the same paged search through the same client, then one bare UPDATE per issue
        const client = new JiraClient(outbound, { url: jira.url, deployment: 'data_center', personalAccessToken: jira.auth.token });
        start = process.hrtime.bigint();
        let read = 0;
        for await (const issues of client.search('project in ("BENCH") AND updated >= "-60m" ORDER BY updated ASC', internals.pageSize)) {
            read += issues.length;
        }

        const searchMs = internals.ms(start);
        start = process.hrtime.bigint();
        for (const { test } of links) {
            await knex('tests').where('id', test.id).update({ remediation_status: 'open' });
        }

        const updateMs = internals.ms(start);
        process.stdout.write(`Jira sync of ${internals.issues} linked issues against the local Jira-compatible server (pages of ${internals.pageSize}; ${read} issues read by the baseline)\n`);
        process.stdout.write(internals.row(`aegis: every issue moved (${changed.issues_changed} changed)`, changedMs, internals.issues));
        process.stdout.write(internals.row(`aegis: nothing moved (${quiet.issues_changed} changed)`, quietMs, internals.issues));
        process.stdout.write(internals.row('baseline: the paged search alone', searchMs, internals.issues));
        process.stdout.write(internals.row('baseline: search + one bare UPDATE per issue', searchMs + updateMs, internals.issues));
        process.stdout.write(`  ratio (every issue moved / search + bare UPDATEs) ${(changedMs / (searchMs + updateMs)).toFixed(2)}; (nothing moved / search alone) ${(quietMs / searchMs).toFixed(2)}\n`);
    }
    finally {
        await close().catch(() => undefined);
        await knex.destroy();
        await jira.stop();
        await database.drop();
    }
};


export const integrationsJiraSuite: Suite = {
    description: 'Jira sync of 1,000 linked issues against a local Jira-compatible server, next to the search and bare writes alone',
    run: integrationsJira
};
