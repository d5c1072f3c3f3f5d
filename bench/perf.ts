import * as ChildProcess from 'child_process';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import Autocannon from 'autocannon';
import * as Pg from 'pg';

import { migrate } from '../server/db';
import { hashPassword } from '../server/services/passwords';

import { createDatabase, freePort, load, startApi, startProcess, stopProcess, type LoadResult } from './lib';
import { perfUploads, perfUploadsSuite } from './perf-uploads';
import type { Suite } from './suites';


// perf (issue 16): the rows of the issue, each next to a bare hapi + pg process that sends the same reads and writes
// the same rows (bench/bare-server.ts), in the same run, alternating, median of the rounds; then the peak RSS of
// both processes over the whole run. docs/performance.md explains the figures and the remaining gaps.

interface Lifecycles {
    rate: number;
    stepP50: number;
}


interface Row {
    path: string;
    unit: string;
    aegis: number;
    bare: number;
    target: number;
    detail: string;
}


const internals = {
    // Many short rounds rather than a few long ones: the machine's pace drifts, and the median of 7 paired ratios
    // moves less between runs than that of 3
    rounds: Number(process.env.BENCH_ROUNDS ?? 7),
    seconds: Number(process.env.BENCH_SECONDS ?? 3),
    clients: 20,
    techniques: 200,
    // BENCH_PERF_ROWS=me,users,create,lifecycle: only those rows (to profile one path)
    rows: (process.env.BENCH_PERF_ROWS ?? 'me,users,create,lifecycle').split(','),

    // A round runs both sides back to back, each first in turn: on a shared machine the pace drifts from one second
    // to the next, and a side that always ran second would always get the drift
    inTurn: async <T>(round: number, aegis: () => Promise<T>, bare: () => Promise<T>): Promise<{ aegis: T; bare: T }> => {

        if (round % 2 === 0) {
            const first = await aegis();
            return { aegis: first, bare: await bare() };
        }

        const first = await bare();
        return { aegis: await aegis(), bare: first };
    },

    median: (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!,

    rss: (pid: number): number => {

        try {
            const status = Fs.readFileSync(`/proc/${pid}/status`, 'utf8');
            return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
        }
        catch {
            return 0;
        }
    },

    post: async (url: string, body: object, headers: Record<string, string>, seconds: number): Promise<LoadResult> => {

        const result = await Autocannon({ url, method: 'POST', body: JSON.stringify(body), headers: { ...headers, 'content-type': 'application/json' }, connections: internals.clients, duration: seconds, pipelining: 1 });
        return { requestsPerSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx };
    },

    // `clients` loops, each taking the next draft and walking it to validated with seven requests; lifecycles per second
    lifecycles: async (drafts: string[], seconds: number, walk: (id: string) => Promise<void>): Promise<Lifecycles> => {

        let completed = 0;
        const durations: number[] = [];
        const until = Date.now() + seconds * 1000;
        await Promise.all(Array.from({ length: internals.clients }, async () => {

            while (Date.now() < until && drafts.length) {
                const started = process.hrtime.bigint();
                await walk(drafts.pop()!);
                durations.push(Number(process.hrtime.bigint() - started) / 1e6 / 7);
                completed++;
            }
        }));

        if (!drafts.length) {
            throw new Error('the bench ran out of drafts: raise the number created per round');
        }

        return { rate: completed / seconds, stepP50: internals.median(durations) };
    },

    call: async (url: string, method: string, headers: Record<string, string>, body?: object) => {

        const res = await fetch(url, { method, headers: body ? { ...headers, 'content-type': 'application/json' } : headers, body: body ? JSON.stringify(body) : null });
        if (res.status >= 300) {
            throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
        }

        await res.arrayBuffer();
    },

    print: (rows: Row[], rss: { aegis: number; bare: number }) => {

        const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
        process.stdout.write(`\n| path | Aegis | bare | ratio | target | |\n|---|---|---|---|---|---|\n`);
        for (const row of rows) {
            const ratio = row.aegis / row.bare;
            process.stdout.write(`| ${row.path} | ${row.aegis.toFixed(1)} ${row.unit}${row.detail ? ` (${row.detail})` : ''} | ${row.bare.toFixed(1)} | ${ratio.toFixed(2)} | >= ${row.target} | ${ratio >= row.target ? 'met' : 'NOT met'} |\n`);
        }

        const ratio = rss.aegis / rss.bare;
        process.stdout.write(`| peak RSS of the process under the whole bench | ${mb(rss.aegis)} | ${mb(rss.bare)} | ${ratio.toFixed(2)} | <= 2 | ${ratio <= 2 ? 'met' : 'NOT met'} |\n`);
    }
};


export const perfPaths: Suite = {
    description: 'issue 16: GET /auth/me, GET /users?limit=50, POST /tests and the draft → validated lifecycle, each against bare hapi + pg doing the same statements and writing the same rows; peak RSS of both processes',
    run: async () => {

        const database = await createDatabase(`aegis_bench_perf_${process.pid}`);
        const processes: ChildProcess.ChildProcess[] = [];
        const pool = new Pg.Pool({ connectionString: database.url, max: 4 });
        let sampler: NodeJS.Timeout | undefined;
        try {
            await migrate(database.url);
            const hash = await hashPassword('Bench-password-4242');
            await pool.query(`insert into users (username, role, password_hash, must_change_password)
                select 'user-' || lpad(i::text, 4, '0'), (array['admin','red_lead','blue_lead','red_tech','blue_tech','viewer'])[1 + i % 6], $1, false
                from generate_series(1, 1000) as i`, [hash]);
            await pool.query(`insert into techniques (mitre_id, domain, name) select 'T' || lpad(i::text, 4, '0'), 'enterprise-attack', 'Technique ' || i from generate_series(1000, 999 + $1::int) as i`, [internals.techniques]);

            const env = { DATABASE_URL: database.url, AEGIS_DATA_DIR: Path.join(Os.tmpdir(), `aegis-bench-perf-${process.pid}`), JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0000' };
            const barePort = await freePort();
            const bare = await startProcess('bench/bare-server.js', { ...env, PORT: String(barePort) }, /bare listening/);
            processes.push(bare);
            const aegisPort = await freePort();
            // As in production: NODE_ENV unset (no response validation), one JSON log line per request. BENCH_CPU_PROF=<dir>
            // writes a CPU profile of the API process there when it stops (docs/performance.md reads them); BENCH_API_FLAGS
            // adds node flags to it (to try V8's heap settings).
            const aegis = await startApi({ ...env, PORT: String(aegisPort), LOG_LEVEL: 'info' }, [...process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [], ...process.env.BENCH_API_FLAGS?.split(' ').filter(Boolean) ?? []]);
            processes.push(aegis);

            const peak = { aegis: 0, bare: 0 };
            sampler = setInterval(() => {

                peak.aegis = Math.max(peak.aegis, internals.rss(aegis.pid!));
                peak.bare = Math.max(peak.bare, internals.rss(bare.pid!));
            }, 50);

            const login = await fetch(`http://127.0.0.1:${aegisPort}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'user-0006', password: 'Bench-password-4242' }) });
            const session = await login.json() as { access_token: string; user: { id: string; role: string } };
            const { jti } = JSON.parse(Buffer.from(session.access_token.split('.')[1]!, 'base64url').toString()) as { jti: string };
            const headers = { authorization: `Bearer ${session.access_token}` };
            const aegisUrl = (path: string) => `http://127.0.0.1:${aegisPort}/api/v1${path}`;
            const bareUrl = (path: string) => `http://127.0.0.1:${barePort}/bare${path}/${session.user.id}/${jti}`;

            const rows: Row[] = [];
            const wanted = (row: string) => internals.rows.includes(row);
            const alternate = async (key: string, path: string, target: number, subject: (seconds: number) => Promise<LoadResult>, baseline: (seconds: number) => Promise<LoadResult>) => {

                if (!wanted(key)) {
                    return;
                }

                await subject(2);
                await baseline(2);
                const ratios: number[] = [];
                const aegisRuns: LoadResult[] = [];
                const bareRuns: LoadResult[] = [];
                for (let i = 0; i < internals.rounds; ++i) {
                    const { aegis: a, bare: b } = await internals.inTurn(i, () => subject(internals.seconds), () => baseline(internals.seconds));
                    aegisRuns.push(a);
                    bareRuns.push(b);
                    ratios.push(a.requestsPerSecond / b.requestsPerSecond);
                    process.stdout.write(`  ${path} round ${i + 1}: aegis ${a.requestsPerSecond.toFixed(0)} req/s (p50 ${a.p50} ms, non-2xx ${a.non2xx}, errors ${a.errors})   bare ${b.requestsPerSecond.toFixed(0)} req/s (p50 ${b.p50} ms, non-2xx ${b.non2xx})   ratio ${ratios[i]!.toFixed(2)}\n`);
                }

                // The row shows the round of median ratio, so that its figures and its ratio agree
                const at = ratios.indexOf(internals.median(ratios));
                rows.push({ path, unit: 'req/s', aegis: aegisRuns[at]!.requestsPerSecond, bare: bareRuns[at]!.requestsPerSecond, target, detail: `p50 ${aegisRuns[at]!.p50} ms vs ${bareRuns[at]!.p50} ms` });
            };

            await alternate('me', 'GET /auth/me', 0.9, (seconds) => load(aegisUrl('/auth/me'), { headers, duration: seconds }), (seconds) => load(bareUrl('/me'), { duration: seconds }));
            await alternate('users', 'GET /users?limit=50 (with its total)', 0.85, (seconds) => load(aegisUrl('/users?limit=50'), { headers, duration: seconds }), (seconds) => load(bareUrl('/users'), { duration: seconds }));
            let created = 0;
            const body = () => ({ title: `Bench test ${created++}`, technique_id: `T${1000 + created % internals.techniques}` });
            await alternate('create', 'POST /tests', 0.7, (seconds) => internals.post(aegisUrl('/tests'), body(), headers, seconds), (seconds) => internals.post(bareUrl('/tests'), body(), {}, seconds));

            // The lifecycle: drafts made beforehand (as many as a round can use), then seven requests each
            const drafts = async (count: number) => (await pool.query(`insert into tests (title, technique_id, created_by)
                select 'Lifecycle ' || i, 'T' || lpad((1000 + i % $2::int)::text, 4, '0'), $3 from generate_series(1, $1::int) as i returning id`, [count, internals.techniques, session.user.id])).rows.map((row: { id: string }) => row.id);
            const aegisWalk = async (id: string) => {

                const path = `/tests/${id}`;
                await internals.call(aegisUrl(`${path}/start-execution`), 'POST', headers);
                await internals.call(aegisUrl(`${path}/red`), 'PATCH', headers, { executed_at: new Date().toISOString(), attack_result: 'succeeded' });
                await internals.call(aegisUrl(`${path}/submit-red`), 'POST', headers);
                await internals.call(aegisUrl(`${path}/blue`), 'PATCH', headers, { detections: [{ tool: 'EDR', outcome: 'alerted', detected_at: new Date().toISOString() }] });
                await internals.call(aegisUrl(`${path}/submit-blue`), 'POST', headers);
                await internals.call(aegisUrl(`${path}/validate-red`), 'POST', headers, { approved: true });
                await internals.call(aegisUrl(`${path}/validate-blue`), 'POST', headers, { approved: true });
            };

            const bareWalk = async (id: string) => {

                for (let i = 0; i < 7; ++i) {
                    await internals.call(bareUrl(`/tests/${id}/${i}`), 'POST', {});
                }
            };

            const lifecycleRatios: number[] = [];
            const lifecycleRuns: { aegis: Lifecycles; bare: Lifecycles }[] = [];
            if (wanted('lifecycle')) {
                await internals.lifecycles(await drafts(200), 2, aegisWalk);
                await internals.lifecycles(await drafts(400), 2, bareWalk);
            }

            for (let i = 0; i < (wanted('lifecycle') ? internals.rounds : 0); ++i) {
                const aegisDrafts = await drafts(120 * internals.seconds);
                const bareDrafts = await drafts(300 * internals.seconds);
                const { aegis: a, bare: b } = await internals.inTurn(i, () => internals.lifecycles(aegisDrafts, internals.seconds, aegisWalk), () => internals.lifecycles(bareDrafts, internals.seconds, bareWalk));
                lifecycleRuns.push({ aegis: a, bare: b });
                lifecycleRatios.push(a.rate / b.rate);
                process.stdout.write(`  lifecycle round ${i + 1}: aegis ${a.rate.toFixed(1)} lifecycles/s (step p50 ${a.stepP50.toFixed(1)} ms)   bare ${b.rate.toFixed(1)} lifecycles/s (step p50 ${b.stepP50.toFixed(1)} ms)   ratio ${lifecycleRatios[i]!.toFixed(2)}\n`);
            }

            const at = lifecycleRatios.indexOf(internals.median(lifecycleRatios));
            if (wanted('lifecycle')) {
                rows.push({ path: 'draft → validated (7 requests, 20 clients)', unit: 'lifecycles/s', aegis: lifecycleRuns[at]!.aegis.rate, bare: lifecycleRuns[at]!.bare.rate, target: 0.5, detail: `step p50 ${lifecycleRuns[at]!.aegis.stepP50.toFixed(1)} ms vs ${lifecycleRuns[at]!.bare.stepP50.toFixed(1)} ms` });
            }


            clearInterval(sampler);
            internals.print(rows, peak);
        }
        finally {
            clearInterval(sampler);
            for (const child of processes) {
                await stopProcess(child);
            }

            await pool.end();
            await database.drop();
        }
    }
};


// `npm run bench -- perf` prints every row of issue 16: the read and write paths, then the uploads
export const perf: Suite = {
    description: `${perfPaths.description}; then ${perfUploadsSuite.description}`,
    run: async () => {

        await perfPaths.run();
        await perfUploads();
    }
};
