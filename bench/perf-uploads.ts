import * as Crypto from 'crypto';
import { once } from 'events';
import * as Fs from 'fs';
import * as Http from 'http';
import * as Os from 'os';
import * as Path from 'path';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';

import * as Pg from 'pg';

import { migrate } from '../server/db';
import { hashPassword } from '../server/services/passwords';

import { createDatabase, freePort, startApi, stopProcess } from './lib';
import type { Suite } from './suites';


const internals = {
    mib: 1024 * 1024,
    fileBytes: 100 * 1024 * 1024,
    uploaders: 3,
    rounds: Number(process.env.PERF_UPLOADS_ROUNDS ?? 5),
    target: 0.8,
    rssTargetMb: 50,
    password: 'Bench-password-4242',

    // The same bytes for both sides: a pcap header, then one random MiB repeated (generated as they are sent: neither
    // side holds more of the file than stream buffers)
    bytes: function* (total: number, chunk: Buffer): Generator<Buffer> {

        yield Buffer.from([0xd4, 0xc3, 0xb2, 0xa1]);
        for (let i = 4; i < total; i += chunk.length) {
            yield chunk.subarray(0, Math.min(chunk.length, total - i));
        }
    },

    // User and system CPU seconds of a process so far (clock ticks of 1/100 s)
    cpu: (pid: number): { user: number; system: number } => {

        const fields = Fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
    },

    rss: (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(Fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024,

    call: async (base: string, token: string, path: string, body?: object): Promise<Record<string, unknown>> => {

        const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : null });
        if (res.status >= 300) {
            throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
        }

        return await res.json() as Record<string, unknown>;
    },

    // The multipart body of one upload: the team field, then the file, produced as it is sent
    form: function* (boundary: string, chunk: Buffer): Generator<Buffer> {

        yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="team"\r\n\r\nred\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="capture.pcap"\r\nContent-Type: application/octet-stream\r\n\r\n`);
        yield* internals.bytes(internals.fileBytes, chunk);
        yield Buffer.from(`\r\n--${boundary}--\r\n`);
    },

    // One upload over a plain HTTP connection; resolves with the answer's status once its body is read
    upload: async (port: number, token: string, testId: string, chunk: Buffer): Promise<number> => {

        const boundary = `----perf${Crypto.randomBytes(8).toString('hex')}`;
        const headers = { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${boundary}` };
        const req = Http.request({ host: '127.0.0.1', port, method: 'POST', path: `/api/v1/tests/${testId}/evidence`, headers });
        const [[res]] = await Promise.all([once(req, 'response') as Promise<[Http.IncomingMessage]>, pipeline(Readable.from(internals.form(boundary, chunk)), req)]);
        res.resume();
        await once(res, 'end');
        return res.statusCode ?? 0;
    },

    // The baseline: the same bytes streamed into files of the same store directory by this process, flushed to disk
    // before close as the store flushes each object (the store's durability, without its rename)
    bare: async (dir: string, chunk: Buffer, flush: boolean): Promise<number> => {

        const started = process.hrtime.bigint();
        await Promise.all(Array.from({ length: internals.uploaders }, (_, i) => pipeline(Readable.from(internals.bytes(internals.fileBytes, chunk)), Fs.createWriteStream(Path.join(dir, `bare-${i}.bin`), { flush }))));
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        for (let i = 0; i < internals.uploaders; ++i) {
            await Fs.promises.rm(Path.join(dir, `bare-${i}.bin`), { force: true });
        }

        return internals.uploaders * internals.fileBytes / internals.mib / seconds;
    },

    median: (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!,

    row: (name: string, values: number[], unit: string) => `  ${name.padEnd(44)} ${internals.median(values).toFixed(0).padStart(6)} ${unit}   (runs: ${values.map((value) => value.toFixed(0)).join(', ')})`
};


