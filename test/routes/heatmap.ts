import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { systemActor } from '../../server/policy';
import { parseNavigatorLayer } from '../../server/services/navigator-layer';

import { testRow } from '../helpers/factories';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Heatmap', () => {

    let context: TestContext;

    before(async () => {

        context = await init({ redis: false });
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
    });

    after(async () => {

        await context.stop();
    });

    it('answers the matrix: tactics in ATT&CK order, cells with coverage, score, test counts and the sub-technique roll-up', async () => {

        // A sub-technique of T1021 covered by a validated test: its parent rolls up to partial
        await context.knex('techniques').where('mitre_id', 'T1021').update({ coverage_status: 'untested', latest_validated_test_id: null });
        const test = await testRow(context.knex, { technique_id: 'T1021.001', state: 'validated', detection_outcome: 'alerted', validated_at: new Date() } as never);
        await context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), ['T1021.001', 'T1021']));

        const res = await context.server.inject({ method: 'GET', url: '/api/v1/heatmap', auth: context.as('viewer') });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body.domain).to.equal('enterprise-attack');
        expect(body.tactics[0]).to.include({ id: 'TA0043', shortname: 'reconnaissance' });
        expect(body.tactics.at(-1)).to.include({ id: 'TA0040' });
        expect(body.tactics.map((tactic: { order: number }) => tactic.order)).to.equal([...body.tactics.map((tactic: { order: number }) => tactic.order)].sort((a, b) => a - b));

        const lateral = body.tactics.find((tactic: { id: string }) => tactic.id === 'TA0008');
        const remote = lateral.techniques.find((cell: { technique_id: string }) => cell.technique_id === 'T1021');
        expect(remote).to.include({ coverage_status: 'untested', score: null });
        const rdp = remote.subtechniques.find((cell: { technique_id: string }) => cell.technique_id === 'T1021.001');
        expect(rdp).to.include({ coverage_status: 'covered', score: 90 });
        expect(Number(rdp.tests.validated)).to.be.at.least(1);
        expect(remote.rollup.coverage_status).to.equal('partial');
        expect(Number(remote.rollup.tests.validated)).to.be.at.least(1);
        expect(Number(body.summary.by_status.covered)).to.be.at.least(1);
        expect(test.id).to.exist();
    });

    it('counts only the tests the caller may see (issue 8): restricted ones for leads and assignees, confidential ones not for viewers', async () => {

        const countsOf = async (role: 'viewer' | 'red_tech' | 'admin') => {

            const body = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/heatmap', auth: context.as(role) })).payload);
            const cell = body.tactics.flatMap((tactic: { techniques: { technique_id: string; subtechniques: { technique_id: string }[] }[] }) => tactic.techniques.flatMap((item) => [item, ...item.subtechniques]))
                .find((item: { technique_id: string }) => item.technique_id === 'T1021.002');
            const layer = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/heatmap/layer', auth: context.as(role) })).payload);
            const entry = layer.techniques.find((item: { techniqueID: string }) => item.techniqueID === 'T1021.002');
            return { cell: cell.tests, layer: entry.comment };
        };

        const initial = await countsOf('admin');
        await testRow(context.knex, { technique_id: 'T1021.002', data_classification: 'restricted' });
        await testRow(context.knex, { technique_id: 'T1021.002', data_classification: 'restricted', state: 'validated', red_assignee_id: context.users.red_tech.id } as never);
        await testRow(context.knex, { technique_id: 'T1021.002', data_classification: 'confidential', state: 'validated' } as never);
        await testRow(context.knex, { technique_id: 'T1021.002', data_classification: 'public' });

        const plus = (total: number, validated: number) => ({ total: initial.cell.total + total, validated: initial.cell.validated + validated });
        for (const [role, counts] of [['admin', plus(4, 2)], ['red_tech', plus(3, 2)], ['viewer', plus(1, 0)]] as const) {
            const seen = await countsOf(role);
            expect(seen.cell, role).to.equal(counts);
            expect(seen.layer, role).to.contain(`Tests: ${counts.total} total, ${counts.validated} validated.`);
        }
    });

    it('filters by platform and threat actor, and answers 400/404 to bad filters', async () => {

        const apt28 = (await context.knex('threat_actors').where('mitre_id', 'G0007').first('id')).id;
        const used = new Set(await context.knex('threat_actor_techniques').where('threat_actor_id', apt28).pluck('technique_id'));
        const body = JSON.parse((await context.server.inject({ method: 'GET', url: `/api/v1/heatmap?threat_actor_id=${apt28}&platform=Windows`, auth: context.as('red_tech') })).payload);
        for (const tactic of body.tactics) {
            for (const cell of tactic.techniques) {
                expect(used.has(cell.technique_id) || cell.subtechniques.some((sub: { technique_id: string }) => used.has(sub.technique_id))).to.be.true();
            }
        }

        expect(Number(body.summary.techniques + body.summary.subtechniques)).to.be.above(0);
        const flat = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/heatmap?include_subtechniques=false', auth: context.as('viewer') })).payload);
        expect(flat.tactics.every((tactic: { techniques: { subtechniques: unknown[] }[] }) => tactic.techniques.every((cell) => !cell.subtechniques.length))).to.be.true();

        expect((await context.server.inject({ method: 'GET', url: '/api/v1/heatmap?threat_actor_id=00000000-0000-4000-8000-000000000000', auth: context.as('viewer') })).statusCode).to.equal(404);
        for (const query of ['threat_actor_id=x', 'domain=x', 'limit=1', 'platform=']) {
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/heatmap?${query}`, auth: context.as('viewer') })).statusCode, query).to.equal(400);
        }
    });

    it('exports an ATT&CK Navigator 4.5 layer that its own parser reads back', async () => {

        const res = await context.server.inject({ method: 'GET', url: '/api/v1/heatmap/layer', auth: context.as('viewer') });
        expect(res.statusCode).to.equal(200);
        expect(res.headers['content-disposition']).to.include('attachment');
        const layer = JSON.parse(res.payload);
        expect(layer.versions).to.include({ layer: '4.5' });
        expect(layer.domain).to.equal('enterprise-attack');
        expect(layer.gradient).to.include({ minValue: 0, maxValue: 100 });
        expect(layer.legendItems).to.have.length(3);
        const rdp = layer.techniques.find((entry: { techniqueID: string }) => entry.techniqueID === 'T1021.001');
        expect(rdp).to.include({ tactic: 'lateral-movement', score: 90, color: '#8ec843', enabled: true });
        expect(rdp.comment).to.match(/Tests: \d+ total, \d+ validated/);
        const parsed = parseNavigatorLayer(layer);
        expect(parsed.techniques.length).to.equal(layer.techniques.length);
    });

    it('imports a Navigator layer: its enabled techniques are marked for review, unknown ids reported', async () => {

        await context.knex('techniques').whereIn('mitre_id', ['T1059.001', 'T1003.001']).update({ needs_review: false });
        const layer = {
            name: 'Threat report Q3', domain: 'enterprise-attack', versions: { layer: '4.5', attack: '18', navigator: '5.1.0' },
            techniques: [{ techniqueID: 'T1059.001', tactic: 'execution', score: 1 }, { techniqueID: 'T1003.001' }, { techniqueID: 'T1021', enabled: false }, { techniqueID: 'T9999.999' }]
        };
        const res = await context.server.inject({ method: 'POST', url: '/api/v1/heatmap/layer', auth: context.as('blue_tech'), payload: { layer } });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body.marked).to.equal(['T1003.001', 'T1059.001']);
        expect(body.unknown).to.equal(['T9999.999']);
        expect(body.skipped_disabled).to.equal(1);
        const technique = await context.knex('techniques').where('mitre_id', 'T1059.001').first('needs_review', 'review_reason');
        expect(technique).to.equal({ needs_review: true, review_reason: 'Listed in the ATT&CK Navigator layer "Threat report Q3"' });

        for (const bad of [{ techniques: 'x' }, { versions: { layer: '3.0' }, techniques: [] }, { techniques: [{ techniqueID: 'DROP' }] }, { name: 'x' }]) {
            const refused = await context.server.inject({ method: 'POST', url: '/api/v1/heatmap/layer', auth: context.as('admin'), payload: { layer: bad } });
            expect(refused.statusCode, JSON.stringify(bad)).to.equal(400);
        }

        expect((await context.server.inject({ method: 'POST', url: '/api/v1/heatmap/layer', auth: context.as('admin'), payload: { layer, extra: 1 } })).statusCode).to.equal(400);
    });
});
