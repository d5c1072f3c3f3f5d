import * as ChildProcess from 'child_process';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';
import * as Util from 'util';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { createKnex } from '../../server/db';
import { createAgenda } from '../../server/jobs';

import { testDatabaseUrl } from '../helpers/db';
import { distDir, spawnEntry, type Spawned } from '../helpers/processes';
import { uniqueTechnique } from '../helpers/factories';
import { sharedDir } from '../helpers/reference';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// scores (issue 12): the risk-recompute job in a real worker process, and the import-compliance command
describe('Worker jobs and commands of scores, risk and compliance', () => {

    let url: string;
    let dataDir: string;
    let worker: Spawned | undefined;

    before(async () => {

        url = await testDatabaseUrl();
        dataDir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-risk-'));
    });

    after(async () => {

        worker?.child.kill('SIGKILL');
        await Fs.promises.rm(dataDir, { recursive: true, force: true });
    });

    it('recomputes every risk profile in the worker when the job is queued', { timeout: 120_000 }, async () => {

        const knex = createKnex({ url });
        const { agenda, close } = await createAgenda({ databaseUrl: url, name: 'risk-test' });
        try {
            await uniqueTechnique(knex);
            // The recurring jobs of issue 12 are scheduled again by this worker when it starts (nightly recompute, daily snapshot)
            await knex('agenda_jobs').whereIn('name', ['risk-recompute', 'snapshots.daily']).where('type', 'single').delete();
            worker = spawnEntry('worker/index.js', { DATABASE_URL: url, LOG_LEVEL: 'info', AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'risk-test-secret-risk-test-secret-0123456789', ATTACK_SOURCE: Path.join(dataDir, 'none.json'), D3FEND_SOURCE: Path.join(dataDir, 'none.json') });
            await agenda.start();
            const queued = new Date();
            const job = await agenda.now('risk-recompute', { reason: 'manual', requested_by: null });

            const deadline = Date.now() + 90_000;
            let finished;
            while (Date.now() < deadline && !finished) {
                const { jobs } = await agenda.queryJobs({ id: String(job.attrs._id) });
                finished = jobs[0]?.lastFinishedAt ? jobs[0] : undefined;
                await new Promise((resolve) => setTimeout(resolve, 200));
            }

            expect(finished, 'the job finished').to.exist();
            expect(finished!.failReason ?? null).to.be.null();
            const audit = await knex('audit_logs').where('action', 'risk.recompute').where('created_at', '>=', queued).whereNull('actor_id').first('details');
            expect(audit).to.exist();
            const active = await knex('techniques').where({ revoked: false, deprecated: false }).count('* as n').first();
            expect(audit.details.profiles as number).to.be.at.least(1);
            expect(Number((await knex('risk_profiles').count('* as n').first())!.n)).to.equal(Number(active!.n));

            // Nightly, and the posture snapshot daily: both recurring in the worker's schedule
            const scheduled = () => knex('agenda_jobs').whereIn('name', ['risk-recompute', 'snapshots.daily']).where('type', 'single').orderBy('name').select('name', 'repeat_interval', 'data');
            let recurring = await scheduled();
            while (recurring.length < 2 && Date.now() < deadline) {
                await new Promise((resolve) => setTimeout(resolve, 200));
                recurring = await scheduled();
            }

            expect(recurring.map((row: { name: string; repeat_interval: string }) => [row.name, row.repeat_interval])).to.equal([['risk-recompute', '1 day'], ['snapshots.daily', '1 day']]);
            expect(recurring[0].data.reason).to.equal('schedule');
        }
        finally {
            await close();
            await knex.destroy();
        }
    });

    it('imports the compliance mappings through the CLI, idempotently, and says how to call it', { timeout: 120_000 }, async () => {

        const env = { PATH: process.env.PATH ?? '', DATABASE_URL: url, AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'risk-test-secret-risk-test-secret-0123456789', LOG_LEVEL: 'warn' };
        const run = (...args: string[]) => Util.promisify(ChildProcess.execFile)(process.execPath, [Path.join(distDir, 'bin', 'aegis.js'), 'import-compliance', ...args], { env });

        const first = await run(Path.join(sharedDir, 'data', 'compliance'));
        const lines = first.stdout.trim().split('\n');
        expect(lines.length).to.equal(2);
        expect(lines[0]).to.match(/^csa_ccm-4\.1: 204 controls, \d+ mappings \(\d+ exact, \d+ through a revocation, \d+ unmatched\)$/);
        expect(lines[1]).to.match(/^nist_800_53-rev5: 109 controls, \d+ mappings \(\d+ exact, \d+ through a revocation, \d+ unmatched\)$/);
        expect((await run(Path.join(sharedDir, 'data', 'compliance'))).stdout).to.equal(first.stdout);

        const usage = await Util.promisify(ChildProcess.execFile)(process.execPath, [Path.join(distDir, 'bin', 'aegis.js'), 'import-compliance'], { env: { PATH: process.env.PATH ?? '' } }).catch((err) => err);
        expect(usage.code).to.equal(64);
        const missing = await run(Path.join(dataDir, 'nothing-here')).catch((err) => err);
        expect(missing.code).to.equal(1);
        expect(missing.stderr).to.include('is not a folder of compliance mappings');
    });
});
