import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import type { Role } from '../../server/policy';

import { json, technique, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Test routes', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    before(async () => {

        context = await init({ redis: false });
        await technique(context.knex);
    });

    after(async () => {

        await context.stop();
    });

    it('creates a draft with every general field and answers it whole', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const payload = {
            title: 'PowerShell download cradle', objective: 'Check EDR on IEX', description: 'Run it on a workstation', technique_id: techniqueId,
            platform: 'Windows', priority: 'high', tags: ['q4', 'edr'], red_assignee_id: context.users.red_tech.id, blue_assignee_id: context.users.blue_tech.id,
            expected_outcome: 'EDR alert within 5 minutes', expected_detection_asset_ids: [Crypto.randomUUID()]
        };

        const res = await request('blue_lead', 'POST', '/tests', payload);
        expect(res.statusCode, res.payload).to.equal(201);
        const test = json(res);
        expect(test).to.equal({
            ...payload, id: test.id, state: 'draft', data_classification: 'internal', template_id: null, retest_of_id: null,
            procedure: null, tool: null, command: null, target_host: null, executed_at: null, attack_result: null, red_notes: null,
            detections: [], blue_notes: null, detection_outcome: null, detected_at: null,
            red_approved: null, red_validated_by: null, red_validated_at: null, red_validation_comment: null,
            blue_approved: null, blue_validated_by: null, blue_validated_at: null, blue_validation_comment: null, validated_at: null, rejected_at: null,
            red_seconds: 0, blue_seconds: 0, elapsed_seconds: 0, timer_running: false, timer_started_at: null, timer_paused: false, time_to_detect_seconds: null,
            remediation_status: 'none', remediation_notes: null, remediation_owner_id: null, remediation_due: null, jira_issue_key: null,
            campaign_ids: [], blind: false, version: 1, created_by: context.users.blue_lead.id, created_at: test.created_at, updated_at: test.updated_at
        });

        expect(json(await request('viewer', 'GET', `/tests/${test.id}`))).to.equal(test);
        expect(json(await request('viewer', 'GET', `/tests/${test.id}/timeline`)).items.map((entry: { action: string }) => entry.action)).to.equal(['create']);
    });

    it('refuses bad input with 400 naming the fields, and privileged fields (state, classification) on create and update', async () => {

        const bad = await request('admin', 'POST', '/tests', { title: '', technique_id: 'X', priority: 'urgent', state: 'validated', data_classification: 'public' });
        expect(bad.statusCode).to.equal(400);
        expect(json(bad).fields).to.include(['title', 'technique_id', 'priority', 'state', 'data_classification']);
        expect((await request('admin', 'POST', '/tests', { title: 'x' })).statusCode).to.equal(400);

        const unknown = await request('admin', 'POST', '/tests', { title: 'x', technique_id: 'T9999.999' });
        expect(unknown.statusCode).to.equal(400);
        expect(json(unknown)).to.include({ code: 'unknown_technique', fields: ['technique_id'] });

        const wrongSide = await request('admin', 'POST', '/tests', { title: 'x', technique_id: 'T1059.001', red_assignee_id: context.users.blue_tech.id });
        expect(json(wrongSide)).to.include({ code: 'invalid_assignee', fields: ['red_assignee_id'] });

        const test = await testRow(context.knex);
        expect((await request('admin', 'PATCH', `/tests/${test.id}`, { state: 'validated' })).statusCode).to.equal(400);
        expect((await request('admin', 'PATCH', `/tests/${test.id}`, { detection_outcome: 'alerted' })).statusCode).to.equal(400);
        expect((await request('admin', 'PATCH', `/tests/${test.id}`, {})).statusCode).to.equal(400);
        expect((await request('admin', 'PATCH', `/tests/${test.id}/blue`, { detection_outcome: 'alerted' })).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/tests?sort=password_hash')).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/tests?state=done')).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/tests?limit=0')).statusCode).to.equal(400);
    });

    it('answers 409 naming the successor for a revoked technique', async () => {

        const successor = await uniqueTechnique(context.knex);
        const revoked = `T8${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}`;
        await technique(context.knex, revoked, { revoked: true, revoked_by_id: successor });
        const res = await request('red_lead', 'POST', '/tests', { title: 'old', technique_id: revoked });
        expect(res.statusCode).to.equal(409);
        expect(json(res)).to.include({ code: 'technique_revoked', message: `Technique ${revoked} was revoked; use ${successor}` });
    });

    it('checks references on create and update: template, technique (unknown, revoked without successor), inactive assignees', async () => {

        expect(json(await request('admin', 'POST', '/tests', { title: 'x', technique_id: 'T1059.001', template_id: Crypto.randomUUID() }))).to.include({ code: 'invalid_reference', fields: ['template_id'] });
        const template = json(await request('admin', 'POST', '/test-templates', { name: 'T', technique_ids: ['T1059.001'] }));
        expect(json(await request('admin', 'POST', '/tests', { title: 'x', technique_id: 'T1059.001', template_id: template.id })).template_id).to.equal(template.id);

        const test = await testRow(context.knex);
        expect(json(await request('admin', 'PATCH', `/tests/${test.id}`, { technique_id: 'T9999.997' })).code).to.equal('unknown_technique');
        const revoked = `T7${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}`;
        await technique(context.knex, revoked, { revoked: true });
        expect(json(await request('admin', 'PATCH', `/tests/${test.id}`, { technique_id: revoked }))).to.include({ code: 'technique_revoked', message: `Technique ${revoked} was revoked` });

        const gone = await context.createUser('blue_tech');
        await context.knex('users').where('id', gone.id).update({ is_active: false });
        expect(json(await request('admin', 'PATCH', `/tests/${test.id}`, { blue_assignee_id: gone.id })).code).to.equal('invalid_assignee');
        expect(json(await request('admin', 'PATCH', `/tests/${test.id}`, { blue_assignee_id: context.users.admin.id, red_assignee_id: null })).blue_assignee_id).to.equal(context.users.admin.id);

        const fromTemplate = json(await request('admin', 'POST', '/tests/from-template', { template_ids: [template.id], overrides: { title: 'Named', platform: null, blue_assignee_id: context.users.blue_tech.id } }));
        expect(fromTemplate.items[0]).to.include({ title: 'Named', platform: null, blue_assignee_id: context.users.blue_tech.id });
    });

    it('updates general fields in draft and rejected only, recording each changed field in the timeline', async () => {

        const test = await testRow(context.knex);
        const res = await request('red_lead', 'PATCH', `/tests/${test.id}`, { title: 'Renamed', priority: 'critical', tags: ['a'] });
        expect(json(res)).to.include({ title: 'Renamed', priority: 'critical', tags: ['a'], version: 2 });
        const timeline = json(await request('viewer', 'GET', `/tests/${test.id}/timeline`));
        expect(timeline.items[0].changes).to.equal({ title: { from: test.title, to: 'Renamed' }, priority: { from: 'medium', to: 'critical' }, tags: { from: [], to: ['a'] } });

        // Same values: no new version, no timeline row
        expect(json(await request('red_lead', 'PATCH', `/tests/${test.id}`, { title: 'Renamed' })).version).to.equal(2);

        for (const state of ['red_executing', 'blue_evaluating', 'in_review', 'validated'] as const) {
            const other = await testRow(context.knex, { state });
            const refused = await request('admin', 'PATCH', `/tests/${other.id}`, { title: 'x' });
            expect(refused.statusCode, state).to.equal(409);
            expect(json(refused).code).to.equal('invalid_state_transition');
        }

        const rejected = await testRow(context.knex, { state: 'rejected' });
        expect((await request('blue_lead', 'PATCH', `/tests/${rejected.id}`, { title: 'Fixed' })).statusCode).to.equal(200);
        expect((await request('red_tech', 'PATCH', `/tests/${rejected.id}`, { title: 'Fixed' })).statusCode).to.equal(403);
    });

    it('keeps red and blue fields on their own routes and states', async () => {

        const red = await testRow(context.knex, { state: 'red_executing' });
        expect((await request('blue_tech', 'PATCH', `/tests/${red.id}/red`, { tool: 'x' })).statusCode).to.equal(403);
        expect((await request('blue_tech', 'PATCH', `/tests/${red.id}/blue`, { blue_notes: 'x' })).statusCode).to.equal(409);
        expect(json(await request('red_tech', 'PATCH', `/tests/${red.id}/red`, { tool: 'mimikatz', target_host: 'ws-01', red_notes: '' })).tool).to.equal('mimikatz');

        const blue = await testRow(context.knex, { state: 'blue_evaluating', executed_at: new Date('2026-11-28T11:59:00.000Z'), detections: [], detection_outcome: null, detected_at: null });
        expect((await request('red_tech', 'PATCH', `/tests/${blue.id}/red`, { tool: 'x' })).statusCode).to.equal(409);
        expect((await request('blue_tech', 'PATCH', `/tests/${blue.id}/blue`, { detections: [{ outcome: 'alerted' }] })).statusCode).to.equal(400);
        // The asset and rule a detection names must exist (issue 11)
        const [asset] = await context.knex('detection_assets').insert({ name: `EDR ${Crypto.randomUUID()}`, type: 'edr' }).returning('id');
        const [rule] = await context.knex('detection_rules').insert({ name: 'SIGMA-1', language: 'sigma', query: 'title: x' }).returning('id');
        const set = json(await request('blue_tech', 'PATCH', `/tests/${blue.id}/blue`, { detections: [{ asset_id: asset.id, outcome: 'prevented', detected_at: '2026-11-28T12:00:00.000Z', rule_ids: [rule.id] }], blue_notes: 'Blocked' }));
        expect(set).to.include({ detection_outcome: 'prevented', detected_at: '2026-11-28T12:00:00.000Z', blue_notes: 'Blocked' });
    });

    it('sets the classification (admin only, any state) and narrows reads: restricted to A, leads and assignees; confidential hidden from V', async () => {

        const test = await testRow(context.knex, { state: 'validated', blue_assignee_id: context.users.blue_tech.id });
        expect((await request('red_lead', 'PATCH', `/tests/${test.id}/classification`, { data_classification: 'restricted' })).statusCode).to.equal(403);
        expect((await request('admin', 'PATCH', `/tests/${test.id}/classification`, { data_classification: 'secret' })).statusCode).to.equal(400);
        expect(json(await request('admin', 'PATCH', `/tests/${test.id}/classification`, { data_classification: 'restricted' })).data_classification).to.equal('restricted');

        const visible = async (role: Role) => (await request(role, 'GET', `/tests/${test.id}`)).statusCode;
        expect({ admin: await visible('admin'), red_lead: await visible('red_lead'), blue_lead: await visible('blue_lead'), blue_tech: await visible('blue_tech'), red_tech: await visible('red_tech'), viewer: await visible('viewer') })
            .to.equal({ admin: 200, red_lead: 200, blue_lead: 200, blue_tech: 200, red_tech: 404, viewer: 404 });
        expect((await request('red_tech', 'GET', `/tests/${test.id}/timeline`)).statusCode).to.equal(404);
        expect((await request('red_tech', 'GET', `/tests/${test.id}/retest-chain`)).statusCode).to.equal(404);
        expect((await request('red_tech', 'POST', `/tests/${test.id}/start-execution`)).statusCode).to.equal(404);
        expect(json(await request('red_tech', 'GET', `/tests?technique_id=${test.technique_id}&limit=500`)).items.map((item: { id: string }) => item.id)).to.not.include(test.id);

        await request('admin', 'PATCH', `/tests/${test.id}/classification`, { data_classification: 'confidential' });
        expect({ red_tech: await visible('red_tech'), viewer: await visible('viewer') }).to.equal({ red_tech: 200, viewer: 404 });
    });

    it('lists with every filter, sorts from the allowlist, pages in the envelope', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const tag = `tag-${Crypto.randomBytes(3).toString('hex')}`;
        const a = await testRow(context.knex, { technique_id: techniqueId, title: 'Alpha LSASS dump', platform: 'Windows', priority: 'high', tags: [tag], red_assignee_id: context.users.red_tech.id });
        const b = await testRow(context.knex, { technique_id: techniqueId, title: 'Beta 100%_match', platform: 'Linux', priority: 'low', state: 'validated', remediation_status: 'open', blue_assignee_id: context.users.blue_tech.id });
        const c = await testRow(context.knex, { technique_id: techniqueId, title: 'Gamma', state: 'in_review', tags: [tag, 'other'], created_at: new Date('2020-01-01T00:00:00Z') } as never);

        const ids = async (query: string, role: Role = 'admin') => json(await request(role, 'GET', `/tests?technique_id=${techniqueId}&${query}`)).items.map((item: { id: string }) => item.id);
        expect(json(await request('viewer', 'GET', `/tests?technique_id=${techniqueId}&limit=2&sort=title&order=asc`))).to.include({ total: 3, limit: 2, offset: 0 });
        expect(await ids('sort=title&order=asc')).to.equal([a.id, b.id, c.id]);
        expect(await ids('sort=title&order=asc&offset=1&limit=1')).to.equal([b.id]);
        expect(await ids('state=validated')).to.equal([b.id]);
        expect(await ids('state=validated&state=in_review&sort=title')).to.equal([c.id, b.id]);
        expect(await ids('platform=Linux')).to.equal([b.id]);
        expect(await ids('priority=high')).to.equal([a.id]);
        expect(await ids(`tag=${tag}&sort=title&order=asc`)).to.equal([a.id, c.id]);
        expect(await ids(`red_assignee_id=${context.users.red_tech.id}`)).to.equal([a.id]);
        expect(await ids(`blue_assignee_id=${context.users.blue_tech.id}`)).to.equal([b.id]);
        expect(await ids(`assigned_to=${context.users.blue_tech.id}`)).to.equal([b.id]);
        expect(await ids('assigned_to=me', 'red_tech')).to.equal([a.id]);
        expect(await ids('remediation_status=open')).to.equal([b.id]);
        expect(await ids('created_to=2021-01-01T00:00:00.000Z')).to.equal([c.id]);
        expect(await ids('created_from=2021-01-01T00:00:00.000Z&sort=title')).to.equal([b.id, a.id]);
        expect(await ids('search=lsass')).to.equal([a.id]);
        expect(await ids(`search=${techniqueId.toLowerCase()}&sort=title&order=asc`)).to.equal([a.id, b.id, c.id]);
        expect(await ids('search=100%25_')).to.equal([b.id]);
        expect(await ids('search=%25')).to.equal([b.id]);
        expect(await ids(`campaign_id=${Crypto.randomUUID()}`)).to.equal([]);
    });

    it('creates retests of validated or rejected tests, copying the general fields, and answers the whole chain from any member', async () => {

        const draft = await testRow(context.knex);
        expect(json(await request('red_lead', 'POST', '/tests', { retest_of_id: draft.id })).code).to.equal('retest_not_allowed');
        expect((await request('red_lead', 'POST', '/tests', { retest_of_id: Crypto.randomUUID() })).statusCode).to.equal(400);

        const first = await testRow(context.knex, { state: 'rejected', title: 'Original', platform: 'Linux', tags: ['x'], priority: 'high' });
        const second = json(await request('red_lead', 'POST', '/tests', { retest_of_id: first.id }));
        expect(second).to.include({ title: 'Original', platform: 'Linux', tags: ['x'], priority: 'high', technique_id: first.technique_id, retest_of_id: first.id, state: 'draft' });
        await context.knex('tests').where('id', second.id).update({ state: 'validated', detection_outcome: 'alerted', red_approved: true, red_validated_at: new Date(), blue_approved: true, blue_validated_at: new Date(), validated_at: new Date() });
        const third = json(await request('blue_lead', 'POST', '/tests', { retest_of_id: second.id, title: 'Third try' }));
        expect(third).to.include({ title: 'Third try', retest_of_id: second.id });

        for (const id of [first.id, second.id, third.id]) {
            const chain = json(await request('viewer', 'GET', `/tests/${id}/retest-chain`));
            expect(chain.items.map((item: { id: string }) => item.id)).to.equal([first.id, second.id, third.id]);
        }

        expect(json(await request('viewer', 'GET', `/tests/${draft.id}/retest-chain`)).items.map((item: { id: string }) => item.id)).to.equal([draft.id]);
    });

    it('creates tests from templates: one per template and technique, with overrides, all or nothing', async () => {

        const t1 = await uniqueTechnique(context.knex);
        const t2 = await uniqueTechnique(context.knex);
        const single = json(await request('red_lead', 'POST', '/test-templates', { name: 'LSASS dump', technique_ids: [t1], platforms: ['Windows'], procedure: 'procdump -ma lsass.exe', tool: 'procdump', tags: ['creds'], priority: 'high', expected_detection: 'EDR alert' }));
        const multi = json(await request('red_lead', 'POST', '/test-templates', { name: 'Discovery sweep', technique_ids: [t1, t2] }));

        const res = await request('blue_lead', 'POST', '/tests/from-template', { template_ids: [single.id, multi.id], overrides: { priority: 'critical', tags: ['sprint-9'], red_assignee_id: context.users.red_tech.id } });
        expect(res.statusCode, res.payload).to.equal(201);
        const items = json(res).items;
        expect(items.map((item: Record<string, unknown>) => [item.title, item.technique_id, item.priority, item.template_id])).to.equal([
            ['LSASS dump', t1, 'critical', single.id],
            [`Discovery sweep (${t1})`, t1, 'critical', multi.id],
            [`Discovery sweep (${t2})`, t2, 'critical', multi.id]
        ]);
        expect(items[0]).to.include({ platform: 'Windows', procedure: 'procdump -ma lsass.exe', tool: 'procdump', tags: ['creds', 'sprint-9'], expected_outcome: 'EDR alert', red_assignee_id: context.users.red_tech.id, state: 'draft' });

        expect(json(await request('admin', 'POST', '/tests/from-template', { template_ids: [multi.id], technique_ids: [t2] })).items.map((item: { technique_id: string }) => item.technique_id)).to.equal([t2]);
        expect(json(await request('admin', 'POST', '/tests/from-template', { template_ids: [single.id], technique_ids: [t2] })).code).to.equal('no_technique');

        // A template naming a technique the knowledge base does not know yet: nothing is created
        const future = json(await request('red_lead', 'POST', '/test-templates', { name: 'Future', technique_ids: ['T9999.998'] }));
        const countBefore = await context.knex('tests').count('* as n').first();
        const refused = await request('admin', 'POST', '/tests/from-template', { template_ids: [single.id, future.id] });
        expect(json(refused)).to.include({ code: 'unknown_technique' });
        expect(await context.knex('tests').count('* as n').first()).to.equal(countBefore);
        expect((await request('admin', 'POST', '/tests/from-template', { template_ids: [Crypto.randomUUID()] })).statusCode).to.equal(404);
        expect((await request('red_tech', 'POST', '/tests/from-template', { template_ids: [single.id] })).statusCode).to.equal(403);
    });

    it('joins a caller\'s transaction: two changes of a test in one transaction roll back together, and commit together', async () => {

        const { tests } = context.services;
        const actor = context.actor('admin');
        const test = await testRow(context.knex);
        // Rows written in one transaction share its timestamp: compared as sets
        const trail = async () => ({
            row: await context.knex('tests').where('id', test.id).first('title', 'state', 'version'),
            timeline: (await context.knex('test_timeline').where('test_id', test.id).pluck('action')).sort(),
            audit: (await context.knex('audit_logs').where('entity_id', test.id).pluck('action')).sort()
        });

        const untouched = await trail();
        expect(untouched).to.equal({ row: { title: test.title, state: 'draft', version: 1 }, timeline: [], audit: [] });

        await expect(context.knex.transaction(async (trx) => {

            await tests.update(actor, test.id, { title: 'Renamed in a bulk change' }, { trx });
            const started = await tests.transition(actor, test.id, 'start-execution', {}, { trx });
            expect(started).to.include({ title: 'Renamed in a bulk change', state: 'red_executing', version: 3 });
            throw new Error('the caller fails after both changes');
        })).to.reject('the caller fails after both changes');

        expect(await trail()).to.equal(untouched);

        await context.knex.transaction(async (trx) => {

            await tests.update(actor, test.id, { title: 'Renamed in a bulk change' }, { trx });
            await tests.transition(actor, test.id, 'start-execution', {}, { trx });
        });

        expect(await trail()).to.equal({
            row: { title: 'Renamed in a bulk change', state: 'red_executing', version: 3 },
            timeline: ['start-execution', 'update-general'],
            audit: ['test.start-execution', 'test.update-general']
        });
    });
});
