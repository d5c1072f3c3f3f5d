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

        // A technique of its own for this script: revealed by Process Creation, untested, on Windows
        const candidates = await context.knex('technique_data_components as tdc').join('techniques as t', 't.mitre_id', 'tdc.technique_id')
            .where('tdc.data_component_id', processCreation).where({ 't.coverage_status': 'untested', 't.revoked': false, 't.deprecated': false, 't.domain': 'enterprise-attack' })
            .whereRaw('t.platforms @> array[\'Windows\']::text[]').whereNot('t.mitre_id', 'T1059.001').distinct('t.mitre_id').orderBy('t.mitre_id').pluck('t.mitre_id');
        const target = candidates[0] as string;
        const all = async (url: string) => {

            const items: Record<string, any>[] = [];
            let total = Infinity;
            while (items.length < total) {
                const page = JSON.parse((await context.server.inject({ method: 'GET', url: `${url}&limit=500&offset=${items.length}`, auth: context.as('viewer') })).payload);
                items.push(...page.items);
                total = page.items.length ? page.total : items.length;
            }

            return items;
        };

        const components = await context.knex('technique_data_components').where('technique_id', target).pluck('data_component_id');
        await context.knex('data_components').whereIn('id', components).update({ collected: false, quality: {} });
        const blind = await all('/api/v1/data-sources/blind-spots?domain=enterprise-attack');
        expect(blind.map((item) => item.mitre_id)).to.include(target);

        const res = await context.server.inject({ method: 'PATCH', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('admin'), payload: { collected: true, quality: { device_completeness: 4, timeliness: 5 }, notes: 'Sysmon 1 on all hosts' } });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body).to.include({ collected: true, notes: 'Sysmon 1 on all hosts', quality_score: 4.5, assessed_by: context.users.admin.id });
        expect(body.quality).to.equal({ device_completeness: 4, timeliness: 5 });

        const merged = JSON.parse((await context.server.inject({ method: 'PATCH', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('admin'), payload: { quality: { retention: 3 } } })).payload);
        expect(merged.quality).to.equal({ device_completeness: 4, timeliness: 5, retention: 3 });

        const assessed = await all('/api/v1/data-sources/blind-spots?domain=enterprise-attack');
        expect(assessed.map((item) => item.mitre_id)).to.not.include(target);

        const opportunities = await all('/api/v1/data-sources/opportunities?platform=Windows');
        const entry = opportunities.find((item) => item.mitre_id === target);
        expect(entry).to.include({ collected_count: 1, quality: 4, coverage_status: 'untested' });
        expect(opportunities.map((item) => item.rank)).to.equal(opportunities.map((item, index) => index + 1));
        const partial = opportunities.findIndex((item) => item.coverage_status === 'partial');
        expect(partial === -1 || opportunities.slice(partial).every((item) => item.coverage_status === 'partial')).to.be.true();

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
