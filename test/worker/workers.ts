import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { createAgenda } from '../../server/jobs';

import { testDatabaseUrl } from '../helpers/db';
import { spawnEntry, type Spawned } from '../helpers/processes';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Worker processes', () => {

    let url: string;
    const workers: Spawned[] = [];

    before(async () => {

        url = await testDatabaseUrl();
    });

    after(() => {

        for (const worker of workers) {
            worker.child.kill('SIGKILL');
        }
    });

    it('runs every job exactly once across two workers, beats its heartbeat, and drains on SIGTERM', { timeout: 120_000 }, async () => {

        const env = { DATABASE_URL: url, LOG_LEVEL: 'info', AEGIS_DATA_DIR: Path.join(Os.tmpdir(), `aegis-worker-test-${process.pid}`), JWT_SECRET: 'worker-test-secret-worker-test-secret-0123', WORKER_HEARTBEAT_SECONDS: '1' };
        workers.push(spawnEntry('worker/index.js', env), spawnEntry('worker/index.js', env));
        await Promise.all(workers.map((worker) => worker.waitFor((line) => line.msg === 'worker started')));

        const { agenda, close } = await createAgenda({ databaseUrl: url, name: 'worker-test' });
        await agenda.start();
        const ids: string[] = [];
        for (let i = 0; i < 30; ++i) {
            const job = await agenda.now('system.prune-revocations', {});
            ids.push(String(job.attrs._id));
        }

        const done = () => workers.flatMap((worker) => worker.lines()).filter((line) => line.msg === 'job succeeded' && ids.includes(line.id));
        const deadline = Date.now() + 60_000;
        while (done().length < ids.length && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 100));
        }

        const starts = workers.flatMap((worker) => worker.lines()).filter((line) => line.msg === 'job started' && ids.includes(line.id));
        expect(done().length).to.equal(ids.length);
        expect(starts.length).to.equal(ids.length);
        expect(new Set(starts.map((line) => line.id)).size).to.equal(ids.length);
        await close();

        const beats = await import('../../server/models').then(async ({ WorkerHeartbeat }) => {

            const Knex = (await import('knex')).default;
            const knex = Knex({ client: 'pg', connection: url });
            const rows = await WorkerHeartbeat.query(knex);
            await knex.destroy();
            return rows;
        });

        expect(beats.length).to.be.at.least(2);

        for (const worker of workers) {
            worker.child.kill('SIGTERM');
            expect(await worker.exit()).to.equal(0);
            expect(worker.lines().some((line) => line.msg === 'worker drained')).to.be.true();
        }
    });
});
