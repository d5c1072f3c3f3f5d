import type { Knex } from 'knex';
import * as Pg from 'pg';

import { createKnex, migrate } from '../server/db';
import type { Actor } from '../server/policy';
import { AttackPathsService } from '../server/services/attack-paths';
import { AuditService } from '../server/services/audit';
import { CoverageService } from '../server/services/coverage';
import { EventsService } from '../server/services/events';
import { KnowledgeService } from '../server/services/knowledge';
import { NotificationsService } from '../server/services/notifications';
import { TestsService } from '../server/services/tests';

import { createDatabase } from './lib';
import type { Suite } from './suites';


const internals = {
    writers: 16,
    total: 1600,                        // in all, on one path (one playbook): every write waits for the one before
    pathSteps: 12,
    readers: 16,
    readSeconds: 5,
    executionSteps: 20,

    percentile: (values: number[], p: number) => {

        const sorted = [...values].sort((a, b) => a - b);
        return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
    },

    row: (name: string, rate: number, unit: string, latencies: number[]) => `  ${name.padEnd(44)} ${rate.toFixed(0).padStart(7)} ${unit}   p50 ${internals.percentile(latencies, 0.5).toFixed(2).padStart(7)} ms   p99 ${internals.percentile(latencies, 0.99).toFixed(2).padStart(7)} ms\n`,

    // `total` calls of `work` by `clients` concurrent callers: calls per second and each call's latency
    writes: async (clients: number, total: number, work: (index: number) => Promise<unknown>) => {

        const latencies: number[] = [];
        let next = 0;
        const started = performance.now();
        await Promise.all(Array.from({ length: clients }, async () => {

            while (next < total) {
                const index = next++;
                const begun = performance.now();
                await work(index);
                latencies.push(performance.now() - begun);
            }
        }));

        return { rate: total / ((performance.now() - started) / 1000), latencies };
    },

    // As many calls as `clients` concurrent callers make in `seconds`
    reads: async (clients: number, seconds: number, work: () => Promise<unknown>) => {

        const latencies: number[] = [];
        const until = performance.now() + seconds * 1000;
        await Promise.all(Array.from({ length: clients }, async () => {

            while (performance.now() < until) {
                const begun = performance.now();
                await work();
                latencies.push(performance.now() - begun);
            }
        }));

        return { rate: latencies.length / seconds, latencies };
    },

    // The floor of a step insert and removal: the same locks and shifts as bare SQL, one transaction each, no audit, no answer
    bareChurn: async (pool: Pg.Pool, pathId: string, techniqueId: string) => {

        const transaction = async (work: (client: Pg.PoolClient) => Promise<void>) => {

            const client = await pool.connect();
            try {
                await client.query('begin');
                await client.query('select id from attack_paths where id = $1 for update', [pathId]);
                await work(client);
                await client.query('commit');
            }
            finally {
                client.release();
            }
        };

        let id = '';
        await transaction(async (client) => {

            await client.query('update attack_path_steps set position = position + 1 where path_id = $1 and position >= 1', [pathId]);
            id = (await client.query('insert into attack_path_steps (path_id, position, technique_id) values ($1, 1, $2) returning id', [pathId, techniqueId])).rows[0].id;
        });

        await transaction(async (client) => {

            const { rows } = await client.query('delete from attack_path_steps where id = $1 returning position', [id]);
            await client.query('update attack_path_steps set position = position - 1 where path_id = $1 and position > $2', [pathId, rows[0].position]);
        });
    },

    bareVersion: async (pool: Pg.Pool, playbookId: string, body: string) => {

        const client = await pool.connect();
        try {
            await client.query('begin');
            const { rows } = await client.query('select version, title, type, technique_ids, tags from playbooks where id = $1 for update', [playbookId]);
            const { version, title, type, technique_ids: techniqueIds, tags } = rows[0];
            await client.query('insert into playbook_versions (playbook_id, version, title, type, technique_ids, body, tags) values ($1, $2, $3, $4, $5, $6, $7)', [playbookId, version + 1, title, type, techniqueIds, body, tags]);
            await client.query('update playbooks set version = $2, body = $3, updated_at = now() where id = $1', [playbookId, version + 1, body]);
            await client.query('commit');
        }
        finally {
            client.release();
        }
    },

    dense: async (knex: Knex, pathId: string) => {

        const positions: number[] = await knex('attack_path_steps').where('path_id', pathId).orderBy('position').pluck('position');
        return positions.every((position, index) => position === index + 1) ? `${positions.length} steps, positions 1..${positions.length}` : 'POSITIONS BROKEN';
    }
};


