import * as Net from 'net';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import type { Agenda } from 'agenda';
import { expect } from '@hapi/code';

import { createAgenda } from '../../server/jobs';
import { createLogger } from '../../server/logger';
import { logJobEvents } from '../../worker/jobs';
import { defineAttackJobs, scheduleAttackJobs } from '../../worker/jobs/attack';

import { testDatabaseUrl } from '../helpers/db';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    // The worker's own logger (JSON lines), written to an array
    logger: () => {

        const lines: Record<string, any>[] = [];
        const logger = createLogger({ level: 'info', name: 'aegis-worker', format: 'json', destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
        return { logger, lines: () => lines };
    },

    // How one job ended, null for a success or the error's message: agenda emits both for every job it runs, ours among them
    finished: (agenda: Agenda, id: unknown) => new Promise<string | null>((resolve) => {

        agenda.on('success', (job) => String(job.attrs._id) === String(id) && resolve(null));
        agenda.on('fail', (err: Error, job) => String(job.attrs._id) === String(id) && resolve(err.message));
    })
};


describe('attack-sync job', () => {

    let context: TestContext;

    before(async () => {

        // The offline test points a source at a closed loopback port: loopback is refused unless the operator allows it
        context = await init({ redis: false, env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: 'true' } });
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

    it('completes with the ATT&CK import when the D3FEND source fails, which attack_imports records and the log explains', { timeout: 60_000 }, async () => {

        const { agenda, close } = await createAgenda({ databaseUrl: await testDatabaseUrl(), name: 'attack-sync-d3fend-test' });
        const log = internals.logger();
        defineAttackJobs(agenda, context.services, { attack: { source: Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'), d3fendSource: '/nonexistent/d3fend' }, logger: log.logger });
        const job = await agenda.create('attack-sync', { reason: 'manual' }).save();
        const done = internals.finished(agenda, job.attrs._id);
        await agenda.start();
        expect(await done).to.be.null();
        await close();

        const warning = log.lines().find((line) => line.level === 40);
        expect(warning).to.include({
            name: 'aegis-worker', job: 'attack-sync',
            msg: 'D3FEND import failed: /nonexistent/d3fend: file not found. Set D3FEND_SOURCE to a URL this machine can reach, or to a local copy of the D3FEND ontology (d3fend.ttl or .ttl.gz): see the README, "Air-gapped installs".'
        });
        const failed = await context.knex('attack_imports').where({ kind: 'd3fend', source: '/nonexistent/d3fend', status: 'failed' }).first('error');
        expect(failed.error).to.equal('/nonexistent/d3fend: file not found');
    });

    // The review's first start without internet: the log said `"err":"TypeError: fetch failed"` and nothing else.
    it('a sync whose source cannot be reached says what failed, from where and what to do, in the log and in GET /system/scheduler', { timeout: 60_000 }, async () => {

        const port = await new Promise<number>((resolve) => {

            const server = Net.createServer().listen(0, '127.0.0.1', () => {

                const address = server.address() as Net.AddressInfo;
                server.close(() => resolve(address.port));
            });
        });

        const remedy = 'Set ATTACK_SOURCE to a URL this machine can reach, or to a local copy of the ATT&CK Enterprise bundle (.json or .json.gz): see the README, "Air-gapped installs".';
        const cases = [
            { source: `http://127.0.0.1:${port}/enterprise-attack.json`, reason: `ATT&CK import failed: http://127.0.0.1:${port}/enterprise-attack.json: could not be reached: connection refused by 127.0.0.1:${port} (ECONNREFUSED). ${remedy}` },
            { source: '/nonexistent/enterprise-attack.json.gz', reason: `ATT&CK import failed: /nonexistent/enterprise-attack.json.gz: file not found. ${remedy}` },
            {
                source: 'http://10.0.0.8/enterprise-attack.json',
                reason: `ATT&CK import failed: http://10.0.0.8/enterprise-attack.json: is not allowed by the outbound rules (10.0.0.8 is or resolves to a private, loopback, link-local, multicast or metadata address); a mirror on the local network must be added to OUTBOUND_ALLOW_HOSTS, and an http:// URL needs OUTBOUND_ALLOW_HTTP=true. ${remedy}`
            }
        ];

        for (const { source, reason } of cases) {
            const { agenda, close } = await createAgenda({ databaseUrl: await testDatabaseUrl(), name: 'attack-sync-offline-test' });
            const log = internals.logger();
            logJobEvents(agenda, log.logger);
            defineAttackJobs(agenda, context.services, { attack: { source, d3fendSource: '/nonexistent/d3fend' }, logger: log.logger });
            const job = await agenda.create('attack-sync', { reason: 'first-start' }).save();
            const id = String(job.attrs._id);
            const done = internals.finished(agenda, job.attrs._id);
            await agenda.start();
            expect(await done).to.equal(reason);

            // Agenda emits 'fail' before it has saved the failure: wait for the scheduler to show it, then stop
            let entry: Record<string, unknown> | undefined;
            for (let i = 0; i < 100 && entry?.state !== 'failed'; ++i) {
                await new Promise((resolve) => setTimeout(resolve, i ? 100 : 0));
                const scheduler = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/scheduler', auth: context.as('admin') })).payload);
                entry = scheduler.items.find((item: { id: string }) => item.id === id);
            }

            await close();

            expect(log.lines().filter((line) => line.id === id).map(({ level, name, job: jobName, msg }) => ({ level, name, job: jobName, msg }))).to.equal([
                { level: 30, name: 'aegis-worker', job: 'attack-sync', msg: 'job started' },
                { level: 50, name: 'aegis-worker', job: 'attack-sync', msg: `attack-sync failed: ${reason}` }
            ]);

            expect(entry).to.include({ name: 'attack-sync', state: 'failed', fail_reason: reason, fail_count: 1 });
        }
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
