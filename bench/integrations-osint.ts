import * as Fs from 'fs';
import * as Http from 'http';
import type { AddressInfo } from 'net';
import * as Path from 'path';

import { OutboundHttp } from '../integrations/http';
import { loadConfig } from '../server/config';
import { createKnex, migrate } from '../server/db';
import { AgendaQueue, createAgenda } from '../server/jobs';
import { OsintImport } from '../server/models';
import { systemActor } from '../server/policy';
import { serviceDeps } from '../server/runtime';
import { createServices } from '../server/services';
import { parseMispGalaxy } from '../server/services/osint-mapping';

import { createDatabase, timeRuns, timingRow } from './lib';
import type { Suite } from './suites';


const internals = {
    shared: Path.join(__dirname, '..', '..', '..', 'shared', 'data'),
    runs: 5
};


// The OSINT half of `integrations` (issue 14): the real MISP galaxy (1,041 clusters) imported from a local HTTP server
// through the outbound client, beside two baselines measured in the same run: fetching and parsing the galaxy alone,
// and a bare bulk insert of the same provenance rows (one jsonb_to_recordset statement, no matching, no comparison).
export const osintBench = async (): Promise<void> => {

    const database = await createDatabase(`aegis_bench_osint_${process.pid}`);
    const galaxy = Fs.readFileSync(Path.join(internals.shared, 'threat-actors', 'misp-galaxy-threat-actor.json'));
    const server = Http.createServer((req, res) => {

        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(galaxy);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/threat-actor.json`;

    try {
        await migrate(database.url);
        const knex = createKnex({ url: database.url, poolMax: 10 });
        const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: database.url, JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123', LOG_LEVEL: 'silent', AEGIS_DATA_DIR: `/tmp/aegis-bench-${process.pid}`, OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1' });
        const { agenda, close } = await createAgenda({ databaseUrl: database.url, name: 'bench' });
        const outbound = new OutboundHttp(config.outbound);
        const services = createServices(serviceDeps(config, { knex, queue: new AgendaQueue(agenda, close), outbound, version: 'bench' }));
        await services.attackImport.importAttack(systemActor, Path.join(internals.shared, 'attack', 'attack-enterprise-mini.json'));

        let feedNumber = 0;
        const newFeed = async () => (await services.osint.createFeed(systemActor, { name: `MISP ${++feedNumber}`, kind: 'misp_galaxy', url })).id;
        const importOnce = async (feedId: string) => {

            const queued = await OsintImport.query(knex).insert({ feed_id: feedId, trigger: 'manual', status: 'queued' });
            const done = await services.osint.runImport(systemActor, queued.id);
            if (done.status !== 'succeeded') {
                throw new Error(`import failed: ${done.error}`);
            }

            return done;
        };

        // The first import of all: every cluster matched or created, every fact inserted
        const firstFeed = await newFeed();
        const started = process.hrtime.bigint();
        const first = await importOnce(firstFeed);
        const firstMs = Number(process.hrtime.bigint() - started) / 1e6;
        const actors = Number((await knex('threat_actors').count({ c: '*' }).first() as { c: string }).c);

        // A new feed of the same galaxy (actors now all exist: matched, none created), and re-imports with no change
        const fresh = await timeRuns(0, internals.runs, async () => await importOnce(await newFeed()));
        const again = await timeRuns(1, internals.runs, () => importOnce(firstFeed));

        // Baselines: the fetch and parse alone; a bare bulk insert of the same rows into a copy of the table
        const fetchParse = await timeRuns(1, internals.runs, async () => parseMispGalaxy(JSON.parse((await outbound.request(url)).body.toString('utf8'))));
        const rows = await knex('osint_actor_facts').where('feed_id', firstFeed).select('*');
        await knex.raw('create table bench_osint_baseline (like osint_actor_facts including defaults)');
        const bulk = await timeRuns(1, internals.runs, async () => {

            await knex.raw('truncate bench_osint_baseline');
            await knex.raw(`insert into bench_osint_baseline (key, feed_id, item_id, threat_actor_id, name, aliases, mitre_id, country, description, first_seen, last_seen)
                select key, feed_id, item_id, threat_actor_id, name, aliases, mitre_id, country, description, first_seen, last_seen
                from jsonb_to_recordset(?::jsonb) as x(key text, feed_id uuid, item_id text, threat_actor_id uuid, name text, aliases text[], mitre_id text, country text, description text, first_seen timestamptz, last_seen timestamptz)`, [JSON.stringify(rows)]);
        });

        process.stdout.write(`MISP galaxy import (${galaxy.length} bytes, ${first.added} facts, ${actors} actors after it), ${internals.runs} runs each\n`);
        process.stdout.write(`  first import (creates the actors)   ${firstMs.toFixed(1)} ms\n`);
        process.stdout.write(`${timingRow('import as a new feed (all matched)', fresh)}\n`);
        process.stdout.write(`${timingRow('re-import, no change (writes none)', again)}\n`);
        process.stdout.write(`${timingRow('baseline: fetch + parse only', fetchParse)}\n`);
        process.stdout.write(`${timingRow('baseline: bare bulk insert of rows', bulk)}\n`);
        process.stdout.write(`  ratio new-feed import / (fetch+parse + bulk insert) p50 ${(fresh.p50 / (fetchParse.p50 + bulk.p50)).toFixed(2)}\n`);
        await close();
        await knex.destroy();
    }
    finally {
        server.closeAllConnections();
        server.close();
        await database.drop();
    }
};


export const integrationsOsint: Suite = {
    description: 'OSINT: the real MISP galaxy imported over HTTP beside fetch+parse and a bare bulk insert of the same rows',
    run: osintBench
};
