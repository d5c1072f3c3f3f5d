import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { JiraSyncRun, Test } from '../../server/models';
import { systemActor } from '../../server/policy';

import { testRow, uniqueTechnique } from '../helpers/factories';
import { startFakeJira } from '../helpers/jira-server';
import { spawnEntry, type Spawned } from '../helpers/processes';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// jira (issue 14): the jira.sync job in a real worker process, against the local Jira-compatible server
describe('Worker: Jira sync', () => {

    const secretKey = Crypto.randomBytes(32).toString('base64');
    const env = { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1', AEGIS_SECRET_KEY: secretKey };
    let context: TestContext;
    let dataDir: string;
    let worker: Spawned | undefined;

    before(async () => {

        context = await init({ redis: false, env });
        dataDir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-jira-'));
    });

    after(async () => {

        worker?.child.kill('SIGKILL');
        await Fs.promises.rm(dataDir, { recursive: true, force: true });
        await context.services.settings.reset(context.actor('admin'), 'jira');        // shared by the run's scripts
        await context.stop();
    });

    it('runs a queued sync in the worker and schedules the minutely pass', { timeout: 120_000 }, async () => {

        const jira = await startFakeJira({ deployment: 'data_center', token: `pat-${Crypto.randomBytes(8).toString('hex')}` });
        let linked: string | undefined;
        try {
            const project = `W${Crypto.randomBytes(3).toString('hex').toUpperCase().replace(/[^A-Z0-9]/g, 'Y')}`;
            jira.addProject(project);
            await context.services.settings.set(context.actor('admin'), 'jira', { url: jira.url, deployment: 'data_center', personal_access_token: jira.auth.token, project_key: project, sync_enabled: false });
            const test = await testRow(context.knex, { technique_id: await uniqueTechnique(context.knex), state: 'validated', remediation_status: 'open' });
            const issue = jira.addIssue(project);
            await context.services.jira.linkIssue(context.actor('blue_lead'), test.id, issue.key);
            linked = test.id;
            jira.setStatus(issue.key, 'In Progress', 'indeterminate');

            await JiraSyncRun.query(context.knex).whereIn('status', ['queued', 'running']).patch({ status: 'failed', finished_at: new Date() });
            const { run } = await context.services.jira.requestSync(context.actor('red_lead'));
            worker = spawnEntry('worker/index.js', { DATABASE_URL: context.config.database.url!, LOG_LEVEL: 'info', AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'jira-test-secret-jira-test-secret-0123456789', ATTACK_SOURCE: Path.join(dataDir, 'none.json'), D3FEND_SOURCE: Path.join(dataDir, 'none.json'), ...env });

            const deadline = Date.now() + 90_000;
            let finished: JiraSyncRun | undefined;
            while (Date.now() < deadline && !finished) {
                const current = await context.services.jira.run(systemActor, run.id);
                finished = ['succeeded', 'partial', 'failed'].includes(current.status) ? current : undefined;
                await new Promise((resolve) => setTimeout(resolve, 200));
            }

            // The run's database is shared with the other scripts of the run: issues they linked (to Jira servers of
            // their own, stopped since) are polled too and fail on their own, so this issue is checked by its key
            expect(finished, 'the run finished').to.exist();
            expect(['succeeded', 'partial']).to.include(finished!.status);
            expect(finished!.issues_changed).to.be.at.least(1);
            expect((finished!.failures ?? []).map((failure) => failure.issue_key)).to.not.include(issue.key);
            expect((await Test.query(context.knex).findById(test.id))!.remediation_status).to.equal('in_progress');
            const line = await worker.waitFor((item) => item.job === 'jira.sync' && item.run_id === run.id);
            expect(line).to.include({ status: finished!.status, changed: finished!.issues_changed });
            const scheduled = (await context.queue.list()).find((job) => job.name === 'jira.sync-due');
            expect(scheduled).to.include({ schedule: '1 minute' });
        }
        finally {
            // Its link would outlive this Jira server and fail every later script's sync of the shared database
            if (linked) {
                await context.services.jira.unlink(context.actor('blue_lead'), linked);
            }

            await jira.stop();
        }
    });
});
