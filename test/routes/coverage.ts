import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import type { Test } from '../../server/models';
import { systemActor, type Role } from '../../server/policy';

import { json, testRow } from '../helpers/factories';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Coverage across routes', () => {

    let context: TestContext;
    const request = async (role: Role, method: string, url: string, payload?: object) => await context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    // A test on the technique, validated through the API by both leads
    const validate = async (techniqueId: string, outcome: string) => {

        const test = await testRow(context.knex, { technique_id: techniqueId, state: 'in_review', detections: [{ tool: 'EDR', outcome, detected_at: new Date().toISOString() }], detection_outcome: outcome } as Partial<Test>);
        expect((await request('red_lead', 'POST', `/tests/${test.id}/validate-red`, { approved: true })).statusCode).to.equal(200);
        expect(json(await request('blue_lead', 'POST', `/tests/${test.id}/validate-blue`, { approved: true }))).to.include({ state: 'validated' });
        return test.id;
    };

    before(async () => {

        context = await init({ redis: false });
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
    });

    after(async () => {

        await context.stop();
    });

    it('shows a parent rolled up from its sub-techniques the same way in every route, and announces the parent\'s change', async () => {

        const create = async (payload: object) => json(await request('admin', 'POST', '/techniques', { tactic_ids: ['TA0002'], platforms: ['Windows'], ...payload })).mitre_id as string;
        const parent = await create({ name: 'Roll-up parent' });
        const first = await create({ name: 'Roll-up child one', parent_id: parent });
        const second = await create({ name: 'Roll-up child two', parent_id: parent });

        const actor = json(await request('red_lead', 'POST', '/threat-actors', { name: 'Roll-up actor' }));
        expect((await request('red_lead', 'POST', `/threat-actors/${actor.id}/techniques/${parent}`)).statusCode).to.equal(201);
        const component = (await context.knex('data_components').where('mitre_id', 'DC0032').first('id')).id;
        await context.knex('technique_data_components').insert({ technique_id: parent, data_component_id: component, source: 'legacy' });

        await validate(first, 'alerted');
        const partial = { coverage_status: 'partial', score: 45 };         // (90 + 0) / 2: one sub-technique untested
        expect(json(await request('viewer', 'GET', `/techniques/${parent}`))).to.include({ ...partial, own_coverage_status: 'untested', own_score: null });

        await validate(second, 'prevented');
        const covered = { coverage_status: 'covered', score: 95 };

        // /techniques: detail, list, the filter and the sort
        const detail = json(await request('viewer', 'GET', `/techniques/${parent}`));
        expect(detail).to.include({ ...covered, own_coverage_status: 'untested', own_score: null });
        expect(detail.subtechniques.map((sub: { mitre_id: string; coverage_status: string; score: number }) => [sub.mitre_id, sub.coverage_status, sub.score])).to.equal([[first, 'covered', 90], [second, 'covered', 100]]);
        const listed = json(await request('viewer', 'GET', '/techniques?search=Roll-up%20parent'));
        expect(listed.items.map((item: { mitre_id: string; coverage_status: string; score: number }) => [item.mitre_id, item.coverage_status, item.score])).to.equal([[parent, 'covered', 95]]);
        const ids = async (query: string) => json(await request('viewer', 'GET', `/techniques?is_custom=true&limit=500&${query}`)).items.map((item: { mitre_id: string }) => item.mitre_id);
        expect(await ids('coverage_status=covered')).to.include([parent, first, second]);
        expect(await ids('coverage_status=untested')).to.not.include(parent);

        // /heatmap: the cell, its roll-up and the summary count one figure
        const heatmap = json(await request('viewer', 'GET', '/heatmap'));
        const cell = heatmap.tactics.find((tactic: { id: string }) => tactic.id === 'TA0002').techniques.find((item: { technique_id: string }) => item.technique_id === parent);
        expect(cell).to.include({ ...covered, own_coverage_status: 'untested' });
        expect(cell.rollup).to.equal({ ...covered, tests: { total: 2, validated: 2 } });
        const counted: Record<string, number> = { untested: 0, not_covered: 0, partial: 0, covered: 0 };
        const seen = new Set<string>();
        for (const tactic of heatmap.tactics) {
            for (const item of tactic.techniques.flatMap((entry: { subtechniques: object[] }) => [entry, ...entry.subtechniques])) {
                if (!seen.has(item.technique_id)) {
                    seen.add(item.technique_id);
                    counted[item.coverage_status]!++;
                }
            }
        }

        expect(heatmap.summary.by_status).to.equal(counted);

        // Threat actor detail and data sources read the same stored figure
        const used = json(await request('viewer', 'GET', `/threat-actors/${actor.id}`)).techniques.find((item: { mitre_id: string }) => item.mitre_id === parent);
        expect(used).to.include({ coverage_status: 'covered' });
        const revealed = json(await request('viewer', 'GET', `/data-sources/${component}`)).techniques.find((item: { mitre_id: string }) => item.mitre_id === parent);
        expect(revealed).to.include({ coverage_status: 'covered' });

        // coverage.changed for the parent too, in the transactions of the two validations
        const events = await context.knex('domain_events').where({ type: 'coverage.changed', entity_id: parent }).orderBy('created_at').select('payload');
        expect(events.map((event: { payload: Record<string, unknown> }) => event.payload)).to.equal([
            { technique_id: parent, from: 'untested', to: 'partial', score: 45, own_coverage_status: 'untested', test_id: null },
            { technique_id: parent, from: 'partial', to: 'covered', score: 95, own_coverage_status: 'untested', test_id: null }
        ]);

        // A new sub-technique is an untested member: the parent drops back to partial at once
        const third = await create({ name: 'Roll-up child three', parent_id: parent });
        expect(json(await request('viewer', 'GET', `/techniques/${parent}`))).to.include({ coverage_status: 'partial', score: 63 });       // (90 + 100 + 0) / 3
        expect((await request('admin', 'PATCH', `/techniques/${third}`, { parent_id: null })).statusCode).to.equal(200);
        expect(json(await request('viewer', 'GET', `/techniques/${parent}`))).to.include(covered);
    });

    it('keeps needs_review when a not_applicable test is validated, and clears every review field on a newer result', async () => {

        const id = json(await request('admin', 'POST', '/techniques', { name: 'Review probe' })).mitre_id as string;
        await validate(id, 'alerted');
        expect((await request('blue_lead', 'PATCH', `/techniques/${id}/review`, { needs_review: true, reason: 'New EDR policy' })).statusCode).to.equal(200);
        const review = () => context.knex('techniques').where('mitre_id', id).first('coverage_status', 'needs_review', 'review_reason', 'review_requested_by');
        const requested = { coverage_status: 'covered', needs_review: true, review_reason: 'New EDR policy', review_requested_by: context.users.blue_lead.id };
        expect(await review()).to.equal(requested);

        // No evidence either way: the older alerted result stays the latest, and the review stays asked for
        await validate(id, 'not_applicable');
        expect(await review()).to.equal(requested);
        expect(json(await request('viewer', 'GET', `/techniques/${id}`))).to.include({ needs_review: true, review_reason: 'New EDR policy' });

        await validate(id, 'logged');
        expect(await review()).to.equal({ coverage_status: 'partial', needs_review: false, review_reason: null, review_requested_by: null });
        expect((await context.knex('techniques').where('mitre_id', id).first('review_requested_at')).review_requested_at).to.be.null();
    });

    it('recomputes the roll-up of parents after an import that brings sub-techniques back', { timeout: 60_000 }, async () => {

        // T1021's sub-techniques other than RDP deprecated by hand (the bundle has T1021.002; a full import run by another
        // script may have brought more): validating RDP covers the parent on its own
        const others = await context.knex('techniques').where('parent_id', 'T1021').whereNot('mitre_id', 'T1021.001').where('deprecated', false).pluck('mitre_id');
        expect(others).to.include('T1021.002');
        await context.knex('techniques').whereIn('mitre_id', others).update({ deprecated: true });
        await validate('T1021.001', 'alerted');
        expect(await context.knex('techniques').where('mitre_id', 'T1021').first('coverage_status', 'score')).to.equal({ coverage_status: 'covered', score: 90 });

        // The sync restores T1021.002: an untested member again, in the import's transaction
        const result = await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
        expect(await context.knex('techniques').where('mitre_id', 'T1021.002').first('deprecated')).to.equal({ deprecated: false });
        const score = 45;
        expect(await context.knex('techniques').where('mitre_id', 'T1021').first('coverage_status', 'score')).to.equal({ coverage_status: 'partial', score });
        const event = await context.knex('domain_events').where({ type: 'coverage.changed', entity_id: 'T1021' }).orderBy('created_at', 'desc').first('payload', 'actor_id');
        expect(event).to.equal({ payload: { technique_id: 'T1021', from: 'covered', to: 'partial', score, own_coverage_status: 'untested', test_id: null }, actor_id: null });
        const audit = await context.knex('audit_logs').where({ action: 'attack.import', entity_id: result.import_id }).first('details');
        expect(audit.details).to.include({ coverage_changed: 1 });

        // What this script deprecated by hand, back as it was for the scripts that share the database
        await context.knex('techniques').whereIn('mitre_id', others).update({ deprecated: false });
        await context.knex.transaction((trx) => context.services.coverage.refresh(trx, systemActor));
    });
});
