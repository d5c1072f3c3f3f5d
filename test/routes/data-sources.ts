import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { systemActor } from '../../server/policy';

import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Data sources', () => {

    let context: TestContext;
    let processCreation: string;

    before(async () => {

        context = await init({ redis: false });
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
        processCreation = (await context.knex('data_components').where('mitre_id', 'DC0032').first('id')).id;
    });

    after(async () => {

        await context.stop();
    });

    it('lists data components with the techniques each can reveal, filtered and searched', async () => {

        const res = await context.server.inject({ method: 'GET', url: '/api/v1/data-sources?search=process%20creation', auth: context.as('viewer') });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        const item = body.items.find((entry: { mitre_id: string }) => entry.mitre_id === 'DC0032');
        expect(item).to.include({ name: 'Process Creation' });
        expect(Number(item.technique_count)).to.be.above(5);
        expect(item.quality_score === null || typeof item.quality_score === 'number').to.be.true();

        for (const query of ['sort=quality', 'collected=maybe', 'limit=600', 'domain=x']) {
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/data-sources?${query}`, auth: context.as('viewer') })).statusCode, query).to.equal(400);
        }

        const detail = JSON.parse((await context.server.inject({ method: 'GET', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('viewer') })).payload);
        expect(detail.techniques.map((technique: { mitre_id: string }) => technique.mitre_id)).to.include('T1059.001');
        expect(Number(detail.log_sources.length)).to.be.above(0);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources/00000000-0000-4000-8000-000000000000', auth: context.as('viewer') })).statusCode).to.equal(404);
    });

    it('records the organisation\'s assessment (admin only), which turns blind spots into opportunities', async () => {

        const components = await context.knex('technique_data_components').where('technique_id', 'T1059.001').pluck('data_component_id');
        await context.knex('data_components').whereIn('id', components).update({ collected: false });
        const blind = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources/blind-spots?limit=500', auth: context.as('viewer') })).payload);
        expect(blind.items.map((item: { mitre_id: string }) => item.mitre_id)).to.include('T1059.001');

        const res = await context.server.inject({ method: 'PATCH', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('admin'), payload: { collected: true, quality: { device_completeness: 4, timeliness: 5 }, notes: 'Sysmon 1 on all hosts' } });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body).to.include({ collected: true, notes: 'Sysmon 1 on all hosts', quality_score: 4.5, assessed_by: context.users.admin.id });
        expect(body.quality).to.equal({ device_completeness: 4, timeliness: 5 });

        const merged = JSON.parse((await context.server.inject({ method: 'PATCH', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('admin'), payload: { quality: { retention: 3 } } })).payload);
        expect(merged.quality).to.equal({ device_completeness: 4, timeliness: 5, retention: 3 });

        const assessed = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources/blind-spots?limit=500', auth: context.as('viewer') })).payload);
        expect(assessed.items.map((item: { mitre_id: string }) => item.mitre_id)).to.not.include('T1059.001');

        const opportunities = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources/opportunities?limit=500&platform=Windows', auth: context.as('viewer') })).payload);
        const entry = opportunities.items.find((item: { mitre_id: string }) => item.mitre_id === 'T1059.001');
        expect(entry).to.include({ collected_count: 1, quality: 4 });
        expect(entry.rank).to.be.a.number();
        expect(opportunities.items.map((item: { rank: number }) => item.rank)).to.equal(opportunities.items.map((item: unknown, index: number) => index + 1));

        const collected = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources?collected=true&limit=500', auth: context.as('viewer') })).payload);
        expect(collected.items.map((item: { id: string }) => item.id)).to.include(processCreation);
    });

    it('answers 403 to non-admins and 400 to bad assessments', async () => {

        expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('blue_lead'), payload: { collected: true } })).statusCode).to.equal(403);
        for (const payload of [{}, { quality: { timeliness: 6 } }, { quality: { speed: 3 } }, { collected: 'yes' }, { name: 'x' }]) {
            expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('admin'), payload })).statusCode, JSON.stringify(payload)).to.equal(400);
        }

        expect((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources/opportunities?limit=0', auth: context.as('viewer') })).statusCode).to.equal(400);
    });
});
