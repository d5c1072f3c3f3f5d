import * as Crypto from 'crypto';

import * as Pg from 'pg';

import { migrate } from '../../server/db';


const internals: { url?: Promise<string> } = {};


export const adminUrl = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';


// One fresh database per test run, migrated once; scripts share it and create their own fixtures.
export const testDatabaseUrl = (): Promise<string> => {

    internals.url ??= (async () => {

        const name = `aegis_test_${Date.now()}_${Crypto.randomBytes(3).toString('hex')}`;
        const admin = new Pg.Client({ connectionString: adminUrl });
        await admin.connect();
        try {
            // Databases of earlier runs, by the time in their name: old enough that no run can still be using them
            const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname like 'aegis\\_test\\_%' and datname not in (select datname from pg_stat_activity where datname is not null)`);
            for (const row of rows) {
                const created = Number(/^aegis_test_(\d+)_/.exec(row.datname)?.[1] ?? Date.now());
                if (Date.now() - created > 6 * 3600_000) {
                    await admin.query(`drop database if exists "${row.datname}"`).catch(() => undefined);
                }
            }

            await admin.query(`create database "${name}"`);
        }
        finally {
            await admin.end();
        }

        const url = new URL(adminUrl);
        url.pathname = `/${name}`;
        await migrate(url.toString());
        return url.toString();
    })();

    return internals.url;
};
