import Knex, { type Knex as KnexType } from 'knex';
import { Model } from 'objection';
import * as Pg from 'pg';

import { migrations } from '../migrations';

import { LockKey } from './locks';


// PostgreSQL returns bigint (count(*), sums) as strings by default; every count Aegis reads fits in a JS number.
Pg.types.setTypeParser(Pg.types.builtins.INT8, (value) => Number(value));
Pg.types.setTypeParser(Pg.types.builtins.NUMERIC, (value) => Number(value));


const internals = {
    // Agenda's tables, created under the same lock: its own "create if not exists" races when two processes start
    // at once. The SQL comes from the backend itself, so it follows the installed version.
    ensureJobSchema: async (client: Pg.Client) => {

        const Schema = await import('@agendajs/postgres-backend');
        const table = 'agenda_jobs';
        const statements = [
            Schema.getCreateTableSQL(table),
            ...(Schema as unknown as { getMigrationSQL?: (name: string) => string[] }).getMigrationSQL?.(table) ?? [],
            ...Schema.getCreateIndexesSQL(table),
            Schema.getUpdateTimestampTriggerSQL(table),
            Schema.getCreateLogsTableSQL('agenda_logs'),
            ...Schema.getCreateLogsIndexesSQL('agenda_logs')
        ];

        for (const statement of statements) {
            await client.query(statement);
        }
    }
};


export type Knex = KnexType;


export const createKnex = (options: { url: string; poolMax?: number; onPoolError?: (err: Error) => void; onWarning?: (message: string) => void }): Knex => {

    const knex = Knex({
        client: 'pg',
        connection: { connectionString: options.url, application_name: 'aegis' },
        pool: {
            min: 0,
            max: options.poolMax ?? 10,
            afterCreate: (connection: Pg.Client, done: (err: Error | null, connection: Pg.Client) => void) => {

                // An idle connection dropped by the server must not crash the process (node-postgres emits 'error').
                connection.on('error', (err) => options.onPoolError?.(err));
                done(null, connection);
            }
        },
        acquireConnectionTimeout: 5000,
        // knex writes its warnings (a failed connection attempt, ...) to the console unless told where they go
        log: {
            warn: (message: unknown) => options.onWarning?.(String(message)),
            error: (message: unknown) => options.onWarning?.(String(message)),
            deprecate: (method: string, alternative: string) => options.onWarning?.(`${method} is deprecated, use ${alternative}`),
            debug: () => undefined
        }
    });

    Model.knex(knex);
    return knex;
};


const migrationSource: KnexType.MigrationSource<typeof migrations[number]> = {
    getMigrations: () => Promise.resolve(migrations),
    getMigrationName: (migration) => migration.name,
    getMigration: (migration) => Promise.resolve(migration)
};


// Several API instances may start at once: the advisory lock makes the others wait instead of failing on knex's own lock table.
export const migrate = async (url: string): Promise<string[]> => {

    const lock = new Pg.Client({ connectionString: url, application_name: 'aegis-migrate' });
    await lock.connect();
    const knex = Knex({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    try {
        await lock.query('select pg_advisory_lock($1)', [LockKey.migrations]);
        const [, applied] = await knex.migrate.latest({ migrationSource }) as [number, string[]];
        await internals.ensureJobSchema(lock);
        return applied;
    }
    finally {
        await lock.query('select pg_advisory_unlock($1)', [LockKey.migrations]).catch(() => undefined);
        await lock.end();
        await knex.destroy();
    }
};


export const rollbackAll = async (url: string): Promise<void> => {

    const knex = Knex({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
    try {
        await knex.migrate.rollback({ migrationSource }, true);
    }
    finally {
        await knex.destroy();
    }
};