export const attackPaths: Suite = {
    description: 'attack paths and knowledge: concurrent step inserts and removals on one path and concurrent playbook updates (each serialised on its row) vs the same locked SQL bare; execution detail reads vs its three SELECTs bare',
    run: async () => {

        const database = await createDatabase(`aegis_bench_paths_${process.pid}`);
        const knex = createKnex({ url: database.url, poolMax: 10 });
        const pool = new Pg.Pool({ connectionString: database.url, max: 10 });
        try {
            await migrate(database.url);
            const [user] = await knex('users').insert({ username: 'bench', role: 'red_lead', password_hash: 'x', must_change_password: false }).returning('id');
            const actor: Actor = { id: user.id, role: 'red_lead' };
            await knex('techniques').insert({ mitre_id: 'T1059', domain: 'enterprise-attack', name: 'Command and Scripting Interpreter' });

            const audit = new AuditService({ knex });
            const events = new EventsService({ knex, audit });
            const coverage = new CoverageService({ knex, audit, events, settings: { stalenessDays: 180 } });
            const tests = new TestsService({ knex, audit, events, coverage, notifications: new NotificationsService({ knex, audit }) });
            const paths = new AttackPathsService({ knex, audit, tests });
            const knowledge = new KnowledgeService({ knex, audit, tests });
            let out = `  ${internals.writers} concurrent writers, ${internals.total} writes on one row each; ${internals.readers} readers for ${internals.readSeconds} s\n`;

            // Churn on a path of realistic size: each call inserts a step at the front, then removes it (two changes)
            const steps = Array.from({ length: internals.pathSteps }, () => ({ technique_id: 'T1059' }));
            const path = await paths.create(actor, { name: 'Bench path', steps });
            const churn = await internals.writes(internals.writers, internals.total / 2, async (index) => {

                const added = await paths.addStep(actor, path.id, { technique_id: 'T1059', notes: `bench ${index}`, position: 1 });
                await paths.removeStep(actor, path.id, added.steps!.find((step) => step.notes === `bench ${index}`)!.id);
            });
            out += internals.row('step insert + remove (service)', churn.rate * 2, 'changes/s', churn.latencies.map((latency) => latency / 2));
            out += `    ${await internals.dense(knex, path.id)}\n`;

            const barePath = await paths.create(actor, { name: 'Bare path', steps });
            const bare = await internals.writes(internals.writers, internals.total / 2, () => internals.bareChurn(pool, barePath.id, 'T1059'));
            out += internals.row('step insert + remove (bare SQL: lock, shift)', bare.rate * 2, 'changes/s', bare.latencies.map((latency) => latency / 2));
            out += `    ${await internals.dense(knex, barePath.id)}\n`;

            const playbook = await knowledge.createPlaybook(actor, { title: 'Bench', type: 'response', technique_ids: ['T1059'], body: '# Steps\n'.repeat(200) });
            const updates = await internals.writes(internals.writers, internals.total, (index) => knowledge.updatePlaybook(actor, playbook.id, { body: `# Version ${index}\n`.repeat(200) }));
            out += internals.row('playbook update (service, new version)', updates.rate, 'updates/s', updates.latencies);
            const bareBook = await knowledge.createPlaybook(actor, { title: 'Bare', type: 'response', body: '' });
            const bareUpdates = await internals.writes(internals.writers, internals.total, (index) => internals.bareVersion(pool, bareBook.id, `# Version ${index}\n`.repeat(200)));
            out += internals.row('playbook update (bare SQL: lock, insert, update)', bareUpdates.rate, 'updates/s', bareUpdates.latencies);
            const versions = await knex('playbook_versions').where('playbook_id', playbook.id).count('* as n').first();
            out += `    ${versions!.n} versions written, numbers 1..${(await knowledge.getPlaybook(actor, playbook.id)).version}\n`;

            const runPath = await paths.create(actor, { name: 'Run', steps: Array.from({ length: internals.executionSteps }, () => ({ technique_id: 'T1059' })) });
            const execution = await paths.createExecution(actor, runPath.id, {});
            const reads = await internals.reads(internals.readers, internals.readSeconds, () => paths.getExecution(actor, execution.id));
            out += internals.row(`execution detail, ${internals.executionSteps} steps (service)`, reads.rate, 'reads/s', reads.latencies);
            const bareReads = await internals.reads(internals.readers, internals.readSeconds, () => Promise.all([
                pool.query('select * from attack_path_executions where id = $1', [execution.id]),
                pool.query('select * from attack_path_execution_steps where execution_id = $1 order by position', [execution.id])
            ]));
            out += internals.row('execution detail (bare SQL: two SELECTs)', bareReads.rate, 'reads/s', bareReads.latencies);
            process.stdout.write(out);
        }
        finally {
            await pool.end();
            await knex.destroy();
            await database.drop();
        }
    }
};
