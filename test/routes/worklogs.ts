import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import type { Role } from '../../server/policy';

import { json, technique, testRow } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Worklog routes', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    before(async () => {

        context = await init({ redis: false });
        await technique(context.knex);
    });

    after(async () => {

        await context.stop();
    });

    it('lets any role log its own time on a test or a campaign, and read only its own (admin: all)', async () => {

        const test = await testRow(context.knex);
        const created: Record<string, any> = {};
        for (const role of ['viewer', 'red_tech', 'blue_tech'] as const) {
            const res = await request(role, 'POST', '/worklogs', { test_id: test.id, minutes: 30, date: '2026-11-27', note: `${role} work` });
            expect(res.statusCode, res.payload).to.equal(201);
            created[role] = json(res);
            expect(created[role]).to.equal({ id: created[role].id, user_id: context.users[role].id, test_id: test.id, campaign_id: null, minutes: 30, date: '2026-11-27', note: `${role} work`, created_at: created[role].created_at, updated_at: created[role].updated_at });
        }

        // A campaign must exist (a foreign key since issue 10): an unknown one is a 404 and writes nothing
        const campaign = await context.services.campaigns.create(context.actor('red_lead'), { name: `Worklog campaign ${Crypto.randomBytes(3).toString('hex')}` });
        const unknown = await request('red_tech', 'POST', '/worklogs', { campaign_id: Crypto.randomUUID(), minutes: 90, date: '2026-11-28' });
        expect(unknown.statusCode).to.equal(404);
        expect(json(unknown).message).to.equal('Campaign not found');
        expect((await request('red_tech', 'POST', '/worklogs', { campaign_id: campaign.id, minutes: 90, date: '2026-11-28' })).statusCode).to.equal(201);

        // The campaign_id filter of the reference, in the list and the summary
        expect(json(await request('red_tech', 'GET', `/worklogs?campaign_id=${campaign.id}`)).items.map((item: { campaign_id: string; minutes: number }) => [item.campaign_id, item.minutes])).to.equal([[campaign.id, 90]]);
        expect(json(await request('admin', 'GET', `/worklogs/summary?group_by=campaign&campaign_id=${campaign.id}`)).items).to.equal([{ key: campaign.id, minutes: 90, entries: 1 }]);
        expect(json(await request('admin', 'GET', `/worklogs?campaign_id=${Crypto.randomUUID()}`)).total).to.equal(0);

        const own = json(await request('red_tech', 'GET', '/worklogs'));
        expect(own.total).to.equal(2);
        expect(own.items.map((item: { date: string }) => item.date)).to.equal(['2026-11-28', '2026-11-27']);

        expect((await request('blue_tech', 'GET', `/worklogs/${created.red_tech.id}`)).statusCode).to.equal(404);
        expect((await request('blue_tech', 'PATCH', `/worklogs/${created.red_tech.id}`, { minutes: 1 })).statusCode).to.equal(404);
        expect((await request('blue_lead', 'DELETE', `/worklogs/${created.red_tech.id}`)).statusCode).to.equal(404);
        expect(json(await request('red_tech', 'GET', `/worklogs/${created.red_tech.id}`)).minutes).to.equal(30);

        const all = json(await request('admin', 'GET', `/worklogs?test_id=${test.id}`));
        expect(all.total).to.equal(3);
        expect(json(await request('admin', 'GET', `/worklogs?user_id=${context.users.viewer.id}`)).total).to.equal(1);
        expect(json(await request('red_tech', 'GET', `/worklogs?user_id=${context.users.viewer.id}`)).total).to.equal(2);       // user_id narrows an admin's view only

        expect(json(await request('red_tech', 'PATCH', `/worklogs/${created.red_tech.id}`, { minutes: 45, note: '' }))).to.include({ minutes: 45, note: null });
        expect(json(await request('admin', 'PATCH', `/worklogs/${created.viewer.id}`, { date: '2026-11-26' })).date).to.equal('2026-11-26');
        expect((await request('viewer', 'DELETE', `/worklogs/${created.viewer.id}`)).statusCode).to.equal(204);
        expect((await request('viewer', 'GET', `/worklogs/${created.viewer.id}`)).statusCode).to.equal(404);
        expect(await context.knex('audit_logs').where({ entity_id: created.viewer.id, action: 'worklog.delete' }).first()).to.exist();
    });

    it('totals minutes per test, user and campaign over what the caller may read', async () => {

        const a = await testRow(context.knex);
        const b = await testRow(context.knex);
        const user = await context.createUser('red_tech');
        const asUser = { strategy: 'jwt-bearer', credentials: { user, scope: ['red_tech'], app: {} } };
        for (const [test, minutes] of [[a, 10], [a, 20], [b, 5]] as const) {
            await context.server.inject({ method: 'POST', url: '/api/v1/worklogs', auth: asUser, payload: { test_id: test.id, minutes, date: '2026-11-28' } });
        }

        await request('blue_tech', 'POST', '/worklogs', { test_id: a.id, minutes: 100, date: '2026-11-28' });

        const mine = json(await context.server.inject({ method: 'GET', url: '/api/v1/worklogs/summary?group_by=test', auth: asUser }));
        expect(mine).to.equal({ group_by: 'test', total_minutes: 35, items: [{ key: a.id, minutes: 30, entries: 2 }, { key: b.id, minutes: 5, entries: 1 }] });

        const perTest = json(await request('admin', 'GET', `/worklogs/summary?group_by=user&test_id=${a.id}`));
        expect(perTest.items).to.equal([{ key: context.users.blue_tech.id, minutes: 100, entries: 1 }, { key: user.id, minutes: 30, entries: 2 }]);
        expect((await request('admin', 'GET', '/worklogs/summary')).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/worklogs/summary?group_by=role')).statusCode).to.equal(400);
    });

    it('refuses bad input, unknown and invisible tests', async () => {

        const test = await testRow(context.knex);
        for (const payload of [{ test_id: test.id, minutes: 0, date: '2026-11-28' }, { test_id: test.id, minutes: 1441, date: '2026-11-28' }, { minutes: 10, date: '2026-11-28' }, { test_id: test.id, minutes: 10, date: '28/11/2026' }, { test_id: test.id, minutes: 10, date: '2026-11-28', user_id: context.users.admin.id }]) {
            expect((await request('red_tech', 'POST', '/worklogs', payload)).statusCode, JSON.stringify(payload)).to.equal(400);
        }

        expect((await request('red_tech', 'POST', '/worklogs', { test_id: Crypto.randomUUID(), minutes: 10, date: '2026-11-28' })).statusCode).to.equal(404);
        const restricted = await testRow(context.knex, { data_classification: 'restricted' });
        expect((await request('red_tech', 'POST', '/worklogs', { test_id: restricted.id, minutes: 10, date: '2026-11-28' })).statusCode).to.equal(404);
        expect((await request('red_tech', 'PATCH', `/worklogs/${Crypto.randomUUID()}`, {})).statusCode).to.equal(400);
    });
});
