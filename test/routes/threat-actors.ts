import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { systemActor } from '../../server/policy';

import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Threat actors', () => {

    let context: TestContext;
    let apt28: string;

    before(async () => {

        context = await init({ redis: false });
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
        apt28 = (await context.knex('threat_actors').where('mitre_id', 'G0007').first('id')).id;
    });

    after(async () => {

        await context.stop();
    });

    it('lists actors, searched by name, id or alias and filtered by technique, with the list envelope', async () => {

        const byAlias = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/threat-actors?search=fancy%20bear', auth: context.as('viewer') })).payload);
        expect(byAlias.items.map((item: { mitre_id: string }) => item.mitre_id)).to.include('G0007');
        expect(Number(byAlias.items[0].technique_count)).to.be.above(10);

        const byTechnique = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/threat-actors?technique_id=T1059.001&source=mitre&limit=100', auth: context.as('red_tech') })).payload);
        expect(Number(byTechnique.total)).to.be.above(1);
        for (const item of byTechnique.items) {
            expect(item.source).to.equal('mitre');
        }

        for (const query of ['sort=stix_id', 'technique_id=x', 'source=other', 'limit=0', `search=${'a'.repeat(300)}`]) {
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/threat-actors?${query}`, auth: context.as('viewer') })).statusCode, query).to.equal(400);
        }
    });

    it('answers an actor with the techniques it uses, its software, campaigns and ATT&CK references', async () => {

        const res = await context.server.inject({ method: 'GET', url: `/api/v1/threat-actors/${apt28}`, auth: context.as('viewer') });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body).to.include({ mitre_id: 'G0007', name: 'APT28', source: 'mitre' });
        expect(body.references).to.equal([{ source_name: 'mitre-attack', external_id: 'G0007', url: 'https://attack.mitre.org/groups/G0007' }]);
        expect(Number(body.techniques.length)).to.be.above(10);
        expect(body.software.map((item: { mitre_id: string }) => item.mitre_id)).to.include('S0002');
        expect(Number(body.campaigns.length)).to.be.above(0);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/threat-actors/00000000-0000-4000-8000-000000000000', auth: context.as('viewer') })).statusCode).to.equal(404);
    });

    it('creates, updates, links, unlinks and deletes the organisation\'s own actors (leads only)', async () => {

        const created = await context.server.inject({ method: 'POST', url: '/api/v1/threat-actors', auth: context.as('red_lead'), payload: { name: 'Insider X', aliases: ['IX'], country: 'FR', motivations: ['financial'], references: [{ source_name: 'internal', url: 'https://intel.example/ix' }] } });
        expect(created.statusCode).to.equal(201);
        const actor = JSON.parse(created.payload);
        expect(actor).to.include({ name: 'Insider X', source: 'custom', tracked: true, country: 'FR', created_by: context.users.red_lead.id });
        expect(actor.references).to.equal([{ source_name: 'internal', url: 'https://intel.example/ix' }]);

        const updated = JSON.parse((await context.server.inject({ method: 'PATCH', url: `/api/v1/threat-actors/${actor.id}`, auth: context.as('blue_lead'), payload: { description: 'An insider', tracked: false } })).payload);
        expect(updated).to.include({ description: 'An insider', tracked: false });

        const linked = await context.server.inject({ method: 'POST', url: `/api/v1/threat-actors/${actor.id}/techniques/T1059.001`, auth: context.as('admin'), payload: { description: 'seen in 2025' } });
        expect(linked.statusCode).to.equal(201);
        expect(JSON.parse(linked.payload)).to.include({ technique_id: 'T1059.001', source: 'manual', description: 'seen in 2025' });
        expect((await context.server.inject({ method: 'POST', url: `/api/v1/threat-actors/${actor.id}/techniques/T1059.001`, auth: context.as('admin') })).statusCode).to.equal(409);
        expect((await context.server.inject({ method: 'POST', url: `/api/v1/threat-actors/${actor.id}/techniques/T9999`, auth: context.as('admin') })).statusCode).to.equal(404);

        const detail = JSON.parse((await context.server.inject({ method: 'GET', url: `/api/v1/threat-actors/${actor.id}`, auth: context.as('viewer') })).payload);
        expect(detail.techniques.map((item: { mitre_id: string }) => item.mitre_id)).to.equal(['T1059.001']);

        expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/threat-actors/${actor.id}/techniques/T1059.001`, auth: context.as('red_lead') })).statusCode).to.equal(204);
        expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/threat-actors/${actor.id}/techniques/T1059.001`, auth: context.as('red_lead') })).statusCode).to.equal(404);
        expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/threat-actors/${actor.id}`, auth: context.as('red_lead') })).statusCode).to.equal(204);
        expect((await context.server.inject({ method: 'GET', url: `/api/v1/threat-actors/${actor.id}`, auth: context.as('viewer') })).statusCode).to.equal(404);
        expect((await context.server.inject({ method: 'POST', url: '/api/v1/threat-actors', auth: context.as('red_tech'), payload: { name: 'x' } })).statusCode).to.equal(403);
    });

    it('keeps MITRE groups as the sync has them: 409 on their managed fields, on deletion and on unlinking an ATT&CK link', async () => {

        const tracked = await context.server.inject({ method: 'PATCH', url: `/api/v1/threat-actors/${apt28}`, auth: context.as('admin'), payload: { tracked: false, country: 'RU', motivations: ['espionage'] } });
        expect(tracked.statusCode).to.equal(200);
        expect(JSON.parse(tracked.payload)).to.include({ tracked: false, country: 'RU', name: 'APT28' });

        const renamed = await context.server.inject({ method: 'PATCH', url: `/api/v1/threat-actors/${apt28}`, auth: context.as('admin'), payload: { name: 'Mine' } });
        expect(renamed.statusCode).to.equal(409);
        expect(JSON.parse(renamed.payload).code).to.equal('mitre_managed');
        expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/threat-actors/${apt28}`, auth: context.as('admin') })).statusCode).to.equal(409);

        const mitreLink = await context.knex('threat_actor_techniques').where({ threat_actor_id: apt28, source: 'mitre' }).first('technique_id');
        expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/threat-actors/${apt28}/techniques/${mitreLink.technique_id}`, auth: context.as('admin') })).statusCode).to.equal(409);

        // The organisation's columns survive a sync
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
        expect(await context.knex('threat_actors').where('id', apt28).first('tracked', 'country')).to.equal({ tracked: false, country: 'RU' });
        await context.server.inject({ method: 'PATCH', url: `/api/v1/threat-actors/${apt28}`, auth: context.as('admin'), payload: { tracked: true } });
    });

    it('answers 400 to bad payloads and ids', async () => {

        for (const payload of [{}, { name: '' }, { name: 'x', country: 'France' }, { name: 'x', references: [{ url: 'javascript:alert(1)', source_name: 'x' }] }, { name: 'x', source: 'mitre' }]) {
            expect((await context.server.inject({ method: 'POST', url: '/api/v1/threat-actors', auth: context.as('admin'), payload })).statusCode, JSON.stringify(payload)).to.equal(400);
        }

        expect((await context.server.inject({ method: 'PATCH', url: '/api/v1/threat-actors/not-a-uuid', auth: context.as('admin'), payload: { name: 'x' } })).statusCode).to.equal(400);
        expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/threat-actors/${apt28}`, auth: context.as('admin'), payload: {} })).statusCode).to.equal(400);
    });
});
