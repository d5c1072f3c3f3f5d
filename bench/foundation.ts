import * as Os from 'os';
import * as Path from 'path';

import * as Pg from 'pg';

import { migrate } from '../server/db';
import { hashPassword } from '../server/services/passwords';

import { createDatabase, freePort, load, printComparison, startProcess, stopProcess } from './lib';
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

            const barePort = await freePort();
            const env = { DATABASE_URL: database.url, LOG_LEVEL: 'warn', AEGIS_DATA_DIR: Path.join(Os.tmpdir(), `aegis-bench-${process.pid}`), JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0000' };
            processes.push(await startProcess('bench/bare-server.js', { ...env, PORT: String(barePort) }, /bare listening/));

            // Aegis twice: revocations in PostgreSQL (the embedded default) and in Redis; one server at a time
            for (const [mode, extra] of [['PostgreSQL revocations', {}], ['Redis revocations', { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/9' }]] as const) {
                const aegisPort = await freePort();
                const aegis = await startProcess('server/index.js', { ...env, ...extra, PORT: String(aegisPort), LOG_LEVEL: 'info' }, /api listening/);
                processes.push(aegis);

                const login = await fetch(`http://127.0.0.1:${aegisPort}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'user-0006', password: 'Bench-password-4242' }) });
                const session = await login.json() as { access_token: string; user: { id: string; role: string } };
                const headers = { authorization: `Bearer ${session.access_token}` };

                // Warm both up (connection pools, JIT) before measuring
                await load(`http://127.0.0.1:${aegisPort}/api/v1/auth/me`, { headers, duration: 2 });
                await load(`http://127.0.0.1:${barePort}/bare/me/${session.user.id}`, { duration: 2 });

                printComparison(`GET /api/v1/auth/me (${mode})`, await load(`http://127.0.0.1:${aegisPort}/api/v1/auth/me`, { headers }), await load(`http://127.0.0.1:${barePort}/bare/me/${session.user.id}`), 0.7);
                printComparison(`GET /api/v1/users?limit=50 (${mode})`, await load(`http://127.0.0.1:${aegisPort}/api/v1/users?limit=50`, { headers }), await load(`http://127.0.0.1:${barePort}/bare/users`), 0.7);
                await stopProcess(aegis);
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
