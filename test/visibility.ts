import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import type Joi from 'joi';

import { Test } from '../server/models';
import { canSeeTest, roles, type Actor, type Classification, type Role } from '../server/policy';

import { json, multipartForm, uniqueTechnique } from './helpers/factories';
import { init, type TestContext } from './helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// Issue 8 item 2: no GET route, present or to come, may hand a restricted test's fields to whom the rule hides the
// test from, nor a confidential one's to a viewer. The walk fills every path parameter with every id the fixture made,
// whatever the parameter is called, so a new module's routes are covered the day they are registered.

const internals = {
    restricted: `RESTRICTED${Crypto.randomBytes(6).toString('hex')}`,
    confidential: `CONFIDENTIAL${Crypto.randomBytes(6).toString('hex')}`,
    // campaigns (issue 10): what red runs in a blind campaign, hidden from the blue team until submit-red
    blind: `BLIND${Crypto.randomBytes(6).toString('hex')}`,

    // The API's own description carries no data; building it is also what a loaded machine is slowest at
    documentation: (path: string) => path === '/api/v1/openapi.json' || path === '/docs' || path.startsWith('/swaggerui'),

    // hapi sheds load (503) while the event loop lags on a busy machine: ask again once it has caught up
    get: async (context: TestContext, url: string, role: Role) => {

        for (let i = 1; ; ++i) {
            const res = await context.server.inject({ method: 'GET', url, auth: context.as(role) });
            if (res.statusCode !== 503 || !res.payload.includes('heavy load') || i === 10) {
                return res;
            }

            await new Promise((resolve) => setTimeout(resolve, 1000));
        }
    },

    // A plausible value for a required query parameter, from its joi description
    queryValue: (description: Joi.Description, ids: string[]): string => {

        const allowed = (description.allow as unknown[] | undefined)?.find((value) => value !== null && value !== '');
        if (allowed !== undefined) {
            return String(allowed);
        }

        switch (description.type) {
            case 'number': return '1';
            case 'boolean': return 'true';
            case 'date': return new Date().toISOString();
            default: return ids[0]!;
        }
    },

    // Every combination of the candidate values for the path parameters (and the required query parameters filled)
    urls: (route: { path: string; settings: { validate?: { query?: unknown } } }, candidates: string[]): string[] => {

        const query = route.settings.validate?.query as Joi.ObjectSchema | undefined;
        const keys = (typeof query?.describe === 'function' ? query.describe().keys : undefined) as Record<string, Joi.Description> | undefined;
        const required = Object.entries(keys ?? {}).filter(([, description]) => (description.flags as { presence?: string } | undefined)?.presence === 'required');
        const search = required.map(([name, description]) => `${name}=${encodeURIComponent(internals.queryValue(description, candidates))}`).join('&');

        let paths = [route.path];
        for (const [param] of route.path.matchAll(/\{[^}]+\}/g)) {
            paths = paths.flatMap((path) => candidates.map((value) => path.replace(param, param.endsWith('*}') ? 'x' : value)));
        }

        return paths.map((path) => (search ? `${path}?${search}` : path));
    }
};