// Issue 16, uploads row: 3 concurrent 100 MB evidence uploads through the API (multipart parsing, sniffing, SHA-256,
// size limit, the store's flushed write and rename, the row with its timeline, audit and events) vs a plain streamed
// write of the same bytes to the same store directory; and the API process's RSS growth meanwhile.
// PERF_UPLOADS_CPU_PROF=<dir> writes a CPU profile of the API process there (bench/cpu-profile.ts); PERF_UPLOADS_ROUNDS sets the rounds.
export const perfUploads = async (): Promise<void> => {

    const database = await createDatabase(`aegis_bench_perf_uploads_${process.pid}`);
    const dataDir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-bench-uploads-'));
    const store = Path.join(dataDir, 'objects');
    let server: Awaited<ReturnType<typeof startApi>> | undefined;
    try {
        await migrate(database.url);
        const client = new Pg.Client({ connectionString: database.url });
        await client.connect();
        await client.query(`insert into users (username, role, password_hash, must_change_password) values ('admin', 'admin', $1, false)`, [await hashPassword(internals.password)]);
        await client.query(`insert into techniques (mitre_id, domain, name) values ('T1040', 'enterprise-attack', 'Network Sniffing')`);
        await client.end();

        const port = await freePort();
        const profile = process.env.PERF_UPLOADS_CPU_PROF;
        server = await startApi({
            DATABASE_URL: database.url, LOG_LEVEL: 'info', AEGIS_DATA_DIR: dataDir, PORT: String(port), JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0000',
            UPLOAD_MAX_BYTES: String(internals.fileBytes + internals.mib), ...(profile ? { NODE_OPTIONS: `--require ${Path.join(__dirname, 'cpu-profile.js')}`, CPU_PROFILE_DIR: profile } : {})
        });

        const base = `http://127.0.0.1:${port}/api/v1`;
        const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: internals.password }) });
        const token = (await login.json() as { access_token: string }).access_token;
        const chunk = Crypto.randomBytes(internals.mib);
        const pid = server.pid!;

        const aegis: number[] = [];
        const flushed: number[] = [];
        const unflushed: number[] = [];
        const growth: number[] = [];
        const user: number[] = [];
        const system: number[] = [];
        const idle = internals.rss(pid);
        for (let i = 0; i < internals.rounds; ++i) {
            const tests: string[] = [];
            for (let j = 0; j < internals.uploaders; ++j) {
                const test = await internals.call(base, token, '/tests', { title: `Upload ${i}.${j}`, technique_id: 'T1040' });
                await internals.call(base, token, `/tests/${String(test.id)}/start-execution`);
                tests.push(String(test.id));
            }

            let peak = internals.rss(pid);
            const sampler = setInterval(() => (peak = Math.max(peak, internals.rss(pid))), 20);
            const cpuBefore = internals.cpu(pid);
            const started = process.hrtime.bigint();
            const statuses = await Promise.all(tests.map((id) => internals.upload(port, token, id, chunk)));
            const seconds = Number(process.hrtime.bigint() - started) / 1e9;
            clearInterval(sampler);
            const cpuAfter = internals.cpu(pid);
            const gb = internals.uploaders * internals.fileBytes / 1024 / internals.mib;
            user.push((cpuAfter.user - cpuBefore.user) / gb);
            system.push((cpuAfter.system - cpuBefore.system) / gb);
            if (statuses.some((status) => status !== 201)) {
                throw new Error(`uploads answered ${statuses.join(', ')}`);
            }

            aegis.push(internals.uploaders * internals.fileBytes / internals.mib / seconds);
            growth.push((peak - idle) / internals.mib);
            flushed.push(await internals.bare(store, chunk, true));
            unflushed.push(await internals.bare(store, chunk, false));
        }

        // Each round's ratio pairs measurements taken seconds apart: on a shared machine the disk's pace drifts
        // between rounds far more than within one
        const ratios = aegis.map((rate, i) => rate / flushed[i]!);
        const ratio = internals.median(ratios);
        const loose = internals.median(aegis) / internals.median(unflushed);
        const rss = Math.max(...growth);
        process.stdout.write(`\n${internals.uploaders} concurrent uploads of ${internals.fileBytes / internals.mib} MB, local store, median of ${internals.rounds} alternating rounds\n`);
        process.stdout.write(`${internals.row('aegis (POST /tests/{id}/evidence)', aegis, 'MB/s')}\n`);
        process.stdout.write(`${internals.row('bare streamed write, flushed (baseline)', flushed, 'MB/s')}\n`);
        process.stdout.write(`${internals.row('bare streamed write, not flushed', unflushed, 'MB/s')}\n`);
        process.stdout.write(`  ratio ${ratio.toFixed(2)}, median of the rounds' ratios (runs: ${ratios.map((value) => value.toFixed(2)).join(', ')})   (target >= ${internals.target}: ${ratio >= internals.target ? 'met' : 'NOT met'})   vs not flushed ${loose.toFixed(2)}\n`);
        process.stdout.write(`  API CPU per GB uploaded: user ${internals.median(user).toFixed(2)} s (runs: ${user.map((value) => value.toFixed(2)).join(', ')}), system ${internals.median(system).toFixed(2)} s (runs: ${system.map((value) => value.toFixed(2)).join(', ')})\n`);
        process.stdout.write(`  API RSS idle ${(idle / internals.mib).toFixed(0)} MB, growth max ${rss.toFixed(0)} MB (runs: ${growth.map((value) => value.toFixed(0)).join(', ')})   (target < ${internals.rssTargetMb} MB: ${rss < internals.rssTargetMb ? 'met' : 'NOT met'})\n`);
    }
    finally {
        if (server) {
            await stopProcess(server);
        }

        await Fs.promises.rm(dataDir, { recursive: true, force: true });
        await database.drop();
    }
};


export const perfUploadsSuite: Suite = {
    description: 'Issue 16, uploads: 3 concurrent 100 MB evidence uploads vs a plain streamed write of the same bytes to the same store, and the API RSS growth',
    run: perfUploads
};
