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
        for (const payload of [{}, { quality: { timeliness: 6 } }, { quality: { speed: 3 } }, { collected: 'yes' }, { stix_id: 'x' }, { is_custom: true }]) {
            expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/data-sources/${processCreation}`, auth: context.as('admin'), payload })).statusCode, JSON.stringify(payload)).to.equal(400);
        }

        expect((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources/opportunities?limit=0', auth: context.as('viewer') })).statusCode).to.equal(400);
    });

    it('manages the organisation\'s own data components beside the imported ones, which stay read-only but for the assessment', async () => {

        const request = (method: string, url: string, payload?: object, role: 'admin' | 'blue_lead' | 'viewer' = 'admin') => context.server.inject({ method, url: `/api/v1/data-sources${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });
        const blindSpot = (await context.knex('techniques as t').where({ 't.domain': 'enterprise-attack', 't.revoked': false, 't.deprecated': false })
            .whereNotExists((sub) => sub.select(context.knex.raw('1')).from('technique_data_components as tdc').whereRaw('tdc.technique_id = t.mitre_id'))
            .orderBy('t.mitre_id').first('t.mitre_id')).mitre_id as string;
        const spots = async () => JSON.parse((await context.server.inject({ method: 'GET', url: `/api/v1/data-sources/blind-spots?limit=500&offset=0`, auth: context.as('viewer') })).payload).items.map((item: { mitre_id: string }) => item.mitre_id);
        expect(await spots()).to.include(blindSpot);

        const created = await request('POST', '', {
            name: 'Zeek DNS logs', description: 'DNS queries seen at the egress', log_sources: [{ name: 'zeek', channel: 'dns.log' }],
            technique_ids: [blindSpot], collected: true, quality: { timeliness: 4 }, notes: 'All sites'
        });
        expect(created.statusCode).to.equal(201);
        const zeek = JSON.parse(created.payload);
        expect(zeek.mitre_id).to.match(/^XDC\d{4}$/);
        expect(zeek).to.equal({
            ...zeek,
            stix_id: null, is_custom: true, domain: 'enterprise-attack', domains: ['enterprise-attack'], name: 'Zeek DNS logs', description: 'DNS queries seen at the egress',
            log_sources: [{ name: 'zeek', channel: 'dns.log' }], collected: true, quality: { timeliness: 4 }, quality_score: 4, notes: 'All sites',
            assessed_by: context.users.admin.id, created_by: context.users.admin.id, data_source: null, revoked: false, deprecated: false,
            techniques: [{ mitre_id: blindSpot, name: zeek.techniques[0].name, coverage_status: 'untested', is_subtechnique: zeek.techniques[0].is_subtechnique, sources: ['manual'] }]
        });

        // Collected telemetry of its own: the technique is no longer a blind spot, and is now an opportunity
        expect(await spots()).to.not.include(blindSpot);
        const opportunities = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/data-sources/opportunities?limit=500', auth: context.as('viewer') })).payload).items;
        expect(opportunities.find((item: { mitre_id: string }) => item.mitre_id === blindSpot).collected_components).to.equal([{ id: zeek.id, mitre_id: zeek.mitre_id, name: 'Zeek DNS logs' }]);

        // Ids are allocated one at a time, also under concurrent creations
        const many = await Promise.all(['A', 'B', 'C', 'D'].map((name) => request('POST', '', { name: `Custom ${name}` })));
        const ids = many.map((res) => JSON.parse(res.payload).mitre_id as string);
        expect(new Set([zeek.mitre_id, ...ids]).size).to.equal(5);
        const listed = JSON.parse((await request('GET', '?is_custom=true&limit=500', undefined, 'viewer')).payload);
        expect(listed.items.map((item: { mitre_id: string }) => item.mitre_id)).to.include([zeek.mitre_id, ...ids]);
        expect(listed.items.every((item: { is_custom: boolean }) => item.is_custom)).to.be.true();

        // A custom component changes whole; its technique links are replaced
        const updated = JSON.parse((await request('PATCH', `/${zeek.id}`, { name: 'Zeek DNS and HTTP logs', technique_ids: ['T1059.001'], quality: { retention: 2 } })).payload);
        expect(updated).to.include({ name: 'Zeek DNS and HTTP logs', quality: { timeliness: 4, retention: 2 }, quality_score: 3 });
        expect(updated.techniques.map((item: { mitre_id: string; sources: string[] }) => [item.mitre_id, item.sources])).to.equal([['T1059.001', ['manual']]]);
        expect(await spots()).to.include(blindSpot);

        // An imported component: only the organisation's view, and it cannot be deleted
        const managed = await request('PATCH', `/${processCreation}`, { name: 'Renamed', notes: 'x' });
        expect(managed.statusCode).to.equal(409);
        expect(JSON.parse(managed.payload)).to.include({ code: 'mitre_managed', message: 'name of an ATT&CK data component are kept by the ATT&CK sync; only collected, quality, notes may be edited' });
        expect((await request('PATCH', `/${processCreation}`, { technique_ids: [] })).statusCode).to.equal(409);
        const undeletable = await request('DELETE', `/${processCreation}`);
        expect(undeletable.statusCode).to.equal(409);
        expect(JSON.parse(undeletable.payload).code).to.equal('mitre_managed');
        expect(await context.knex('data_components').where('id', processCreation).first('name')).to.equal({ name: 'Process Creation' });

        // A sync keeps the custom component and its links
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
        expect(JSON.parse((await request('GET', `/${zeek.id}`, undefined, 'viewer')).payload)).to.include({ name: 'Zeek DNS and HTTP logs', mitre_id: zeek.mitre_id });
        expect(await context.knex('technique_data_components').where('data_component_id', zeek.id).pluck('technique_id')).to.equal(['T1059.001']);

        expect((await request('DELETE', `/${zeek.id}`)).statusCode).to.equal(204);
        expect((await request('GET', `/${zeek.id}`, undefined, 'viewer')).statusCode).to.equal(404);
        expect((await request('DELETE', `/${zeek.id}`)).statusCode).to.equal(404);
        expect(await context.knex('technique_data_components').where('data_component_id', zeek.id)).to.equal([]);
        const audit = await context.knex('audit_logs').where('entity_id', zeek.id).orderBy('created_at').pluck('action');
        expect(audit).to.equal(['data_component.create', 'data_component.update', 'data_component.delete']);
    });

    it('refuses bad custom components with a 400 naming the field, and non-admins with a 403, writing nothing', async () => {

        const customCount = await context.knex('data_components').where('is_custom', true).count('* as count').first();
        for (const [payload, fields] of [
            [{}, ['name']], [{ name: '' }, ['name']], [{ name: 'x', domain: 'pre-attack' }, ['domain']], [{ name: 'x', technique_ids: ['nope'] }, ['technique_ids.0']],
            [{ name: 'x', technique_ids: ['T9999.999'] }, ['technique_ids']], [{ name: 'x', log_sources: [{ channel: 'y' }] }, ['log_sources.0.name']],
            [{ name: 'x', mitre_id: 'XDC0001' }, ['mitre_id']], [{ name: 'x', quality: { timeliness: 9 } }, ['quality.timeliness']]
        ] as [object, string[]][]) {
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/data-sources', auth: context.as('admin'), payload });
            expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
            expect(JSON.parse(res.payload).fields, JSON.stringify(payload)).to.equal(fields);
        }

        for (const [method, url] of [['POST', '/api/v1/data-sources'], ['DELETE', `/api/v1/data-sources/${processCreation}`]]) {
            expect((await context.server.inject({ method: method!, url: url!, auth: context.as('blue_lead'), payload: method === 'POST' ? { name: 'x' } : undefined })).statusCode).to.equal(403);
        }

        expect(await context.knex('data_components').where('is_custom', true).count('* as count').first()).to.equal(customCount);
        expect((await context.server.inject({ method: 'DELETE', url: '/api/v1/data-sources/not-a-uuid', auth: context.as('admin') })).statusCode).to.equal(400);
    });
});
