import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { Test, TestTimelineEntry } from '../../server/models';
import { roles, type Role } from '../../server/policy';
import { decide, edits, lifecycle, testActions, testStates, type TestAction } from '../../server/services/test-lifecycle';

import { json, technique, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    payload: (action: TestAction) => (action.startsWith('validate-') ? { approved: true, comment: 'fine' } : undefined)
};


describe('Test lifecycle routes', () => {

    let context: TestContext;
    const post = (role: Role, id: string, action: TestAction, payload?: object) => context.server.inject({ method: 'POST', url: `/api/v1/tests/${id}/${action}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    before(async () => {

        context = await init({ redis: false });
        await technique(context.knex);
    });

    after(async () => {

        await context.stop();
    });

    it('applies the table to every state × action × role: 403 for a wrong role, 409 for a wrong state, nothing written on a refusal', async () => {

        let checked = 0;
        for (const state of testStates) {
            for (const action of testActions) {
                for (const role of roles) {
                    const test = await testRow(context.knex, { state });
                    const res = await post(role, test.id, action, internals.payload(action));
                    const label = `${role} ${action} from ${state}`;
                    const allowed = (lifecycle[action].roles as readonly string[]).includes(role);
                    const outcome = decide(action, test, { present: ['executed_at', 'attack_result', 'detections'], approved: true });

                    if (!allowed) {
                        expect(res.statusCode, label).to.equal(403);
                    }
                    else if (!outcome.ok) {
                        expect(res.statusCode, label).to.equal(409);
                        const code = outcome.refusal.kind === 'state' ? 'invalid_state_transition' : (outcome.refusal as { code: string }).code;
                        expect((res.result as { code: string }).code, label).to.equal(code);
                    }
                    else {
                        expect(res.statusCode, label).to.equal(200);
                        expect((res.result as Test).state, label).to.equal(outcome.to);
                        expect((res.result as Test).version, label).to.equal(2);
                    }

                    if (res.statusCode !== 200) {
                        const stored = await Test.query(context.knex).findById(test.id);
                        expect(stored!.version, label).to.equal(1);
                        expect(stored!.state, label).to.equal(state);
                        expect(await TestTimelineEntry.query(context.knex).where('test_id', test.id).resultSize(), label).to.equal(0);
                    }

                    checked++;
                }
            }
        }

        expect(checked).to.equal(testStates.length * testActions.length * roles.length);
    });

    it('applies the edit rules to every state × edit route × role: 403 for a wrong role, 409 for a wrong state, nothing written on a refusal', async () => {

        const routes = {
            update: { path: '', payload: { title: 'Edited' } },
            red: { path: '/red', payload: { tool: 'edited' } },
            blue: { path: '/blue', payload: { blue_notes: 'edited' } },
            remediation: { path: '/remediation', payload: { remediation_status: 'open' } },
            classification: { path: '/classification', payload: { data_classification: 'public' } }
        } as const;

        let checked = 0;
        for (const [edit, route] of Object.entries(routes) as [keyof typeof routes, typeof routes[keyof typeof routes]][]) {
            for (const state of testStates) {
                for (const role of roles) {
                    const test = await testRow(context.knex, { state });
                    const res = await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${test.id}${route.path}`, auth: context.as(role), payload: route.payload });
                    const label = `${role} ${edit} in ${state}`;
                    const rule = edits[edit];
                    if (!(rule.roles as readonly string[]).includes(role)) {
                        expect(res.statusCode, label).to.equal(403);
                    }
                    else if (!(rule.states as readonly string[]).includes(state)) {
                        expect(res.statusCode, label).to.equal(409);
                        expect((res.result as { code: string }).code, label).to.equal('invalid_state_transition');
                    }
                    else {
                        expect(res.statusCode, label).to.equal(200);
                        expect((res.result as Test).version, label).to.equal(2);
                    }

                    if (res.statusCode !== 200) {
                        expect((await Test.query(context.knex).findById(test.id))!.version, label).to.equal(1);
                        expect(await TestTimelineEntry.query(context.knex).where('test_id', test.id).resultSize(), label).to.equal(0);
                    }

                    checked++;
                }
            }
        }

        expect(checked).to.equal(5 * testStates.length * roles.length);
    });

    it('runs a whole lifecycle through the API: timer, derived detection, notifications, events, coverage, timeline', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const redTech = context.users.red_tech;
        const blueTech = context.users.blue_tech;
        const created = await context.server.inject({ method: 'POST', url: '/api/v1/tests', auth: context.as('red_lead'), payload: { title: 'Kerberoasting', technique_id: techniqueId, red_assignee_id: redTech.id, blue_assignee_id: blueTech.id, tags: ['q4'] } });
        expect(created.statusCode).to.equal(201);
        const id = (created.result as Test).id;

        expect((await post('red_tech', id, 'start-execution')).statusCode).to.equal(200);
        await context.relay.drain();
        expect((await context.knex('notifications').where({ user_id: redTech.id, entity_id: id })).length).to.equal(0);        // the assignee started it: nobody else to tell

        const early = await post('red_tech', id, 'submit-red');
        expect(early.statusCode).to.equal(400);
        expect(early.result).to.include({ code: 'missing_fields', fields: ['executed_at', 'attack_result'] });

        const red = await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${id}/red`, auth: context.as('red_tech'), payload: { executed_at: '2026-11-28T10:00:00.000Z', attack_result: 'succeeded', tool: 'Rubeus', command: 'Rubeus.exe kerberoast' } });
        expect(red.statusCode).to.equal(200);
        expect((await post('red_tech', id, 'pause-timer')).statusCode).to.equal(200);
        expect((await post('red_tech', id, 'pause-timer')).result).to.include({ code: 'timer_not_running' });
        expect((await post('red_tech', id, 'resume-timer')).statusCode).to.equal(200);
        expect((await post('red_tech', id, 'submit-red')).statusCode).to.equal(200);
        expect((await context.knex('notifications').where({ user_id: blueTech.id, entity_id: id })).length).to.equal(0);      // after the commit, by the relay
        await context.relay.drain();
        expect((await context.knex('notifications').where({ user_id: blueTech.id, entity_id: id, type: 'test.assigned' })).length).to.equal(1);

        const blueRefused = await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${id}/red`, auth: context.as('red_tech'), payload: { red_notes: 'late' } });
        expect(blueRefused.statusCode).to.equal(409);

        const blue = await context.server.inject({
            method: 'PATCH', url: `/api/v1/tests/${id}/blue`, auth: context.as('blue_tech'), payload: {
                detections: [{ tool: 'SIEM', outcome: 'logged', detected_at: '2026-11-28T10:02:00.000Z' }, { tool: 'EDR', outcome: 'alerted' }]
            }
        });
        expect(blue.statusCode).to.equal(200);
        expect(json(blue)).to.include({ detection_outcome: 'alerted', time_to_detect_seconds: 120, detected_at: '2026-11-28T10:02:00.000Z' });

        const incomplete = await post('blue_tech', id, 'submit-blue');
        expect(incomplete.statusCode).to.equal(400);
        expect(incomplete.result).to.include({ fields: ['detections.1.detected_at'] });

        await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${id}/blue`, auth: context.as('blue_tech'), payload: { detections: [{ tool: 'EDR', outcome: 'alerted', detected_at: '2026-11-28T10:01:00.000Z' }] } });
        const submitted = await post('blue_tech', id, 'submit-blue');
        expect(submitted.statusCode).to.equal(200);
        expect(json(submitted)).to.include({ state: 'in_review', timer_running: false, time_to_detect_seconds: 60 });
        await context.relay.drain();
        expect((await context.knex('notifications').where({ user_id: context.users.red_lead.id, entity_id: id, type: 'test.review' })).length).to.equal(1);

        const noComment = await post('red_lead', id, 'validate-red', { approved: false });
        expect(noComment.statusCode).to.equal(400);
        expect(noComment.result).to.include({ fields: ['comment'] });

        expect((await post('red_lead', id, 'validate-red', { approved: true })).result).to.include({ state: 'in_review', red_approved: true });
        expect((await post('red_lead', id, 'validate-red', { approved: true })).result).to.include({ code: 'already_decided' });
        const validated = await post('blue_lead', id, 'validate-blue', { approved: true, comment: 'EDR alert confirmed' });
        expect(validated.result).to.include({ state: 'validated', blue_approved: true, blue_validation_comment: 'EDR alert confirmed' });

        await context.relay.drain();
        const events = await context.knex('domain_events').where('entity_id', id).orderBy('seq').select('type');
        expect(events.map((event: { type: string }) => event.type)).to.equal(['test.state_changed', 'test.state_changed', 'test.state_changed', 'test.state_changed', 'test.validated']);
        const coverage = await context.knex('techniques').where('mitre_id', techniqueId).first();
        expect(coverage).to.include({ coverage_status: 'covered', latest_validated_test_id: id });
        expect((await context.knex('notifications').where({ user_id: redTech.id, entity_id: id, type: 'test.validated' })).length).to.equal(1);

        // Frozen: general, red and blue edits answer 409; remediation is allowed
        expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${id}`, auth: context.as('admin'), payload: { title: 'x' } })).statusCode).to.equal(409);
        const remediation = await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${id}/remediation`, auth: context.as('blue_lead'), payload: { remediation_status: 'open', remediation_due: '2026-12-31', remediation_owner_id: blueTech.id } });
        expect(remediation.statusCode).to.equal(200);
        expect(json(remediation)).to.include({ remediation_status: 'open', remediation_due: '2026-12-31' });

        const timeline = await context.server.inject({ method: 'GET', url: `/api/v1/tests/${id}/timeline?limit=100`, auth: context.as('viewer') });
        const actions = (timeline.result as { items: TestTimelineEntry[] }).items.map((entry) => entry.action);
        expect(actions).to.equal(['create', 'start-execution', 'update-red', 'pause-timer', 'resume-timer', 'submit-red', 'update-blue', 'update-blue', 'submit-blue', 'validate-red', 'validate-blue', 'update-remediation']);
        const audit = await context.knex('audit_logs').where('entity_id', id).select('action');
        expect(audit.length).to.equal(actions.length);
    });

    it('rejects, reopens to draft clearing the decisions but keeping red/blue fields, and allows remediation when rejected', async () => {

        const test = await testRow(context.knex, { state: 'in_review', red_approved: true, red_validated_by: context.users.red_lead.id, red_validated_at: new Date() } as Partial<Test>);
        const rejected = await post('blue_lead', test.id, 'validate-blue', { approved: false, comment: 'No alert in the SIEM' });
        expect(rejected.result).to.include({ state: 'rejected', blue_approved: false });
        expect((rejected.result as Test).rejected_at).to.be.a.date();

        expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${test.id}/remediation`, auth: context.as('red_lead'), payload: { remediation_status: 'in_progress' } })).statusCode).to.equal(200);

        const reopened = await post('red_lead', test.id, 'reopen');
        expect(reopened.result).to.include({ state: 'draft', red_approved: null, blue_approved: null, red_validated_by: null, rejected_at: null, attack_result: 'succeeded', detection_outcome: 'alerted' });
        expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${test.id}/remediation`, auth: context.as('red_lead'), payload: { remediation_status: 'resolved' } })).statusCode).to.equal(409);
    });

    it('refuses a detection timed before the execution, and an execution moved after a kept detection (400 naming the field, nothing written)', async () => {

        const patch = (role: Role, id: string, side: 'red' | 'blue', payload: object) => context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${id}/${side}`, auth: context.as(role), payload });
        const blue = await testRow(context.knex, { state: 'blue_evaluating', executed_at: new Date('2026-11-28T10:00:00.000Z'), detections: [], detection_outcome: null, detected_at: null } as Partial<Test>);
        const early = await patch('blue_tech', blue.id, 'blue', { detections: [{ tool: 'SIEM', outcome: 'logged', detected_at: '2026-11-28T10:05:00.000Z' }, { tool: 'EDR', outcome: 'alerted', detected_at: '2026-11-28T09:59:59.000Z' }] });
        expect(early.statusCode).to.equal(400);
        expect(early.result).to.include({ code: 'detected_before_executed', fields: ['detections.1.detected_at'] });
        expect(await Test.query(context.knex).findById(blue.id)).to.include({ version: 1, detections: [], detected_at: null });
        expect(json(await patch('blue_tech', blue.id, 'blue', { detections: [{ tool: 'EDR', outcome: 'alerted', detected_at: '2026-11-28T10:00:00.000Z' }] }))).to.include({ time_to_detect_seconds: 0 });

        // Reopened: red runs again with the old detections kept; its execution may not move past them
        const red = await testRow(context.knex, { state: 'red_executing', executed_at: new Date('2026-11-28T10:00:00.000Z'), detections: [{ tool: 'EDR', outcome: 'alerted', detected_at: '2026-11-28T10:02:00.000Z' }], detection_outcome: 'alerted', detected_at: new Date('2026-11-28T10:02:00.000Z') } as Partial<Test>);
        const late = await patch('red_tech', red.id, 'red', { executed_at: '2026-11-28T10:03:00.000Z' });
        expect(late.statusCode).to.equal(400);
        expect(late.result).to.include({ code: 'detected_before_executed', fields: ['executed_at'] });
        expect((await Test.query(context.knex).findById(red.id))!.version).to.equal(1);
        expect(json(await patch('red_tech', red.id, 'red', { executed_at: '2026-11-28T10:01:00.000Z' }))).to.include({ time_to_detect_seconds: 60 });
    });

    it('lets exactly one of many concurrent identical transitions succeed', async () => {

        for (const [state, action, role, payload] of [
            ['draft', 'start-execution', 'red_tech', undefined],
            ['in_review', 'validate-red', 'red_lead', { approved: true }],
            ['red_executing', 'pause-timer', 'blue_tech', undefined]
        ] as const) {
            const test = await testRow(context.knex, { state });
            const results = await Promise.all(Array.from({ length: 10 }, () => post(role, test.id, action, payload)));
            const codes = results.map((res) => res.statusCode).sort();
            expect(codes, action).to.equal([200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
            expect((await Test.query(context.knex).findById(test.id))!.version).to.equal(2);
            expect(await TestTimelineEntry.query(context.knex).where('test_id', test.id).resultSize()).to.equal(1);
        }

        // Both leads at once on an undecided test: both decisions land, in one order or the other, and the test ends validated
        const test = await testRow(context.knex, { state: 'in_review' });
        const [red, blue] = await Promise.all([post('red_lead', test.id, 'validate-red', { approved: true }), post('blue_lead', test.id, 'validate-blue', { approved: true })]);
        expect([red.statusCode, blue.statusCode]).to.equal([200, 200]);
        expect((await Test.query(context.knex).findById(test.id))!.state).to.equal('validated');
    });

    it('answers 404 for an unknown test and 400 for a bad id or payload', async () => {

        expect((await post('admin', '6f1c3a52-8a43-4c1b-9a3e-0d1f2e3c4b5a', 'start-execution')).statusCode).to.equal(404);
        expect((await post('admin', 'nope', 'start-execution')).statusCode).to.equal(400);
        const test = await testRow(context.knex, { state: 'in_review' });
        expect((await post('red_lead', test.id, 'validate-red', { approved: 'maybe' })).statusCode).to.equal(400);
        expect((await post('red_lead', test.id, 'validate-red', {})).statusCode).to.equal(400);
        expect((await post('red_tech', test.id, 'start-execution', { state: 'validated' })).statusCode).to.equal(400);
    });
});
