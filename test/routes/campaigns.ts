import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { roles, type Role } from '../../server/policy';
import { campaignActions, campaignEdits, campaignLifecycle, campaignStatuses, type CampaignStatus } from '../../server/services/campaign-lifecycle';

import { json, technique, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    unique: () => Crypto.randomBytes(4).toString('hex'),
    day: (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10)
};


describe('Campaign routes', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: unknown) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload === undefined ? {} : { payload: payload as object }) });

    // What a refusal must leave as it was: the campaign's rows, its history, its memberships, the audit trail
    const footprint = async (id?: string) => ({
        campaigns: Number((await context.knex('campaigns').count('* as n').first())!.n),
        memberships: Number((await context.knex('campaign_tests').count('* as n').first())!.n),
        tests: Number((await context.knex('tests').count('* as n').first())!.n),
        ...(id ? {
            row: await context.knex('campaigns').where({ id }).first(),
            history: Number((await context.knex('campaign_history').where({ campaign_id: id }).count('* as n').first())!.n)
        } : {})
    });

    // A campaign in the given status, with `tests` member tests (rows written directly)
    const campaignIn = async (status: CampaignStatus, tests = 1) => {

        const campaign = json(await request('red_lead', 'POST', '/campaigns', { name: `Campaign ${internals.unique()}` }));
        for (let i = 0; i < tests; ++i) {
            const test = await testRow(context.knex);
            expect((await request('red_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id })).statusCode).to.equal(201);
        }

        if (status !== 'draft') {
            expect((await request('admin', 'POST', `/campaigns/${campaign.id}/activate`)).statusCode).to.equal(200);
        }

        if (status === 'completed') {
            expect((await request('admin', 'POST', `/campaigns/${campaign.id}/complete`)).statusCode).to.equal(200);
        }

        return campaign as { id: string; name: string };
    };

    before(async () => {

        context = await init({ redis: false });
        await technique(context.knex);
    });

    after(async () => {

        await context.stop();
    });

    it('creates, reads, updates, schedules, fills, activates and completes a campaign, and records every change oldest first', async () => {

        const name = `Q4 purple ${internals.unique()}`;
        const created = await request('blue_lead', 'POST', '/campaigns', { name, description: 'Quarterly exercise', type: 'purple_team', start_date: '2026-12-01', end_date: '2026-12-20' });
        expect(created.statusCode, created.payload).to.equal(201);
        const campaign = json(created);
        expect(campaign).to.equal({
            id: campaign.id, name, description: 'Quarterly exercise', type: 'purple_team', status: 'draft', threat_actor_id: null,
            start_date: '2026-12-01', end_date: '2026-12-20', notes: null, overdue: false, test_count: 0, activated_at: null, completed_at: null,
            version: 1, created_by: context.users.blue_lead.id, created_at: campaign.created_at, updated_at: campaign.updated_at
        });

        expect(json(await request('viewer', 'GET', `/campaigns/${campaign.id}`))).to.equal(campaign);

        const patched = json(await request('red_lead', 'PATCH', `/campaigns/${campaign.id}`, { name: `${name} (renamed)`, description: '', type: 'adversary_emulation' }));
        expect(patched).to.include({ name: `${name} (renamed)`, description: null, type: 'adversary_emulation', version: 2 });

        const scheduled = json(await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { end_date: '2026-12-24' }));
        expect(scheduled).to.include({ start_date: '2026-12-01', end_date: '2026-12-24', version: 3 });

        const test = await testRow(context.knex);
        const added = await request('red_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id });
        expect(added.statusCode, added.payload).to.equal(201);
        const [membership] = json(added).items;
        expect(membership).to.include({ campaign_id: campaign.id, test_id: test.id, added_by: context.users.red_lead.id });
        expect(membership.test).to.include({ id: test.id, campaign_ids: [campaign.id] });

        // The test shows its campaigns everywhere, and GET /tests filters on them
        expect(json(await request('viewer', 'GET', `/tests/${test.id}`)).campaign_ids).to.equal([campaign.id]);
        const listed = json(await request('viewer', 'GET', `/tests?campaign_id=${campaign.id}`));
        expect(listed.items.map((item: { id: string }) => item.id)).to.equal([test.id]);
        expect(listed.total).to.equal(1);

        expect(json(await request('blue_lead', 'POST', `/campaigns/${campaign.id}/activate`))).to.include({ status: 'active', test_count: 1, version: 4 });
        const completed = json(await request('red_lead', 'POST', `/campaigns/${campaign.id}/complete`, {}));
        expect(completed).to.include({ status: 'completed', version: 5 });
        expect(completed.completed_at).to.be.a.string();

        // Completing emits campaign.completed in the same transaction
        const event = await context.knex('domain_events').where({ type: 'campaign.completed', entity_id: campaign.id }).first();
        expect(event.payload).to.equal({ campaign_id: campaign.id, name: `${name} (renamed)`, tests: 1 });
        expect(event.actor_id).to.equal(context.users.red_lead.id);

        const history = json(await request('viewer', 'GET', `/campaigns/${campaign.id}/history`));
        expect(history.total).to.equal(6);
        expect(history.items.map((entry: Record<string, unknown>) => [entry.action, entry.actor_id, entry.from_status, entry.to_status, entry.test_id])).to.equal([
            ['create', context.users.blue_lead.id, null, 'draft', null],
            ['update', context.users.red_lead.id, null, null, null],
            ['schedule', context.users.admin.id, null, null, null],
            ['add-test', context.users.red_lead.id, null, null, test.id],
            ['activate', context.users.blue_lead.id, 'draft', 'active', null],
            ['complete', context.users.red_lead.id, 'active', 'completed', null]
        ]);
        expect(history.items[1].changes).to.equal({
            name: { from: name, to: `${name} (renamed)` }, description: { from: 'Quarterly exercise', to: null }, type: { from: 'purple_team', to: 'adversary_emulation' }
        });
        expect(history.items[2].changes).to.equal({ end_date: { from: '2026-12-20', to: '2026-12-24' } });
        expect(json(await request('viewer', 'GET', `/campaigns/${campaign.id}/history?limit=2&offset=4`)).items.map((entry: { action: string }) => entry.action)).to.equal(['activate', 'complete']);

        const audit = await context.knex('audit_logs').where({ entity_id: campaign.id }).pluck('action');
        expect(audit.sort()).to.equal(['campaign.activate', 'campaign.add-test', 'campaign.complete', 'campaign.create', 'campaign.schedule', 'campaign.update']);
    });

    it('walks the state table: each action from each status, each role the table names', async () => {

        for (const action of campaignActions) {
            for (const status of campaignStatuses) {
                const campaign = await campaignIn(status);
                const earlier = await footprint(campaign.id);
                const res = await request('admin', 'POST', `/campaigns/${campaign.id}/${action}`);
                if ((campaignLifecycle[action].from as readonly string[]).includes(status)) {
                    expect(res.statusCode, `${action} from ${status}`).to.equal(200);
                    expect(json(res).status).to.equal(campaignLifecycle[action].to);
                }
                else {
                    expect(res.statusCode, `${action} from ${status}`).to.equal(409);
                    expect(json(res)).to.include({ code: 'invalid_state_transition' });
                    expect(await footprint(campaign.id)).to.equal(earlier);
                }
            }

            for (const role of roles) {
                const campaign = await campaignIn(campaignLifecycle[action].from[0]!);
                const res = await request(role, 'POST', `/campaigns/${campaign.id}/${action}`);
                expect(res.statusCode, `${role} ${action}`).to.equal((campaignLifecycle[action].roles as readonly string[]).includes(role) ? 200 : 403);
            }
        }

        // activate checks that the campaign holds a test
        const empty = await campaignIn('draft', 0);
        const earlier = await footprint(empty.id);
        const res = await request('red_lead', 'POST', `/campaigns/${empty.id}/activate`);
        expect(res.statusCode).to.equal(409);
        expect(json(res)).to.include({ code: 'campaign_empty' });
        expect(await footprint(empty.id)).to.equal(earlier);
    });

    it('keeps to the edit table in every status: a completed campaign takes notes only', async () => {

        for (const status of campaignStatuses) {
            const campaign = await campaignIn(status);
            const test = await testRow(context.knex);
            const membership = await context.knex('campaign_tests').where({ campaign_id: campaign.id }).first();
            const attempts = {
                'metadata': () => request('blue_lead', 'PATCH', `/campaigns/${campaign.id}`, { name: `Renamed ${internals.unique()}` }),
                'notes': () => request('blue_lead', 'PATCH', `/campaigns/${campaign.id}`, { notes: `Lesson ${status}` }),
                'schedule': () => request('blue_lead', 'PATCH', `/campaigns/${campaign.id}/schedule`, { start_date: '2026-01-01' }),
                'add-test': () => request('blue_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id }),
                'remove-test': () => request('blue_lead', 'DELETE', `/campaigns/${campaign.id}/tests/${membership.id}`)
            };

            for (const [action, attempt] of Object.entries(attempts)) {
                const allowed = (campaignEdits[action as keyof typeof campaignEdits].statuses as readonly string[]).includes(status);
                const earlier = await footprint(campaign.id);
                const res = await attempt();
                if (allowed) {
                    expect(res.statusCode, `${action} in ${status}: ${res.payload}`).to.be.within(200, 204);
                }
                else {
                    expect(res.statusCode, `${action} in ${status}`).to.equal(409);
                    expect(json(res)).to.include({ code: 'campaign_frozen' });
                    expect(await footprint(campaign.id)).to.equal(earlier);
                }
            }
        }

        // Metadata and notes together in a completed campaign: refused whole
        const completed = await campaignIn('completed');
        const earlier = await footprint(completed.id);
        expect((await request('admin', 'PATCH', `/campaigns/${completed.id}`, { notes: 'n', description: 'd' })).statusCode).to.equal(409);
        expect(await footprint(completed.id)).to.equal(earlier);
    });

    it('adds an existing test or new tests from a template, removes memberships and never the test', async () => {

        const techniqueA = await uniqueTechnique(context.knex);
        const techniqueB = await uniqueTechnique(context.knex);
        const template = json(await request('red_lead', 'POST', '/test-templates', { name: `Template ${internals.unique()}`, technique_ids: [techniqueA, techniqueB], procedure: 'run it', command: 'whoami', platforms: ['windows'] }));
        const campaign = await campaignIn('draft', 0);
        const other = await campaignIn('draft', 0);

        const fromTemplate = await request('blue_lead', 'POST', `/campaigns/${campaign.id}/tests`, { template_id: template.id, overrides: { priority: 'high' } });
        expect(fromTemplate.statusCode, fromTemplate.payload).to.equal(201);
        const items = json(fromTemplate).items;
        expect(items.map((item: any) => [item.test.technique_id, item.test.template_id, item.test.priority, item.test.state, item.test.campaign_ids])).to.equal([
            [techniqueA, template.id, 'high', 'draft', [campaign.id]],
            [techniqueB, template.id, 'high', 'draft', [campaign.id]]
        ]);

        // A test may belong to several campaigns; twice to the same one is a conflict
        const testId = items[0].test_id;
        expect((await request('red_lead', 'POST', `/campaigns/${other.id}/tests`, { test_id: testId })).statusCode).to.equal(201);
        expect(json(await request('viewer', 'GET', `/tests/${testId}`)).campaign_ids).to.equal([campaign.id, other.id]);
        const earlier = await footprint(campaign.id);
        const twice = await request('red_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: testId });
        expect(twice.statusCode).to.equal(409);
        expect(json(twice)).to.include({ code: 'already_in_campaign' });
        expect(await footprint(campaign.id)).to.equal(earlier);

        // Removal by membership id or by test id; the test stays
        expect((await request('admin', 'DELETE', `/campaigns/${campaign.id}/tests/${items[0].id}`)).statusCode).to.equal(204);
        expect((await request('admin', 'DELETE', `/campaigns/${other.id}/tests/${testId}`)).statusCode).to.equal(204);
        expect(json(await request('viewer', 'GET', `/tests/${testId}`)).campaign_ids).to.equal([]);
        expect((await request('admin', 'DELETE', `/campaigns/${other.id}/tests/${testId}`)).statusCode).to.equal(404);
        expect(json(await request('viewer', 'GET', `/tests?campaign_id=${campaign.id}`)).items.map((item: { id: string }) => item.id)).to.equal([items[1].test_id]);
        expect(json(await request('viewer', 'GET', `/campaigns/${campaign.id}`)).test_count).to.equal(1);

        const history = json(await request('viewer', 'GET', `/campaigns/${campaign.id}/history`)).items;
        expect(history.map((entry: { action: string; test_id: string | null }) => [entry.action, entry.test_id])).to.equal([
            ['create', null], ['add-test', items[0].test_id], ['add-test', items[1].test_id], ['remove-test', items[0].test_id]
        ]);
    });

    it('answers 400 naming the field, 404 for unknown ids, and writes nothing on a refusal', async () => {

        const campaign = await campaignIn('draft');
        const earlier = await footprint(campaign.id);
        const bad: [string, string, unknown, string[]][] = [
            ['POST', '/campaigns', {}, ['name']],
            ['POST', '/campaigns', { name: 'x', type: 'red_only' }, ['type']],
            ['POST', '/campaigns', { name: 'x', start_date: '2026-13-01' }, ['start_date']],
            ['POST', '/campaigns', { name: 'x', start_date: '2026-12-10', end_date: '2026-12-01' }, ['start_date', 'end_date']],
            ['POST', '/campaigns', { name: 'x', status: 'active' }, ['status']],
            ['POST', '/campaigns', { name: 'x', threat_actor_id: Crypto.randomUUID() }, ['threat_actor_id']],
            ['PATCH', `/campaigns/${campaign.id}`, {}, []],
            ['PATCH', `/campaigns/${campaign.id}`, { start_date: '2026-12-01' }, ['start_date']],
            ['PATCH', `/campaigns/${campaign.id}/schedule`, { start_date: '2026-12-10', end_date: '2026-12-01' }, ['start_date', 'end_date']],
            ['POST', `/campaigns/${campaign.id}/tests`, {}, []],
            ['POST', `/campaigns/${campaign.id}/tests`, { test_id: 'nope' }, ['test_id']],
            ['POST', `/campaigns/${campaign.id}/tests`, { test_id: Crypto.randomUUID(), template_id: Crypto.randomUUID() }, []],
            ['POST', `/campaigns/${campaign.id}/activate`, { force: true }, ['force']],
            ['GET', '/campaigns?status=finished', undefined, ['status']],
            ['GET', '/campaigns?sort=secret', undefined, ['sort']],
            ['GET', '/campaigns?from=yesterday', undefined, ['from']],
            ['GET', `/campaigns/${campaign.id}/history?sort=created_at`, undefined, ['sort']],
            ['GET', '/campaigns/not-a-uuid', undefined, ['id']]
        ];

        for (const [method, url, payload, fields] of bad) {
            const res = await request('admin', method, url, payload);
            expect(res.statusCode, `${method} ${url} ${JSON.stringify(payload)}: ${res.payload}`).to.equal(400);
            for (const field of fields) {
                expect(json(res).fields ?? [json(res).message], `${method} ${url}`).to.include(field);
            }
        }

        // The schedule is checked against what is stored: an end before the stored start
        await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { start_date: '2026-12-10' });
        const merged = await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { end_date: '2026-12-01' });
        expect(merged.statusCode).to.equal(400);
        expect(json(merged)).to.include({ code: 'invalid_schedule', fields: ['start_date', 'end_date'] });
        await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { start_date: null });

        const unknown = Crypto.randomUUID();
        for (const [method, url, payload] of [
            ['GET', `/campaigns/${unknown}`], ['PATCH', `/campaigns/${unknown}`, { name: 'x' }], ['POST', `/campaigns/${unknown}/tests`, { test_id: unknown }],
            ['DELETE', `/campaigns/${unknown}/tests/${unknown}`], ['DELETE', `/campaigns/${campaign.id}/tests/${unknown}`], ['POST', `/campaigns/${unknown}/activate`],
            ['POST', `/campaigns/${unknown}/complete`], ['GET', `/campaigns/${unknown}/progress`], ['PATCH', `/campaigns/${unknown}/schedule`, { end_date: null }],
            ['GET', `/campaigns/${unknown}/history`], ['POST', `/campaigns/from-threat-actor/${unknown}`, {}],
            ['POST', `/campaigns/${campaign.id}/tests`, { test_id: unknown }], ['POST', `/campaigns/${campaign.id}/tests`, { template_id: unknown }]
        ] as [string, string, unknown?][]) {
            const res = await request('admin', method, url, payload);
            expect(res.statusCode, `${method} ${url}`).to.equal(404);
        }

        expect(await footprint(campaign.id)).to.include({ campaigns: earlier.campaigns, memberships: earlier.memberships, tests: earlier.tests });
    });

    it('lists with filters: status, type, overdue, schedule range, search', async () => {

        const tag = internals.unique();
        const late = json(await request('admin', 'POST', '/campaigns', { name: `Late ${tag}`, type: 'regression', start_date: internals.day(-10), end_date: internals.day(-1) }));
        const onTime = json(await request('admin', 'POST', '/campaigns', { name: `On time ${tag}`, start_date: internals.day(-1), end_date: internals.day(0) }));
        const undated = json(await request('admin', 'POST', '/campaigns', { name: `Undated ${tag}` }));
        for (const campaign of [late, onTime, undated]) {
            const test = await testRow(context.knex);
            await request('admin', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id });
            await request('admin', 'POST', `/campaigns/${campaign.id}/activate`);
        }

        const names = async (query: string) => json(await request('viewer', 'GET', `/campaigns?search=${tag}&${query}`)).items.map((item: { name: string }) => item.name).sort();
        expect(await names('')).to.equal([`Late ${tag}`, `On time ${tag}`, `Undated ${tag}`]);
        expect(await names('overdue=true')).to.equal([`Late ${tag}`]);
        expect(await names('overdue=false')).to.equal([`On time ${tag}`, `Undated ${tag}`]);
        expect(await names('type=regression')).to.equal([`Late ${tag}`]);
        expect(await names('status=draft')).to.equal([]);
        expect(await names('status=active&status=completed')).to.have.length(3);
        expect(await names(`from=${internals.day(0)}`)).to.equal([`On time ${tag}`]);
        expect(await names(`to=${internals.day(-5)}`)).to.equal([`Late ${tag}`]);
        expect(await names('sort=name&order=asc')).to.have.length(3);

        const detail = json(await request('viewer', 'GET', `/campaigns/${late.id}`));
        expect(detail.overdue).to.be.true();
        expect(json(await request('viewer', 'GET', `/campaigns/${onTime.id}`)).overdue).to.be.false();

        // The service method the alerts module reads
        const overdue = await context.services.campaigns.overdue(context.actor('admin'));
        expect(overdue.map((campaign) => campaign.id)).to.include(late.id);
        expect(overdue.map((campaign) => campaign.id)).to.not.include([onTime.id, undated.id]);

        // Completed is never overdue
        await request('admin', 'POST', `/campaigns/${late.id}/complete`);
        expect(json(await request('viewer', 'GET', `/campaigns/${late.id}`)).overdue).to.be.false();
    });
});
