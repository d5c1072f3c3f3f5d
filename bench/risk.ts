import * as Os from 'os';
import * as Path from 'path';

import * as Pg from 'pg';

import { migrate } from '../server/db';
import { hashPassword } from '../server/services/passwords';

import { compare, createDatabase, freePort, load, startApi, startProcess, stopProcess } from './lib';
import type { Suite } from './suites';


// scores (issue 12): the reads of /scores and /risk against bare hapi + pg running the same aggregate by hand, and the
// recompute, on a knowledge base of ATT&CK Enterprise's size and a large test table
const internals = {
    tests: 300_000,
    parents: 211,
    subtechniques: 468,
    actors: 170,
    usesPerActor: 30,
    tactics: ['reconnaissance', 'resource-development', 'initial-access', 'execution', 'persistence', 'privilege-escalation', 'defense-evasion', 'credential-access', 'discovery', 'lateral-movement', 'collection', 'command-and-control', 'exfiltration', 'impact']
};


export const risk: Suite = {
    description: `GET /scores, /risk/summary, /risk/top (${internals.parents} techniques + ${internals.subtechniques} sub-techniques, ${internals.actors} actors, ${internals.tests.toLocaleString('en')} tests) vs bare hapi + pg; the recompute`,
    run: async () => {

        const database = await createDatabase(`aegis_bench_risk_${process.pid}`);
        const processes = [];
        try {
            await migrate(database.url);
            const pool = new Pg.Pool({ connectionString: database.url });
            const hash = await hashPassword('Bench-password-4242');
            await pool.query(`insert into users (username, role, password_hash, must_change_password) values ('admin', 'admin', $1, false)`, [hash]);
            await pool.query(`insert into tactics (stix_id, mitre_id, domain, name, shortname, matrix_order) select 'x-mitre-tactic--' || gen_random_uuid(), 'TA' || lpad(i::text, 4, '0'), 'enterprise-attack', s, s, i
                from unnest($1::text[]) with ordinality as u(s, i)`, [internals.tactics]);
            await pool.query(`insert into techniques (mitre_id, domain, name) select 'T' || (1000 + i), 'enterprise-attack', 'Technique ' || i from generate_series(0, $1::int - 1) as i`, [internals.parents]);
            await pool.query(`insert into techniques (mitre_id, domain, name, is_subtechnique, parent_id) select 'T' || (1000 + i % $1) || '.' || lpad((1 + i / $1)::text, 3, '0'), 'enterprise-attack', 'Sub ' || i, true, 'T' || (1000 + i % $1)
                from generate_series(0, $2::int - 1) as i`, [internals.parents, internals.subtechniques]);
            await pool.query(`insert into technique_tactics (technique_id, tactic_id) select t.mitre_id, ta.id from techniques t join tactics ta on ta.matrix_order = 1 + (substr(t.mitre_id, 2, 4)::int % 14)`);
            await pool.query(`insert into threat_actors (name, tracked) select 'Actor ' || i, true from generate_series(1, $1::int) as i`, [internals.actors]);
            await pool.query(`insert into threat_actor_techniques (threat_actor_id, technique_id) select distinct a.id, t.mitre_id from (select id, row_number() over (order by id) as n from threat_actors) a
                join lateral (select mitre_id from techniques order by md5(mitre_id || a.n) limit $1) t on true`, [internals.usesPerActor]);

            const seeded = Date.now();
            await pool.query(`insert into tests (title, technique_id, state, detection_outcome, validated_at, red_approved, red_validated_at, blue_approved, blue_validated_at, executed_at, attack_result, detected_at)
                select 'Test ' || i, t.mitre_id, 'validated', (array['prevented','alerted','logged','not_detected'])[1 + i % 4], now() - (i || ' minutes')::interval, true, now(), true, now(), now() - interval '1 day', 'succeeded', now()
                from generate_series(1, $1::int) as i join (select mitre_id, row_number() over (order by mitre_id) - 1 as n from techniques) t on t.n = i % ${internals.parents + internals.subtechniques}`, [internals.tests]);
            // The stored coverage the coverage service keeps, set in one statement (the bench measures the readers)
            await pool.query(`update techniques t set latest_validated_test_id = x.id, latest_validated_at = x.validated_at,
                own_coverage_status = case x.detection_outcome when 'logged' then 'partial' when 'not_detected' then 'not_covered' else 'covered' end,
                coverage_status = case x.detection_outcome when 'logged' then 'partial' when 'not_detected' then 'not_covered' else 'covered' end,
                own_score = case x.detection_outcome when 'prevented' then 100 when 'alerted' then 90 when 'logged' then 40 else 0 end,
                score = case x.detection_outcome when 'prevented' then 100 when 'alerted' then 90 when 'logged' then 40 else 0 end
                from (select distinct on (technique_id) technique_id, id, validated_at, detection_outcome from tests order by technique_id, validated_at desc) x where x.technique_id = t.mitre_id and substr(t.mitre_id, 5, 1) <> '7'`);
            await pool.query('analyze');
            process.stdout.write(`seeded ${internals.tests.toLocaleString('en')} tests in ${Date.now() - seeded} ms (load average ${Os.loadavg().map((value) => value.toFixed(1)).join(' ')})\n`);
            await pool.end();

            const env = { DATABASE_URL: database.url, LOG_LEVEL: 'warn', AEGIS_DATA_DIR: Path.join(Os.tmpdir(), `aegis-bench-${process.pid}`), JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0000' };
            const barePort = await freePort();
            const bare = await startProcess('bench/bare-server.js', { ...env, PORT: String(barePort) }, /bare listening/);
            processes.push(bare);
            const aegisPort = await freePort();
            const aegis = await startApi({ ...env, PORT: String(aegisPort), LOG_LEVEL: 'info' });
            processes.push(aegis);

            const login = await fetch(`http://127.0.0.1:${aegisPort}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'Bench-password-4242' }) });
            const session = await login.json() as { access_token: string; user: { id: string } };
            const headers = { authorization: `Bearer ${session.access_token}`, 'content-type': 'application/json' };

            // The recompute, through PATCH /scores/config (it recomputes before answering): five runs
            const durations: number[] = [];
            for (let i = 0; i < 5; ++i) {
                const started = process.hrtime.bigint();
                const res = await fetch(`http://127.0.0.1:${aegisPort}/api/v1/scores/config`, { method: 'PATCH', headers, body: JSON.stringify({ half_life_days: 180 + (i % 2) }) });
                if (res.status !== 200) {
                    throw new Error(`PATCH /scores/config answered ${res.status}: ${await res.text()}`);
                }

                durations.push(Number(process.hrtime.bigint() - started) / 1e6);
            }

            const sorted = [...durations].sort((a, b) => a - b);
            process.stdout.write(`Recompute of ${internals.parents + internals.subtechniques} profiles (PATCH /scores/config, 5 runs): median ${sorted[2]!.toFixed(0)} ms, max ${sorted[4]!.toFixed(0)} ms\n`);

            const { jti } = JSON.parse(Buffer.from(session.access_token.split('.')[1]!, 'base64url').toString()) as { jti: string };
            const aegisUrl = (path: string) => `http://127.0.0.1:${aegisPort}/api/v1${path}`;
            const bareUrl = (path: string) => `http://127.0.0.1:${barePort}/bare${path}/${session.user.id}/${jti}`;

            await load(aegisUrl('/risk/summary'), { headers, duration: 2 });
            await load(bareUrl('/risk-summary'), { duration: 2 });
            await compare('GET /api/v1/risk/summary', () => load(aegisUrl('/risk/summary'), { headers }), () => load(bareUrl('/risk-summary')));
            await compare('GET /api/v1/scores', () => load(aegisUrl('/scores'), { headers }), () => load(bareUrl('/scores')));
            await compare('GET /api/v1/risk/top?limit=10 (baseline: the summary SQL)', () => load(aegisUrl('/risk/top?limit=10'), { headers }), () => load(bareUrl('/risk-summary')));
        }
        finally {
            for (const child of processes) {
                await stopProcess(child);
            }

            await database.drop();
        }
    }
};
