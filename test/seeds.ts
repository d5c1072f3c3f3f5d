import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import * as Pg from 'pg';
import Pino from 'pino';

import { createRuntime, type Runtime } from '../server/runtime';
import type { Session } from '../server/services/auth';
import { runSeeds, type SeedContext } from '../seeds';

import { adminUrl, testDatabaseUrl } from './helpers/db';
import { makeConfig } from './helpers/server';


const lab = Lab.script();
export { lab };
const { afterEach, describe, it } = lab;


const internals = {
    admin: async (sql: string) => {

        const client = new Pg.Client({ connectionString: adminUrl });
        await client.connect();
        await client.query(sql);
        await client.end();
    },

    // A database of its own per test: the first admin is only created where there are no users at all
    runtime: async (suffix: string): Promise<{ runtime: Runtime; drop: () => Promise<void> }> => {

        const url = new URL(await testDatabaseUrl());
        const name = `${url.pathname.slice(1)}_seeds_${suffix}`;
        url.pathname = `/${name}`;
        await internals.admin(`drop database if exists "${name}" with (force)`);
        await internals.admin(`create database "${name}"`);
        const runtime = await createRuntime(makeConfig({ DATABASE_URL: url.toString() }), { name: 'aegis-seeds-test', logger: Pino({ level: 'silent' }) });
        return {
            runtime,
            drop: async () => {

                await runtime.close();
                await internals.admin(`drop database if exists "${name}" with (force)`);
            }
        };
    },

    context: (runtime: Runtime, password: string | undefined): { context: SeedContext; lines: { msg: string }[] } => {

        const lines: { msg: string }[] = [];
        const logger = Pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
        return { context: { services: runtime.services, config: { admin: { password } }, logger }, lines };
    },

    anonymous: { id: null, role: 'viewer' as const, ip: '127.0.0.1', userAgent: 'test', requestId: 'seeds' }
};


describe('Seeds', () => {

    let drop: (() => Promise<void>) | undefined;

    afterEach(async () => {

        await drop?.();
        drop = undefined;
    });

    it('create the first admin with a generated password, printed once, and nothing on later runs', async () => {

        const fresh = await internals.runtime('generated');
        drop = fresh.drop;
        const { context, lines } = internals.context(fresh.runtime, undefined);

        await Promise.all([runSeeds(context), runSeeds(context)]);              // two API instances starting at once
        await runSeeds(context);

        expect(await fresh.runtime.knex('users').select('username', 'role', 'must_change_password')).to.equal([{ username: 'admin', role: 'admin', must_change_password: true }]);
        expect(lines.length).to.equal(1);
        const password = /temporary password (\S+) /.exec(lines[0]!.msg)![1]!;
        const session = await fresh.runtime.services.auth.login(internals.anonymous, 'admin', password) as Session;
        expect(session.user.must_change_password).to.be.true();
    });

    it('create the first admin with AEGIS_ADMIN_PASSWORD, which is never printed', async () => {

        const fresh = await internals.runtime('configured');
        drop = fresh.drop;
        const { context, lines } = internals.context(fresh.runtime, 'Configured-first-password-7');

        await runSeeds(context);
        expect(lines.map((line) => line.msg)).to.equal(['First start: created user "admin" with AEGIS_ADMIN_PASSWORD (it must be changed at first login)']);
        expect((await fresh.runtime.services.auth.login(internals.anonymous, 'admin', 'Configured-first-password-7') as Session).user.username).to.equal('admin');
    });
});
