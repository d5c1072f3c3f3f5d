import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { systemActor, type Role } from '../../server/policy';

import { json, testRow } from '../helpers/factories';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    day: 86_400_000,
    // Ids of this script only: custom-shaped (X9nnnnn), never an ATT&CK id another script uses
    id: () => `X9${String(Crypto.randomInt(0, 100_000)).padStart(5, '0')}`,
    complianceDir: Path.join(sharedDir, 'data', 'compliance'),

    // Our techniques and their tests gone (a technique points at its latest test, and the test at its technique)
    remove: async (knex: TestContext['knex'], techniques: string[]) => {

        await knex('techniques').whereIn('mitre_id', techniques).update({ latest_validated_test_id: null, latest_validated_at: null, own_coverage_status: 'untested', own_score: null, coverage_status: 'untested', score: null });
        await knex('tests').whereIn('technique_id', techniques).delete();
        await knex('techniques').whereIn('mitre_id', techniques).whereNotNull('parent_id').delete();
        await knex('techniques').whereIn('mitre_id', techniques).delete();
    }
};


describe('Scores and risk', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });
    const ids = { P: internals.id(), Q: internals.id(), R: internals.id(), tactic: `TA9${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}` };
    const S1 = `${ids.P}.001`;
    const S2 = `${ids.P}.002`;
    const now = new Date();

    before(async () => {

        context = await init({ redis: false });
        const { knex } = context;
        const [tactic] = await knex('tactics').insert({ stix_id: `x-mitre-tactic--${Crypto.randomUUID()}`, mitre_id: ids.tactic, domain: 'enterprise-attack', name: 'Our exfiltration', shortname: 'exfiltration', matrix_order: 99 }).returning('id');
        const technique = (id: string, parent: string | null) => ({ mitre_id: id, domain: 'enterprise-attack', name: `Technique ${id}`, is_subtechnique: Boolean(parent), parent_id: parent, is_custom: true });
        await knex('techniques').insert([technique(ids.P, null), technique(ids.Q, null), technique(ids.R, null)]);
        await knex('techniques').insert([technique(S1, ids.P), technique(S2, ids.P)]);
        await knex('technique_tactics').insert([ids.P, S1, S2, ids.R].map((id) => ({ technique_id: id, tactic_id: tactic.id })));

        // S1 prevented today; S2 logged 180 days ago (a half-life: 40 x 0.5 = 20)
        await testRow(knex, { technique_id: S1, state: 'validated', detection_outcome: 'prevented', validated_at: now });
        await testRow(knex, { technique_id: S2, state: 'validated', detection_outcome: 'logged', validated_at: new Date(now.getTime() - 180 * internals.day), data_classification: 'restricted', title: 'hidden-marker-posture' } as never);
        await knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [S1, S2]));

        // Three tracked actors use S1 (so P), one tracked and one untracked use Q
        const actors = await knex('threat_actors').insert([0, 1, 2, 3, 4].map((i) => ({ name: `Posture actor ${i} ${Crypto.randomUUID()}`, tracked: i !== 4 }))).returning('id');
        await knex('threat_actor_techniques').insert([
            ...actors.slice(0, 3).map((actor: { id: string }) => ({ threat_actor_id: actor.id, technique_id: S1 })),
            { threat_actor_id: actors[3].id, technique_id: ids.Q },
            { threat_actor_id: actors[4].id, technique_id: ids.Q }
        ]);

        await context.services.risk.recompute(systemActor, { now });
    });

    after(async () => {

        await context.services.settings.reset(systemActor, 'scores.weights');
        await context.services.settings.reset(systemActor, 'scores.half_life_days');
        await context.services.settings.reset(systemActor, 'risk.likelihood_saturation');
        await internals.remove(context.knex, [S1, S2, ids.P, ids.Q, ids.R]);
        await context.knex('tactics').where('mitre_id', ids.tactic).delete();
        await context.stop();
    });

    it('stores each technique\'s score and risk, hand-computed', async () => {

        const profile = async (id: string) => json(await request('viewer', 'GET', `/risk/profiles/${id}`));

        // S1: prevented today, 3 actors (1 + 4 x ln4/ln32 = 2.6), impact 5 (exfiltration): 2.6 x 5 x 0 = 0
        expect(await profile(S1)).to.include({ coverage_status: 'covered', outcome: 'prevented', own_score: 100, score: 100, decay: 1, confidence: 1, actor_count: 3, likelihood: 2.6, impact: 5, impact_source: 'tactic:exfiltration', risk: 0, band: 'low' });
        // S2: 20, no actor: 1 x 5 x 0.8 = 4
        expect(await profile(S2)).to.include({ coverage_status: 'partial', outcome: 'logged', own_score: 20, score: 20, decay: 0.5, actor_count: 0, likelihood: 1, risk: 4, band: 'medium' });
        // P: (100 + 20) / 2 = 60, the actors of its sub-techniques: 2.6 x 5 x 0.4 = 5.2
        const parent = await profile(ids.P);
        expect(parent).to.include({ coverage_status: 'partial', own_score: null, score: 60, actor_count: 3, likelihood: 2.6, impact: 5, risk: 5.2, band: 'medium', is_subtechnique: false, parent_id: null, tactics: ['exfiltration'] });
        expect(parent.reason).to.equal('Coverage partial from its sub-techniques, score 60 of 100; used by 3 tracked threat actors (likelihood 2.60 of 5); impact 5 of 5 (from tactic exfiltration): risk 5.20 of 25');
        // Q: untested, one tracked actor (the untracked one does not count): 1.8 x 3 (no tactic) x 1 = 5.4
        expect(await profile(ids.Q)).to.include({ coverage_status: 'untested', score: null, actor_count: 1, likelihood: 1.8, impact: 3, impact_source: 'default', risk: 5.4, band: 'medium' });
        // R: untested, no actor: 1 x 5 x 1 = 5
        expect(await profile(ids.R)).to.include({ score: null, likelihood: 1, impact: 5, risk: 5 });

        // Nothing of the restricted test reaches a viewer: neither its id nor its title
        const all = (await Promise.all([S2, ids.P].map((id) => request('viewer', 'GET', `/risk/profiles/${id}`)))).map((res) => res.payload).join();
        const hidden = await context.knex('tests').where('technique_id', S2).first('id');
        expect(all).to.not.include(hidden.id);
        expect(all).to.not.include('hidden-marker-posture');

        expect((await request('viewer', 'GET', '/risk/profiles/X000001')).statusCode).to.equal(404);
        expect((await request('viewer', 'GET', '/risk/profiles/nope')).statusCode).to.equal(400);
    });

    it('weighs a score by the detection confidence where the technique has detection validations (hand-computed)', async () => {

        const { knex } = context;
        const [C1, C2, C3] = [internals.id(), internals.id(), internals.id()];
        const technique = (id: string) => ({ mitre_id: id, domain: 'enterprise-attack', name: `Technique ${id}`, is_subtechnique: false, parent_id: null, is_custom: true });
        await knex('techniques').insert([technique(C1), technique(C2), technique(C3)]);
        const [asset] = await knex('detection_assets').insert({ name: `Posture EDR ${Crypto.randomUUID()}`, type: 'edr' }).returning('id');
        try {
            // All three prevented today (weight 100, decay 1)
            for (const id of [C1, C2, C3]) {
                await testRow(knex, { technique_id: id, state: 'validated', detection_outcome: 'prevented', validated_at: now });
            }

            await knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [C1, C2, C3]));
            // C1: an alert validated one detection half-life (180 days) ago: confidence 1.00 x 0.5 = 0.5
            // C2: its only validation invalidated: confidence 0; C3: no detection validation at all: factor 1
            await knex('detection_validations').insert([
                { technique_id: C1, asset_id: asset.id, source: 'manual', reason: 'posture test', outcome: 'alerted', validated_at: new Date(now.getTime() - 180 * internals.day) },
                { technique_id: C2, asset_id: asset.id, source: 'manual', reason: 'posture test', outcome: 'prevented', validated_at: now, status: 'invalidated', invalidated_at: now, invalidation_reason: 'rule removed' }
            ]);
            await context.services.risk.recompute(systemActor, { now });

            const profile = async (id: string) => json(await request('viewer', 'GET', `/risk/profiles/${id}`));
            // C1: 100 x 1 x 0.5 = 50; no actor, no tactic: 1 x 3 x (1 - 0.5) = 1.5
            expect(await profile(C1)).to.include({ outcome: 'prevented', decay: 1, confidence: 0.5, own_score: 50, score: 50, likelihood: 1, impact: 3, risk: 1.5, band: 'low' });
            // C2: 100 x 1 x 0 = 0: 1 x 3 x 1 = 3
            expect(await profile(C2)).to.include({ outcome: 'prevented', confidence: 0, own_score: 0, score: 0, risk: 3 });
            // C3: 100 x 1 x 1 = 100: risk 0
            expect(await profile(C3)).to.include({ outcome: 'prevented', confidence: 1, own_score: 100, score: 100, risk: 0 });
            expect(json(await request('viewer', 'GET', `/scores/techniques/${C1}`))).to.include({ confidence: 0.5, own_score: 50 });
            expect((json(await request('viewer', 'GET', '/scores/config'))).detection_confidence).to.contain('technique_detection_confidence');
        }
        finally {
            await knex('detection_validations').whereIn('technique_id', [C1, C2, C3]).delete();
            await knex('detection_assets').where('id', asset.id).delete();
            await internals.remove(knex, [C1, C2, C3]);
            await knex('risk_profiles').whereIn('technique_id', [C1, C2, C3]).delete();
        }
    });

    it('answers scores per technique, per tactic and overall', async () => {

        const detail = json(await request('red_tech', 'GET', `/scores/techniques/${ids.P}`));
        expect(detail).to.include({ technique_id: ids.P, score: 60, own_score: null, weight: null, half_life_days: 180 });
        expect(detail.subtechniques.map((item: { technique_id: string; score: number }) => [item.technique_id, item.score])).to.equal([[S1, 100], [S2, 20]]);
        expect(json(await request('viewer', 'GET', `/scores/techniques/${S2}`))).to.include({ weight: 40, decay: 0.5, own_score: 20 });
        expect((await request('viewer', 'GET', '/scores/techniques/X000001')).statusCode).to.equal(404);

        const listed = json(await request('viewer', 'GET', '/scores/techniques?tactic=exfiltration&subtechniques=false&limit=500'));
        expect(listed.items.filter((item: { technique_id: string }) => [ids.P, ids.R, S1].includes(item.technique_id)).map((item: { technique_id: string }) => item.technique_id)).to.equal([ids.P, ids.R]);
        expect((await request('viewer', 'GET', '/scores/techniques?sort=risk')).statusCode).to.equal(400);
        expect((await request('viewer', 'GET', '/scores/techniques?coverage_status=great')).statusCode).to.equal(400);

        // The tactic: P (60) and R (untested, 0): 30.0 over 2 techniques, 1 tested
        const tactics = json(await request('viewer', 'GET', '/scores/tactics?limit=500'));
        expect(tactics.items.find((item: { tactic_id: string }) => item.tactic_id === ids.tactic)).to.equal({ tactic_id: ids.tactic, name: 'Our exfiltration', shortname: 'exfiltration', domain: 'enterprise-attack', matrix_order: 99, techniques: 2, tested: 1, score: 30 });

        const overview = json(await request('viewer', 'GET', '/scores'));
        const [expected] = await context.knex('risk_profiles').where({ domain: 'enterprise-attack', is_subtechnique: false }).select(context.knex.raw('count(*)::integer as techniques, count(score)::integer as tested, round(avg(coalesce(score, 0))::numeric, 1)::float as score'));
        expect(overview.overall).to.equal(expected);
        expect(overview.tactics.find((item: { tactic_id: string }) => item.tactic_id === ids.tactic).score).to.equal(30);
        expect((await request('viewer', 'GET', '/scores?domain=mars')).statusCode).to.equal(400);
    });

    it('changes the configuration as an admin and recomputes at once; refuses bad input without writing', async () => {

        const config = json(await request('viewer', 'GET', '/scores/config'));
        expect(config).to.include({ weights: { prevented: 100, alerted: 90, logged: 40, not_detected: 0 }, half_life_days: 180, likelihood_saturation: 31 });
        expect(config.tactic_impacts.exfiltration).to.equal(5);

        const audits = await context.knex('audit_logs').count('* as n').first();
        for (const payload of [{}, { weights: { logged: 101 } }, { weights: {} }, { half_life_days: 0 }, { likelihood_saturation: 'many' }, { colour: 'red' }]) {
            const res = await request('admin', 'PATCH', '/scores/config', payload);
            expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
        }

        expect(json(await request('admin', 'PATCH', '/scores/config', { weights: { logged: 101 } })).fields).to.equal(['weights.logged']);
        expect(await context.knex('audit_logs').count('* as n').first()).to.equal(audits);
        expect(await context.knex('settings').whereIn('key', ['scores.weights', 'scores.half_life_days']).count('* as n').first()).to.equal({ n: 0 });

        // logged 60, half-life 90: S2 = 60 x 0.5^(180/90) = 15; P = (100 + 15) / 2 = 57.5 -> 58
        const res = await request('admin', 'PATCH', '/scores/config', { weights: { logged: 60 }, half_life_days: 90 });
        expect(res.statusCode, res.payload).to.equal(200);
        const changed = json(res);
        expect(changed).to.include({ weights: { prevented: 100, alerted: 90, logged: 60, not_detected: 0 }, half_life_days: 90 });
        expect(changed.recomputed.profiles as number).to.be.above(4);
        expect(json(await request('viewer', 'GET', `/scores/techniques/${S2}`))).to.include({ own_score: 15, weight: 60 });
        expect(json(await request('viewer', 'GET', `/scores/techniques/${ids.P}`)).score).to.equal(58);
        expect(await context.knex('audit_logs').where({ action: 'settings.update', entity_id: 'scores.weights', actor_id: context.users.admin.id }).first()).to.exist();

        expect(json(await request('admin', 'PATCH', '/scores/config', { weights: { logged: 40 }, half_life_days: 180 })).half_life_days).to.equal(180);
        expect(json(await request('viewer', 'GET', `/scores/techniques/${ids.P}`)).score).to.equal(60);
    });

    it('ranks recommendations and the top risks, with reasons', async () => {

        const mine = (items: { technique_id: string }[]) => items.filter((item) => [ids.P, ids.Q, ids.R, S1, S2].includes(item.technique_id));
        const recommended = json(await request('viewer', 'GET', '/risk/recommendations?limit=500&tactic=exfiltration'));
        // S1 is covered with a score of 100: nothing to recommend; the others by risk: P 5.2, R 5, S2 4
        expect(mine(recommended.items).map((item) => item.technique_id)).to.equal([ids.P, ids.R, S2]);
        expect(recommended.items.every((item: { reason: string }) => /risk \d+\.\d\d of 25$/.test(item.reason))).to.be.true();
        for (let i = 1; i < recommended.items.length; ++i) {
            expect(recommended.items[i - 1].risk as number).to.be.at.least(recommended.items[i].risk);
        }

        const top = json(await request('viewer', 'GET', '/risk/top?limit=3'));
        expect(top.items.length as number).to.be.at.most(3);
        expect(top.limit).to.equal(3);
        expect(top.items.every((item: { coverage_status: string }) => item.coverage_status !== 'covered')).to.be.true();
        for (const url of ['/risk/top?limit=0', '/risk/top?limit=101', '/risk/top?offset=2', '/risk/recommendations?band=red', '/risk/profiles?band=red', '/risk/profiles?sort=name']) {
            expect((await request('viewer', 'GET', url)).statusCode, url).to.equal(400);
        }

        const high = json(await request('viewer', 'GET', '/risk/profiles?band=medium&tactic=exfiltration&limit=500'));
        expect(mine(high.items).map((item) => item.technique_id)).to.equal([ids.P, ids.R, S2]);
    });

    it('answers the matrix and the summary from the stored profiles', async () => {

        const matrix = json(await request('viewer', 'GET', '/risk/matrix'));
        expect(matrix.rows.map((row: { impact: number }) => row.impact)).to.equal([5, 4, 3, 2, 1]);
        const cells: { impact: number; coverage_status: string; techniques: string }[] = await context.knex('risk_profiles').where('is_subtechnique', false).select('impact', 'coverage_status').count('* as techniques').groupBy('impact', 'coverage_status');
        for (const cell of cells) {
            expect(matrix.rows.find((row: { impact: number }) => row.impact === cell.impact).cells.find((item: { coverage_status: string }) => item.coverage_status === cell.coverage_status).techniques).to.equal(Number(cell.techniques));
        }

        const summary = json(await request('viewer', 'GET', '/risk/summary?subtechniques=true'));
        const [expected] = await context.knex('risk_profiles').select(context.knex.raw('count(*)::integer as n, round(sum(risk)::numeric, 2)::float as total, (count(*) filter (where band = \'medium\'))::integer as medium'));
        expect(summary).to.include({ techniques: expected.n, total_risk: expected.total });
        expect(summary.by_band.medium).to.equal(expected.medium);
        expect(summary.risk_reduction as number).to.be.between(-0.0001, 1.0001);
        expect((await request('viewer', 'GET', '/risk/summary?domain=moon')).statusCode).to.equal(400);
    });

    it('lets an admin set a technique\'s impact, and back to its default; refuses bad input without writing', async () => {

        const set = await request('admin', 'PATCH', `/risk/impact/${ids.Q}`, { impact: 5 });
        expect(set.statusCode, set.payload).to.equal(200);
        // 1.8 x 5 x 1 = 9
        expect(json(set)).to.include({ technique_id: ids.Q, impact: 5, impact_source: 'technique', risk: 9, band: 'high' });
        expect(await context.knex('audit_logs').where({ action: 'technique.impact', entity_id: ids.Q }).first('details')).to.equal({ details: { from: null, to: 5 } });

        for (const payload of [{ impact: 6 }, { impact: 0 }, {}, { impact: 3, colour: 1 }]) {
            expect((await request('admin', 'PATCH', `/risk/impact/${ids.Q}`, payload)).statusCode).to.equal(400);
        }

        expect((await request('admin', 'PATCH', '/risk/impact/X000001', { impact: 2 })).statusCode).to.equal(404);
        expect(await context.knex('techniques').where('mitre_id', ids.Q).first('impact')).to.equal({ impact: 5 });

        expect(json(await request('admin', 'PATCH', `/risk/impact/${ids.Q}`, { impact: null }))).to.include({ impact: 3, impact_source: 'default', risk: 5.4 });
    });

    it('queues a recompute on request, and one debounced recompute for a burst of coverage changes', async () => {

        const res = await request('red_lead', 'POST', '/risk/compute');
        expect(res.statusCode).to.equal(202);
        const accepted = json(res);
        expect(accepted.status).to.equal('queued');
        expect(await context.knex('agenda_jobs').where({ id: accepted.job_id, name: 'risk-recompute' }).first('id')).to.exist();
        expect(await context.knex('audit_logs').where({ action: 'risk.compute_requested', entity_id: accepted.job_id, actor_id: context.users.red_lead.id }).first()).to.exist();

        // A validation emits test.validated / coverage.changed; the risk consumer asks for the debounced job
        await context.knex('agenda_jobs').where('name', 'risk-recompute').whereRaw(`data->>'debounce_key' = 'coverage'`).delete();
        await context.relay.drain();
        const validate = async (technique: string) => {

            await testRow(context.knex, { technique_id: technique, state: 'validated', detection_outcome: 'alerted', validated_at: new Date() });
            await context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [technique]));
        };

        await validate(ids.R);
        await validate(ids.Q);

        await context.relay.drain();
        const jobs = await context.knex('agenda_jobs').where('name', 'risk-recompute').whereRaw(`data->>'debounce_key' = 'coverage'`).select('next_run_at');
        expect(jobs.length).to.equal(1);
        expect(jobs[0].next_run_at.getTime() as number).to.be.above(Date.now());

        // The job's work itself
        await context.services.risk.recompute(systemActor);
        expect(json(await request('viewer', 'GET', `/risk/profiles/${ids.Q}`))).to.include({ coverage_status: 'covered', outcome: 'alerted', own_score: 90 });
    });
});


