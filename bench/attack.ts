import * as ChildProcess from 'child_process';
import * as Path from 'path';

import * as Pg from 'pg';

import { parseAttackBundle } from '../integrations/attack';
import { createKnex, migrate } from '../server/db';

import { createBenchApp, createDatabase, timeRuns, timingRow } from './lib';
import type { Suite } from './suites';


const internals = {
    bundle: Path.join(__dirname, '..', '..', '..', 'shared', 'data', 'attack', 'enterprise-attack.json.gz'),
    cli: Path.join(__dirname, '..', 'bin', 'aegis.js'),

    // The import in a child process, under /usr/bin/time for its peak RSS
    importInChild: (url: string): { seconds: number; maxRssMb: number; output: string } => {

        const started = Date.now();
        const child = ChildProcess.spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', process.execPath, internals.cli, 'import-attack', internals.bundle], {
            env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, AEGIS_DATA_DIR: `/tmp/aegis-bench-${process.pid}`, LOG_LEVEL: 'warn' },
            encoding: 'utf8'
        });
        if (child.status !== 0) {
            throw new Error(`import failed: ${child.stderr}`);
        }

        const rss = /MAXRSS (\d+)/.exec(child.stderr);
        return { seconds: (Date.now() - started) / 1000, maxRssMb: rss ? Number(rss[1]) / 1024 : NaN, output: child.stdout.split('\n')[0]! };
    }
};


export const attack: Suite = {
    description: 'ATT&CK import (full Enterprise, child process) and knowledge-base reads with 100,000 validated tests',
    run: async () => {

        const database = await createDatabase(`aegis_bench_${process.pid}`);
        try {
            await migrate(database.url);

            // Import: baseline = the streaming parse alone, in this process
            const parseStart = Date.now();
            await parseAttackBundle(internals.bundle);
            const parseSeconds = (Date.now() - parseStart) / 1000;
            const first = internals.importInChild(database.url);
            const second = internals.importInChild(database.url);
            process.stdout.write(`Full Enterprise import (${first.output})\n`);
            process.stdout.write(`  first import          ${first.seconds.toFixed(2)} s, peak RSS ${first.maxRssMb.toFixed(0)} MB   (targets < 60 s, < 300 MB: ${first.seconds < 60 && first.maxRssMb < 300 ? 'met' : 'NOT met'})\n`);
            process.stdout.write(`  re-import (no change) ${second.seconds.toFixed(2)} s, peak RSS ${second.maxRssMb.toFixed(0)} MB   (target < 15 s: ${second.seconds < 15 ? 'met' : 'NOT met'})\n`);
            process.stdout.write(`  baseline: parse only  ${parseSeconds.toFixed(2)} s   ratio first/parse ${(first.seconds / parseSeconds).toFixed(2)}\n`);

            // 100,000 validated tests over the active techniques, then coverage for all of them
            const knex = createKnex({ url: database.url, poolMax: 10 });
            await knex.raw(`insert into tests (title, technique_id, state, detection_outcome, validated_at, red_approved, red_validated_at, blue_approved, blue_validated_at)
                select 'bench ' || g, t.mitre_id, 'validated', (array['prevented','alerted','logged','not_detected'])[1 + g % 4], now() - (g || ' minutes')::interval,
                    true, now() - (g || ' minutes')::interval, true, now() - (g || ' minutes')::interval
                from generate_series(1, 100000) g
                join lateral (select mitre_id from techniques where not revoked and not deprecated order by mitre_id offset (g % 691) limit 1) t on true`);
            const app = await createBenchApp(database.url, knex);
            const ids = await knex('techniques').pluck('mitre_id');
            await knex.transaction((trx) => app.services.coverage.recompute(trx, { id: null, role: 'system' }, ids));
            const inject = app.inject;

            const pg = new Pg.Client({ connectionString: database.url });
            await pg.connect();
            const heatmap = await timeRuns(5, 200, inject('/api/v1/heatmap'));
            const heatmapSql = await timeRuns(5, 200, async () => {

                await pg.query(`select t.mitre_id, t.name, t.coverage_status, (select array_agg(tactic_id) from technique_tactics tt where tt.technique_id = t.mitre_id)
                    from techniques t where t.domain = 'enterprise-attack' and not t.revoked and not t.deprecated`);
                await pg.query(`select technique_id, count(*), count(*) filter (where state = 'validated') from tests group by technique_id`);
            });
            process.stdout.write(`GET /heatmap (full matrix, 100,000 validated tests), 200 sequential requests\n${timingRow('aegis', heatmap)}\n${timingRow('baseline: bare SQL through pg', heatmapSql)}\n  ratio p50 ${(heatmap.p50 / heatmapSql.p50).toFixed(2)}   (target p50 < 100 ms: ${heatmap.p50 < 100 ? 'met' : 'NOT met'})\n`);

            const list = await timeRuns(5, 200, inject('/api/v1/techniques?limit=500'));
            const listSql = await timeRuns(5, 200, () => pg.query(`select t.*, (select json_agg(ta.mitre_id) from technique_tactics tt join tactics ta on ta.id = tt.tactic_id where tt.technique_id = t.mitre_id)
                from techniques t where not t.revoked and not t.deprecated order by t.mitre_id limit 500`));
            process.stdout.write(`GET /techniques?limit=500, 200 sequential requests\n${timingRow('aegis', list)}\n${timingRow('baseline: bare SQL through pg', listSql)}\n  ratio p50 ${(list.p50 / listSql.p50).toFixed(2)}\n`);

            await pg.end();
            await app.stop();
            await knex.destroy();
        }
        finally {
            await database.drop();
        }
    }
};
