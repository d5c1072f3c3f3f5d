import * as Http from 'http';
import * as Net from 'net';
import * as Os from 'os';
import * as Path from 'path';
import * as V8 from 'v8';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { testDatabaseUrl } from './helpers/db';
import { spawnEntry } from './helpers/processes';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


const internals = {
    freePort: () => new Promise<number>((resolve) => {

        const server = Net.createServer().listen(0, '127.0.0.1', () => {

            const { port } = server.address() as Net.AddressInfo;
            server.close(() => resolve(port));
        });
    }),

    request: (port: number, options: { method: string; path: string; body?: string }) => new Promise<{ status: number; body: string }>((resolve, reject) => {

        const req = Http.request({ host: '127.0.0.1', port, agent: false, method: options.method, path: options.path, headers: { 'content-type': 'application/json' } }, (res) => {

            let body = '';
            res.on('data', (chunk) => (body += chunk));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
        });

        req.on('error', reject);
        req.end(options.body);
    })
};


describe('The API process', () => {

    it('refuses a bad configuration with a message that names the variable', { timeout: 30_000 }, async () => {

        const api = spawnEntry('server/index.js', { PORT: 'not-a-port', JWT_SECRET: 'secret-value-that-must-not-leak-0123456789' });
        expect(await api.exit()).to.equal(78);
    });

    it('creates the first admin once, serves, and on SIGTERM finishes in-flight requests and exits 0', { timeout: 60_000 }, async () => {

        // A database of its own: the first-start bootstrap only runs on an empty users table
        const base = new URL(await testDatabaseUrl());
        const Pg = await import('pg');
        const adminUrl = new URL(base.toString());
        adminUrl.pathname = '/postgres';
        const admin = new Pg.Client({ connectionString: adminUrl.toString() });
        base.pathname = `${base.pathname}_boot`;
        await admin.connect();
        await admin.query(`drop database if exists "${base.pathname.slice(1)}"`);
        await admin.query(`create database "${base.pathname.slice(1)}"`);
        await admin.end();

        const port = await internals.freePort();
        const env = { DATABASE_URL: base.toString(), PORT: String(port), AEGIS_DATA_DIR: Path.join(Os.tmpdir(), `aegis-api-test-${process.pid}`), AEGIS_ADMIN_PASSWORD: 'First-start-password-42', LOGIN_MAX_FAILURES_PER_PAIR: '10' };
        const api = spawnEntry('server/index.js', env);
        await api.waitFor((line) => line.msg === 'api listening');
        expect(api.lines().some((line) => /created user "admin" with AEGIS_ADMIN_PASSWORD/.test(line.msg))).to.be.true();

        // Started by hand without the heap bound that npm start gives it, the API says so and what to do (where V8's
        // default, sized from the machine's memory, is above the bound, as on every machine this runs on)
        expect(V8.getHeapStatistics().heap_size_limit / 1024 / 1024).to.be.above(1024 + 128);
        expect(api.lines().find((line) => line.level === 40 && /without its heap bound/.test(line.msg))).to.include({ api_heap_mb: 1024, msg: 'the API runs without its heap bound: start it with npm start, or with node --max-old-space-size=1024 --initial-old-space-size=96 (docs/performance.md#memory)' });
        expect(JSON.stringify(api.lines())).to.not.include('First-start-password-42');

        const login = await internals.request(port, { method: 'POST', path: '/api/v1/auth/login', body: JSON.stringify({ username: 'admin', password: 'First-start-password-42' }) });
        expect(login.status).to.equal(200);
        expect(JSON.parse(login.body).user.must_change_password).to.be.true();
        expect(JSON.stringify(api.lines())).to.not.include(JSON.parse(login.body).access_token);

        // Requests in flight when the signal arrives still get their answer (all 401: the throttle allows 10 from here)
        const inflight = Array.from({ length: 8 }, () => internals.request(port, { method: 'POST', path: '/api/v1/auth/login', body: JSON.stringify({ username: 'admin', password: 'Wrong-password-000' }) }));
        await new Promise((resolve) => setTimeout(resolve, 50));
        api.child.kill('SIGTERM');
        const answers = await Promise.all(inflight);
        expect(answers.every((answer) => answer.status === 401)).to.be.true();
        expect(await api.exit()).to.equal(0);

        // A second start on the same database creates no second admin
        const again = spawnEntry('server/index.js', { ...env, PORT: String(await internals.freePort()) });
        await again.waitFor((line) => line.msg === 'api listening');
        expect(again.lines().some((line) => /First start/.test(line.msg ?? ''))).to.be.false();
        again.child.kill('SIGTERM');
        expect(await again.exit()).to.equal(0);
    });
});
