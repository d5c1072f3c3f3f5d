import * as ChildProcess from 'child_process';
import * as Net from 'net';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import * as Crypto from 'crypto';

import * as Jwt from '@hapi/jwt';
import Pino from 'pino';

import { OutboundHttp } from '../integrations/http';
import { createObjectStore } from '../integrations/storage';
import { createKnex } from '../server/db';
import type { Queue } from '../server/jobs';
import { serviceDeps } from '../server/runtime';
import { createServer } from '../server/server';
import { createServices } from '../server/services';

import { init, login, makeConfig, type TestContext } from './helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    freePort: () => new Promise<number>((resolve, reject) => {

        const server = Net.createServer();
        server.listen(0, '127.0.0.1', () => {

            const { port } = server.address() as Net.AddressInfo;
            server.close(() => resolve(port));
        });
        server.on('error', reject);
    }),

    // A Redis of the test's own, so that it can be stopped and started again without touching the machine's
    startRedis: async (port: number) => {

        const child = ChildProcess.spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
        for (let i = 0; i < 50; ++i) {
            const open = await new Promise<boolean>((resolve) => {

                const socket = Net.connect(port, '127.0.0.1', () => {

                    socket.end();
                    resolve(true);
                });
                socket.on('error', () => resolve(false));
            });

            if (open) {
                return child;
            }

            await new Promise((resolve) => setTimeout(resolve, 100));
        }

        throw new Error('redis-server did not start');
    },

    stop: (child: ChildProcess.ChildProcess) => new Promise((resolve) => {

        child.once('exit', resolve);
        child.kill('SIGKILL');
    })
};


describe('Resilience: Redis outage (SEC-04)', () => {

    let context: TestContext;
    let port: number;
    let redis: ChildProcess.ChildProcess;

    before(async () => {

        port = await internals.freePort();
        redis = await internals.startRedis(port);
        context = await init({ redis: `redis://127.0.0.1:${port}/0` });
    });

    after(async () => {

        await context.stop();
        redis.kill('SIGKILL');
    });

    it('fails Bearer JWT requests closed and fast with a generic 503, keeps API keys working, and recovers without a restart', async () => {

        const user = await context.createUser('blue_lead');
        const session = await login(context.server, user.username);
        const key = JSON.parse((await context.server.inject({ method: 'POST', url: '/api/v1/api-keys', headers: { authorization: session.authorization }, payload: { name: 'ops', scope: 'read' } })).payload).key;

        await internals.stop(redis);

        const start = Date.now();
        const down = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: session.authorization } });
        expect(Date.now() - start).to.be.below(1000);
        expect(down.statusCode).to.equal(503);
        expect(down.headers['retry-after']).to.equal('1');
        expect(down.payload).to.not.include('ECONNREFUSED');
        expect(down.payload).to.not.include(String(port));
        expect(JSON.parse(down.payload)).to.include({ statusCode: 503, message: 'Authentication is temporarily unavailable' });

        const withKey = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${key}` } });
        expect(withKey.statusCode).to.equal(200);

        const loginDown = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password: 'whatever-it-is-123' } });
        expect(loginDown.statusCode).to.equal(503);

        const health = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/health' })).payload);
        expect(health.dependencies.redis.status).to.equal('down');

        redis = await internals.startRedis(port);
        let recovered = 0;
        for (let i = 0; i < 50 && recovered !== 200; ++i) {
            await new Promise((resolve) => setTimeout(resolve, 200));
            recovered = (await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: session.authorization } })).statusCode;
        }

        expect(recovered).to.equal(200);
    });
});


describe('Resilience: PostgreSQL unreachable', () => {

    it('answers a generic 503 with Retry-After to a valid token when the database cannot be reached, and no 5xx text', { timeout: 30_000 }, async () => {

        const config = makeConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
        const knex = createKnex({ url: config.database.url! });
        const queue: Queue = { enqueue: () => Promise.resolve(''), enqueueDebounced: () => Promise.resolve(''), pending: () => Promise.resolve(null), list: () => Promise.resolve([]), stop: () => Promise.resolve() };
        const services = createServices(serviceDeps(config, { knex, queue, storage: createObjectStore(config.storage), outbound: new OutboundHttp(config.outbound), version: 'test' }));

        const server = await createServer({ config, services, logger: Pino({ level: 'silent' }), version: 'test' });
        const now = Math.floor(Date.now() / 1000);
        const token = Jwt.token.generate({ sub: Crypto.randomUUID(), role: 'viewer', jti: Crypto.randomUUID(), iat: now, exp: now + 600, ver: 0, aud: config.jwt.audience, iss: config.jwt.issuer }, { key: config.jwt.secret!, algorithm: 'HS256' }, { iat: false });

        const res = await server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
        expect(res.statusCode).to.equal(503);
        expect(res.headers['retry-after']).to.exist();
        expect(res.payload).to.not.include('ECONNREFUSED');

        const health = await server.inject({ method: 'GET', url: '/api/v1/system/health' });
        expect(health.statusCode).to.equal(503);
        expect(JSON.parse(health.payload).dependencies.database.status).to.equal('down');

        await server.stop();
        await knex.destroy();
    });
});

