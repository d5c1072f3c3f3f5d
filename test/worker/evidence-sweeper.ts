import * as ChildProcess from 'child_process';
import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';
import { Readable } from 'stream';
import * as Util from 'util';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { LocalFileStore } from '../../integrations/storage';
import { createKnex } from '../../server/db';
import { createAgenda } from '../../server/jobs';

import { testDatabaseUrl } from '../helpers/db';
import { distDir, spawnEntry, type Spawned } from '../helpers/processes';
import { sharedDir } from '../helpers/reference';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Worker jobs of the test lifecycle', () => {

    let url: string;
    let dataDir: string;
    let worker: Spawned | undefined;

    before(async () => {

        url = await testDatabaseUrl();
        dataDir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-sweeper-'));
    });

    after(async () => {

        worker?.child.kill('SIGKILL');
        await Fs.promises.rm(dataDir, { recursive: true, force: true });
    });

    it('sweeps orphaned evidence objects and imports atomics in the worker process', { timeout: 120_000 }, async () => {

        const store = new LocalFileStore({ root: Path.join(dataDir, 'objects') });
        await store.init();
        const orphan = `evidence/${Crypto.randomUUID()}/${Crypto.randomUUID()}`;
        const fresh = `evidence/${Crypto.randomUUID()}/${Crypto.randomUUID()}`;
        await store.put(orphan, Readable.from([Buffer.from('orphan')]), { contentType: 'text/plain' });
        await store.put(fresh, Readable.from([Buffer.from('in flight')]), { contentType: 'text/plain' });
        const old = new Date(Date.now() - 3 * 3600_000);
        await Fs.promises.utimes(Path.join(dataDir, 'objects', orphan), old, old);

        const atomics = Path.join(dataDir, 'atomics');
        await Fs.promises.cp(Path.join(sharedDir, 'data', 'atomic-red-team', 'atomics', 'T1003.001'), Path.join(atomics, 'T1003.001'), { recursive: true });

        worker = spawnEntry('worker/index.js', { DATABASE_URL: url, LOG_LEVEL: 'info', AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'sweeper-test-secret-sweeper-test-secret-0123', ATTACK_SOURCE: Path.join(dataDir, 'none.json'), D3FEND_SOURCE: Path.join(dataDir, 'none.json') });

        // The worker's log is buffered: follow the jobs themselves
        const { agenda, close } = await createAgenda({ databaseUrl: url, name: 'sweeper-test' });
        await agenda.start();
        const sweep = await agenda.now('evidence.sweep', {});
        const importing = await agenda.now('test-templates.import-atomics', { dir: atomics });
        const finished = async (id: string) => {

            const deadline = Date.now() + 60_000;
            while (Date.now() < deadline) {
                const { jobs } = await agenda.queryJobs({ id });
                if (jobs[0]?.lastFinishedAt) {
                    return jobs[0];
                }

                await new Promise((resolve) => setTimeout(resolve, 200));
            }

            throw new Error(`job ${id} did not finish`);
        };

        expect((await finished(String(sweep.attrs._id))).failReason ?? null).to.be.null();
        expect(await store.exists(orphan)).to.be.false();
        expect(await store.exists(fresh)).to.be.true();

        expect((await finished(String(importing.attrs._id))).failReason ?? null).to.be.null();
        const knex = createKnex({ url });
        expect(Number((await knex('test_templates').where('source', 'atomic').whereRaw('technique_ids @> ?::text[]', [['T1003.001']]).count('* as n').first())!.n)).to.be.above(5);
        await knex.destroy();
        await close();

        worker.child.kill('SIGTERM');
        expect(await worker.exit()).to.equal(0);
        worker = undefined;
    });

    it('imports the whole Atomic Red Team set through the CLI, hundreds of procedures, idempotently', { timeout: 120_000 }, async () => {

        const run = () => Util.promisify(ChildProcess.execFile)(process.execPath, [Path.join(distDir, 'bin', 'aegis.js'), 'import-atomics', Path.join(sharedDir, 'data', 'atomic-red-team', 'atomics')], {
            env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'sweeper-test-secret-sweeper-test-secret-0123', LOG_LEVEL: 'warn' }
        });

        const first = await run();
        const match = /Imported (\d+) atomic tests of (\d+) techniques/.exec(first.stdout);
        expect(match).to.exist();
        expect(Number(match![1])).to.be.above(300);
        expect(Number(match![2])).to.be.above(300);

        const knex = createKnex({ url });
        const count = async () => Number((await knex('test_templates').where('source', 'atomic').count('* as n').first())!.n);
        const counted = await count();
        expect(counted).to.be.at.least(Number(match![1]));
        expect((await run()).stdout).to.equal(first.stdout);
        expect(await count()).to.equal(counted);
        await knex.destroy();

        const usage = await Util.promisify(ChildProcess.execFile)(process.execPath, [Path.join(distDir, 'bin', 'aegis.js'), 'import-atomics'], { env: { PATH: process.env.PATH ?? '' } }).catch((err) => err);
        expect(usage.code).to.equal(64);
    });
});