describe('Visibility of classified tests', () => {

    let context: TestContext;
    let candidates: string[];
    const ids: Record<string, string> = {};

    const call = async (role: Role, method: string, url: string, payload?: unknown, headers?: Record<string, string>) => {

        const res = await context.server.inject({ method, url, auth: context.as(role), ...(payload === undefined ? {} : { payload: payload as object }), ...(headers ? { headers } : {}) });
        expect(res.statusCode, `${role} ${method} ${url}: ${res.payload}`).to.be.below(300);
        return res.payload ? json(res) : {};
    };

    // Through the whole lifecycle, with the marker in every free-text field a test and its evidence have
    const classifiedTest = async (marker: string, classification: Classification, techniqueId: string, redAssignee: string) => {

        const test = await call('red_lead', 'POST', '/api/v1/tests', {
            title: `Title ${marker}`, objective: `Objective ${marker}`, description: `Description ${marker}`, technique_id: techniqueId,
            expected_outcome: `Expected ${marker}`, tags: [`tag-${marker}`], red_assignee_id: redAssignee
        });

        const url = `/api/v1/tests/${test.id}`;
        await call('admin', 'PATCH', `${url}/classification`, { data_classification: classification });
        await call('admin', 'POST', `${url}/start-execution`, {});
        const form = multipartForm({ team: 'red', description: `Evidence ${marker}` }, { name: `${marker}.txt`, data: Buffer.from(`output of ${marker}\n`) });
        const evidence = await call('red_lead', 'POST', `${url}/evidence`, form.payload, form.headers);
        await call('admin', 'PATCH', `${url}/red`, {
            procedure: `Procedure ${marker}`, tool: `Tool ${marker}`, command: `whoami /${marker}`, target_host: `${marker}.corp.example`,
            red_notes: `Red notes ${marker}`, executed_at: new Date(Date.now() - 60_000).toISOString(), attack_result: 'succeeded'
        });
        await call('admin', 'POST', `${url}/submit-red`, {});
        await call('admin', 'PATCH', `${url}/blue`, { detections: [{ tool: `EDR ${marker}`, outcome: 'alerted', detected_at: new Date().toISOString(), notes: `Detection ${marker}` }], blue_notes: `Blue notes ${marker}` });
        await call('admin', 'POST', `${url}/submit-blue`, {});
        return { id: test.id as string, evidence: evidence.id as string };
    };

    before(async () => {

        context = await init({ redis: false });
        const techniqueId = await uniqueTechnique(context.knex);
        const other = await context.createUser('red_tech');

        // The restricted test was first the red technician's: their notifications of it stay when it is reassigned
        const restricted = await classifiedTest(internals.restricted, 'restricted', techniqueId, context.users.red_tech.id);
        await call('admin', 'POST', `/api/v1/tests/${restricted.id}/validate-red`, { approved: false, comment: `Rejected ${internals.restricted}` });
        await call('admin', 'POST', `/api/v1/tests/${restricted.id}/reopen`, {});
        // Notifications follow the commit (the event relay): deliver them while the technician is still assigned
        await context.relay.drain();
        await call('red_lead', 'PATCH', `/api/v1/tests/${restricted.id}`, { red_assignee_id: other.id });
        for (const action of ['start-execution', 'submit-red', 'submit-blue']) {
            await call('admin', 'POST', `/api/v1/tests/${restricted.id}/${action}`, {});
        }

        await call('red_lead', 'POST', `/api/v1/tests/${restricted.id}/validate-red`, { approved: true, comment: `Approved ${internals.restricted}` });
        await call('blue_lead', 'POST', `/api/v1/tests/${restricted.id}/validate-blue`, { approved: true, comment: `Approved ${internals.restricted}` });
        const retest = await call('red_lead', 'POST', '/api/v1/tests', { retest_of_id: restricted.id });

        const confidential = await classifiedTest(internals.confidential, 'confidential', techniqueId, other.id);
        await call('red_lead', 'POST', `/api/v1/tests/${confidential.id}/validate-red`, { approved: true });
        await call('blue_lead', 'POST', `/api/v1/tests/${confidential.id}/validate-blue`, { approved: true });

        // What a lead tried before the fix: a template every role reads, copied from each classified test
        const templates: string[] = [];
        for (const source of [restricted.id, confidential.id]) {
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/test-templates', auth: context.as('red_lead'), payload: { source_test_id: source } });
            if (res.statusCode === 201) {
                templates.push(json(res).id);
            }
        }

        const worklog = await call('red_lead', 'POST', '/api/v1/worklogs', { test_id: restricted.id, minutes: 30, date: '2026-12-01', note: 'triage' });

        // campaigns (issue 10): a campaign holding the classified tests; its history names the members' ids
        const campaign = await call('red_lead', 'POST', '/api/v1/campaigns', { name: 'Classified members' });
        for (const member of [restricted.id, confidential.id, retest.id]) {
            await call('red_lead', 'POST', `/api/v1/campaigns/${campaign.id}/tests`, { test_id: member });
        }

        const blindCampaign = await call('red_lead', 'POST', '/api/v1/campaigns', { name: 'Blind exercise', blind: true });
        const blindTest = await call('red_lead', 'POST', '/api/v1/tests', { title: 'Blind test', technique_id: techniqueId });
        await call('red_lead', 'POST', `/api/v1/campaigns/${blindCampaign.id}/tests`, { test_id: blindTest.id });
        await call('red_lead', 'POST', `/api/v1/tests/${blindTest.id}/start-execution`, {});
        await call('red_tech', 'PATCH', `/api/v1/tests/${blindTest.id}/red`, { procedure: `Procedure ${internals.blind}`, tool: `Tool ${internals.blind}`, command: `run ${internals.blind}` });

        // reports: the remediation report lists only tests with a remediation under way
        await context.knex('tests').whereIn('id', [restricted.id, confidential.id]).update({ remediation_status: 'open', remediation_due: '2020-01-01' });
        // attack paths and knowledge (issue 10): an execution step proved by the restricted test, a lesson drawn from it
        const attackPath = await call('red_lead', 'POST', '/api/v1/attack-paths', { name: 'Visibility path', steps: [{ technique_id: techniqueId }] });
        const execution = await call('red_lead', 'POST', `/api/v1/attack-paths/${attackPath.id}/executions`, {});
        await call('red_lead', 'POST', `/api/v1/executions/${execution.id}/start`, {});
        await call('red_lead', 'POST', `/api/v1/executions/${execution.id}/steps/${execution.steps[0].id}`, { outcome: 'detected', notes: 'proved', test_id: restricted.id });
        const lesson = await call('red_lead', 'POST', '/api/v1/knowledge/lessons', { title: 'Lesson', severity: 'high', technique_id: techniqueId, test_id: restricted.id });
        const playbook = await call('red_lead', 'POST', '/api/v1/knowledge/playbooks', { title: 'Playbook', type: 'response', technique_ids: [techniqueId] });
        const knowledgeIds: string[] = [attackPath.id, execution.id, lesson.id, playbook.id];
        await context.relay.drain();
        const notifications = await context.knex('notifications').whereIn('user_id', [context.users.red_tech.id, context.users.viewer.id]).pluck('id');

        // alerts: an sla_breach instance on each classified test (its remediation past due), and the rule that raised them
        const overdue = new Date(Date.now() - 5 * 86_400_000).toISOString().slice(0, 10);
        for (const [test, marker] of [[restricted.id, internals.restricted], [confidential.id, internals.confidential]] as const) {
            await call('blue_lead', 'PATCH', `/api/v1/tests/${test}/remediation`, { remediation_status: 'open', remediation_due: overdue, remediation_notes: `Remediation ${marker}` });
        }

        const alertRule = await call('blue_lead', 'POST', '/api/v1/alerts/rules', { name: `Visibility ${internals.restricted.slice(-6)}`, rule_type: 'sla_breach', parameters: { technique_ids: [techniqueId] } });
        await context.services.alerts.evaluate({ id: null, role: 'system' });
        const alerts = await context.knex('alerts').where('rule_id', alertRule.id).pluck('id');
        expect(alerts).to.have.length(2);
        await context.knex('alert_rules').where('id', alertRule.id).update({ enabled: false });

        Object.assign(ids, { alertRule: alertRule.id, restricted: restricted.id, confidential: confidential.id, technique: techniqueId, retest: retest.id, restrictedEvidence: restricted.evidence, confidentialEvidence: confidential.evidence });
        candidates = [
            restricted.id, confidential.id, retest.id, restricted.evidence, confidential.evidence, ...templates, worklog.id, ...notifications,
            techniqueId, context.users.red_tech.id, context.users.viewer.id, other.id,
            // campaigns (issue 10)
            campaign.id, blindCampaign.id, blindTest.id,
            // alerts
            alertRule.id, ...alerts,
            // attack paths and knowledge (issue 10)
            ...knowledgeIds
        ];

        // scores (issue 12): the technique's score and risk profile, computed from the classified validated tests,
        // so that /scores/techniques/{id} and /risk/profiles/{id} answer 200 in the walk
        await context.services.risk.recompute({ id: null, role: 'system' });

        // dashboards (issue 12): a snapshot taken after the classified tests were validated, for /snapshots/{id}
        const snapshot = await call('admin', 'POST', '/api/v1/snapshots', { note: 'visibility walk' });
        candidates.push(snapshot.id);

        // detection (issue 11): validations and rule evaluations of both classified tests (their detections are rows already)
        const [asset] = await context.knex('detection_assets').insert({ name: `Visibility EDR ${Crypto.randomUUID()}`, type: 'edr' }).returning('id');
        const [rule] = await context.knex('detection_rules').insert({ name: 'Visibility rule', language: 'kql', query: 'q', technique_ids: [techniqueId], asset_id: asset.id }).returning('id');
        const validations = await context.knex('detection_validations').insert([restricted.id, confidential.id].map((testId) => ({ technique_id: techniqueId, asset_id: asset.id, test_id: testId, source: 'test', outcome: 'alerted', validated_at: new Date() }))).returning('id');
        await context.knex('detection_rule_evaluations').insert([restricted.id, confidential.id].map((testId) => ({ rule_id: rule.id, test_id: testId, fired: true })));
        candidates.push(asset.id, rule.id, ...validations.map((row: { id: string }) => row.id));
    });

    after(async () => {

        await context.stop();
    });

    const walk = async (role: Role, markers: string[]) => {

        const seen = new Map<string, string[]>();
        let calls = 0;
        let answered = 0;
        for (const route of context.server.table().filter((item) => item.method === 'get' && !internals.documentation(item.path))) {
            for (const url of internals.urls(route as never, candidates)) {
                const res = await internals.get(context, url, role);
                expect(res.statusCode, `${role} GET ${url}`).to.not.equal(500);
                const text = `${JSON.stringify(res.headers)}\n${res.payload}`;
                for (const marker of markers.filter((item) => text.includes(item))) {
                    seen.set(marker, [...seen.get(marker) ?? [], `${route.path} (${url}, ${res.statusCode})`]);
                }

                calls++;
                answered += res.statusCode === 200 ? 1 : 0;
            }
        }

        // Not blind: most routes answer this caller something
        expect(answered, role).to.be.above(10);
        return { seen, calls };
    };

    it('hands no field of a restricted or confidential test to a viewer, on any GET route', async () => {

        // Nor their ids: nothing the viewer may read refers to them
        const { seen, calls } = await walk('viewer', [internals.restricted, internals.confidential, ids.restricted!, ids.confidential!, ids.retest!, ids.restrictedEvidence!, ids.confidentialEvidence!]);
        expect(calls).to.be.above(100);
        expect(Object.fromEntries(seen)).to.equal({});
    });

    it('hands no field of a restricted test to a red technician it is not assigned to, on any GET route', async () => {

        // Their notifications still name the test's id (they knew it), not its retest or evidence
        const { seen } = await walk('red_tech', [internals.restricted, ids.retest!, ids.restrictedEvidence!]);
        expect(Object.fromEntries(seen)).to.equal({});

        // They still hold the notifications from when it was theirs, without its title
        const notifications = json(await context.server.inject({ method: 'GET', url: '/api/v1/notifications', auth: context.as('red_tech') }));
        const about: { title: string; body: string | null }[] = notifications.items.filter((item: { entity_id: string }) => item.entity_id === ids.restricted);
        expect(about.length).to.be.at.least(2);
        expect(about.every((item) => item.title === 'A test you can no longer see' && item.body === null)).to.be.true();
        const marked = await context.server.inject({ method: 'PATCH', url: `/api/v1/notifications/${(about[0] as unknown as { id: string }).id}`, auth: context.as('red_tech'), payload: { read: true } });
        expect(json(marked)).to.include({ title: 'A test you can no longer see', body: null });
        expect(marked.payload).to.not.contain(internals.restricted);
    });

    it('hands no red procedure, tool or command of a blind campaign\'s test to a blue role before submit-red, on any GET route', async () => {

        for (const role of ['blue_tech', 'blue_lead'] as const) {
            const { seen } = await walk(role, [internals.blind]);
            expect(Object.fromEntries(seen), role).to.equal({});
        }

        // Not blind: the red team reads them
        const { seen } = await walk('red_tech', [internals.blind]);
        expect([...seen.get(internals.blind)!.map((entry) => entry.split(' ')[0])]).to.include(['/api/v1/tests/{id}', '/api/v1/tests/{id}/timeline']);
    });

    it('names the test a technique\'s coverage comes from only to those who may see it', async () => {

        const latest = async (role: Role) => json(await context.server.inject({ method: 'GET', url: `/api/v1/techniques/${ids.technique}`, auth: context.as(role) })).latest_validated_test_id;
        expect(await latest('viewer')).to.be.null();
        expect(await latest('red_tech')).to.equal(ids.confidential);
        expect(await latest('admin')).to.equal(ids.confidential);
    });

    // alerts
    it('answers the alerts about a classified test only to those who may see the test (the walk is not blind to them)', async () => {

        const subjects = async (role: Role) => json(await context.server.inject({ method: 'GET', url: `/api/v1/alerts?rule_id=${ids.alertRule}`, auth: context.as(role) })).items.map((item: { subject_id: string }) => item.subject_id).sort();
        expect(await subjects('admin')).to.equal([ids.restricted, ids.confidential].sort());
        expect(await subjects('red_tech')).to.equal([ids.confidential]);
        expect(await subjects('viewer')).to.equal([]);
    });

    it('walks routes that do carry the markers to those who may see them (the walk is not blind)', async () => {

        const { seen } = await walk('admin', [internals.restricted, internals.confidential]);
        const paths = (marker: string) => new Set(seen.get(marker)!.map((entry) => entry.split(' ')[0]));
        for (const marker of [internals.restricted, internals.confidential]) {
            expect([...paths(marker)]).to.include([
                '/api/v1/tests', '/api/v1/tests/{id}', '/api/v1/tests/{id}/timeline', '/api/v1/tests/{id}/retest-chain', '/api/v1/tests/{id}/evidence',
                '/api/v1/evidence/{id}', '/api/v1/evidence/{id}/download', '/api/v1/techniques/{mitre_id}',
                // documents (issue 13)
                '/api/v1/reports/generate/technique/{id}',
                // integration of campaigns (integ-a): the campaign report of the campaign holding the classified tests
                '/api/v1/reports/generate/purple-campaign/{id}',
                // detection (issue 11)
                '/api/v1/detection-lifecycle/detections'
            ]);
        }

        // attack paths and knowledge (issue 10): an execution names the restricted test that proved one of its steps
        expect([...paths(internals.restricted)]).to.include(['/api/v1/executions/{id}']);

        const { seen: red } = await walk('red_tech', [internals.confidential]);
        expect([...red.get(internals.confidential)!.map((entry) => entry.split(' ')[0])]).to.include('/api/v1/techniques/{mitre_id}');
    });

    it('answers the same visibility in SQL (the model modifier) and in memory (canSeeTest), for every role, classification and assignment', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const user = await context.createUser('blue_tech');
        const rows: Test[] = [];
        for (const classification of ['public', 'internal', 'confidential', 'restricted'] as const) {
            for (const assignee of [null, user.id]) {
                rows.push(await Test.insertReturning(context.knex, { title: 'Rule', technique_id: techniqueId, data_classification: classification, blue_assignee_id: assignee } as Partial<Test>));
            }
        }

        for (const role of [...roles, 'system'] as const) {
            for (const actor of [{ id: user.id, role }, { id: Crypto.randomUUID(), role }, { id: null, role }] as Actor[]) {
                const visible = (await Test.query(context.knex).where('technique_id', techniqueId).modify('visibleTo', actor).select('id')).map((row) => row.id).sort();
                expect(visible, `${role} ${actor.id}`).to.equal(rows.filter((row) => canSeeTest(actor, row)).map((row) => row.id).sort());
            }
        }
    });
});
