import * as ChildProcess from 'child_process';
import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Http from 'http';
import * as Os from 'os';
import * as Path from 'path';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';

import * as Pg from 'pg';

import { migrate } from '../server/db';
import { hashPassword } from '../server/services/passwords';

import { createDatabase, freePort, load, sqlLoad, stopProcess, type LoadResult } from './lib';
import type { Suite } from './suites';


const internals = {
    tests: 100_000,
    techniques: 200,
    mib: 1024 * 1024,
    uploadBytes: 200 * 1024 * 1024,
    uploaders: 5,
    lifecycleClients: 20,
    lifecycleSeconds: 10,

    row: (name: string, value: { rate: number; unit: string; p50?: number; p99?: number }) => `  ${name.padEnd(34)} ${value.rate.toFixed(1).padStart(9)} ${value.unit}${value.p50 === undefined ? '' : `   p50 ${value.p50.toFixed(1).padStart(6)} ms   p99 ${value.p99!.toFixed(1).padStart(6)} ms`}`,

    // The API process, started on its own port and database; ready once health answers
    start: async (env: Record<string, string>, port: number): Promise<ChildProcess.ChildProcess> => {

        const child = ChildProcess.spawn(process.execPath, [Path.join(__dirname, '..', 'server', 'index.js')], { env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
            if (child.exitCode !== null) {
                throw new Error(`server exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
            }

            const res = await fetch(`http://127.0.0.1:${port}/api/v1/system/health`).catch(() => null);
            if (res?.status === 200) {
                return child;
            }

            await new Promise((resolve) => setTimeout(resolve, 200));
        }

        throw new Error('server did not become healthy');
    },

    rss: (pid: number): number => {

        const status = Fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
    },

    api: async (port: number, token: string, method: string, path: string, body?: object) => {

        const res = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : null });
        if (res.status >= 300) {
            throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
        }

        return await res.json() as Record<string, any>;
    },

    // A multipart body generated on the fly: the client holds no more of it than the server does
    upload: (port: number, token: string, testId: string, bytes: number) => new Promise<number>((resolve, reject) => {

        const boundary = `----bench${Crypto.randomBytes(8).toString('hex')}`;
        const chunk = Crypto.randomBytes(internals.mib);
        const parts = async function* () {

            yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="team"\r\n\r\nred\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="capture.pcap"\r\n\r\n`);
            yield Buffer.from([0xd4, 0xc3, 0xb2, 0xa1]);
            let sent = 4;
            while (sent < bytes) {
                const next = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
                sent += next.length;
                yield next;
            }

            yield Buffer.from(`\r\n--${boundary}--\r\n`);
        };

        const req = Http.request({ host: '127.0.0.1', port, method: 'POST', path: `/api/v1/tests/${testId}/evidence`, headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` } }, (res) => {

            res.resume();
            res.once('end', () => resolve(res.statusCode ?? 0));
        });

        req.once('error', reject);
        pipeline(Readable.from(parts()), req).catch(reject);
    })
};


