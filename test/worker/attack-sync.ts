import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { createAgenda } from '../../server/jobs';
import { defineAttackJobs, scheduleAttackJobs } from '../../worker/jobs/attack';

import { testDatabaseUrl } from '../helpers/db';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('attack-sync job', () => {

    let context: TestContext;

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('POST /system/sync answers 202 with the job id, and the same job while it is queued (admin only)', async () => {

        const first = await context.server.inject({ method: 'POST', url: '/api/v1/system/sync', auth: context.as('admin') });
        expect(first.statusCode).to.equal(202);
        const body = JSON.parse(first.payload);
        expect(body.job_id).to.be.a.string();
        expect(['queued', 'already_queued']).to.include(body.status);

        const second = JSON.parse((await context.server.inject({ method: 'POST', url: '/api/v1/system/sync', auth: context.as('admin') })).payload);
        expect(second).to.equal({ job_id: body.job_id, status: 'already_queued' });

        const scheduler = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/scheduler', auth: context.as('admin') })).payload);
        expect(scheduler.items.find((job: { id: string }) => job.id === body.job_id)).to.include({ name: 'attack-sync' });
        expect((await context.server.inject({ method: 'POST', url: '/api/v1/system/sync', auth: context.as('blue_lead') })).statusCode).to.equal(403);
    });

    it('imports ATT&CK then D3FEND from the configured sources, reporting progress, and schedules itself weekly', { timeout: 60_000 }, async () => {

        const { agenda, close } = await createAgenda({ databaseUrl: await testDatabaseUrl(), name: 'attack-sync-test' });
        const touched: number[] = [];
        agenda.on('start', (job) => {

            const touch = job.touch.bind(job);
            job.touch = (progress?: number) => {

                touched.push(progress ?? -1);
                return touch(progress);
            };
        });

        defineAttackJobs(agenda, context.services, {
            attack: { source: Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'), d3fendSource: Path.join(sharedDir, 'data', 'd3fend') }
        });

        const done = new Promise<void>((resolve, reject) => {

            agenda.on('success:attack-sync', () => resolve());
            agenda.on('fail:attack-sync', (err: Error) => reject(err));
        });

        await agenda.start();
        const { job_id: jobId } = await context.services.attackImport.requestSync(context.actor('admin'));
        await done;
        await scheduleAttackJobs(agenda, context.services);
        const { jobs } = await agenda.queryJobs({ name: 'attack-sync' });
        await close();

        const scheduler = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/scheduler', auth: context.as('admin') })).payload);
        const listed = scheduler.items.find((job: { id: string }) => job.id === jobId);
        expect(listed === undefined || listed.progress === 100).to.be.true();
        expect(touched.at(-1)).to.equal(100);
        expect(touched.some((value) => value > 0 && value < 100)).to.be.true();
        const imports = await context.knex('attack_imports').where('status', 'succeeded').orderBy('finished_at', 'desc').limit(2).pluck('kind');
        expect(imports).to.equal(['d3fend', 'attack']);
        expect(jobs.some((job) => job.repeatInterval === '1 week')).to.be.true();
        expect(await context.services.attackImport.isEmpty()).to.be.false();
    });

    it('completes with the ATT&CK import when the D3FEND source fails, which attack_imports records', { timeout: 60_000 }, async () => {

        const { agenda, close } = await createAgenda({ databaseUrl: await testDatabaseUrl(), name: 'attack-sync-d3fend-test' });
        const warnings: string[] = [];
        const logger = { info: () => undefined, warn: (data: { err: string }) => warnings.push(data.err) } as never;
        defineAttackJobs(agenda, context.services, { attack: { source: Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'), d3fendSource: '/nonexistent/d3fend' }, logger });
        const done = new Promise<void>((resolve, reject) => {

            agenda.on('success:attack-sync', () => resolve());
            agenda.on('fail:attack-sync', (err: Error) => reject(err));
        });

        await agenda.start();
        await agenda.now('attack-sync', { reason: 'manual' });
        await done;
        await close();

        expect(warnings.length).to.be.at.least(1);
        const failed = await context.knex('attack_imports').where({ kind: 'd3fend', source: '/nonexistent/d3fend', status: 'failed' }).first('error');
        expect(failed.error).to.be.a.string();
    });

    it('leaves the API healthy while an import runs', { timeout: 60_000 }, async () => {

        const importing = context.services.attackImport.importAttack(context.actor('admin'), Path.join(sharedDir, 'data', 'attack', 'enterprise-attack.json.gz'));
        let finished = false;
        void importing.finally(() => {

            finished = true;
        });

        const during: number[] = [];
        while (!finished) {
            const res = await context.server.inject({ method: 'GET', url: '/api/v1/system/health' });
            if (!finished) {
                during.push(res.statusCode);
            }

            await new Promise((resolve) => setTimeout(resolve, 50));
        }

        await importing;
        expect(during.length).to.be.above(0);
        expect(during.every((code) => code === 200)).to.be.true();
    });
});
