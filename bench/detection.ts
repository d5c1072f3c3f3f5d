import * as Fs from 'fs';
import * as Path from 'path';

import * as Yaml from 'js-yaml';
import * as Pg from 'pg';

import { createKnex, migrate } from '../server/db';

import { createBenchApp, createDatabase, timeRuns, timingRow } from './lib';
import type { Suite } from './suites';


const internals = {
    rules: Path.join(__dirname, '..', '..', '..', 'shared', 'data', 'sigma', 'rules'),
    techniques: 700,
    assets: 50,
    validations: 10_000,

    files: (dir: string): string[] => Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? internals.files(Path.join(dir, entry.name)) : [Path.join(dir, entry.name)]))
};


export const detection: Suite = {
    description: 'Detection dashboard with 10,000 validations over 700 techniques, and the Sigma import of the 500 rules',
    run: async () => {

        const database = await createDatabase(`detection_bench_${process.pid}`);
        try {
            await migrate(database.url);
            const knex = createKnex({ url: database.url, poolMax: 10 });
            await knex.raw(`insert into techniques (mitre_id, domain, name) select 'T' || (5000 + g), 'enterprise-attack', 'Bench technique ' || g from generate_series(1, ?) g`, [internals.techniques]);
            await knex.raw(`insert into detection_assets (name, type) select 'Asset ' || g, (array['siem','edr','ndr','log_source','analytics'])[1 + g % 5] from generate_series(1, ?) g`, [internals.assets]);
            await knex.raw(`insert into detection_validations (technique_id, asset_id, source, outcome, validated_at, reason, status, invalidated_at, invalidation_reason)
                select 'T' || (5001 + g % ?), a.id, 'manual', (array['prevented','alerted','logged'])[1 + g % 3], now() - ((g % 720) || ' days')::interval, 'bench',
                    case when g % 20 = 0 then 'invalidated' else 'valid' end, case when g % 20 = 0 then now() end, case when g % 20 = 0 then 'bench' end
                from generate_series(1, ?) g
                join lateral (select id from detection_assets order by name offset (g % ?) limit 1) a on true`, [internals.techniques, internals.validations, internals.assets]);
            await knex.raw('insert into detection_asset_techniques (asset_id, technique_id) select distinct asset_id, technique_id from detection_validations');
            await knex.raw('analyze');

            const app = await createBenchApp(database.url, knex);
            const pg = new Pg.Client({ connectionString: database.url });
            pg.on('error', () => undefined);
            await pg.connect();

            // The dashboard: a page of 50 (default) and of 500, each with its validations; baseline = the same figures
            // and validations in two bare statements through pg
            for (const limit of [50, 500]) {
                const aegis = await timeRuns(5, 100, app.inject(`/api/v1/detection-lifecycle/dashboard?limit=${limit}`));
                const bare = await timeRuns(5, 100, async () => {

                    const { rows } = await pg.query(`select t.mitre_id, t.name, coalesce(c.confidence, 0) as confidence from techniques t
                        left join technique_detection_confidence(180, 100, 100, 50, now()) c on c.technique_id = t.mitre_id
                        where exists (select 1 from detection_validations v where v.technique_id = t.mitre_id) order by 3, 1 limit $1`, [limit]);
                    await pg.query('select * from detection_validations where technique_id = any($1) order by validated_at desc', [rows.map((row) => row.mitre_id)]);
                });
                process.stdout.write(`GET /detection-lifecycle/dashboard?limit=${limit} (${internals.validations} validations, ${internals.techniques} techniques), 100 sequential requests\n${timingRow('aegis', aegis)}\n${timingRow('baseline: bare SQL through pg', bare)}\n  ratio p50 ${(aegis.p50 / bare.p50).toFixed(2)}\n`);
            }

            // The Sigma import: first and again (idempotent, every rule updated); baseline = reading and parsing the files alone
            const files = internals.files(internals.rules);
            const parseStart = process.hrtime.bigint();
            for (const file of files) {
                Yaml.load(Fs.readFileSync(file, 'utf8'), { schema: Yaml.CORE_SCHEMA });
            }

            const parseMs = Number(process.hrtime.bigint() - parseStart) / 1e6;
            const imports: { ms: number; created: number; updated: number }[] = [];
            for (let i = 0; i < 2; ++i) {
                const start = process.hrtime.bigint();
                const result = await app.services.detectionRules.importSigma({ id: null, role: 'system' }, internals.rules);
                imports.push({ ms: Number(process.hrtime.bigint() - start) / 1e6, created: result.created, updated: result.updated });
            }

            process.stdout.write(`Sigma import of ${files.length} rules\n  first import                       ${imports[0]!.ms.toFixed(0).padStart(7)} ms (${imports[0]!.created} created)\n  re-import (idempotent)             ${imports[1]!.ms.toFixed(0).padStart(7)} ms (${imports[1]!.updated} updated)\n  baseline: read + YAML parse only   ${parseMs.toFixed(0).padStart(7)} ms\n  ratio first/parse ${(imports[0]!.ms / parseMs).toFixed(2)}\n`);

            await pg.end();
            await app.stop();
            await knex.destroy();
        }
        finally {
            await database.drop();
        }
    }
};
