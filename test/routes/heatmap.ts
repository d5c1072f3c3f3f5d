import * as Path from 'path';
import * as Zlib from 'zlib';

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


const internals = {
    // What clearing a review leaves, as the integrity constraint requires (every review field empty)
    unreviewed: { needs_review: false, review_reason: null, review_requested_at: null, review_requested_by: null }
};


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
        const test = await testRow(context.knex, { technique_id: 'T1021.001', state: 'validated', detection_outcome: 'alerted', validated_at: new Date() } as never);
        await context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), ['T1021.001']));

        const res = await context.server.inject({ method: 'GET', url: '/api/v1/heatmap', auth: context.as('viewer') });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body.domain).to.equal('enterprise-attack');
        expect(body.tactics[0]).to.include({ id: 'TA0043', shortname: 'reconnaissance' });
        expect(body.tactics.at(-1)).to.include({ id: 'TA0040' });
        expect(body.tactics.map((tactic: { order: number }) => tactic.order)).to.equal([...body.tactics.map((tactic: { order: number }) => tactic.order)].sort((a, b) => a - b));

        const lateral = body.tactics.find((tactic: { id: string }) => tactic.id === 'TA0008');
        const remote = lateral.techniques.find((cell: { technique_id: string }) => cell.technique_id === 'T1021');
        const subs = await context.knex('techniques').where({ parent_id: 'T1021', revoked: false, deprecated: false }).count('* as count').first();
        expect(remote).to.include({ coverage_status: 'partial', score: Math.round(90 / Number(subs!.count)), own_coverage_status: 'untested', own_score: null });
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

    describe('POST /heatmap/layer', () => {

        const post = (role: 'viewer' | 'red_tech' | 'blue_tech' | 'red_lead' | 'blue_lead' | 'admin', payload: unknown, url = '/api/v1/heatmap/layer') => context.server.inject({
            method: 'POST', url, auth: context.as(role), payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: { 'content-type': 'application/json' }
        });

        const reviewed = (ids: string[]) => context.knex('techniques').whereIn('mitre_id', ids).where('needs_review', true).orderBy('mitre_id').pluck('mitre_id');

        // The file as ATT&CK Navigator 4.x/5.x saves it ("Download layer as JSON"), not wrapped in anything
        const navigatorFile = (techniques: Record<string, unknown>[], overrides: Record<string, unknown> = {}) => ({
            name: 'Threat report Q3', versions: { attack: '18', navigator: '5.1.0', layer: '4.5' }, domain: 'enterprise-attack', description: 'From the CTI team',
            filters: { platforms: ['Windows', 'Linux', 'macOS'] }, sorting: 0,
            layout: { layout: 'side', aggregateFunction: 'average', showID: false, showName: true, showAggregateScores: false, countUnscored: false, expandedSubtechniques: 'none' },
            hideDisabled: false, techniques, gradient: { colors: ['#ff6666ff', '#ffe766ff', '#8ec843ff'], minValue: 0, maxValue: 100 },
            legendItems: [], metadata: [], links: [], showTacticRowBackground: false, tacticRowBackground: '#dddddd',
            selectTechniquesAcrossTactics: true, selectSubtechniquesWithParent: false, selectVisibleTechniques: false, ...overrides
        });

        const entry = (techniqueID: string, tactic = 'execution', extra: Record<string, unknown> = {}) => ({
            techniqueID, tactic, score: 1, color: '#ff6666', comment: 'Seen in the report', enabled: true, metadata: [{ name: 'source', value: 'CTI' }, { divider: true }], links: [], showSubtechniques: false, ...extra
        });

        it('takes RL, BL and A only (issue 8): a viewer or a technician marks nothing', async () => {

            await context.knex('techniques').where('mitre_id', 'T1059.001').update(internals.unreviewed);
            for (const role of ['viewer', 'red_tech', 'blue_tech'] as const) {
                const res = await post(role, navigatorFile([entry('T1059.001')]));
                expect(res.statusCode, role).to.equal(403);
                expect((await post(role, { layer: navigatorFile([entry('T1059.001')]) })).statusCode, role).to.equal(403);
            }

            expect(await reviewed(['T1059.001'])).to.equal([]);
        });

        it('imports the file as the Navigator exports it: its enabled techniques are marked for review, unknown ids reported', async () => {

            await context.knex('techniques').whereIn('mitre_id', ['T1059.001', 'T1003.001', 'T1021']).update(internals.unreviewed);
            const file = navigatorFile([entry('T1059.001'), entry('T1059.001', 'persistence'), entry('T1003.001', 'credential-access'), entry('T1021', 'lateral-movement', { enabled: false }), entry('T9999.999')]);
            const res = await post('blue_lead', file);
            expect(res.statusCode, res.payload).to.equal(200);
            expect(JSON.parse(res.payload)).to.equal({
                layer: { name: 'Threat report Q3', domain: 'enterprise-attack', layer_version: '4.5', attack_version: '18' },
                reason: 'Listed in the ATT&CK Navigator layer "Threat report Q3"',
                marked: ['T1003.001', 'T1059.001'],
                unknown: ['T9999.999'],
                skipped_disabled: 1
            });

            expect(await reviewed(['T1059.001', 'T1003.001', 'T1021'])).to.equal(['T1003.001', 'T1059.001']);
            const technique = await context.knex('techniques').where('mitre_id', 'T1059.001').first('needs_review', 'review_reason');
            expect(technique).to.equal({ needs_review: true, review_reason: 'Listed in the ATT&CK Navigator layer "Threat report Q3"' });

            // A reason for the raw file comes in the query
            const reasoned = await post('red_lead', navigatorFile([entry('T1003.001')]), '/api/v1/heatmap/layer?reason=Q3%20threat%20brief');
            expect(JSON.parse(reasoned.payload)).to.include({ reason: 'Q3 threat brief', marked: ['T1003.001'] });

            // What Aegis itself exports is such a file too
            const exported = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/heatmap/layer', auth: context.as('admin') })).payload);
            const reimported = await post('admin', exported);
            expect(reimported.statusCode).to.equal(200);
            expect(JSON.parse(reimported.payload).marked.length).to.equal(new Set(exported.techniques.map((item: { techniqueID: string }) => item.techniqueID)).size);
        });

        it('still accepts the { layer, reason } wrapper', async () => {

            await context.knex('techniques').where('mitre_id', 'T1003.001').update(internals.unreviewed);
            const res = await post('admin', { layer: navigatorFile([entry('T1003.001')]), reason: 'Wrapped' });
            expect(res.statusCode).to.equal(200);
            expect(JSON.parse(res.payload)).to.include({ reason: 'Wrapped', marked: ['T1003.001'] });
        });

        it('answers 400 naming the problem of a malformed layer, and marks nothing', async () => {

            await context.knex('techniques').where('mitre_id', 'T1059.001').update(internals.unreviewed);
            const cases: [unknown, string, string][] = [
                [navigatorFile([entry('T1059.001')], { domain: 'mitre-enterprise' }), 'domain', '"domain" must be one of [enterprise-attack, mobile-attack, ics-attack]'],
                [navigatorFile([entry('T1059.001')], { techniques: 'T1059.001' }), 'techniques', '"techniques" must be an array'],
                [navigatorFile([entry('T1059.001'), entry('DROP TABLE'), entry('t1059')]), 'techniques', 'Not technique ids: DROP TABLE, t1059'],
                [navigatorFile([entry('T1059.001'), { tactic: 'execution' }]), 'techniques.1.techniqueID', '"techniques[1].techniqueID" is required'],
                [navigatorFile([entry('T1059.001')], { versions: { layer: '3.0' } }), 'versions.layer', 'Navigator layer format 3.0 is not supported (4.x is)'],
                [{ name: 'no techniques' }, 'techniques', '"techniques" is required']
            ];

            for (const [body, field, message] of cases) {
                const res = await post('admin', body);
                expect(res.statusCode, field).to.equal(400);
                expect(JSON.parse(res.payload).fields, message).to.equal([field]);
                expect(JSON.parse(res.payload).message, field).to.contain(message);
                const wrapped = await post('admin', { layer: body });
                expect(JSON.parse(wrapped.payload).fields, message).to.equal([`layer.${field}`]);
            }

            for (const body of ['[]', '"layer"', 'null', '{"layer": "x"}', '{"layer": {"techniques": []}, "extra": 1}']) {
                expect((await post('admin', body)).statusCode, body).to.equal(400);
            }

            expect(await reviewed(['T1059.001'])).to.equal([]);
        });

        it('caps a layer at the size of the catalogue, and takes a full-matrix file over 1 MiB up to its own limit', async () => {

            const catalogue = await context.knex('techniques').where('domain', 'enterprise-attack').pluck('mitre_id');
            // Ids the catalogue does not hold (other scripts add techniques to the shared database)
            const unknown = Array.from({ length: 100 }, (_, i) => `T8${String(i).padStart(3, '0')}`).filter((id) => !catalogue.includes(id)).slice(0, 5);
            const padded = [...catalogue, ...unknown];
            const refused = await post('admin', navigatorFile(padded.map((id) => entry(id))));
            expect(refused.statusCode).to.equal(400);
            expect(JSON.parse(refused.payload)).to.include({ code: 'layer_too_large', fields: ['techniques'], message: `The layer names ${padded.length} techniques; the enterprise-attack catalogue holds ${catalogue.length}` });

            // Every technique, under as many tactics as it takes to pass 1.5 MiB with long comments (whatever the size of
            // the catalogue other scripts left in the shared database): over 1 MiB, within the route's 4 MiB, accepted
            const tactics = await context.knex('tactics').where('domain', 'enterprise-attack').pluck('shortname');
            const comment = 'c'.repeat(1500);
            const entries = Math.max(catalogue.length, Math.ceil(1.5 * 1024 * 1024 / JSON.stringify(entry(catalogue[0]!, tactics[0], { comment }), null, 4).length));
            const full = navigatorFile(Array.from({ length: entries }, (_, i) => entry(catalogue[i % catalogue.length]!, tactics[Math.floor(i / catalogue.length) % tactics.length], { comment })));
            const text = JSON.stringify(full, null, 4);
            expect(text.length).to.be.above(1024 * 1024);
            expect(text.length).to.be.below(4 * 1024 * 1024);
            const accepted = await post('admin', text);
            expect(accepted.statusCode, accepted.payload.slice(0, 200)).to.equal(200);
            expect(JSON.parse(accepted.payload).marked.length).to.equal(catalogue.length);

            const huge = await post('admin', navigatorFile([entry('T1059.001')], { description: 'd'.repeat(4 * 1024 * 1024) }));
            expect(huge.statusCode).to.equal(413);
            const bomb = await context.server.inject({ method: 'POST', url: '/api/v1/heatmap/layer', auth: context.as('admin'), payload: Zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
            expect(bomb.statusCode).to.equal(413);
        });
    });
});