export const tests: Suite = {
    description: 'GET /tests with filters at 100,000 tests vs the same SQL through pg; full lifecycles per second under 20 clients vs the same writes as bare SQL; server RSS while 5 clients upload 200 MB each',
    run: async () => {

        const database = await createDatabase(`aegis_bench_tests_${process.pid}`);
        const dataDir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-bench-tests-'));
        let server: ChildProcess.ChildProcess | undefined;
        const pool = new Pg.Pool({ connectionString: database.url, max: 10 });
        try {
            await migrate(database.url);
            const hash = await hashPassword('Bench-password-4242');
            await pool.query(`insert into users (username, role, password_hash, must_change_password) select r, r, $1, false from unnest(array['admin','red_lead','blue_lead','red_tech','blue_tech','viewer']) as r`, [hash]);
            await pool.query(`insert into techniques (mitre_id, domain, name) select 'T' || lpad(i::text, 4, '0'), 'enterprise-attack', 'Technique ' || i from generate_series(1000, 999 + $1::int) as i`, [internals.techniques]);

            const seeded = Date.now();
            await pool.query(`
                insert into tests (title, technique_id, state, priority, platform, tags, data_classification, created_at, red_assignee_id, detection_outcome, validated_at,
                    red_approved, red_validated_at, blue_approved, blue_validated_at, rejected_at)
                select
                    (array['LSASS dump','Kerberoasting','PowerShell cradle','Scheduled task','DNS tunnel','Pass the hash'])[1 + i % 6] || ' #' || i,
                    'T' || lpad((1000 + i % $2::int)::text, 4, '0'),
                    (array['draft','red_executing','blue_evaluating','in_review','validated','rejected'])[1 + (i / 7) % 6],
                    (array['low','medium','high','critical'])[1 + i % 4],
                    (array['Windows','Linux','macOS'])[1 + i % 3],
                    case when i % 10 = 0 then array['q4','edr'] else array['q3'] end,
                    (array['internal','internal','internal','public','confidential','restricted'])[1 + i % 6],
                    now() - (i || ' minutes')::interval,
                    case when i % 5 = 0 then (select id from users where username = 'red_tech') end,
                    case when (i / 7) % 6 = 4 then 'alerted' end,
                    case when (i / 7) % 6 = 4 then now() - (i || ' minutes')::interval end,
                    case when (i / 7) % 6 in (4, 5) then true end,
                    case when (i / 7) % 6 in (4, 5) then now() - (i || ' minutes')::interval end,
                    case (i / 7) % 6 when 4 then true when 5 then false end,
                    case when (i / 7) % 6 in (4, 5) then now() - (i || ' minutes')::interval end,
                    case when (i / 7) % 6 = 5 then now() - (i || ' minutes')::interval end
                from generate_series(1, $1::int) as i`, [internals.tests, internals.techniques]);
            await pool.query('analyze');
            process.stdout.write(`seeded ${internals.tests} tests in ${Date.now() - seeded} ms\n`);

            const port = await freePort();
            server = await internals.start({ DATABASE_URL: database.url, LOG_LEVEL: 'warn', AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0000', UPLOAD_MAX_BYTES: String(300 * internals.mib), DATABASE_POOL_MAX: '20' }, port);
            const token = async (username: string) => ((await (await fetch(`http://127.0.0.1:${port}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'Bench-password-4242' }) })).json()) as { access_token: string }).access_token;
            const admin = await token('admin');
            const redTech = await token('red_tech');

            // 1. The list, as a lead (no visibility filter) and as a technician (classification narrowing), vs bare SQL
            const select = 'select * from tests';
            const lists: { title: string; path: string; token: string; where: string; values: unknown[]; order: string }[] = [
                { title: 'GET /tests?limit=50', path: '/tests?limit=50', token: admin, where: 'true', values: [], order: 'created_at desc, id desc' },
                { title: 'state+technique, sort validated_at', path: '/tests?state=validated&technique_id=T1042&sort=validated_at', token: admin, where: 'state = any($1) and technique_id = $2', values: [['validated'], 'T1042'], order: 'validated_at desc, id desc' },
                { title: 'tag+priority+platform', path: '/tests?tag=edr&priority=high&platform=Linux', token: admin, where: 'tags @> $1::text[] and priority = $2 and platform = $3', values: [['edr'], 'high', 'Linux'], order: 'created_at desc, id desc' },
                { title: 'search=kerberoast (1 in 6 match)', path: '/tests?search=kerberoast', token: admin, where: 'title ilike $1', values: ['%kerberoast%'], order: 'created_at desc, id desc' },
                { title: 'search=#4242 (11 match, trigram)', path: '/tests?search=%234242', token: admin, where: 'title ilike $1', values: ['%#4242%'], order: 'created_at desc, id desc' },
                { title: 'as red_tech (visibility)', path: '/tests?state=in_review', token: redTech, where: `state = any($1) and (data_classification in ('public','internal','confidential') or (data_classification = 'restricted' and (red_assignee_id = $2 or blue_assignee_id = $2)))`, values: [['in_review'], (await pool.query(`select id from users where username = 'red_tech'`)).rows[0].id], order: 'created_at desc, id desc' }
            ];

            process.stdout.write(`\nGET /api/v1/tests at ${internals.tests} tests (10 connections, 5 s each; baseline = the page and count queries through pg)\n`);
            for (const list of lists) {
                const url = `http://127.0.0.1:${port}/api/v1${list.path}`;
                await load(url, { headers: { authorization: `Bearer ${list.token}` }, duration: 1, connections: 10 });
                const aegis: LoadResult = await load(url, { headers: { authorization: `Bearer ${list.token}` }, duration: 5, connections: 10 });
                const bare = await sqlLoad(pool, [
                    { text: `${select} where ${list.where} order by ${list.order} limit 50`, values: list.values },
                    { text: `select count(*) from tests where ${list.where}`, values: list.values }
                ], 10, 5);
                process.stdout.write(`${list.title}\n${internals.row('aegis', { rate: aegis.requestsPerSecond, unit: 'req/s', p50: aegis.p50, p99: aegis.p99 })}   non-2xx ${aegis.non2xx}\n${internals.row('bare SQL (pg)', bare)}\n  ratio ${(aegis.requestsPerSecond / bare.rate).toFixed(2)} (throughput), p50 ${(aegis.p50 / Math.max(bare.p50!, 0.1)).toFixed(2)}x\n`);
            }

            // 2. Whole lifecycles, create → validated, 8 requests each, 20 clients, each on its own techniques
            let completed = 0;
            const lifecycleUntil = Date.now() + internals.lifecycleSeconds * 1000;
            await Promise.all(Array.from({ length: internals.lifecycleClients }, async (_, client) => {

                let round = 0;
                while (Date.now() < lifecycleUntil) {
                    const technique = `T${1000 + ((client + internals.lifecycleClients * round++) % internals.techniques)}`;
                    const test = await internals.api(port, admin, 'POST', '/tests', { title: `Lifecycle ${client}`, technique_id: technique });
                    const path = `/tests/${test.id}`;
                    await internals.api(port, admin, 'POST', `${path}/start-execution`);
                    await internals.api(port, admin, 'PATCH', `${path}/red`, { executed_at: new Date().toISOString(), attack_result: 'succeeded' });
                    await internals.api(port, admin, 'POST', `${path}/submit-red`);
                    await internals.api(port, admin, 'PATCH', `${path}/blue`, { detections: [{ tool: 'EDR', outcome: 'alerted', detected_at: new Date().toISOString() }] });
                    await internals.api(port, admin, 'POST', `${path}/submit-blue`);
                    await internals.api(port, admin, 'POST', `${path}/validate-red`, { approved: true });
                    await internals.api(port, admin, 'POST', `${path}/validate-blue`, { approved: true });
                    completed++;
                }
            }));

            const aegisRate = completed / internals.lifecycleSeconds;

            // Baseline: the same eight writes as single-statement SQL (no rules, timeline, audit, events or coverage)
            let bareCompleted = 0;
            const bareUntil = Date.now() + internals.lifecycleSeconds * 1000;
            await Promise.all(Array.from({ length: internals.lifecycleClients }, async (_, client) => {

                while (Date.now() < bareUntil) {
                    const { rows } = await pool.query(`insert into tests (title, technique_id) values ($1, $2) returning id`, [`Bare ${client}`, `T${1000 + client}`]);
                    const id = rows[0].id;
                    for (const set of [`state = 'red_executing', timer_started_at = now()`, `executed_at = now(), attack_result = 'succeeded'`, `state = 'blue_evaluating'`, `detections = '[{"tool":"EDR","outcome":"alerted"}]', detection_outcome = 'alerted'`, `state = 'in_review', timer_started_at = null`, `red_approved = true, red_validated_at = now()`, `blue_approved = true, blue_validated_at = now(), state = 'validated', validated_at = now()`]) {
                        await pool.query(`update tests set ${set}, version = version + 1 where id = $1`, [id]);
                    }

                    bareCompleted++;
                }
            }));

            const bareRate = bareCompleted / internals.lifecycleSeconds;
            process.stdout.write(`\nFull lifecycle, create → validated (8 requests), ${internals.lifecycleClients} concurrent clients, ${internals.lifecycleSeconds} s\n${internals.row('aegis', { rate: aegisRate, unit: 'lifecycles/s' })}\n${internals.row('bare SQL (8 statements, pg)', { rate: bareRate, unit: 'lifecycles/s' })}\n  ratio ${(aegisRate / bareRate).toFixed(2)}\n`);

            // 3. Peak RSS of the server while 5 clients upload 200 MB each, at once
            const targets = [];
            for (let i = 0; i < internals.uploaders; ++i) {
                const test = await internals.api(port, admin, 'POST', '/tests', { title: `Upload ${i}`, technique_id: 'T1000' });
                await internals.api(port, admin, 'POST', `/tests/${test.id}/start-execution`);
                targets.push(test.id as string);
            }

            const idle = internals.rss(server.pid!);
            let peak = idle;
            const sampler = setInterval(() => {

                peak = Math.max(peak, internals.rss(server!.pid!));
            }, 50);

            const uploadStarted = Date.now();
            const statuses = await Promise.all(targets.map((id) => internals.upload(port, admin, id, internals.uploadBytes)));
            const uploadSeconds = (Date.now() - uploadStarted) / 1000;
            clearInterval(sampler);

            // Baseline: the same bytes written straight to a file by this process (the disk's own pace)
            const bareFile = Path.join(dataDir, 'bare.bin');
            const chunk = Crypto.randomBytes(internals.mib);
            const bareStarted = Date.now();
            await Promise.all(Array.from({ length: internals.uploaders }, (_, file) => pipeline(Readable.from((function* () {

                for (let i = 0; i < internals.uploadBytes / chunk.length; ++i) {
                    yield chunk;
                }
            })()), Fs.createWriteStream(`${bareFile}.${file}`))));
            const bareSeconds = (Date.now() - bareStarted) / 1000;

            const totalMb = internals.uploaders * internals.uploadBytes / internals.mib;
            process.stdout.write(`\n${internals.uploaders} concurrent uploads of ${internals.uploadBytes / internals.mib} MB (statuses ${statuses.join(', ')})\n`);
            process.stdout.write(`  server RSS idle ${(idle / internals.mib).toFixed(0)} MB, peak ${(peak / internals.mib).toFixed(0)} MB, growth ${((peak - idle) / internals.mib).toFixed(0)} MB   (target < 100 MB: ${peak - idle < 100 * internals.mib ? 'met' : 'NOT met'})\n`);
            process.stdout.write(`${internals.row('aegis upload throughput', { rate: totalMb / uploadSeconds, unit: 'MB/s' })}\n${internals.row('bare file write (same bytes)', { rate: totalMb / bareSeconds, unit: 'MB/s' })}\n  ratio ${(bareSeconds / uploadSeconds).toFixed(2)}\n`);
        }
        finally {
            if (server) {
                await stopProcess(server);
            }

            await pool.end();
            await Fs.promises.rm(dataDir, { recursive: true, force: true });
            await database.drop();
        }
    }
};
