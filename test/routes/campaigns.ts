import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { roles, type Role } from '../../server/policy';
import { campaignActions, campaignEdits, campaignLifecycle, campaignStatuses, type CampaignStatus } from '../../server/services/campaign-lifecycle';

import { worklogCampaignKey } from '../../migrations/20261207010000_campaigns';

import { written } from '../helpers/calls';
import { json, technique, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    unique: () => Crypto.randomBytes(4).toString('hex'),
    day: (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10),

    // The rows a refusal must not write, of this script's users
    written: (context: TestContext) => written(context, { campaigns: 'created_by', campaign_tests: 'added_by', tests: 'created_by', campaign_history: 'actor_id' })
};


describe('Campaign routes', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: unknown) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload === undefined ? {} : { payload: payload as object }) });

    // What a refusal must leave as it was: the campaigns, memberships, tests and audit rows this script's users wrote,
    // the campaign's row and its history
    const footprint = async (id?: string) => ({
        ...await internals.written(context),
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
            start_date: '2026-12-01', end_date: '2026-12-20', notes: null, blind: false, overdue: false, test_count: 0, activated_at: null, completed_at: null,
            version: 1, created_by: context.users.blue_lead.id, created_at: campaign.created_at, updated_at: campaign.updated_at
        });

        expect(json(await request('viewer', 'GET', `/campaigns/${campaign.id}`))).to.equal(campaign);

        const patched = json(await request('red_lead', 'PATCH', `/campaigns/${campaign.id}`, { name: `${name} (renamed)`, description: '', type: 'adversary_emulation' }));
        expect(patched).to.include({ name: `${name} (renamed)`, description: null, type: 'adversary_emulation', version: 2 });

        const scheduled = json(await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { end_date: '2026-12-24' }));
        expect(scheduled).to.include({ start_date: '2026-12-01', end_date: '2026-12-24', version: 3 });

        // A change to what is already there is no change: no new version, no history row
        expect(json(await request('admin', 'PATCH', `/campaigns/${campaign.id}`, { type: 'adversary_emulation' }))).to.include({ version: 3 });
        expect(json(await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { end_date: '2026-12-24' }))).to.include({ version: 3 });

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

    it('answers every role of the reference on every route: success for the roles it names, 403 writing nothing for the others', async () => {

        const leads = ['admin', 'red_lead', 'blue_lead'];
        const threatActor = await context.services.threatActors.create(context.actor('admin'), { name: `Roles APT ${internals.unique()}` });
        const techniqueId = await uniqueTechnique(context.knex);
        await context.knex('threat_actor_techniques').insert({ threat_actor_id: threatActor.id, technique_id: techniqueId, source: 'manual' });
        const layer = { name: `Roles ${internals.unique()}`, versions: { layer: '4.5' }, domain: 'enterprise-attack', techniques: [{ techniqueID: techniqueId }] };

        for (const role of roles) {
            const allowed = leads.includes(role);
            const campaign = await campaignIn('draft');
            const test = await testRow(context.knex);
            const earlier = await footprint(campaign.id);
            const calls: [string, string, unknown, number][] = [
                ['POST', '/campaigns', { name: `By ${role} ${internals.unique()}` }, 201],
                ['PATCH', `/campaigns/${campaign.id}`, { description: `by ${role}` }, 200],
                ['PATCH', `/campaigns/${campaign.id}/schedule`, { start_date: '2026-12-01' }, 200],
                ['POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id }, 201],
                ['DELETE', `/campaigns/${campaign.id}/tests/${test.id}`, undefined, 204],
                ['POST', `/campaigns/from-threat-actor/${threatActor.id}`, {}, 201],
                ['POST', '/campaigns/from-layer', layer, 201]
            ];

            for (const [method, url, payload, status] of calls) {
                const res = await request(role, method, url, payload);
                expect(res.statusCode, `${role} ${method} ${url}: ${res.payload}`).to.equal(allowed ? status : 403);
            }

            if (!allowed) {
                expect(await footprint(campaign.id), role).to.equal(earlier);
            }

            for (const url of ['/campaigns', `/campaigns/${campaign.id}`, `/campaigns/${campaign.id}/progress`, `/campaigns/${campaign.id}/history`]) {
                expect((await request(role, 'GET', url)).statusCode, `${role} GET ${url}`).to.equal(200);
            }
        }
    });

    it('documents the state and edit tables as the code declares them, and routes read their roles from them', () => {

        const doc = Fs.readFileSync(Path.join(__dirname, '..', '..', 'docs', 'campaigns.md'), 'utf8');
        const page = doc.slice(doc.indexOf('## The state table'), doc.indexOf('## Membership'));
        const short: Record<string, string> = { admin: 'A', red_lead: 'RL', blue_lead: 'BL', red_tech: 'RT', blue_tech: 'BT', viewer: 'V' };
        const roleSet = (cell: string) => cell.split(',').map((item) => item.trim()).sort();
        const row = (key: string) => {

            const line = page.split('\n').find((item) => item.startsWith(`| \`${key}\` |`));
            expect(line, key).to.exist();
            return line!.split('|').slice(2, -1).map((cell) => cell.trim());
        };

        for (const action of campaignActions) {
            const [route, from, to, roleCell] = row(action);
            const rule = campaignLifecycle[action];
            expect(route).to.equal(`POST /campaigns/{id}/${action}`);
            expect(from!.split(',').map((item) => item.trim())).to.equal([...rule.from]);
            expect(to).to.equal(rule.to);
            expect(roleSet(roleCell!), action).to.equal(rule.roles.map((role) => short[role]).sort());
            const declared = context.server.table().find((item) => item.method === 'post' && item.path === `/api/v1/campaigns/{id}/${action}`)!;
            expect([...(declared.settings.auth as { access: { scope: { selection: string[] } }[] }).access[0]!.scope.selection].sort()).to.equal([...rule.roles].sort());
        }

        for (const [action, rule] of Object.entries(campaignEdits)) {
            const [, fields, roleCell, ...statuses] = row(action);
            expect(roleSet(roleCell!), action).to.equal(rule.roles.map((role) => short[role]).sort());
            expect(statuses.map((cell) => cell === 'yes'), action).to.equal(campaignStatuses.map((status) => (rule.statuses as readonly string[]).includes(status)));
            statuses.filter((cell) => cell !== 'yes').forEach((cell) => expect(cell).to.equal('409 `campaign_frozen`'));
            for (const field of rule.fields) {
                expect(fields, action).to.contain(`\`${field}\``);
            }
        }
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

    it('serialises concurrent changes of one campaign: a test joins once, and nothing joins a campaign completed meanwhile', async () => {

        // Six parallel adds of the same test: one membership, the others 409
        const campaign = await campaignIn('draft', 0);
        const test = await testRow(context.knex);
        const same = await Promise.all(Array.from({ length: 6 }, () => request('blue_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id })));
        expect(same.map((res) => res.statusCode).sort()).to.equal([201, 409, 409, 409, 409, 409]);
        same.filter((res) => res.statusCode === 409).forEach((res) => expect(json(res).code).to.equal('already_in_campaign'));
        expect(await context.knex('campaign_tests').where({ campaign_id: campaign.id }).pluck('test_id')).to.equal([test.id]);
        expect(json(await request('viewer', 'GET', `/tests/${test.id}`)).campaign_ids).to.equal([campaign.id]);

        // Adds racing a completion: each add is either in before it (201) or refused after it (409 campaign_frozen),
        // and the memberships are exactly the accepted adds, each with its history row
        const active = await campaignIn('active', 1);
        const others = await Promise.all(Array.from({ length: 6 }, () => testRow(context.knex)));
        const raced = await Promise.all([
            ...others.slice(0, 3).map((other) => request('red_lead', 'POST', `/campaigns/${active.id}/tests`, { test_id: other.id })),
            request('red_lead', 'POST', `/campaigns/${active.id}/complete`),
            ...others.slice(3).map((other) => request('red_lead', 'POST', `/campaigns/${active.id}/tests`, { test_id: other.id }))
        ]);
        const completion = raced.splice(3, 1)[0]!;
        expect(completion.statusCode).to.equal(200);
        const accepted = others.filter((_, index) => raced[index]!.statusCode === 201).map((other) => other.id);
        raced.filter((res) => res.statusCode !== 201).forEach((res) => expect([res.statusCode, json(res).code]).to.equal([409, 'campaign_frozen']));
        const members = await context.knex('campaign_tests').where({ campaign_id: active.id }).pluck('test_id');
        expect(members.filter((id) => others.some((other) => other.id === id)).sort()).to.equal(accepted.sort());
        expect(json(completion).test_count).to.equal(1 + accepted.length);
        expect((await context.knex('campaign_history').where({ campaign_id: active.id, action: 'add-test' }).pluck('test_id')).length).to.equal(1 + accepted.length);
        const event = await context.knex('domain_events').where({ type: 'campaign.completed', entity_id: active.id }).first();
        expect(event.payload.tests).to.equal(1 + accepted.length);
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

        expect(await footprint(campaign.id)).to.equal(earlier);

        // The schedule is checked against what is stored: an end before the stored start
        await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { start_date: '2026-12-10' });
        const scheduled = await footprint(campaign.id);
        const merged = await request('admin', 'PATCH', `/campaigns/${campaign.id}/schedule`, { end_date: '2026-12-01' });
        expect(merged.statusCode).to.equal(400);
        expect(json(merged)).to.include({ code: 'invalid_schedule', fields: ['start_date', 'end_date'] });
        expect(await footprint(campaign.id)).to.equal(scheduled);

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

        expect(await footprint(campaign.id)).to.equal(scheduled);
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


describe('Campaign progress, history and generation', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: unknown) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload === undefined ? {} : { payload: payload as object }) });

    const tactic = async (shortname: string, order: number): Promise<string> => {

        const [row] = await context.knex('tactics').insert({ stix_id: `x-mitre-tactic--${Crypto.randomUUID()}`, domain: 'enterprise-attack', name: `Tactic ${shortname}`, shortname, matrix_order: order }).returning('id');
        return row.id;
    };

    const techniqueWith = async (fields: { platforms?: string[]; coverage?: 'covered' | 'not_covered'; revoked?: boolean; deprecated?: boolean; tactics?: string[] }): Promise<string> => {

        const id = await uniqueTechnique(context.knex);
        await context.knex('techniques').where('mitre_id', id).update({
            platforms: fields.platforms ?? [], revoked: fields.revoked ?? false, deprecated: fields.deprecated ?? false,
            ...fields.coverage ? { coverage_status: fields.coverage, score: fields.coverage === 'covered' ? 100 : 0 } : {}
        });
        for (const tacticId of fields.tactics ?? []) {
            await context.knex('technique_tactics').insert({ technique_id: id, tactic_id: tacticId });
        }

        return id;
    };

    const counts = () => internals.written(context);

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('computes progress by state, outcome and tactic (hand-computed example)', async () => {

        const tag = internals.unique();
        const a = await tactic(`a-${tag}`, 1);
        const b = await tactic(`b-${tag}`, 2);
        const one = await techniqueWith({ tactics: [a] });
        const two = await techniqueWith({ tactics: [a, b] });
        const three = await techniqueWith({});

        const tests = [
            await testRow(context.knex, { technique_id: one, state: 'validated' }),                 // outcome alerted
            await testRow(context.knex, { technique_id: two, state: 'validated', detections: [{ tool: 'EDR', outcome: 'not_detected' }] as never, detection_outcome: 'not_detected', detected_at: null }),
            await testRow(context.knex, { technique_id: one, state: 'draft' }),
            await testRow(context.knex, { technique_id: three, state: 'in_review' }),
            await testRow(context.knex, { technique_id: two, state: 'blue_evaluating' })
        ];

        const campaign = json(await request('red_lead', 'POST', '/campaigns', { name: `Progress ${tag}` }));
        const empty = json(await request('viewer', 'GET', `/campaigns/${campaign.id}/progress`));
        expect(empty).to.equal({
            campaign_id: campaign.id, total: 0, validated: 0, percent: 0,
            by_state: { draft: 0, red_executing: 0, blue_evaluating: 0, in_review: 0, validated: 0, rejected: 0 },
            by_outcome: { prevented: 0, alerted: 0, logged: 0, not_detected: 0, not_applicable: 0, none: 0 },
            by_tactic: []
        });

        for (const test of tests) {
            await request('red_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id });
        }

        // 2 of 5 validated = 40 %; technique two sits under both tactics, so its tests count under each
        expect(json(await request('viewer', 'GET', `/campaigns/${campaign.id}/progress`))).to.equal({
            campaign_id: campaign.id, total: 5, validated: 2, percent: 40,
            by_state: { draft: 1, red_executing: 0, blue_evaluating: 1, in_review: 1, validated: 2, rejected: 0 },
            by_outcome: { prevented: 0, alerted: 1, logged: 0, not_detected: 1, not_applicable: 0, none: 0 },
            by_tactic: [
                { tactic: `a-${tag}`, name: `Tactic a-${tag}`, total: 4, validated: 2 },
                { tactic: `b-${tag}`, name: `Tactic b-${tag}`, total: 2, validated: 1 },
                { tactic: null, name: null, total: 1, validated: 0 }
            ]
        });

        // 1 of 3 = 33.3 % (one decimal)
        await request('red_lead', 'DELETE', `/campaigns/${campaign.id}/tests/${tests[1]!.id}`);
        await request('red_lead', 'DELETE', `/campaigns/${campaign.id}/tests/${tests[4]!.id}`);
        expect(json(await request('viewer', 'GET', `/campaigns/${campaign.id}/progress`))).to.include({ total: 3, validated: 1, percent: 33.3 });
    });

    it('counts, in progress and test_count, only the tests the reader may see, in one SQL statement', async () => {

        const tag = internals.unique();
        const a = await tactic(`v-${tag}`, 1);
        const techniqueId = await techniqueWith({ tactics: [a] });
        const campaign = json(await request('red_lead', 'POST', '/campaigns', { name: `Visibility ${tag}` }));
        const members = [
            await testRow(context.knex, { technique_id: techniqueId, state: 'validated' }),                                             // internal
            await testRow(context.knex, { technique_id: techniqueId, state: 'draft', data_classification: 'confidential' }),
            await testRow(context.knex, { technique_id: techniqueId, state: 'validated', data_classification: 'restricted' }),
            await testRow(context.knex, { technique_id: techniqueId, state: 'draft', data_classification: 'restricted', red_assignee_id: context.users.red_tech.id })
        ];
        for (const test of members) {
            expect((await request('red_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id })).statusCode).to.equal(201);
        }

        // [total, validated] per role: the leads and admin see all four; a technician the confidential test and the
        // restricted one assigned to them (red_tech); a viewer the internal one only
        const expected: Record<Role, [number, number]> = { admin: [4, 2], red_lead: [4, 2], blue_lead: [4, 2], red_tech: [3, 1], blue_tech: [2, 1], viewer: [1, 1] };
        for (const role of roles) {
            const progress = json(await request(role, 'GET', `/campaigns/${campaign.id}/progress`));
            const [total, validated] = expected[role];
            expect([progress.total, progress.validated], role).to.equal([total, validated]);
            expect(progress.by_state.validated + progress.by_state.draft, role).to.equal(total);
            expect(progress.by_tactic, role).to.equal([{ tactic: `v-${tag}`, name: `Tactic v-${tag}`, total, validated }]);
            expect(json(await request(role, 'GET', `/campaigns/${campaign.id}`)).test_count, role).to.equal(total);
            expect(json(await request(role, 'GET', `/campaigns?search=${tag}`)).items[0].test_count, role).to.equal(total);
            expect(json(await request(role, 'GET', `/tests?campaign_id=${campaign.id}`)).total, role).to.equal(total);
        }

        // One statement whatever the size (the 404 check rides in it)
        const statements: string[] = [];
        const listen = (query: { sql: string }) => statements.push(query.sql);
        context.knex.on('query', listen);
        try {
            expect(json(await request('blue_tech', 'GET', `/campaigns/${campaign.id}/progress`)).total).to.equal(2);
            expect((await request('blue_tech', 'GET', `/campaigns/${Crypto.randomUUID()}/progress`)).statusCode).to.equal(404);
        }
        finally {
            context.knex.off('query', listen);
        }

        expect(statements.length, statements.join('\n')).to.equal(2);
        expect(statements.every((sql) => sql.includes('campaign_tests'))).to.be.true();
    });

    it('keeps a membership change of a test the reader may not see, without the test', async () => {

        const restricted = await testRow(context.knex, { data_classification: 'restricted' });
        const campaign = json(await request('red_lead', 'POST', '/campaigns', { name: `Hidden ${internals.unique()}` }));
        await request('red_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: restricted.id });

        const asViewer = json(await request('viewer', 'GET', `/campaigns/${campaign.id}/history`)).items;
        expect(asViewer.map((entry: any) => [entry.action, entry.test_id, entry.changes])).to.equal([['create', null, { name: { from: null, to: campaign.name } }], ['add-test', null, { test: 'not visible to you' }]]);
        expect(json(await request('blue_tech', 'GET', `/campaigns/${campaign.id}/history`)).items[1].test_id).to.equal(null);
        expect(json(await request('blue_lead', 'GET', `/campaigns/${campaign.id}/history`)).items[1].test_id).to.equal(restricted.id);

        // Nor can a caller add a test it cannot see (the leads see every test: shown through the service)
        const refused = await context.services.campaigns.addTests(context.actor('viewer'), campaign.id, { test_id: restricted.id }).catch((err: Error) => err);
        expect(refused).to.be.an.error('Test not found');
    });

    it('creates a campaign and its tests from a threat actor, filtered by platform and coverage, reusing the best template', async () => {

        const tag = internals.unique();
        const threatActor = await context.services.threatActors.create(context.actor('admin'), { name: `APT ${tag}` });
        const windows = await techniqueWith({ platforms: ['Windows'] });
        const linux = await techniqueWith({ platforms: ['Linux'] });
        const covered = await techniqueWith({ platforms: ['Windows'], coverage: 'covered' });
        const revoked = await techniqueWith({ platforms: ['Windows'], revoked: true });
        const both = await techniqueWith({ platforms: ['Linux', 'Windows'], coverage: 'not_covered' });
        const deprecated = await techniqueWith({ platforms: ['Windows'], deprecated: true });
        for (const id of [windows, linux, covered, revoked, both, deprecated]) {
            await context.knex('threat_actor_techniques').insert({ threat_actor_id: threatActor.id, technique_id: id, source: 'manual' });
        }

        // The specific Windows template wins over a broader Linux one
        const best = json(await request('red_lead', 'POST', '/test-templates', { name: `Best ${tag}`, technique_ids: [windows], platforms: ['Windows'], procedure: 'the procedure', command: 'cmd /c whoami' }));
        await request('red_lead', 'POST', '/test-templates', { name: `Broad ${tag}`, technique_ids: [windows, linux], platforms: ['Linux'] });

        const res = await request('blue_lead', 'POST', `/campaigns/from-threat-actor/${threatActor.id}`, { platforms: ['Windows'], coverage: ['untested', 'not_covered'], start_date: '2026-12-07', end_date: '2026-12-18' });
        expect(res.statusCode, res.payload).to.equal(201);
        const body = json(res);
        expect(body.campaign).to.include({ name: `APT ${tag} emulation`, type: 'threat_actor', threat_actor_id: threatActor.id, status: 'draft', start_date: '2026-12-07', end_date: '2026-12-18', test_count: 2 });

        const created = [...body.created].sort((x: any, y: any) => x.technique_id.localeCompare(y.technique_id));
        expect(created.map((item: any) => [item.technique_id, item.template_id, item.title])).to.equal([
            [windows, best.id, `Best ${tag}`], [both, null, `${both} Technique ${both}`]
        ].sort((x, y) => x[0]!.localeCompare(y[0]!)));
        expect(body.skipped.map((item: any) => [item.technique_id, item.reason]).sort()).to.equal([[covered, 'coverage'], [linux, 'platform'], [revoked, 'revoked'], [deprecated, 'deprecated']].sort());
        expect(body.skipped.find((item: any) => item.reason === 'deprecated').detail).to.equal('Deprecated by MITRE');
        expect(body.skipped.find((item: any) => item.reason === 'platform').detail).to.equal('Runs on Linux, not on Windows');

        const fromTemplate = json(await request('admin', 'GET', `/tests/${created.find((item: any) => item.technique_id === windows).test_id}`));
        expect(fromTemplate).to.include({ state: 'draft', platform: 'Windows', procedure: 'the procedure', command: 'cmd /c whoami', campaign_ids: [body.campaign.id], created_by: context.users.blue_lead.id });
        const fresh = json(await request('admin', 'GET', `/tests/${created.find((item: any) => item.technique_id === both).test_id}`));
        expect(fresh).to.include({ state: 'draft', platform: 'Windows', objective: `Emulate APT ${tag}: Technique ${both}`, template_id: null, campaign_ids: [body.campaign.id] });

        // Written in bulk, each test still has its timeline and audit rows
        for (const test of [fromTemplate, fresh]) {
            expect(await context.knex('test_timeline').where({ test_id: test.id }).pluck('action')).to.equal(['create']);
            expect(await context.knex('audit_logs').where({ entity_id: test.id }).pluck('action')).to.equal(['test.create']);
        }

        const history = json(await request('viewer', 'GET', `/campaigns/${body.campaign.id}/history`)).items;
        expect(history.map((entry: { action: string }) => entry.action)).to.equal(['create', 'add-test', 'add-test']);

        // Without a platform filter every usable technique gets a test, and a template for any platform may serve
        const unfiltered = json(await request('red_lead', 'POST', `/campaigns/from-threat-actor/${threatActor.id}`, { name: `Unfiltered ${tag}`, blind: true }));
        expect(unfiltered.campaign).to.include({ name: `Unfiltered ${tag}`, blind: true, test_count: 4 });
        expect(unfiltered.created.map((item: any) => item.technique_id).sort()).to.equal([windows, linux, covered, both].sort());
        expect(unfiltered.created.filter((item: any) => item.template_id).map((item: any) => item.technique_id).sort()).to.equal([windows, linux].sort());

        // Filters that leave nothing: 400 naming them, nothing written
        const idle = await context.services.threatActors.create(context.actor('admin'), { name: `Idle ${tag}` });
        const earlier = await counts();
        const none = await request('blue_lead', 'POST', `/campaigns/from-threat-actor/${threatActor.id}`, { platforms: ['macOS'] });
        expect(none.statusCode).to.equal(400);
        expect(json(none)).to.include({ code: 'nothing_to_test', fields: ['platforms', 'coverage'] });
        expect(await counts()).to.equal(earlier);

        // An actor without techniques: 409; a bad filter: 400
        const idleRes = await request('red_lead', 'POST', `/campaigns/from-threat-actor/${idle.id}`);
        expect(idleRes.statusCode).to.equal(409);
        expect(json(idleRes).code).to.equal('actor_without_techniques');
        const badFilter = await request('red_lead', 'POST', `/campaigns/from-threat-actor/${threatActor.id}`, { coverage: ['great'] });
        expect(badFilter.statusCode).to.equal(400);
        expect(json(badFilter).fields).to.equal(['coverage.0']);
        expect(await counts()).to.equal(earlier);
    });

    it('creates a campaign from an ATT&CK Navigator layer: enabled techniques once each, the rest skipped with a reason', async () => {

        const tag = internals.unique();
        const kept = await techniqueWith({ platforms: ['Windows'] });
        const disabled = await techniqueWith({});
        const low = await techniqueWith({});
        const unknown = `T8${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}.${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}`;
        await context.knex('techniques').where('mitre_id', unknown).delete();
        const layer = {
            name: `Scope ${tag}`, versions: { layer: '4.5', attack: '18', navigator: '5.1.0' }, domain: 'enterprise-attack',
            techniques: [
                { techniqueID: kept, tactic: 'execution', score: 3, comment: 'Seen in the wild' },
                { techniqueID: kept, tactic: 'persistence', score: 3 },
                { techniqueID: disabled, tactic: 'execution', score: 5, enabled: false },
                { techniqueID: low, tactic: 'execution', score: 1 },
                { techniqueID: unknown, tactic: 'execution', score: 4 }
            ]
        };

        const res = await request('red_lead', 'POST', '/campaigns/from-layer?min_score=2&type=adversary_emulation', layer);
        expect(res.statusCode, res.payload).to.equal(201);
        const body = json(res);
        expect(body.campaign).to.include({ name: `Scope ${tag}`, type: 'adversary_emulation', test_count: 1 });
        expect(body.created.map((item: any) => [item.technique_id, item.template_id])).to.equal([[kept, null]]);
        expect(body.skipped).to.equal([
            { technique_id: disabled, reason: 'disabled', detail: 'Disabled in the layer' },
            { technique_id: low, reason: 'score', detail: 'Score 1 is below 2' },
            { technique_id: unknown, reason: 'unknown_technique', detail: 'Not in the ATT&CK catalogue: import ATT&CK or create the custom technique' }
        ]);
        expect(json(await request('admin', 'GET', `/tests/${body.created[0].test_id}`)).objective).to.equal(`Listed in the ATT&CK Navigator layer "Scope ${tag}": Seen in the wild`);

        const earlier = await counts();
        for (const [payload, field] of [[{ ...layer, techniques: 'all' }, 'techniques'], [{ ...layer, versions: { layer: '3.0' } }, 'versions.layer'], [{ ...layer, techniques: [{ techniqueID: 'whoami' }] }, 'techniques']] as const) {
            const bad = await request('red_lead', 'POST', '/campaigns/from-layer', payload);
            expect(bad.statusCode, bad.payload).to.equal(400);
            expect(json(bad).fields).to.include(field);
        }

        expect((await request('red_lead', 'POST', '/campaigns/from-layer?min_score=x', layer)).statusCode).to.equal(400);
        expect(await counts()).to.equal(earlier);
    });

    it('blind mode: hides the red procedure, command, tool and template of a blind campaign\'s tests from blue roles until submit-red', async () => {

        const tag = internals.unique();
        const techniqueId = await uniqueTechnique(context.knex);
        const template = json(await request('red_lead', 'POST', '/test-templates', { name: `Blind ${tag}`, technique_ids: [techniqueId], procedure: `covert-${tag} procedure`, command: `covert-${tag} command`, tool: `covert-${tag} tool` }));
        const campaign = json(await request('red_lead', 'POST', '/campaigns', { name: `Blind ${tag}`, blind: true }));
        expect(campaign.blind).to.be.true();

        // Added from a template by a blue lead: the answer already hides what red will run
        const added = json(await request('blue_lead', 'POST', `/campaigns/${campaign.id}/tests`, { template_id: template.id }));
        const hidden = { procedure: null, command: null, tool: null, template_id: null };
        expect(added.items[0].test).to.include({ ...hidden, blind: true });
        const id = added.items[0].test_id;

        const blue = (role: Role) => role === 'blue_lead' || role === 'blue_tech';
        const check = async (shown: Record<string, unknown>, hide: (role: Role) => boolean) => {

            for (const role of roles) {
                const expected = hide(role) ? hidden : shown;
                expect(json(await request(role, 'GET', `/tests/${id}`)), role).to.include(expected);
                expect(json(await request(role, 'GET', `/tests?campaign_id=${campaign.id}`)).items[0], role).to.include(expected);
                const timeline = (await request(role, 'GET', `/tests/${id}/timeline`)).payload;
                expect(timeline.includes(`covert-${tag}`), `${role} timeline`).to.equal(!hide(role));
            }
        };

        const shown = { procedure: `covert-${tag} procedure`, command: `covert-${tag} command`, tool: `covert-${tag} tool`, template_id: template.id };
        await check(shown, blue);
        expect(json(await request('blue_lead', 'PATCH', `/tests/${id}`, { priority: 'high' }))).to.include({ ...hidden, priority: 'high' });

        await request('red_lead', 'POST', `/tests/${id}/start-execution`);
        await request('red_tech', 'PATCH', `/tests/${id}/red`, { procedure: `covert-${tag} procedure, second try`, executed_at: new Date(Date.now() - 60_000).toISOString(), attack_result: 'succeeded' });
        const executing = { ...shown, procedure: `covert-${tag} procedure, second try` };
        await check(executing, blue);
        expect(json(await request('blue_tech', 'POST', `/tests/${id}/pause-timer`))).to.include(hidden);

        // Every role reads templates: a blind test cannot be a template's source before red submits
        const copy = await request('red_lead', 'POST', '/test-templates', { source_test_id: id });
        expect(copy.statusCode).to.equal(409);
        expect(json(copy).code).to.equal('blind_source');

        // submit-red reveals it to everyone
        expect(json(await request('red_tech', 'POST', `/tests/${id}/submit-red`))).to.include(executing);
        await check(executing, () => false);

        // The flag follows the campaign: turned on later, and gone when the test leaves the campaign
        const plain = json(await request('red_lead', 'POST', '/campaigns', { name: `Plain ${tag}` }));
        const test = await testRow(context.knex, { technique_id: techniqueId, procedure: `covert-${tag} plain` });
        await request('red_lead', 'POST', `/campaigns/${plain.id}/tests`, { test_id: test.id });
        expect(json(await request('blue_tech', 'GET', `/tests/${test.id}`))).to.include({ blind: false, procedure: `covert-${tag} plain` });
        expect(json(await request('red_lead', 'PATCH', `/campaigns/${plain.id}`, { blind: true })).blind).to.be.true();
        expect(json(await request('blue_tech', 'GET', `/tests/${test.id}`))).to.include({ blind: true, procedure: null });
        await request('red_lead', 'DELETE', `/campaigns/${plain.id}/tests/${test.id}`);
        expect(json(await request('blue_tech', 'GET', `/tests/${test.id}`))).to.include({ blind: false, procedure: `covert-${tag} plain` });
    });

    it('the migration keeps the time logged on a campaign id that names nothing, as a recovered campaign', async () => {

        const orphan = Crypto.randomUUID();
        await context.knex.transaction(async (trx) => {

            await trx.raw('alter table worklogs drop constraint worklogs_campaign_id_foreign');
            await trx('worklogs').insert({ user_id: context.users.red_tech.id, campaign_id: orphan, minutes: 45, date: '2026-11-30' });
            await worklogCampaignKey(trx);
            const recovered = await trx('campaigns').where('id', orphan).first();
            expect(recovered).to.include({ name: `Recovered campaign ${orphan.slice(0, 8)}`, status: 'draft' });
            expect(await trx('worklogs').where('campaign_id', orphan).pluck('minutes')).to.equal([45]);
            await trx.rollback();
        }).catch((err: Error) => {

            expect(err).to.be.undefined();      // rollback() rejects with undefined
        });

        expect(await context.knex('campaigns').where('id', orphan).first()).to.not.exist();
    });
});
