import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { OutboundHttp } from '../../integrations/http';
import { AuditLog, Evidence, JiraComment, JiraIssue, JiraSyncRun, Notification, Test, TestTimelineEntry } from '../../server/models';
import { systemActor } from '../../server/policy';
import { JiraService } from '../../server/services/jira';

import { callsAs } from '../helpers/calls';
import { testRow, uniqueTechnique } from '../helpers/factories';
import { startFakeJira, type FakeJira } from '../helpers/jira-server';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after, beforeEach } = lab;


describe('Jira', () => {

    let context: TestContext;
    let jira: FakeJira;
    let cloud: FakeJira;
    const { request, ok, refused } = callsAs(() => context);
    const webhookSecret = `hook-${Crypto.randomBytes(12).toString('hex')}`;

    const project = () => `P${Crypto.randomBytes(3).toString('hex').toUpperCase().replace(/[^A-Z0-9]/g, 'X')}`;

    const configure = async (overrides: Record<string, unknown> = {}, server = jira) => {

        const key = project();
        server.addProject(key);
        await context.services.settings.set(context.actor('admin'), 'jira', {
            url: server.url,
            deployment: server.deployment,
            ...(server.deployment === 'cloud' ? { username: server.auth.email, api_token: server.auth.token } : { personal_access_token: server.auth.token }),
            project_key: key,
            issue_type: 'Task',
            labels: ['purple-team'],
            webhook_secret: webhookSecret,
            ...overrides
        });
        return key;
    };

    const openTest = async (overrides: Partial<Test> = {}) => await testRow(context.knex, { technique_id: await uniqueTechnique(context.knex), state: 'validated', remediation_status: 'open', expected_outcome: 'An EDR alert within 5 minutes', ...overrides });

    const rows = async () => ({
        issues: await JiraIssue.query(context.knex).resultSize(),
        runs: await JiraSyncRun.query(context.knex).resultSize(),
        comments: await JiraComment.query(context.knex).resultSize(),
        keyed: await Test.query(context.knex).whereNotNull('jira_issue_key').resultSize(),
        audit: await AuditLog.query(context.knex).where('action', 'like', '%jira%').resultSize()
    });

    // A test linked to a new issue of the fake server (through the route)
    const linked = async (key: string, overrides: Partial<Test> = {}) => {

        const test = await openTest(overrides);
        const issue = jira.addIssue(key);
        await ok('blue_lead', 'PUT', `/tests/${test.id}/jira`, { key: issue.key });
        return { test, issue };
    };

    const idle = () => JiraSyncRun.query(context.knex).whereIn('status', ['queued', 'running']).patch({ status: 'failed', error: 'cleared by the test', finished_at: new Date() });

    const sync = async () => {

        await idle();
        const { run } = await context.services.jira.requestSync(context.actor('admin'));
        return await context.services.jira.runSync(systemActor, run.id);
    };

    before(async () => {

        context = await init({ redis: false, env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1', AEGIS_PUBLIC_URL: 'https://aegis.example.test' } });
        jira = await startFakeJira({ deployment: 'data_center', token: `pat-${Crypto.randomBytes(16).toString('hex')}`, maxResults: 2 });
        cloud = await startFakeJira({ deployment: 'cloud', email: 'bot@example.test', token: `cloud-${Crypto.randomBytes(16).toString('hex')}`, maxResults: 2, share: jira.state });
        await context.relay.drain();                // places the consumers (from: 'now') before any event of ours
    });

    after(async () => {

        // The setting is shared by the run's scripts (test/routes/settings.ts expects its default): left as found
        await context.services.settings.reset(context.actor('admin'), 'jira');
        await jira.stop();
        await cloud.stop();
        await context.stop();
    });

    beforeEach(() => {

        jira.state.script.length = 0;
        jira.state.down = false;
    });

    describe('configuration', () => {

        it('keeps the Jira credentials and the webhook secret write-only, out of answers and audit rows', async () => {

            await configure();
            const res = await ok('admin', 'GET', '/system/settings/jira');
            expect(res.value).to.include({ deployment: 'data_center', issue_type: 'Task', labels: ['purple-team'], api_token: { set: false }, personal_access_token: { set: true }, webhook_secret: { set: true } });
            expect(JSON.stringify(res)).to.not.include(jira.auth.token);
            expect(JSON.stringify(res)).to.not.include(webhookSecret);
            const audits = await AuditLog.query(context.knex).where({ action: 'settings.update', entity_id: 'jira' });
            expect(audits.length).to.be.above(0);
            expect(JSON.stringify(audits)).to.not.include(jira.auth.token);
            expect(JSON.stringify(audits)).to.not.include(webhookSecret);
        });

        it('refuses a bad mapping, a reserved field or a bad project key (400, nothing saved)', async () => {

            await configure();
            const initial = await ok('admin', 'GET', '/system/settings/jira');
            for (const value of [
                { url: jira.url, status_map: { categories: { done: 'fixed' } } },
                { url: jira.url, fields: { summary: 'mine' } },
                { url: jira.url, project_key: 'not a key' },
                { url: jira.url, deployment: 'server' },
                { url: jira.url, webhook_secret: 'short' }
            ]) {
                await refused('admin', 'PUT', '/system/settings/jira', { value }, 400);
            }

            expect(await ok('admin', 'GET', '/system/settings/jira')).to.equal(initial);
        });

        it('checks the connection and says what is wrong in words, never with Jira\'s body', async () => {

            const key = await configure();
            const good = await ok('admin', 'POST', '/jira/test-connection');
            expect(good.ok).to.be.true();
            expect(good.checks.map((item: { check: string }) => item.check)).to.equal(['reach', 'credentials', 'project', 'issue_type']);
            expect(good.checks[1].message).to.equal('Signed in as Aegis Integration');

            await configure({ personal_access_token: 'wrong-token-wrong-token' });
            const unauthorised = await ok('admin', 'POST', '/jira/test-connection');
            expect(unauthorised.ok).to.be.false();
            expect(unauthorised.checks[1]).to.equal({ check: 'credentials', ok: false, message: 'Jira refused the credentials (401): check the personal access token' });
            expect(JSON.stringify(unauthorised)).to.not.include('You are not authenticated');

            await configure({ project_key: 'NOPE' });
            const unknown = await ok('admin', 'POST', '/jira/test-connection');
            expect(unknown.checks[2]).to.equal({ check: 'project', ok: false, message: 'The project NOPE does not exist, or the account cannot see it' });
            expect(JSON.stringify(unknown)).to.not.include('No project could be found');

            await configure({ issue_type: 'Epic' });
            const type = await ok('admin', 'POST', '/jira/test-connection');
            expect(type.checks[3].ok).to.be.false();
            expect(type.checks[3].message).to.include('has no issue type "Epic": choose one of Task, Bug');

            const closed = await startFakeJira();
            const url = closed.url;
            await closed.stop();
            await configure({ url });
            const unreachable = await ok('admin', 'POST', '/jira/test-connection');
            expect(unreachable.ok).to.be.false();
            expect(unreachable.checks[0].check).to.equal('reach');
            expect(unreachable.checks[0].message).to.match(/^Jira at http:\/\/127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\): check the URL/);

            await context.services.settings.reset(context.actor('admin'), 'jira');
            const unconfigured = await ok('admin', 'POST', '/jira/test-connection');
            expect(unconfigured).to.equal({ ok: false, deployment: null, checks: [{ check: 'configuration', ok: false, message: 'Jira is not configured: set the jira setting (PUT /system/settings/jira)' }] });
            expect(key).to.exist();
        });

        it('refuses an internal Jira address unless the outbound allow list names it', async () => {

            await configure();
            const strict = new JiraService({ knex: context.knex, audit: context.services.audit, tests: context.services.tests, notifications: context.services.notifications, settings: context.services.settings, outbound: new OutboundHttp({ allowHttp: true }), queue: context.queue });
            const report = await strict.testConnection(context.actor('admin'));
            expect(report.ok).to.be.false();
            expect(report.checks[0]!.message).to.include('The Jira URL is not allowed by the outbound rules');
            expect(report.checks[0]!.message).to.include('OUTBOUND_ALLOW_HOSTS');
            expect(jira.calls('GET', /myself/).every((call) => call.authorization !== undefined)).to.be.true();
        });
    });

    describe('issues from tests', () => {

        it('creates an issue with the technique, outcome, expectation, link back, evidence and labels', async () => {

            const key = await configure({ fields: { priority: { name: 'High' } } });
            const test = await openTest({ remediation_notes: 'Tune the EDR rule' });
            await Evidence.query(context.knex).insert({ test_id: test.id, team: 'blue', storage_key: `jira-test/${test.id}`, original_name: 'edr-alert.png', content_type: 'image/png', size: 3, sha256: 'a'.repeat(64) });
            const created = await ok('red_lead', 'POST', `/tests/${test.id}/jira`, undefined, 201);
            expect(created).to.include({ test_id: test.id, issue_key: `${key}-1`, origin: 'created', status_name: 'To Do', status_category: 'new', url: `${jira.url}/browse/${key}-1` });

            const sent = jira.calls('POST', /^\/rest\/api\/2\/issue$/).at(-1)!.body.fields;
            expect(sent).to.include({ project: { key }, issuetype: { name: 'Task' }, priority: { name: 'High' }, labels: ['aegis', 'purple-team'] });
            expect(sent.summary).to.equal(`[Aegis] ${test.technique_id}: ${test.title}`);
            expect(sent.description).to.include(`*Technique:* ${test.technique_id} Technique ${test.technique_id}`);
            expect(sent.description).to.include('*Outcome:* detection alerted; attack succeeded');
            expect(sent.description).to.include('*Expected:* An EDR alert within 5 minutes');
            expect(sent.description).to.include(`https://aegis.example.test/tests/${test.id}`);
            expect(sent.description).to.include(`edr-alert.png (blue) sha256 ${'a'.repeat(64)}`);

            expect((await Test.query(context.knex).findById(test.id))!.jira_issue_key).to.equal(`${key}-1`);
            expect(await ok('viewer', 'GET', `/tests/${test.id}`)).to.include({ jira_issue_key: `${key}-1` });
            expect(await ok('blue_lead', 'GET', `/tests/${test.id}/jira`)).to.include({ issue_key: `${key}-1` });
            const timeline = await TestTimelineEntry.query(context.knex).where({ test_id: test.id, action: 'jira-create' });
            expect(timeline).to.have.length(1);
            expect(await AuditLog.query(context.knex).where({ action: 'test.jira_create', entity_id: test.id }).resultSize()).to.equal(1);
        });

        it('refuses what cannot have an issue (409, 404), and writes nothing', async () => {

            await configure();
            const initial = await rows();
            const draft = await testRow(context.knex, { technique_id: await uniqueTechnique(context.knex) });
            await refused('red_lead', 'POST', `/tests/${draft.id}/jira`, undefined, 409, { code: 'invalid_state_transition' });
            const closed = await openTest({ remediation_status: 'accepted_risk' });
            await refused('red_lead', 'POST', `/tests/${closed.id}/jira`, undefined, 409, { code: 'remediation_not_open' });
            await refused('red_lead', 'POST', `/tests/${Crypto.randomUUID()}/jira`, undefined, 404);
            await refused('red_lead', 'POST', '/tests/not-a-uuid/jira', undefined, 400);
            await refused('red_lead', 'GET', `/tests/${closed.id}/jira`, undefined, 404);
            expect(await rows()).to.equal(initial);
            expect(jira.calls('POST', /^\/rest\/api\/2\/issue$/).filter((call) => call.body.fields.summary.includes(closed.title))).to.have.length(0);
        });

        it('answers 502 in words when Jira refuses the issue, and writes nothing', async () => {

            await configure({ fields: { customfield_10010: 'x' } });
            const test = await openTest();
            const initial = await rows();
            const res = await refused('admin', 'POST', `/tests/${test.id}/jira`, undefined, 502, { code: 'jira_refused' });
            expect(res.message).to.equal('Jira refused the issue (400): check the project, the issue type and the fields of the jira setting against the project\'s create screen');
            expect(res.message).to.not.include('cannot be set');
            expect(await rows()).to.equal(initial);

            await configure({ project_key: undefined });
            await refused('admin', 'POST', `/tests/${test.id}/jira`, undefined, 409, { code: 'jira_not_configured' });
            await context.services.settings.reset(context.actor('admin'), 'jira');
            await refused('admin', 'POST', `/tests/${test.id}/jira`, undefined, 409, { code: 'jira_not_configured' });
            expect(await rows()).to.equal(initial);
        });

        it('links an existing issue, once, and unlinks it', async () => {

            const key = await configure();
            const issue = jira.addIssue(key);
            jira.setStatus(issue.key, 'In Progress', 'indeterminate');
            const test = await openTest();
            const other = await openTest();
            const initial = await rows();

            await refused('blue_lead', 'PUT', `/tests/${test.id}/jira`, { key: 'lowercase' }, 400, { fields: ['key'] });
            await refused('blue_lead', 'PUT', `/tests/${test.id}/jira`, { key: `${key}-999` }, 400, { code: 'jira_issue_not_found', fields: ['key'] });
            expect(await rows()).to.equal(initial);

            const link = await ok('blue_lead', 'PUT', `/tests/${test.id}/jira`, { key: issue.key.toLowerCase() });
            expect(link).to.include({ issue_key: issue.key, origin: 'linked', status_name: 'In Progress', status_category: 'indeterminate' });
            const afterLink = await rows();
            await refused('blue_lead', 'PUT', `/tests/${other.id}/jira`, { key: issue.key }, 409, { code: 'jira_issue_linked_elsewhere' });
            await refused('blue_lead', 'PUT', `/tests/${test.id}/jira`, { key: issue.key }, 409, { code: 'jira_already_linked' });
            await refused('red_lead', 'POST', `/tests/${test.id}/jira`, undefined, 409, { code: 'jira_already_linked' });
            expect(await rows()).to.equal(afterLink);

            const listed = await ok('admin', 'GET', '/jira/issues?status_category=indeterminate&limit=500');
            expect(listed.items.find((item: { test_id: string }) => item.test_id === test.id)).to.include({ issue_key: issue.key, test_title: test.title, remediation_status: 'open' });

            const res = await request('red_lead', 'DELETE', `/tests/${test.id}/jira`);
            expect(res.statusCode).to.equal(204);
            expect((await Test.query(context.knex).findById(test.id))!.jira_issue_key).to.be.null();
            expect(await JiraIssue.query(context.knex).findById(test.id)).to.not.exist();
            await refused('red_lead', 'DELETE', `/tests/${test.id}/jira`, undefined, 409, { code: 'jira_not_linked' });
        });

        it('no longer takes jira_issue_key through the remediation edit: this module sets it', async () => {

            const test = await openTest();
            await refused('blue_lead', 'PATCH', `/tests/${test.id}/remediation`, { jira_issue_key: 'SEC-1' }, 400);
            expect((await Test.query(context.knex).findById(test.id))!.jira_issue_key).to.be.null();
        });
    });

    describe('sync', () => {

        it('polls what changed, pages through the search, maps statuses and notifies the leads of a resolved issue', async () => {

            const key = await configure({ status_map: { statuses: { 'Waiting for vendor': 'in_progress' } } });
            const a = await linked(key);
            const b = await linked(key);
            const c = await linked(key);
            const d = await linked(key, { remediation_owner_id: context.users.blue_tech.id });
            jira.setStatus(a.issue.key, 'In Progress', 'indeterminate');
            jira.setStatus(b.issue.key, 'Waiting for vendor', 'new');
            jira.setStatus(d.issue.key, 'Done', 'done');
            const searches = jira.calls('POST', /\/rest\/api\/2\/search/).length;

            const run = await sync();
            expect(run).to.include({ status: 'succeeded', trigger: 'manual', issues_changed: 3, issues_failed: 0, error: null });
            expect(run.issues_seen).to.be.at.least(4);
            expect(jira.calls('POST', /\/rest\/api\/2\/search/).length - searches).to.be.at.least(2);       // the server pages by 2
            const status = async (id: string) => (await Test.query(context.knex).findById(id))!.remediation_status;
            expect(await status(a.test.id)).to.equal('in_progress');
            expect(await status(b.test.id)).to.equal('in_progress');
            expect(await status(c.test.id)).to.equal('open');
            expect(await status(d.test.id)).to.equal('awaiting_retest');
            expect(await JiraIssue.query(context.knex).findById(d.test.id)).to.include({ status_name: 'Done', status_category: 'done', resolution: 'Done' });

            const notified = await Notification.query(context.knex).where({ entity_id: d.test.id, type: 'remediation.awaiting_retest' });
            expect(notified.map((item) => item.user_id)).to.include([context.users.red_lead.id, context.users.blue_lead.id, context.users.blue_tech.id]);
            const timeline = await TestTimelineEntry.query(context.knex).where({ test_id: d.test.id, action: 'update-remediation' });
            expect(timeline[0]!.actor_role).to.equal('system');

            const listed = await ok('red_lead', 'GET', '/jira/sync?limit=5');
            expect(listed.items[0]).to.include({ id: run.id, status: 'succeeded' });
            expect(await ok('red_lead', 'GET', `/jira/sync/${run.id}`)).to.include({ issues_changed: 3 });
            await refused('red_lead', 'GET', `/jira/sync/${Crypto.randomUUID()}`, undefined, 404);

            // Nothing moved in Jira since: the next run changes nothing, and an edit in Aegis stands
            await ok('blue_lead', 'PATCH', `/tests/${a.test.id}/remediation`, { remediation_status: 'open' });
            const again = await sync();
            expect(again).to.include({ status: 'succeeded', issues_changed: 0 });
            expect(await status(a.test.id)).to.equal('open');
        });

        it('keeps a remediation that is final in Aegis when Jira moves (the conflict rule)', async () => {

            const key = await configure();
            const { test, issue } = await linked(key);
            await ok('blue_lead', 'PATCH', `/tests/${test.id}/remediation`, { remediation_status: 'accepted_risk' });
            jira.setStatus(issue.key, 'In Progress', 'indeterminate');
            const run = await sync();
            expect(run.status).to.equal('succeeded');
            expect((await Test.query(context.knex).findById(test.id))!.remediation_status).to.equal('accepted_risk');
            expect(await JiraIssue.query(context.knex).findById(test.id)).to.include({ status_name: 'In Progress' });
        });

        it('pages with nextPageToken on Jira Cloud (basic auth with the e-mail and API token)', async () => {

            const key = await configure({}, cloud);
            const issues = [cloud.addIssue(key), cloud.addIssue(key), cloud.addIssue(key)];
            const tests = [];
            for (const issue of issues) {
                const test = await openTest();
                await ok('admin', 'PUT', `/tests/${test.id}/jira`, { key: issue.key });
                cloud.setStatus(issue.key, 'In Progress', 'indeterminate');
                tests.push(test);
            }

            const run = await sync();
            expect(run).to.include({ status: 'succeeded', issues_changed: 3 });
            const searches = cloud.calls('POST', /^\/rest\/api\/3\/search\/jql$/);
            expect(searches.length).to.be.at.least(2);
            expect(searches.some((call) => typeof call.body.nextPageToken === 'string')).to.be.true();
            expect(searches[0]!.authorization).to.equal(`Basic ${Buffer.from(`${cloud.auth.email}:${cloud.auth.token}`).toString('base64')}`);
            for (const test of tests) {
                expect((await Test.query(context.knex).findById(test.id))!.remediation_status).to.equal('in_progress');
                // The other tests' site does not know this project: unlinked, it is polled no more
                expect((await request('admin', 'DELETE', `/tests/${test.id}/jira`)).statusCode).to.equal(204);
            }
        });

        it('waits out a short Retry-After and retries; a long one fails the run and holds the schedule back', async () => {

            const key = await configure();
            const { test, issue } = await linked(key);
            jira.setStatus(issue.key, 'In Progress', 'indeterminate');
            jira.state.script.push({ status: 429, retryAfter: '0' });
            const run = await sync();
            expect(run).to.include({ status: 'succeeded' });
            expect((await Test.query(context.knex).findById(test.id))!.remediation_status).to.equal('in_progress');

            jira.setStatus(issue.key, 'Done', 'done');
            jira.state.script.push({ status: 429, retryAfter: '3600' });
            const limited = await sync();
            expect(limited.status).to.equal('failed');
            expect(limited.error).to.equal('Jira is rate limiting Aegis (429, retry after 3600 s)');
            expect(limited.cursor).to.be.null();
            expect(new Date(limited.not_before!).getTime()).to.be.above(Date.now() + 3500_000);
            expect((await Test.query(context.knex).findById(test.id))!.remediation_status).to.equal('in_progress');

            // The schedule is not due before Jira's time, even long after the poll interval
            const due = await context.services.jira.syncDue(systemActor, new Date(Date.now() + 30 * 60_000));
            expect(due.run).to.be.null();
        });

        it('survives Jira being down: the run fails with the reason, nothing is half-applied, the next run catches up', async () => {

            const key = await configure();
            const { test, issue } = await linked(key);
            jira.setStatus(issue.key, 'In Progress', 'indeterminate');
            jira.state.down = true;
            const initial = (await Test.query(context.knex).findById(test.id))!.toJSON();
            const failed = await sync();
            expect(failed.status).to.equal('failed');
            expect(failed.error).to.match(/^Jira at http:\/\/127\.0\.0\.1:\d+ is unreachable \(/);
            expect((await Test.query(context.knex).findById(test.id))!.toJSON()).to.equal(initial);

            // Back-off: after the failure the schedule waits twice the poll interval
            expect((await context.services.jira.syncDue(systemActor, new Date(Date.now() + 20 * 60_000))).run).to.be.null();

            jira.state.down = false;
            const recovered = await sync();
            expect(recovered).to.include({ status: 'succeeded' });
            expect((await Test.query(context.knex).findById(test.id))!.remediation_status).to.equal('in_progress');
        });

        it('polls on the schedule when due, sends the comments owed, and does not poll when sync is off', async () => {

            const key = await configure({ poll_minutes: 1 });
            const { test, issue } = await linked(key);
            jira.setStatus(issue.key, 'In Progress', 'indeterminate');
            await idle();
            const later = new Date(Date.now() + 10 * 3600_000);         // past any back-off or Retry-After of other tests
            const due = await context.services.jira.syncDue(systemActor, later);
            expect(due.run).to.include({ trigger: 'schedule', status: 'succeeded' });
            expect((await Test.query(context.knex).findById(test.id))!.remediation_status).to.equal('in_progress');
            const sorted = await ok('red_lead', 'GET', '/jira/issues?sort=issue_key&order=asc&limit=500');
            const keys = sorted.items.map((item: { issue_key: string }) => item.issue_key);
            expect(keys).to.include(issue.key);
            expect(sorted.total as number).to.be.at.least(keys.length);

            await configure({ sync_enabled: false });
            expect((await context.services.jira.syncDue(systemActor, later)).run).to.be.null();
            await context.services.settings.reset(context.actor('admin'), 'jira');
            expect(await context.services.jira.syncDue(systemActor, later)).to.equal({ run: null, comments: 0 });
        });

        it('queues one run at a time (202), and refuses when Jira is not configured (409, nothing written)', async () => {

            await configure();
            await idle();
            const first = await ok('red_lead', 'POST', '/jira/sync', undefined, 202);
            expect(first).to.include({ status: 'queued', trigger: 'manual', requested_by: context.users.red_lead.id });
            const second = await ok('blue_lead', 'POST', '/jira/sync', undefined, 202);
            expect(second.id).to.equal(first.id);
            await idle();

            await context.services.settings.reset(context.actor('admin'), 'jira');
            const initial = await rows();
            await refused('admin', 'POST', '/jira/sync', undefined, 409, { code: 'jira_not_configured' });
            expect(await rows()).to.equal(initial);
        });
    });

    describe('webhook', () => {

        const hook = (body: string | object, options: { secret?: string; signature?: string; type?: string } = {}) => context.server.inject({
            method: 'POST',
            url: `/api/v1/jira/webhook${options.secret === undefined ? '' : `?secret=${encodeURIComponent(options.secret)}`}`,
            headers: { 'content-type': options.type ?? 'application/json', ...(options.signature ? { 'x-hub-signature': options.signature } : {}) },
            payload: typeof body === 'string' ? body : JSON.stringify(body)
        });

        it('takes an issue update with the shared secret or the body\'s HMAC, and applies what Jira says now', async () => {

            const key = await configure();
            const { test, issue } = await linked(key);
            jira.setStatus(issue.key, 'Done', 'done');
            const payload = { webhookEvent: 'jira:issue_updated', issue: { id: issue.id, key: issue.key, fields: { status: { name: 'Closed', statusCategory: { key: 'done' } } } } };
            const res = await hook(payload, { secret: webhookSecret });
            expect(res.statusCode).to.equal(202);
            const answer = JSON.parse(res.payload);
            expect(answer.accepted).to.be.true();
            const run = await context.services.jira.runSync(systemActor, answer.run_id);
            expect(run).to.include({ trigger: 'webhook', status: 'succeeded', issues_seen: 1, issues_changed: 1, issue_keys: [issue.key] });
            expect(await JiraIssue.query(context.knex).findById(test.id)).to.include({ status_name: 'Done' });         // Jira's word, not the payload's

            const body = JSON.stringify(payload);
            const signature = `sha256=${Crypto.createHmac('sha256', webhookSecret).update(body).digest('hex')}`;
            const signed = await hook(body, { signature });
            expect(signed.statusCode).to.equal(202);
            await context.services.jira.runSync(systemActor, JSON.parse(signed.payload).run_id);
        });

        it('refuses a wrong or missing secret (401), a bad body (400), a large one (413), and writes nothing', async () => {

            const key = await configure();
            const { issue } = await linked(key);
            const payload = { webhookEvent: 'jira:issue_updated', issue: { key: issue.key } };
            const initial = await rows();
            expect((await hook(payload)).statusCode).to.equal(401);
            expect((await hook(payload, { secret: 'wrong-secret-wrong-secret' })).statusCode).to.equal(401);
            expect((await hook(payload, { signature: 'sha256=00' })).statusCode).to.equal(401);
            expect((await hook('{ not json', { secret: webhookSecret })).statusCode).to.equal(400);
            expect((await hook({ webhookEvent: 'jira:issue_updated' }, { secret: webhookSecret })).statusCode).to.equal(400);
            expect((await hook({ issue: { key: 'x'.repeat(70_000) } }, { secret: webhookSecret })).statusCode).to.equal(413);
            expect((await hook('key=1', { secret: webhookSecret, type: 'application/x-www-form-urlencoded' })).statusCode).to.equal(415);
            const unlinked = await hook({ issue: { key: `${key}-9999` } }, { secret: webhookSecret });
            expect(JSON.parse(unlinked.payload)).to.equal({ accepted: false, run_id: null });
            expect(await rows()).to.equal(initial);

            await configure({ webhook_secret: null });
            expect((await hook(payload, { secret: webhookSecret })).statusCode).to.equal(401);
            expect(await rows()).to.include({ runs: initial.runs });
        });

        it('records an issue deleted in Jira as a failure of its run, with the reason', async () => {

            const key = await configure();
            const { test, issue } = await linked(key);
            jira.state.issues.delete(issue.key);
            const res = await hook({ issue: { key: issue.key } }, { secret: webhookSecret });
            const run = await context.services.jira.runSync(systemActor, JSON.parse(res.payload).run_id);
            expect(run).to.include({ status: 'partial', issues_failed: 1, failures: [{ issue_key: issue.key, reason: `The issue ${issue.key} does not exist, or the account cannot see it` }] });
            expect((await JiraIssue.query(context.knex).findById(test.id))!.last_error).to.include('does not exist');
            const failing = await ok('blue_lead', 'GET', '/jira/issues?failing=true&limit=500');
            expect(failing.items.map((item: { test_id: string }) => item.test_id)).to.include(test.id);
            expect((await request('admin', 'DELETE', `/tests/${test.id}/jira`)).statusCode).to.equal(204);
        });
    });

    describe('comments and the retest loop', () => {

        it('comments on the issue when the remediation changes in Aegis, not when Jira changed it', async () => {

            const key = await configure();
            const { test, issue } = await linked(key);
            await ok('blue_lead', 'PATCH', `/tests/${test.id}/remediation`, { remediation_status: 'in_progress', remediation_due: '2031-01-31' });
            await context.relay.drain();
            const owed = await JiraComment.query(context.knex).where('test_id', test.id);
            expect(owed).to.have.length(1);
            expect(await context.services.jira.sendComments(systemActor)).to.be.at.least(1);
            expect(issue.comments).to.have.length(1);
            expect(issue.comments[0]!.body).to.include(`changed from *open* to *in_progress* (by ${context.users.blue_lead.username})`);
            expect(issue.comments[0]!.body).to.include('Due: 2031-01-31');
            expect(issue.comments[0]!.body).to.include(`https://aegis.example.test/tests/${test.id}`);
            expect((await JiraComment.query(context.knex).findById(owed[0]!.id))!.status).to.equal('sent');

            jira.setStatus(issue.key, 'Done', 'done');
            await sync();
            await context.relay.drain();
            expect(await JiraComment.query(context.knex).where('test_id', test.id).resultSize()).to.equal(1);
        });

        it('retries a comment while Jira is down, with back-off', async () => {

            const key = await configure();
            const { test, issue } = await linked(key);
            await ok('blue_lead', 'PATCH', `/tests/${test.id}/remediation`, { remediation_status: 'in_progress' });
            await context.relay.drain();
            jira.state.down = true;
            await context.services.jira.sendComments(systemActor);
            const waiting = (await JiraComment.query(context.knex).where('test_id', test.id))[0]!;
            expect(waiting).to.include({ status: 'pending', attempts: 1 });
            expect(waiting.last_error).to.include('is unreachable');
            expect(new Date(waiting.next_attempt_at!).getTime()).to.be.above(Date.now());

            jira.state.down = false;
            await JiraComment.query(context.knex).findById(waiting.id).patch({ next_attempt_at: new Date(Date.now() - 1000) });
            await context.services.jira.sendComments(systemActor);
            expect((await JiraComment.query(context.knex).findById(waiting.id))!.status).to.equal('sent');
            expect(issue.comments).to.have.length(1);
        });

        it('resolves an awaiting remediation when its retest validates with a detection, and reopens it when not', async () => {

            const key = await configure();
            const first = await linked(key);
            const second = await linked(key);
            await Test.query(context.knex).findByIds([first.test.id, second.test.id]).patch({ remediation_status: 'awaiting_retest' });
            const detected = await testRow(context.knex, { technique_id: first.test.technique_id, state: 'validated', retest_of_id: first.test.id });
            const missed = await testRow(context.knex, { technique_id: second.test.technique_id, state: 'validated', retest_of_id: second.test.id, detection_outcome: 'not_detected', detections: [{ tool: 'EDR', outcome: 'not_detected' }] as never, detected_at: null });
            await context.knex.transaction((trx) => context.services.events.emit(trx, context.actor('admin'), [
                { type: 'test.validated', entity_type: 'test', entity_id: detected.id, payload: { test_id: detected.id, technique_id: detected.technique_id, detection_outcome: 'alerted' } },
                { type: 'test.validated', entity_type: 'test', entity_id: missed.id, payload: { test_id: missed.id, technique_id: missed.technique_id, detection_outcome: 'not_detected' } }
            ]));
            await context.relay.drain();
            await context.relay.drain();
            expect((await Test.query(context.knex).findById(first.test.id))!.remediation_status).to.equal('resolved');
            expect((await Test.query(context.knex).findById(second.test.id))!.remediation_status).to.equal('open');
            await context.services.jira.sendComments(systemActor);
            expect(first.issue.comments.at(-1)!.body).to.include('changed from *awaiting_retest* to *resolved* (by the validated retest)');
            expect(second.issue.comments.at(-1)!.body).to.include('to *open*');
        });
    });
});