describe('Compliance', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role) });
    const ids = { active: internals.id(), revoked: internals.id(), deprecated: internals.id(), unknown: internals.id(), other: internals.id() };
    let dir: string;

    before(async () => {

        context = await init({ redis: false, env: { COMPLIANCE_SOURCE: internals.complianceDir } });
        // A small framework of our own for the matching, written for this run (the real files are imported below)
        const technique = (id: string, fields: object = {}) => ({ mitre_id: id, domain: 'enterprise-attack', name: `Technique ${id}`, is_custom: true, ...fields });
        await context.knex('techniques').insert([technique(ids.active), technique(ids.other)]);
        await testRow(context.knex, { technique_id: ids.active, state: 'validated', detection_outcome: 'prevented', validated_at: new Date() });
        await context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [ids.active]));
        await context.knex('techniques').insert([technique(ids.revoked, { revoked: true, revoked_by_id: ids.active }), technique(ids.deprecated, { deprecated: true })]);
        dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), 'aegis-compliance-'));
        const mapping = (control: string, attack: string | null) => ({ capability_id: control, capability_group: control.split('-')[0], capability_description: `Control ${control}`, mapping_type: attack ? 'mitigates' : 'non_mappable', attack_object_id: attack, attack_object_name: attack ? `Name of ${attack}` : null, references: [], status: attack ? 'complete' : 'non_mappable' });
        Fs.writeFileSync(Path.join(dir, `test_fw-${ids.active}_attack-9.0-enterprise.json`), JSON.stringify({
            metadata: { mapping_framework: 'test_fw', mapping_framework_version: ids.active, attack_version: '9.0', technology_domain: 'enterprise', capability_groups: { AA: 'Family A', BB: 'Family B' } },
            mapping_objects: [mapping('AA-1', ids.active), mapping('AA-1', ids.revoked), mapping('AA-2', ids.other), mapping('AA-2', ids.active), mapping('BB-1', ids.deprecated), mapping('BB-1', ids.unknown), mapping('BB-2', null)]
        }));
    });

    after(async () => {

        await context.knex('compliance_frameworks').where('key', `test_fw-${ids.active}`).delete();
        await internals.remove(context.knex, Object.values(ids));
        Fs.rmSync(dir, { recursive: true, force: true });
        await context.stop();
    });

    it('imports the shared NIST 800-53 and CSA CCM mappings, keeping provenance and licence', { timeout: 60_000 }, async () => {

        expect((await request('red_lead', 'POST', '/compliance/import')).statusCode).to.equal(403);
        const res = await request('admin', 'POST', '/compliance/import');
        expect(res.statusCode, res.payload).to.equal(200);
        const frameworks = json(res).frameworks;
        expect(frameworks.map((item: { key: string }) => item.key)).to.equal(['csa_ccm-4.1', 'nist_800_53-rev5']);

        // Counted from the files themselves: distinct (control, technique) pairs of mapped rows, distinct controls
        for (const [file, key] of [['csa_ccm-4.1_attack-17.1-enterprise.json', 'csa_ccm-4.1'], ['nist_800_53-rev5_attack-16.1-enterprise.json', 'nist_800_53-rev5']]) {
            const objects: { capability_id: string | null; attack_object_id: string | null; status: string }[] = JSON.parse(Fs.readFileSync(Path.join(internals.complianceDir, file!), 'utf8')).mapping_objects;
            const pairs = new Set(objects.filter((item) => item.capability_id && item.attack_object_id && item.status !== 'non_mappable').map((item) => `${item.capability_id}/${item.attack_object_id}`));
            const controls = new Set(objects.filter((item) => item.capability_id).map((item) => item.capability_id));
            const summary = frameworks.find((item: { key: string }) => item.key === key);
            expect(summary).to.include({ mappings: pairs.size, controls: controls.size });
            expect(summary.exact + summary.revoked + summary.unmatched).to.equal(pairs.size);
        }

        const list = json(await request('viewer', 'GET', '/compliance/frameworks?limit=500'));
        const nist = list.items.find((item: { key: string }) => item.key === 'nist_800_53-rev5');
        expect(nist).to.include({ name: 'NIST SP 800-53', version: 'rev5', attack_version: '16.1', attack_domain: 'enterprise', source_file: 'nist_800_53-rev5_attack-16.1-enterprise.json', licence: 'LICENSE.txt (Apache-2.0).' });
        expect(nist.provenance).to.include('center-for-threat-informed-defense/mappings-explorer');
        expect(nist.mappings.total).to.equal(frameworks.find((item: { key: string }) => item.key === 'nist_800_53-rev5').mappings);

        const detail = json(await request('viewer', 'GET', `/compliance/frameworks/${nist.id}`));
        expect(detail.families.find((family: { family: string }) => family.family === 'AC')).to.include({ family_name: 'Access Control' });
        const controls = json(await request('viewer', 'GET', `/compliance/frameworks/${nist.id}/controls?family=AC&limit=500`));
        expect(controls.items.every((item: { family: string }) => item.family === 'AC')).to.be.true();
        const ac2 = controls.items.find((item: { control_id: string }) => item.control_id === 'AC-02');
        const control = json(await request('viewer', 'GET', `/compliance/controls/${ac2.id}`));
        expect(control.name).to.equal('Account Management');
        expect(control.description as string).to.startWith('Examples of system account types include');
        expect(control.description).to.not.include('<p>');

        // Importing again keeps the ids
        const again = json(await request('admin', 'POST', '/compliance/import')).frameworks;
        expect(again.find((item: { key: string }) => item.key === 'nist_800_53-rev5').framework_id).to.equal(nist.id);
        expect((await request('viewer', 'GET', `/compliance/controls/${ac2.id}`)).statusCode).to.equal(200);
    });

    it('matches old ids through revocations, reports what it cannot match, and derives control status and gaps from coverage', async () => {

        const result = await context.services.compliance.importFolder(systemActor, dir);
        expect(result.frameworks).to.equal([{ key: `test_fw-${ids.active}`, framework_id: result.frameworks[0]!.framework_id, controls: 4, mappings: 6, exact: 3, revoked: 1, unmatched: 2 }]);
        const id = result.frameworks[0]!.framework_id;

        const controls = json(await request('viewer', 'GET', `/compliance/frameworks/${id}/controls`));
        expect(controls.items.map((item: Record<string, unknown>) => [item.control_id, item.status, item.techniques, item.covered, item.coverage_percent])).to.equal([
            ['AA-1', 'covered', 1, 1, 100],            // the active technique and its revoked predecessor: one technique, covered
            ['AA-2', 'partial', 2, 1, 50],             // one covered, one untested
            ['BB-1', 'no_techniques', 0, 0, null],     // deprecated and unknown: nothing matched
            ['BB-2', 'no_techniques', 0, 0, null]      // not mappable
        ]);
        expect(controls.items.find((item: { control_id: string }) => item.control_id === 'BB-2').mappable).to.be.false();
        expect(json(await request('viewer', 'GET', `/compliance/frameworks/${id}/controls?status=partial`)).items.map((item: { control_id: string }) => item.control_id)).to.equal(['AA-2']);

        const gaps = json(await request('viewer', 'GET', `/compliance/frameworks/${id}/gaps`));
        expect(gaps.items.map((item: { control_id: string; uncovered_techniques: unknown }) => [item.control_id, item.uncovered_techniques])).to.equal([['AA-2', [{ technique_id: ids.other, coverage_status: 'untested' }]]]);
        expect(json(await request('viewer', 'GET', `/compliance/frameworks/${id}/gaps?family=BB`)).total).to.equal(0);

        const unmatched = json(await request('viewer', 'GET', `/compliance/frameworks/${id}/unmatched?sort=control_id`));
        expect(unmatched.items.map((item: { attack_id: string; reason: string; control_id: string }) => [item.attack_id, item.reason, item.control_id]).sort()).to.equal([[ids.deprecated, 'deprecated', 'BB-1'], [ids.unknown, 'unknown', 'BB-1']].sort());
        expect(json(await request('viewer', 'GET', `/compliance/frameworks/${id}/unmatched?reason=unknown`)).items.map((item: { attack_id: string }) => item.attack_id)).to.equal([ids.unknown]);

        const aa1 = controls.items.find((item: { control_id: string }) => item.control_id === 'AA-1');
        const detail = json(await request('viewer', 'GET', `/compliance/controls/${aa1.id}`));
        expect(detail.mappings.map((item: Record<string, unknown>) => [item.attack_id, item.technique_id, item.match, item.coverage_status])).to.equal([
            [ids.active, ids.active, 'exact', 'covered'], [ids.revoked, ids.active, 'revoked', 'covered']
        ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
        expect(detail.framework).to.include({ id, key: `test_fw-${ids.active}` });

        const framework = json(await request('viewer', 'GET', `/compliance/frameworks/${id}`));
        expect(framework).to.include({ controls: 4, mappings: { total: 6, exact: 3, revoked: 1, unmatched: 2 } });
        expect(framework.coverage).to.equal({ controls_by_status: { covered: 1, partial: 1, not_covered: 0, untested: 0, no_techniques: 2 }, controls_percent_covered: 50, techniques: 2, techniques_covered: 1, techniques_percent_covered: 50 });
    });

    it('answers 404 for unknown ids, 400 for bad ones, 409 without a configured source, and writes nothing then', async () => {

        const unknown = Crypto.randomUUID();
        for (const url of [`/compliance/frameworks/${unknown}`, `/compliance/frameworks/${unknown}/controls`, `/compliance/frameworks/${unknown}/gaps`, `/compliance/frameworks/${unknown}/unmatched`, `/compliance/controls/${unknown}`]) {
            expect((await request('viewer', 'GET', url)).statusCode, url).to.equal(404);
        }

        for (const url of ['/compliance/frameworks/nope', '/compliance/controls/1', `/compliance/frameworks/${unknown}/controls?status=green`, `/compliance/frameworks/${unknown}/controls?family=A;B`, `/compliance/frameworks/${unknown}/unmatched?reason=lost`, '/compliance/frameworks?sort=licence']) {
            expect((await request('viewer', 'GET', url)).statusCode, url).to.equal(400);
        }

        const bare = await init({ redis: false });
        try {
            const counted = await bare.knex('compliance_frameworks').count('* as n').first();
            const res = await bare.server.inject({ method: 'POST', url: '/api/v1/compliance/import', auth: bare.as('admin') });
            expect(res.statusCode).to.equal(409);
            expect(json(res).code).to.equal('compliance_source_unset');
            expect(await bare.knex('compliance_frameworks').count('* as n').first()).to.equal(counted);
            await expect(bare.services.compliance.importFolder(systemActor, Path.join(dir, 'missing'))).to.reject(/is not a folder/);
        }
        finally {
            await bare.stop();
        }
    });
});
