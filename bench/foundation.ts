import * as Os from 'os';
import * as Path from 'path';

import * as Pg from 'pg';

import { migrate } from '../server/db';
import { hashPassword } from '../server/services/passwords';

import { compare, createDatabase, freePort, load, startApi, startProcess, stopProcess } from './lib';
import type { Suite } from './suites';


export const foundation: Suite = {
    description: 'GET /auth/me and GET /users?limit=50 (1,000 users, Bearer JWT) against bare hapi + pg running the same SQL',
    run: async () => {

        const database = await createDatabase(`aegis_bench_foundation_${process.pid}`);
        const processes = [];
        try {
            await migrate(database.url);

            // 1,000 users sharing one hash: hashing each would only measure argon2
            const client = new Pg.Client({ connectionString: database.url });
            await client.connect();
            const hash = await hashPassword('Bench-password-4242');
            await client.query(`insert into users (username, role, password_hash, must_change_password)
                select 'user-' || lpad(i::text, 4, '0'), (array['admin','red_lead','blue_lead','red_tech','blue_tech','viewer'])[1 + i % 6], $1, false
                from generate_series(1, 1000) as i`, [hash]);
            await client.end();

            const env = { DATABASE_URL: database.url, LOG_LEVEL: 'warn', AEGIS_DATA_DIR: Path.join(Os.tmpdir(), `aegis-bench-${process.pid}`), JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0000' };

            // Twice: revocations in PostgreSQL (the embedded default: the target) and in Redis, where both
            // sides also ask Redis. One pair of servers at a time; Aegis logs every request as in production.
            for (const [mode, extra] of [['PostgreSQL revocations', {}], ['Redis revocations', { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/9' }]] as const) {
                const bare = { port: await freePort() };
                const bareProcess = await startProcess('bench/bare-server.js', { ...env, ...extra, PORT: String(bare.port) }, /bare listening/);
                processes.push(bareProcess);
                const aegisPort = await freePort();
                const aegis = await startApi({ ...env, ...extra, PORT: String(aegisPort), LOG_LEVEL: 'info' });
                processes.push(aegis);

                const login = await fetch(`http://127.0.0.1:${aegisPort}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'user-0006', password: 'Bench-password-4242' }) });
                const session = await login.json() as { access_token: string; user: { id: string; role: string } };
                const { jti } = JSON.parse(Buffer.from(session.access_token.split('.')[1]!, 'base64url').toString()) as { jti: string };
                const headers = { authorization: `Bearer ${session.access_token}` };
                const aegisUrl = (path: string) => `http://127.0.0.1:${aegisPort}/api/v1${path}`;
                const bareUrl = (path: string) => `http://127.0.0.1:${bare.port}/bare${path}/${session.user.id}/${jti}`;

                // Warm both up (connection pools, JIT) before measuring
                await load(aegisUrl('/auth/me'), { headers, duration: 2 });
                await load(bareUrl('/me'), { duration: 2 });

                await compare(`GET /api/v1/auth/me (${mode})`, () => load(aegisUrl('/auth/me'), { headers }), () => load(bareUrl('/me')), { target: 0.7 });
                await compare(`GET /api/v1/users?limit=50 (${mode})`, () => load(aegisUrl('/users?limit=50'), { headers }), () => load(bareUrl('/users')), { target: 0.7 });
                await stopProcess(aegis);
                await stopProcess(bareProcess);
            }
        }
        finally {
            for (const child of processes) {
                await stopProcess(child);
            }

            await database.drop();
        }
    }
};
