import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import * as Pg from 'pg';

import { migrate, rollbackAll } from '../../server/db';
import { migrations } from '../../migrations';

import { adminUrl } from '../helpers/db';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


describe('Migrations', () => {

    it('run once when several processes start at the same time, and roll back completely', { timeout: 60_000 }, async () => {

        const name = `aegis_test_${Date.now()}_mig${Crypto.randomBytes(2).toString('hex')}`;
        const admin = new Pg.Client({ connectionString: adminUrl });
        await admin.connect();
        await admin.query(`create database "${name}"`);
        const url = new URL(adminUrl);
        url.pathname = `/${name}`;

        try {
            const results = await Promise.all([migrate(url.toString()), migrate(url.toString()), migrate(url.toString())]);
            const applied = results.flat();
            expect(applied).to.equal(migrations.map((migration) => migration.name));

            const client = new Pg.Client({ connectionString: url.toString() });
            await client.connect();
            const { rows } = await client.query('select count(*)::int as count from knex_migrations');
            expect(rows[0].count).to.equal(migrations.length);
            const jobs = await client.query(`select to_regclass('agenda_jobs') as name`);
            expect(jobs.rows[0].name).to.equal('agenda_jobs');
            await client.end();

            await rollbackAll(url.toString());
            const after = new Pg.Client({ connectionString: url.toString() });
            await after.connect();
            const left = await after.query(`select count(*)::int as count from pg_tables where schemaname = 'public' and tablename not like 'knex%' and tablename not like 'agenda%'`);
            expect(left.rows[0].count).to.equal(0);
            await after.end();
        }
        finally {
            await admin.query(`drop database if exists "${name}" with (force)`);
            await admin.end();
        }
    });
});
