import * as ChildProcess from 'child_process';
import * as Net from 'net';
import * as Path from 'path';

import Autocannon from 'autocannon';
import type { Knex } from 'knex';
import Pino from 'pino';
import * as Pg from 'pg';

import { OutboundHttp } from '../integrations/http';
import { apiNodeFlags, loadConfig } from '../server/config';
import { AgendaQueue, createAgenda } from '../server/jobs';
import { serviceDeps } from '../server/runtime';
import { createServer } from '../server/server';
import { createServices } from '../server/services';


export const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';


export const databaseUrl = (name: string): string => {

    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
};


// A database of the benchmark's own, dropped by the returned function.
export const createDatabase = async (name: string): Promise<{ url: string; drop: () => Promise<void> }> => {

    const admin = new Pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.query(`create database "${name}"`);
    await admin.end();

    return {
        url: databaseUrl(name),
        drop: async () => {

            const client = new Pg.Client({ connectionString: adminUrl });
            await client.connect();
            await client.query(`drop database if exists "${name}" with (force)`);
            await client.end();
        }
    };
};


export const freePort = () => new Promise<number>((resolve) => {

    const server = Net.createServer().listen(0, '127.0.0.1', () => {

        const { port } = server.address() as Net.AddressInfo;
        server.close(() => resolve(port));
    });
});


// Starts a compiled entry (relative to dist/) and resolves once `ready` matches a line of its output. `execArgv`: node's
// own flags, such as --cpu-prof (which NODE_OPTIONS refuses).
// The built API process as `npm start` runs it (its heap bound included), ready when it logs that it listens
export const startApi = (env: Record<string, string>, execArgv: string[] = []): Promise<ChildProcess.ChildProcess> => startProcess('server/index.js', env, /api listening/, [...apiNodeFlags(env), ...execArgv]);


export const startProcess = async (entry: string, env: Record<string, string>, ready: RegExp, execArgv: string[] = []): Promise<ChildProcess.ChildProcess> => {

    const child = ChildProcess.spawn(process.execPath, [...execArgv, Path.join(__dirname, '..', entry)], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {

        let output = '';
        const onData = (chunk: Buffer) => {

            output += chunk.toString();
            if (ready.test(output)) {
                child.stdout!.off('data', onData);
                child.stdout!.resume();
                resolve();
            }
        };

        child.stdout!.on('data', onData);
        child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.once('exit', (code) => reject(new Error(`${entry} exited with ${code}: ${output.slice(-2000)}`)));
    });

    child.stderr!.resume();
    return child;
};


export const stopProcess = (child: ChildProcess.ChildProcess) => new Promise<void>((resolve) => {

    if (child.exitCode !== null) {
        return resolve();
    }

    child.once('exit', () => resolve());
    child.kill('SIGTERM');
});


export interface LoadResult {
    requestsPerSecond: number;
    p50: number;
    p99: number;
    errors: number;
    non2xx: number;
}


export const load = async (url: string, options: { headers?: Record<string, string>; connections?: number; duration?: number } = {}): Promise<LoadResult> => {

    const result = await Autocannon({ url, headers: options.headers, connections: options.connections ?? 20, duration: options.duration ?? 8, pipelining: 1 });
    return {
        requestsPerSecond: result.requests.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        errors: result.errors + result.timeouts,
        non2xx: result.non2xx
    };
};


// Loads the subject and the baseline in alternation, `rounds` times each, and prints the medians: on a small shared
// machine one run of either can be off by 20%, and a drift in the machine hits both alike.
export const compare = async (title: string, subject: () => Promise<LoadResult>, baseline: () => Promise<LoadResult>, options: { rounds?: number; target?: number } = {}) => {

    const median = (results: LoadResult[]): LoadResult => [...results].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[Math.floor(results.length / 2)]!;
    const subjects: LoadResult[] = [];
    const baselines: LoadResult[] = [];
    for (let i = 0; i < (options.rounds ?? 3); ++i) {
        subjects.push(await subject());
        baselines.push(await baseline());
    }

    printComparison(`${title} (median of ${subjects.length} alternating runs)`, median(subjects), median(baselines), options.target);
};


export const printComparison = (title: string, subject: LoadResult, baseline: LoadResult, target?: number) => {

    const ratio = subject.requestsPerSecond / baseline.requestsPerSecond;
    const row = (name: string, value: LoadResult) => `  ${name.padEnd(28)} ${value.requestsPerSecond.toFixed(0).padStart(8)} req/s   p50 ${String(value.p50).padStart(4)} ms   p99 ${String(value.p99).padStart(4)} ms   errors ${value.errors}   non-2xx ${value.non2xx}`;
    process.stdout.write(`${title}\n${row('aegis', subject)}\n${row('baseline', baseline)}\n  ratio ${ratio.toFixed(2)}${target ? `   (target >= ${target}: ${ratio >= target ? 'met' : 'NOT met'})` : ''}\n`);
};


// `runs` sequential calls after `warmup` unmeasured ones: their p50 and p99 in milliseconds
export const timeRuns = async (warmup: number, runs: number, run: () => Promise<unknown>): Promise<{ p50: number; p99: number }> => {

    for (let i = 0; i < warmup; ++i) {
        await run();
    }

    const samples: number[] = [];
    for (let i = 0; i < runs; ++i) {
        const start = process.hrtime.bigint();
        await run();
        samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }

    const sorted = samples.sort((a, b) => a - b);
    const percentile = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]!;
    return { p50: percentile(50), p99: percentile(99) };
};


export const percentile = (values: number[], p: number) => {

    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
};


// Bare SQL through pg with the same concurrency: the floor an API over this database can reach
export const sqlLoad = async (pool: Pg.Pool, queries: { text: string; values: unknown[] }[], connections: number, seconds: number) => {

    const latencies: number[] = [];
    const until = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: connections }, async () => {

        while (Date.now() < until) {
            const started = process.hrtime.bigint();
            await Promise.all(queries.map((query) => pool.query(query)));
            latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        }
    }));

    return { rate: latencies.length / seconds, unit: 'req/s', p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
};



export const timingRow = (name: string, value: { p50: number; p99: number }) => `  ${name.padEnd(34)} p50 ${value.p50.toFixed(1).padStart(7)} ms   p99 ${value.p99.toFixed(1).padStart(7)} ms`;


// The services and the API server over a benchmark database, and a GET that must answer 200 (as a viewer)
export const createBenchApp = async (url: string, knex: Knex) => {

    const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: url, JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123', LOG_LEVEL: 'silent', AEGIS_DATA_DIR: `/tmp/aegis-bench-${process.pid}` });
    const { agenda, close } = await createAgenda({ databaseUrl: url, name: 'bench' });
    const services = createServices(serviceDeps(config, { knex, queue: new AgendaQueue(agenda, close), outbound: new OutboundHttp(config.outbound), version: 'bench' }));
    const server = await createServer({ config, services, logger: Pino({ level: 'silent' }), version: 'bench' });
    const auth = { strategy: 'jwt-bearer', credentials: { user: { id: '00000000-0000-4000-8000-000000000000', role: 'viewer' }, scope: ['viewer'], app: {} } } as never;
    const inject = (path: string) => {

        return async () => {

            const res = await server.inject({ method: 'GET', url: path, auth });
            if (res.statusCode !== 200) {
                throw new Error(`${path}: ${res.statusCode} ${res.payload.slice(0, 200)}`);
            }
        };
    };

    return {
        services,
        server,
        inject,
        stop: async () => {

            await server.stop();
            await close();
        }
    };
};
