import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import Knex from 'knex';
import * as Pg from 'pg';

import { migrate, rollbackAll } from '../../server/db';
import { migrations } from '../../migrations';

import { adminUrl } from '../helpers/db';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


const internals = {
    // The migrations up to and including `last`: a database as an earlier version left it
    upTo: (last: string) => ({
        getMigrations: () => Promise.resolve(migrations.slice(0, migrations.findIndex((migration) => migration.name === last) + 1)),
        getMigrationName: (migration: { name: string }) => migration.name,
        getMigration: (migration: typeof migrations[number]) => Promise.resolve(migration)
    }),

    // An empty database of its own, and how to drop it
    database: async (tag: string) => {

        const name = `aegis_test_${Date.now()}_${tag}${Crypto.randomBytes(2).toString('hex')}`;
        const admin = new Pg.Client({ connectionString: adminUrl });
        await admin.connect();
        await admin.query(`create database "${name}"`);
        const url = new URL(adminUrl);
        url.pathname = `/${name}`;
        return {
            url,
            drop: async () => {

                await admin.query(`drop database if exists "${name}" with (force)`);
                await admin.end();
            }
        };
    }
};


describe('Migrations', () => {

    it('run once when several processes start at the same time, and roll back completely', { timeout: 60_000 }, async () => {

        const { url, drop } = await internals.database('mig');
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
            await drop();
        }
    });

    it('fills the root of every retest chain an earlier version left, and keeps it for the retests written after', { timeout: 60_000 }, async () => {

        const { url, drop } = await internals.database('chains');
        const knex = Knex({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 2 } });
        try {
            await knex.migrate.latest({ migrationSource: internals.upTo('20261208140000_second_factors') });
            await knex('techniques').insert({ mitre_id: 'T1', domain: 'enterprise-attack', name: 'One' });
            const insert = async (title: string, parent: string | null) => (await knex('tests').insert({ title, technique_id: 'T1', retest_of_id: parent }).returning('id'))[0].id as string;

            // a <- b <- c, a <- d (a branch), e alone
            const a = await insert('a', null);
            const b = await insert('b', a);
            const c = await insert('c', b);
            await insert('d', a);
            await insert('e', null);

            await knex.migrate.latest({ migrationSource: internals.upTo('20261209120000_retest_chains') });
            await insert('f', c);                               // written after: the trigger
            const rows = await knex('tests').orderBy('title').select('title', 'retest_root_id');
            expect(rows.map((row) => [row.title, row.retest_root_id])).to.equal([['a', null], ['b', a], ['c', a], ['d', a], ['e', null], ['f', a]]);
        }
        finally {
            await knex.destroy();
            await drop();
        }
    });

    it('stores the sub-technique roll-up of the techniques an earlier version left with their own status only', { timeout: 60_000 }, async () => {

        const { url, drop } = await internals.database('rollup');
        const knex = Knex({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 2 } });
        try {
            await knex.migrate.latest({ migrationSource: internals.upTo('20261206000300_integrity') });

            // T1 tested itself (logged) with two sub-techniques, one covered; T2 untested with one missed and one untested
            await knex('techniques').insert([
                { mitre_id: 'T1', domain: 'enterprise-attack', name: 'One' }, { mitre_id: 'T2', domain: 'enterprise-attack', name: 'Two' },
                { mitre_id: 'T3', domain: 'enterprise-attack', name: 'Three' }
            ]);
            await knex('techniques').insert([['T1.001', 'T1'], ['T1.002', 'T1'], ['T2.001', 'T2'], ['T2.002', 'T2'], ['T2.003', 'T2']].map(([id, parent]) => ({ mitre_id: id, domain: 'enterprise-attack', name: id, parent_id: parent, is_subtechnique: true })));
            await knex('techniques').where('mitre_id', 'T2.003').update({ deprecated: true });
            const at = new Date();
            for (const [technique, outcome, status] of [['T1', 'logged', 'partial'], ['T1.001', 'alerted', 'covered'], ['T2.001', 'not_detected', 'not_covered'], ['T2.003', 'prevented', 'covered'], ['T3', 'prevented', 'covered']]) {
                const [test] = await knex('tests').insert({ title: technique, technique_id: technique, state: 'validated', detection_outcome: outcome, validated_at: at, red_approved: true, red_validated_at: at, blue_approved: true, blue_validated_at: at }).returning('id');
                await knex('techniques').where('mitre_id', technique).update({ coverage_status: status, latest_validated_test_id: test.id, latest_validated_at: at });
            }

            await knex.migrate.latest({ migrationSource: internals.upTo('20261206000301_coverage_rollup') });
            const rows = await knex('techniques').orderBy('mitre_id').select('mitre_id', 'own_coverage_status', 'own_score', 'coverage_status', 'score');
            expect(rows.map((row) => [row.mitre_id, row.own_coverage_status, row.own_score, row.coverage_status, row.score])).to.equal([
                ['T1', 'partial', 40, 'partial', 57],                   // members 40, 90 and 40 (T1.002 takes T1's result): 56.7
                ['T1.001', 'covered', 90, 'covered', 90],
                ['T1.002', 'untested', null, 'untested', null],
                ['T2', 'untested', null, 'not_covered', 0],             // T2.003 is deprecated: not a member
                ['T2.001', 'not_covered', 0, 'not_covered', 0],
                ['T2.002', 'untested', null, 'untested', null],
                ['T2.003', 'covered', 100, 'covered', 100],
                ['T3', 'covered', 100, 'covered', 100]
            ]);
        }
        finally {
            await knex.destroy();
            await drop();
        }
    });
});
