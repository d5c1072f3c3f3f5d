import * as Crypto from 'crypto';
import * as Os from 'os';
import * as Path from 'path';

import type * as Hapi from '@hapi/hapi';
import Pino from 'pino';

import { OutboundHttp } from '../../integrations/http';
import { createRedis, type Redis } from '../../integrations/redis';
import { createObjectStore } from '../../integrations/storage';
import { loadConfig, type Config } from '../../server/config';
import { createKnex, type Knex } from '../../server/db';
import { AgendaQueue, createAgenda } from '../../server/jobs';
import { Metrics } from '../../server/metrics';
import { User } from '../../server/models';
import { Role, type Actor } from '../../server/policy';
import { serviceDeps } from '../../server/runtime';
import { createServer } from '../../server/server';
import { createServices, type Services } from '../../server/services';
import { consumers } from '../../worker/consumers';
import { EventRelay } from '../../worker/relay';

import { testDatabaseUrl } from './db';


export const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/7';

export const origin = 'https://aegis.example.test';


export interface TestContext {
    server: Hapi.Server;
    services: Services;
    knex: Knex;
    queue: AgendaQueue;
    redis: Redis | undefined;
    config: Config;
    relay: EventRelay;                  // the worker's relay, not started: tests drain it when they need its effects
    metrics: Metrics;
    users: Record<Role, User>;
    as: (role: Role) => { strategy: string; credentials: Hapi.AuthCredentials };
    actor: (role: Role) => Actor;
    createUser: (role: Role, overrides?: Partial<{ username: string; password: string; must_change_password: boolean }>) => Promise<User & { password: string }>;
    stop: () => Promise<void>;
}


export const password = 'Correct-Horse-Battery-9';


export const makeConfig = (env: Record<string, string> = {}): Config => loadConfig({
    NODE_ENV: 'test',
    AEGIS_DATA_DIR: Path.join(Os.tmpdir(), `aegis-test-${process.pid}`),
    JWT_SECRET: 'test-secret-test-secret-test-secret-0123456789',
    CORS_ORIGINS: origin,
    LOG_LEVEL: 'silent',
    ...env
});


// A real server on the run's database and the real Redis: what the API process builds, minus listen().
export const init = async (options: { redis?: boolean | string; env?: Record<string, string> } = {}): Promise<TestContext> => {

    const url = await testDatabaseUrl();
    const config = makeConfig({ DATABASE_URL: url, ...options.env });
    const logger = Pino({ level: 'silent' });
    const knex = createKnex({ url });
    const redis = options.redis === false ? undefined : createRedis(typeof options.redis === 'string' ? options.redis : redisUrl);
    const storage = createObjectStore(config.storage);
    await storage.init();

    const { agenda, close } = await createAgenda({ databaseUrl: url, name: 'aegis-test' });
    const queue = new AgendaQueue(agenda, close);
    const services = createServices(serviceDeps(config, { knex, queue, redis, storage, outbound: new OutboundHttp(config.outbound), version: 'test' }));

    const metrics = new Metrics('api');
    metrics.watch({ knex, relayStatus: () => services.events.status() });
    const server = await createServer({ config, services, logger, version: 'test', metrics });
    const relay = new EventRelay({ knex, consumers: consumers(services) });

    const createUser: TestContext['createUser'] = async (role, overrides = {}) => {

        const username = overrides.username ?? `${role.replace('_', '')}-${Crypto.randomBytes(4).toString('hex')}`;
        const chosen = overrides.password ?? password;
        const user = await services.users.create({ id: null, role: 'system' }, { username, password: chosen, role });
        const updated = await user.$query(knex).patchAndFetch({ must_change_password: overrides.must_change_password ?? false });
        return Object.assign(updated, { password: chosen });
    };

    const users = {} as Record<Role, User>;
    for (const role of Object.values(Role)) {
        users[role] = await createUser(role);
    }

    return {
        server,
        services,
        knex,
        queue,
        redis,
        config,
        relay,
        metrics,
        users,
        createUser,
        as: (role) => ({ strategy: 'jwt-bearer', credentials: { user: users[role], scope: [role], app: {} } }),
        actor: (role) => ({ id: users[role].id, role }),
        stop: async () => {

            await server.stop();
            await queue.stop();
            redis?.disconnect();
            await knex.destroy();
        }
    };
};


// Logs in through the API and answers the bearer header.
export const login = async (server: Hapi.Server, username: string, secret = password): Promise<{ authorization: string; token: string }> => {

    const res = await server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password: secret } });
    if (res.statusCode !== 200) {
        throw new Error(`login failed: ${res.statusCode} ${res.payload}`);
    }

    const token = (res.result as { access_token: string }).access_token;
    return { authorization: `Bearer ${token}`, token };
};
