import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import type { Role } from '../../server/policy';
import { backfillDetections } from '../../migrations/20261207060001_detection';
import { decayedConfidence } from '../../server/services/detection';
import { wantsInApp } from '../../server/services/notifications';
import { bandOf, riskOf } from '../../server/services/scoring';

import { callsAs } from '../helpers/calls';
import { json, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const day = 86_400_000;


describe('Detection lifecycle routes', () => {

    let context: TestContext;
    const { request, ok } = callsAs(() => context);

    const unique = (prefix: string) => `${prefix} ${Crypto.randomBytes(4).toString('hex')}`;
    const count = async (table: string) => Number((await context.knex(table).count('* as n').first())!.n);

    const newAsset = (overrides: Record<string, unknown> = {}) => ok('blue_lead', 'POST', '/detection-lifecycle/assets', { name: unique('EDR'), type: 'edr', platform: 'Windows', ...overrides }, 201);

    // A test through the whole lifecycle, detected by the given assets
    const validatedTest = async (techniqueId: string, detections: object[]) => {

        const test = await ok('red_lead', 'POST', '/tests', { title: unique('Detection test'), technique_id: techniqueId }, 201);
        const url = `/tests/${test.id}`;
        await ok('admin', 'POST', `${url}/start-execution`, {});
        await ok('admin', 'PATCH', `${url}/red`, { executed_at: new Date(Date.now() - 60_000).toISOString(), attack_result: 'succeeded' });
        await ok('admin', 'POST', `${url}/submit-red`, {});
        await ok('blue_tech', 'PATCH', `${url}/blue`, { detections });
        await ok('admin', 'POST', `${url}/submit-blue`, {});
        await ok('red_lead', 'POST', `${url}/validate-red`, { approved: true });
        return await ok('blue_lead', 'POST', `${url}/validate-blue`, { approved: true });
    };

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    describe('assets', () => {

        it('creates, reads, updates, links, unlinks and deletes an asset', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const name = unique('Splunk');
            const created = await ok('blue_lead', 'POST', '/detection-lifecycle/assets', { name, type: 'siem', platform: 'Windows', owner_id: context.users.blue_lead.id, description: 'Main SIEM' }, 201);
            expect(created).to.equal({
                id: created.id, name, type: 'siem', platform: 'Windows', owner_id: context.users.blue_lead.id, description: 'Main SIEM', data_sources: [], technique_ids: [],
                created_by: context.users.blue_lead.id, created_at: created.created_at, updated_at: created.updated_at
            });

            const linked = await ok('admin', 'POST', `/detection-lifecycle/assets/${created.id}/techniques/${techniqueId}`);
            expect(linked.technique_ids).to.equal([techniqueId]);
            expect((await ok('blue_lead', 'POST', `/detection-lifecycle/assets/${created.id}/techniques/${techniqueId}`)).technique_ids).to.equal([techniqueId]);       // idempotent

            const listed = await ok('viewer', 'GET', `/detection-lifecycle/assets?technique_id=${techniqueId}`);
            expect(listed.items.map((item: { id: string }) => item.id)).to.equal([created.id]);
            expect((await ok('viewer', 'GET', `/detection-lifecycle/assets?search=${encodeURIComponent(name)}&type=siem`)).total).to.equal(1);
            expect((await ok('viewer', 'GET', `/detection-lifecycle/assets?search=${encodeURIComponent(name)}&type=edr`)).total).to.equal(0);

            const updated = await ok('blue_lead', 'PATCH', `/detection-lifecycle/assets/${created.id}`, { platform: 'Linux', description: null });
            expect(updated).to.include({ platform: 'Linux', description: null, technique_ids: [techniqueId] });
            expect(await ok('red_tech', 'GET', `/detection-lifecycle/assets/${created.id}`)).to.equal(updated);

            await ok('blue_lead', 'DELETE', `/detection-lifecycle/assets/${created.id}/techniques/${techniqueId}`, undefined, 204);
            expect((await request('blue_lead', 'DELETE', `/detection-lifecycle/assets/${created.id}/techniques/${techniqueId}`)).statusCode).to.equal(404);
            await ok('blue_lead', 'DELETE', `/detection-lifecycle/assets/${created.id}`, undefined, 204);
            expect((await request('viewer', 'GET', `/detection-lifecycle/assets/${created.id}`)).statusCode).to.equal(404);
        });

        it('refuses bad input, unknown ids and duplicates, writing nothing', async () => {

            const asset = await newAsset();
            const counted = await count('detection_assets');
            const refusals: [string, string, object | undefined, number, string?][] = [
                ['POST', '/detection-lifecycle/assets', { name: 'x', type: 'firewall' }, 400, 'type'],
                ['POST', '/detection-lifecycle/assets', { type: 'edr' }, 400, 'name'],
                ['POST', '/detection-lifecycle/assets', { name: 'x', type: 'edr', extra: 1 }, 400, 'extra'],
                ['POST', '/detection-lifecycle/assets', { name: 'x', type: 'edr', owner_id: Crypto.randomUUID() }, 400, 'owner_id'],
                ['POST', '/detection-lifecycle/assets', { name: 'x', type: 'edr', data_sources: ['DS9999'] }, 400, 'data_sources'],
                ['POST', '/detection-lifecycle/assets', { name: asset.name.toUpperCase(), type: 'edr' }, 409],
                ['PATCH', `/detection-lifecycle/assets/${Crypto.randomUUID()}`, { platform: 'Linux' }, 404],
                ['PATCH', `/detection-lifecycle/assets/${asset.id}`, {}, 400],
                ['GET', '/detection-lifecycle/assets/not-a-uuid', undefined, 400, 'id'],
                ['GET', '/detection-lifecycle/assets?sort=owner', undefined, 400, 'sort'],
                ['POST', `/detection-lifecycle/assets/${asset.id}/techniques/T0000.999`, undefined, 404],
                ['POST', `/detection-lifecycle/assets/${Crypto.randomUUID()}/techniques/T1059.001`, undefined, 404],
                ['POST', `/detection-lifecycle/assets/${asset.id}/techniques/bad`, undefined, 400, 'tid'],
                ['DELETE', `/detection-lifecycle/assets/${Crypto.randomUUID()}`, undefined, 404]
            ];

            for (const [method, url, payload, status, field] of refusals) {
                const res = await request('admin', method, url, payload);
                expect(res.statusCode, `${method} ${url} ${res.payload}`).to.equal(status);
                if (field) {
                    expect(res.payload, `${method} ${url}`).to.contain(field);
                }
            }

            expect(await count('detection_assets')).to.equal(counted);
            expect(json(await request('admin', 'POST', '/detection-lifecycle/assets', { name: asset.name.toUpperCase(), type: 'edr' })).code).to.equal('asset_name_taken');
        });
    });

    describe('detections as rows', () => {

        it('stores each detection of a test as a row, keeps the derived outcome and time, and checks the named assets and rules', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const edr = await newAsset();
            const rule = await ok('blue_lead', 'POST', '/detection-rules', { name: unique('Rule'), language: 'kql', query: 'DeviceProcessEvents | where true', technique_ids: [techniqueId], asset_id: edr.id }, 201);
            const test = await ok('red_lead', 'POST', '/tests', { title: unique('Rows'), technique_id: techniqueId }, 201);
            const url = `/tests/${test.id}`;
            await ok('admin', 'POST', `${url}/start-execution`, {});
            const executed = new Date(Date.now() - 600_000);
            await ok('admin', 'PATCH', `${url}/red`, { executed_at: executed.toISOString(), attack_result: 'succeeded' });
            await ok('admin', 'POST', `${url}/submit-red`, {});

            // Unknown asset or rule: 400 naming the detection's field, nothing written
            const rowsBefore = await count('test_detections');
            for (const [detection, field] of [
                [{ asset_id: Crypto.randomUUID(), outcome: 'alerted', detected_at: new Date().toISOString() }, 'detections.0.asset_id'],
                [{ tool: 'Sysmon', outcome: 'logged', detected_at: new Date().toISOString(), rule_ids: [Crypto.randomUUID()] }, 'detections.0.rule_ids'],
                [{ tool: 'Sysmon', outcome: 'logged', rule_ids: ['SIGMA-1'] }, 'detections[0].rule_ids[0]']
            ] as const) {
                const res = await request('blue_tech', 'PATCH', `${url}/blue`, { detections: [detection] });
                expect(res.statusCode, res.payload).to.equal(400);
                expect(res.payload).to.contain(field);
            }

            expect(await count('test_detections')).to.equal(rowsBefore);
            expect((await ok('admin', 'GET', url)).detections).to.equal([]);

            const t1 = new Date(executed.getTime() + 120_000).toISOString();
            const t2 = new Date(executed.getTime() + 60_000).toISOString();
            const blue = await ok('blue_tech', 'PATCH', `${url}/blue`, {
                detections: [
                    { asset_id: edr.id, outcome: 'alerted', detected_at: t1, rule_ids: [rule.id], alert_reference: 'INC-1' },
                    { tool: 'Proxy', outcome: 'logged', detected_at: t2, notes: 'seen in proxy logs' },
                    { tool: 'NDR', outcome: 'not_detected' }
                ]
            });
            expect(blue).to.include({ detection_outcome: 'alerted', detected_at: t2 });

            const rows = await ok('viewer', 'GET', `/detection-lifecycle/detections?test_id=${test.id}&sort=created_at&order=asc`);
            expect(rows.total).to.equal(3);
            const byPosition = [...rows.items].sort((a: { position: number }, b: { position: number }) => a.position - b.position);
            expect(byPosition.map((row: Record<string, unknown>) => [row.asset_id, row.tool, row.outcome, row.detected_at, row.rule_ids, row.alert_reference])).to.equal([
                [edr.id, null, 'alerted', t1, [rule.id], 'INC-1'],
                [null, 'Proxy', 'logged', t2, [], null],
                [null, 'NDR', 'not_detected', null, [], null]
            ]);

            // Across tests: by asset, by rule, by technique, by outcome
            expect((await ok('viewer', 'GET', `/detection-lifecycle/detections?asset_id=${edr.id}`)).items.map((row: { test_id: string }) => row.test_id)).to.equal([test.id]);
            expect((await ok('viewer', 'GET', `/detection-lifecycle/detections?rule_id=${rule.id}`)).total).to.equal(1);
            expect((await ok('viewer', 'GET', `/detection-lifecycle/detections?technique_id=${techniqueId}&outcome=logged`)).total).to.equal(1);

            // A second edit replaces the rows
            await ok('blue_tech', 'PATCH', `${url}/blue`, { detections: [{ tool: 'NDR', outcome: 'not_detected' }] });
            expect((await ok('viewer', 'GET', `/detection-lifecycle/detections?test_id=${test.id}`)).items.map((row: { outcome: string }) => row.outcome)).to.equal(['not_detected']);

            // The asset and the rule are now part of a record: neither goes while detections name them
            await ok('blue_tech', 'PATCH', `${url}/blue`, { detections: [{ asset_id: edr.id, outcome: 'alerted', detected_at: t1, rule_ids: [rule.id] }] });
            expect(json(await request('blue_lead', 'DELETE', `/detection-lifecycle/assets/${edr.id}`)).code).to.equal('asset_in_use');
            expect(json(await request('blue_lead', 'DELETE', `/detection-rules/${rule.id}`)).code).to.equal('rule_in_use');
        });

        it('migrated the JSON detections of existing tests into rows (the migration\'s statement, replayed)', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const [test] = await context.knex('tests').insert({ title: 'Legacy', technique_id: techniqueId, state: 'blue_evaluating', timer_started_at: new Date(), executed_at: new Date('2026-11-01T09:00:00.000Z'), attack_result: 'succeeded', detections: JSON.stringify([{ tool: 'EDR', outcome: 'alerted', detected_at: '2026-11-01T10:00:00.000Z', notes: 'old' }, { tool: 'AV', outcome: 'not_detected' }]), detection_outcome: 'alerted', detected_at: new Date('2026-11-01T10:00:00.000Z') }).returning('id');
            await backfillDetections(context.knex, [test.id]);
            const rows = await context.knex('test_detections').where('test_id', test.id).orderBy('position');
            expect(rows.map((row) => [row.position, row.tool, row.outcome, row.detected_at?.toISOString() ?? null, row.notes])).to.equal([[0, 'EDR', 'alerted', '2026-11-01T10:00:00.000Z', 'old'], [1, 'AV', 'not_detected', null, null]]);
        });
    });

    describe('validations and the dashboard', () => {

        it('records a validation per asset that detected a validated test, and links the asset to the technique', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const edr = await newAsset();
            const siem = await newAsset({ type: 'siem' });
            const ndr = await newAsset({ type: 'ndr' });
            const now = new Date().toISOString();
            const test = await validatedTest(techniqueId, [
                { asset_id: edr.id, outcome: 'prevented', detected_at: now },
                { asset_id: siem.id, outcome: 'logged', detected_at: now },
                { asset_id: siem.id, outcome: 'alerted', detected_at: now },
                { asset_id: ndr.id, outcome: 'not_detected' }
            ]);

            const list = await ok('viewer', 'GET', `/detection-lifecycle/validations?technique_id=${techniqueId}&sort=validated_at`);
            expect(list.total).to.equal(2);
            const byAsset = Object.fromEntries(list.items.map((item: Record<string, any>) => [item.asset_id, item]));
            expect(byAsset[edr.id]).to.include({ test_id: test.id, source: 'test', outcome: 'prevented', status: 'valid', validated_at: test.validated_at, reason: null });
            expect(byAsset[siem.id]).to.include({ outcome: 'alerted' });            // the asset's strongest outcome
            expect((await ok('viewer', 'GET', `/detection-lifecycle/assets/${edr.id}`)).technique_ids).to.equal([techniqueId]);
            expect((await ok('viewer', 'GET', `/detection-lifecycle/assets/${ndr.id}`)).technique_ids).to.equal([]);
        });

        it('decays confidence by the half-life (hand-computed), drops it when invalidated, and shows the validations behind it', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const edr = await newAsset();
            const siem = await newAsset({ type: 'siem' });
            const now = Date.now();

            // Defaults: half-life 180 days, weights prevented 100, alerted 100, logged 50.
            // 180 days old, alerted: 1.00 × 0.5^(180/180) = 0.5. 360 days old, logged: 0.50 × 0.5^2 = 0.125. Confidence = max = 0.5.
            const old = await ok('blue_lead', 'POST', '/detection-lifecycle/validations', { technique_id: techniqueId, asset_id: edr.id, outcome: 'alerted', validated_at: new Date(now - 180 * day).toISOString(), reason: 'Purple exercise 2026-06' }, 201);
            expect(old).to.include({ source: 'manual', test_id: null, status: 'valid', reason: 'Purple exercise 2026-06' });
            const older = await ok('admin', 'POST', '/detection-lifecycle/validations', { technique_id: techniqueId, asset_id: siem.id, outcome: 'logged', validated_at: new Date(now - 360 * day).toISOString(), reason: 'Audit' }, 201);

            const dashboard = async () => (await ok('viewer', 'GET', `/detection-lifecycle/dashboard?technique_id=${techniqueId}`));
            let board = await dashboard();
            expect(board).to.include({ half_life_days: 180, weights: { prevented: 100, alerted: 100, logged: 50 }, total: 1 });
            expect(board.formula).to.contain('0.5 ^ (age_days / half_life_days)');
            let item = board.items[0];
            expect(item).to.include({ technique_id: techniqueId, counted_validations: 2, validations_total: 2, needs_review: false });
            expect(item.confidence as number).to.be.about(0.5, 0.0001);
            const contribution = Object.fromEntries(item.validations.map((v: Record<string, any>) => [v.id, v]));
            expect(contribution[old.id].contribution as number).to.be.about(0.5, 0.0001);
            expect(contribution[older.id].contribution as number).to.be.about(0.125, 0.0001);
            expect(contribution[older.id].age_days as number).to.be.about(360, 0.01);

            // A technique proven 14 months ago (425 days), prevented: 0.5^(425/180) = 0.25 × 0.5^0.3611 = 0.25 × 0.7786 = 0.1946
            const stale = await uniqueTechnique(context.knex);
            await ok('blue_lead', 'POST', '/detection-lifecycle/validations', { technique_id: stale, asset_id: edr.id, outcome: 'prevented', validated_at: new Date(now - 425 * day).toISOString(), reason: 'Last year' }, 201);
            expect((await ok('viewer', 'GET', `/detection-lifecycle/dashboard?technique_id=${stale}`)).items[0].confidence as number).to.be.about(0.1946, 0.0001);
            expect(decayedConfidence('prevented', new Date(now - 425 * day), new Date(now), { half_life_days: 180, weights: { prevented: 100, alerted: 100, logged: 50 } }) as number).to.be.about(0.1946, 0.0001);

            // A half-life set by an admin: 90 days makes the 180-day alert 0.25 and the 360-day log 0.5 × 0.0625 = 0.03125
            await ok('admin', 'PUT', '/system/settings/detection.half_life_days', { value: 90 });
            try {
                board = await dashboard();
                expect(board.half_life_days).to.equal(90);
                expect(board.items[0].confidence as number).to.be.about(0.25, 0.0001);
                const service = await context.services.detection.confidence({ id: null, role: 'system' }, [techniqueId]);
                expect(service.get(techniqueId)!.confidence as number).to.be.about(0.25, 0.0001);
            }
            finally {
                await request('admin', 'DELETE', '/system/settings/detection.half_life_days');
            }

            // Invalidating the EDR's proof: it counts 0, the technique needs review; the SIEM's older log still counts 0.125
            const invalidated = await ok('blue_lead', 'POST', `/detection-lifecycle/validations/${old.id}/invalidate`, { reason: 'EDR policy rolled back' });
            expect(invalidated).to.include({ status: 'invalidated', invalidation_reason: 'EDR policy rolled back', invalidated_by: context.users.blue_lead.id });
            expect(json(await request('blue_lead', 'POST', `/detection-lifecycle/validations/${old.id}/invalidate`, { reason: 'again' })).code).to.equal('validation_already_invalidated');
            board = await dashboard();
            item = board.items[0];
            expect(item.needs_review).to.be.true();
            expect(item.confidence as number).to.be.about(0.125, 0.0001);
            expect(item.validations.find((v: { id: string }) => v.id === old.id)).to.include({ counted: false, contribution: 0 });
            expect((await context.knex('techniques').where('mitre_id', techniqueId).first()).review_reason).to.equal('Detection validation invalidated: EDR policy rolled back');

            // Both gone: zero
            await ok('admin', 'POST', `/detection-lifecycle/validations/${older.id}/invalidate`, { reason: 'SIEM migrated' });
            expect((await dashboard()).items[0]).to.include({ confidence: 0, counted_validations: 0 });
            expect((await context.services.detection.confidence({ id: null, role: 'system' }, [techniqueId])).has(techniqueId)).to.be.false();
        });

        it('voids an asset\'s older proofs of a technique once one of its validations is invalidated, not its newer ones', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const edr = await newAsset();
            const now = Date.now();
            const a = await ok('admin', 'POST', '/detection-lifecycle/validations', { technique_id: techniqueId, asset_id: edr.id, outcome: 'alerted', validated_at: new Date(now - 360 * day).toISOString(), reason: 'a' }, 201);
            const b = await ok('admin', 'POST', '/detection-lifecycle/validations', { technique_id: techniqueId, asset_id: edr.id, outcome: 'logged', validated_at: new Date(now - 180 * day).toISOString(), reason: 'b' }, 201);
            // a: 1 × 0.25 = 0.25; b: 0.5 × 0.5 = 0.25. Invalidating b voids a as well (older, same asset): 0
            await ok('admin', 'POST', `/detection-lifecycle/validations/${b.id}/invalidate`, { reason: 'rule removed' });
            const board = await ok('viewer', 'GET', `/detection-lifecycle/dashboard?technique_id=${techniqueId}`);
            expect(board.items[0].confidence).to.equal(0);
            expect(board.items[0].validations.map((v: { id: string; counted: boolean }) => [v.id, v.counted])).to.equal([[b.id, false], [a.id, false]]);

            // A newer proof counts again: fresh alerted = 1.0
            await ok('admin', 'POST', '/detection-lifecycle/validations', { technique_id: techniqueId, asset_id: edr.id, outcome: 'alerted', reason: 'fixed and retested' }, 201);
            expect((await ok('viewer', 'GET', `/detection-lifecycle/dashboard?technique_id=${techniqueId}`)).items[0].confidence as number).to.be.about(1, 0.0001);
        });

        it('refuses bad validations and unknown ids, writing nothing', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const edr = await newAsset();
            const counted = await count('detection_validations');
            for (const [payload, field, status] of [
                [{ technique_id: techniqueId, asset_id: edr.id, outcome: 'alerted' }, 'reason', 400],
                [{ technique_id: techniqueId, asset_id: edr.id, outcome: 'not_detected', reason: 'x' }, 'outcome', 400],
                [{ technique_id: techniqueId, asset_id: edr.id, outcome: 'alerted', reason: 'x', validated_at: new Date(Date.now() + day).toISOString() }, 'validated_at', 400],
                [{ technique_id: 'T0000.998', asset_id: edr.id, outcome: 'alerted', reason: 'x' }, 'technique_id', 400],
                [{ technique_id: techniqueId, asset_id: Crypto.randomUUID(), outcome: 'alerted', reason: 'x' }, 'asset_id', 400]
            ] as const) {
                const res = await request('blue_lead', 'POST', '/detection-lifecycle/validations', payload);
                expect(res.statusCode, res.payload).to.equal(status);
                expect(res.payload).to.contain(field);
            }

            expect((await request('blue_lead', 'POST', `/detection-lifecycle/validations/${Crypto.randomUUID()}/invalidate`, { reason: 'x' })).statusCode).to.equal(404);
            expect((await request('blue_lead', 'POST', `/detection-lifecycle/validations/${Crypto.randomUUID()}/invalidate`, {})).statusCode).to.equal(400);
            expect((await request('viewer', 'GET', '/detection-lifecycle/dashboard?min_confidence=2')).statusCode).to.equal(400);
            expect((await request('viewer', 'GET', '/detection-lifecycle/validations?status=gone')).statusCode).to.equal(400);
            expect(await count('detection_validations')).to.equal(counted);
        });
    });

    describe('infrastructure changes and the revalidation queue', () => {

        it('records a change, marks the techniques it touches for review, and generates the queue once, with hand-computed priorities', async () => {

            const [covered, partial, untouched] = [await uniqueTechnique(context.knex), await uniqueTechnique(context.knex), await uniqueTechnique(context.knex)];
            await context.knex('techniques').where('mitre_id', covered).update({ impact: 5, coverage_status: 'covered', score: 90, needs_review: false });
            await context.knex('techniques').where('mitre_id', partial).update({ impact: null, coverage_status: 'partial', score: 40, needs_review: false });
            const platform = unique('Plat').replace(' ', '-');
            const edr = await newAsset({ platform });
            const siem = await newAsset({ type: 'siem', platform: 'Linux' });
            await ok('admin', 'POST', `/detection-lifecycle/assets/${edr.id}/techniques/${covered}`);
            await ok('admin', 'POST', `/detection-lifecycle/assets/${siem.id}/techniques/${partial}`);
            await ok('admin', 'POST', `/detection-lifecycle/assets/${siem.id}/techniques/${covered}`);

            const owner = await ok('blue_lead', 'POST', '/ownership/assignments', { technique_id: covered, user_id: context.users.blue_tech.id, role: 'detection_owner' }, 201);
            await ok('red_lead', 'POST', '/ownership/assignments', { technique_id: covered, team: 'Red team', role: 'red_owner' }, 201);
            await ok('blue_lead', 'POST', '/ownership/assets', { asset_id: siem.id, team: 'SOC', role: 'owner' }, 201);

            const changedAt = new Date(Date.now() - 3_600_000).toISOString();
            const change = await ok('blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 'SIEM migration', description: 'Moved to the new SIEM', changed_at: changedAt, asset_ids: [siem.id], platforms: [platform] }, 201);
            expect(change).to.include({ techniques_marked: 2, asset_ids: [siem.id], platforms: [platform], data_sources: [] });
            const flags = await context.knex('techniques').whereIn('mitre_id', [covered, partial, untouched]).orderBy('mitre_id').select('mitre_id', 'needs_review');
            expect(Object.fromEntries(flags.map((row) => [row.mitre_id, row.needs_review]))).to.equal({ [covered]: true, [partial]: true, [untouched]: false });
            expect((await ok('viewer', 'GET', `/detection-lifecycle/infrastructure-changes?asset_id=${siem.id}`)).items.map((item: { id: string }) => item.id)).to.equal([change.id]);

            const generated = await ok('blue_lead', 'POST', '/ownership/revalidation-queue/generate');
            const mine = generated.items.filter((item: { change_id: string }) => item.change_id === change.id);
            expect(mine.length).to.equal(2);
            const entry = (techniqueId: string) => mine.find((item: { technique_id: string }) => item.technique_id === techniqueId);

            // covered by the touched SIEM (asset beats platform): impact 5 × 20 × 1.0 = 100, owner the detection owner
            expect(entry(covered)).to.include({ asset_id: siem.id, matched_by: 'asset', matched_value: siem.name, priority: 100, owner_user_id: context.users.blue_tech.id, owner_team: null, status: 'open' });
            expect(entry(covered).priority_basis).to.equal('impact 5 × 20 × coverage covered (1)');
            expect(entry(covered).reason).to.contain('SIEM migration').and.to.contain(siem.name).and.to.contain(covered);
            // partial, impact unset (3): 3 × 20 × 0.75 = 45, owner the SIEM's owning team
            expect(entry(partial)).to.include({ priority: 45, owner_user_id: null, owner_team: 'SOC', matched_by: 'asset' });
            expect(owner.role).to.equal('detection_owner');

            // The owner is notified of the new entry, once; the team-owned entry goes to the active blue leads
            expect(entry(covered).notify_user_ids).to.equal([context.users.blue_tech.id]);
            expect(entry(partial).notify_user_ids).to.include(context.users.blue_lead.id);
            expect(entry(partial).notify_user_ids).to.not.include(context.users.blue_tech.id);
            const notified = async (entryId: string) => await context.knex('notifications').where({ entity_type: 'revalidation_entry', entity_id: entryId, type: 'revalidation.required' }).select('user_id', 'title', 'body');
            const ownerNotes = await notified(entry(covered).id);
            expect(ownerNotes.map((note) => note.user_id)).to.equal([context.users.blue_tech.id]);
            expect(ownerNotes[0].title).to.equal(`Retest ${covered}: an infrastructure change may have broken its detection (priority 100)`);
            expect(ownerNotes[0].body).to.equal(`${entry(covered).reason}. The entry closes itself when a test of ${covered} is validated after the change.`);
            // Each lead named is notified unless their preferences switch it off (leads of other scripts may have)
            const teamNotes = await notified(entry(partial).id);
            const named = await context.knex('users').whereIn('id', entry(partial).notify_user_ids).select('id', 'preferences');
            const wanting = named.filter((user) => wantsInApp(user.preferences?.notifications, 'revalidation.required')).map((user) => user.id);
            expect(teamNotes.map((note) => note.user_id).sort()).to.equal(wanting.sort());
            expect(teamNotes[0].body).to.contain('Its owner is the team SOC: pass it on.');
            expect(Number(generated.notified)).to.be.at.least(1 + teamNotes.length);
            const inbox = await ok('blue_tech', 'GET', '/notifications?type=revalidation.required');
            expect(inbox.items.filter((item: { entity_id: string }) => item.entity_id === entry(covered).id).length).to.equal(1);

            // Idempotent: no entry and no notification the second time
            const again = await ok('admin', 'POST', '/ownership/revalidation-queue/generate');
            expect(again.items.filter((item: { change_id: string }) => item.change_id === change.id)).to.equal([]);
            expect((await notified(entry(covered).id)).length).to.equal(1);
            expect((await notified(entry(partial).id)).length).to.equal(teamNotes.length);
            const queue = await ok('blue_lead', 'GET', `/ownership/revalidation-queue?change_id=${change.id}`);
            expect(queue.items.map((item: { technique_id: string }) => item.technique_id)).to.equal([covered, partial]);       // priority first

            // A validated test of the technique after the change closes its entry
            const test = await validatedTest(covered, [{ tool: 'EDR', outcome: 'alerted', detected_at: new Date().toISOString() }]);
            const closed = await ok('blue_lead', 'GET', `/ownership/revalidation-queue?change_id=${change.id}&status=closed`);
            expect(closed.items.map((item: Record<string, unknown>) => [item.technique_id, item.closed_by_test_id])).to.equal([[covered, test.id]]);
        });

        it('prioritises by the stored risk where the technique has a risk profile (hand-computed), else by the fallback', async () => {

            const [profiled, unprofiled] = [await uniqueTechnique(context.knex), await uniqueTechnique(context.knex)];
            await context.knex('techniques').whereIn('mitre_id', [profiled, unprofiled]).update({ impact: 5, coverage_status: 'partial', score: 20, needs_review: false });
            // The risk of docs/posture.md: likelihood 3.4 (seven tracked actors) × impact 5 × (1 − 20/100) = 13.6
            const risk = riskOf(3.4, 5, 20);
            expect(risk).to.equal(13.6);
            await context.knex('risk_profiles').insert({ technique_id: profiled, domain: 'enterprise-attack', is_subtechnique: false, coverage_status: 'partial', outcome: 'logged', validated_at: new Date(), decay: 0.5, own_score: 20, score: 20, actor_count: 7, likelihood: 3.4, impact: 5, impact_source: 'technique', risk, band: bandOf(risk), reason: 'detection test', computed_at: new Date() });
            const siem = await newAsset({ type: 'siem' });
            await ok('admin', 'POST', `/detection-lifecycle/assets/${siem.id}/techniques/${profiled}`);
            await ok('admin', 'POST', `/detection-lifecycle/assets/${siem.id}/techniques/${unprofiled}`);
            const change = await ok('blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 'SIEM upgrade', description: 'New SIEM version', changed_at: new Date().toISOString(), asset_ids: [siem.id] }, 201);
            try {
                await ok('blue_lead', 'POST', '/ownership/revalidation-queue/generate');
                const queue = await ok('blue_lead', 'GET', `/ownership/revalidation-queue?change_id=${change.id}`);
                const by = Object.fromEntries(queue.items.map((item: Record<string, any>) => [item.technique_id, item]));
                // 13.6 × 4 = 54.4
                expect(by[profiled]).to.include({ priority: 54.4, priority_basis: 'risk 13.6 of 25 (likelihood 3.4 × impact 5 × (1 − score 20/100)) × 4' });
                // no risk profile yet: impact 5 × 20 × partial 0.75 = 75
                expect(by[unprofiled]).to.include({ priority: 75, priority_basis: 'impact 5 × 20 × coverage partial (0.75)' });
                expect(queue.items.map((item: { technique_id: string }) => item.technique_id)).to.equal([unprofiled, profiled]);
            }
            finally {
                await context.knex('risk_profiles').where('technique_id', profiled).delete();
            }
        });

        it('matches a touched platform and a touched data source, and explains each entry', async () => {

            const [viaPlatform, viaSource] = [await uniqueTechnique(context.knex), await uniqueTechnique(context.knex)];
            const platform = unique('Plat').replace(' ', '-');
            const edr = await newAsset({ platform });
            await ok('admin', 'POST', `/detection-lifecycle/assets/${edr.id}/techniques/${viaPlatform}`);

            const dsId = `DS${Crypto.randomInt(1000, 9999)}`;
            const [ds] = await context.knex('data_sources').insert({ stix_id: `x-mitre-data-source--${Crypto.randomUUID()}`, mitre_id: dsId, domain: 'enterprise-attack', name: 'Process' }).returning('id');
            const [dc] = await context.knex('data_components').insert({ stix_id: `x-mitre-data-component--${Crypto.randomUUID()}`, domain: 'enterprise-attack', name: 'Process Creation', data_source_id: ds.id }).returning('id');
            await context.knex('technique_data_components').insert({ technique_id: viaSource, data_component_id: dc.id, source: 'legacy' });
            // Only techniques with a proof or an asset count for a data source: viaSource gets a validation
            await ok('admin', 'POST', '/detection-lifecycle/validations', { technique_id: viaSource, asset_id: edr.id, outcome: 'logged', validated_at: new Date(Date.now() - 2 * day).toISOString(), reason: 'x' }, 201);
            await context.knex('detection_asset_techniques').where({ asset_id: edr.id, technique_id: viaSource }).delete();

            const change = await ok('blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 'Log pipeline', description: 'Sysmon config replaced', changed_at: new Date().toISOString(), platforms: [platform], data_sources: [dsId] }, 201);
            await ok('blue_lead', 'POST', '/ownership/revalidation-queue/generate');
            const queue = await ok('blue_lead', 'GET', `/ownership/revalidation-queue?change_id=${change.id}`);
            const by = Object.fromEntries(queue.items.map((item: Record<string, any>) => [item.technique_id, item]));
            expect(by[viaPlatform]).to.include({ matched_by: 'platform', matched_value: platform, asset_id: edr.id });
            expect(by[viaPlatform].reason).to.contain(`the platform ${platform} of the asset ${edr.name}`);
            expect(by[viaSource]).to.include({ matched_by: 'data_source', matched_value: `${dsId} Process`, asset_id: null });
            // untested, impact 3: 3 × 20 × 0.25 = 15
            expect(by[viaSource].priority).to.equal(15);
        });

        it('notifies the blue leads of an entry whose owner is unknown or inactive, honouring preferences, and writes no entry nor notification when refused', async () => {

            const [orphan, stale] = [await uniqueTechnique(context.knex), await uniqueTechnique(context.knex)];
            const lead = await context.createUser('blue_lead');
            const muted = await context.createUser('blue_lead');
            await context.knex('users').where('id', muted.id).update({ preferences: { notifications: { events: { 'revalidation.required': { in_app: false } } } } });
            const leaver = await context.createUser('blue_tech');
            const asset = await newAsset({ owner_id: leaver.id });
            await ok('admin', 'POST', `/detection-lifecycle/assets/${asset.id}/techniques/${orphan}`);
            await ok('admin', 'POST', `/detection-lifecycle/assets/${asset.id}/techniques/${stale}`);
            await ok('blue_lead', 'POST', '/ownership/assignments', { technique_id: stale, user_id: leaver.id, role: 'detection_owner' }, 201);
            // The asset's owner_id is the leaver too: deactivated, neither is notified
            await context.knex('users').where('id', leaver.id).update({ is_active: false });
            await context.knex('detection_assets').where('id', asset.id).update({ owner_id: null });

            const change = await ok('blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 'EDR policy', description: 'Policy v2', changed_at: new Date().toISOString(), asset_ids: [asset.id] }, 201);

            // Refused (a viewer may not generate): nothing written
            expect((await request('viewer', 'POST', '/ownership/revalidation-queue/generate')).statusCode).to.equal(403);
            expect(Number((await context.knex('revalidation_queue').where('change_id', change.id).count('* as n').first())!.n)).to.equal(0);

            await ok('admin', 'POST', '/ownership/revalidation-queue/generate');
            const queue = await ok('blue_lead', 'GET', `/ownership/revalidation-queue?change_id=${change.id}`);
            const by = Object.fromEntries(queue.items.map((item: Record<string, any>) => [item.technique_id, item]));
            expect(by[orphan]).to.include({ owner_user_id: null, owner_team: null });
            expect(by[stale]).to.include({ owner_user_id: leaver.id });
            for (const item of [by[orphan], by[stale]]) {
                expect(item.notify_user_ids).to.include([lead.id, muted.id]);
                expect(item.notify_user_ids).to.not.include(leaver.id);
            }

            const notes = await context.knex('notifications').whereIn('entity_id', [by[orphan].id, by[stale].id]).where('type', 'revalidation.required').select('user_id', 'entity_id', 'body');
            const mine = (userId: string) => notes.filter((note) => note.user_id === userId);
            expect(mine(lead.id).length).to.equal(2);
            expect(mine(muted.id)).to.equal([]);               // switched off in the preferences
            expect(mine(leaver.id)).to.equal([]);
            expect(mine(lead.id).find((note) => note.entity_id === by[orphan].id)!.body).to.contain('No owner is recorded for it: assign one');
            expect(mine(lead.id).find((note) => note.entity_id === by[stale].id)!.body).to.contain('Its owner\'s account is inactive');
        });

        it('refuses bad changes and ownership input, writing nothing', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const counted = [await count('infrastructure_changes'), await count('technique_assignments'), await count('asset_ownerships')];
            const refusals: [Role, string, string, object | undefined, number, string][] = [
                ['blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 't', description: 'd', changed_at: new Date().toISOString() }, 400, 'asset'],
                ['blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 't', description: 'd', changed_at: new Date().toISOString(), asset_ids: [] }, 400, 'at least one'],
                ['blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 't', description: 'd', changed_at: new Date().toISOString(), asset_ids: [Crypto.randomUUID()] }, 400, 'asset_ids'],
                ['blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 't', description: 'd', changed_at: new Date().toISOString(), data_sources: ['DS0001x'] }, 400, 'data_sources'],
                ['blue_lead', 'POST', '/detection-lifecycle/infrastructure-changes', { title: 't', changed_at: new Date().toISOString(), platforms: ['Linux'] }, 400, 'description'],
                ['red_lead', 'POST', '/ownership/assignments', { technique_id: techniqueId, role: 'detection_owner' }, 400, 'user_id'],
                ['red_lead', 'POST', '/ownership/assignments', { technique_id: techniqueId, role: 'detection_owner', user_id: context.users.viewer.id, team: 'x' }, 400, 'team'],
                ['red_lead', 'POST', '/ownership/assignments', { technique_id: 'T0000.997', role: 'detection_owner', team: 'x' }, 400, 'technique_id'],
                ['red_lead', 'POST', '/ownership/assignments', { technique_id: techniqueId, role: 'boss', team: 'x' }, 400, 'role'],
                ['red_lead', 'POST', '/ownership/assignments', { technique_id: techniqueId, role: 'reviewer', user_id: Crypto.randomUUID() }, 400, 'user_id'],
                ['blue_lead', 'POST', '/ownership/assets', { asset_id: Crypto.randomUUID(), team: 'SOC' }, 400, 'asset_id'],
                ['blue_lead', 'PATCH', `/ownership/assignments/${Crypto.randomUUID()}`, { role: 'reviewer' }, 404, 'not found'],
                ['blue_lead', 'DELETE', `/ownership/assignments/${Crypto.randomUUID()}`, undefined, 404, 'not found'],
                ['blue_lead', 'POST', '/ownership/assets', { asset_id: Crypto.randomUUID(), team: 'SOC', role: 'boss' }, 400, 'role'],
                ['blue_lead', 'GET', '/ownership/assignments?role=boss', undefined, 400, 'role'],
                ['blue_lead', 'GET', '/ownership/assets?asset_id=bad', undefined, 400, 'asset_id'],
                ['blue_lead', 'GET', '/ownership/revalidation-queue?status=gone', undefined, 400, 'status'],
                ['blue_lead', 'GET', '/ownership/revalidation-queue?change_id=bad', undefined, 400, 'change_id'],
                ['viewer', 'GET', '/detection-lifecycle/infrastructure-changes?asset_id=bad', undefined, 400, 'asset_id'],
                ['viewer', 'GET', '/detection-lifecycle/detections?outcome=maybe', undefined, 400, 'outcome']
            ];

            for (const [role, method, url, payload, status, text] of refusals) {
                const res = await request(role, method, url, payload);
                expect(res.statusCode, `${url} ${JSON.stringify(payload)}: ${res.payload}`).to.equal(status);
                expect(res.payload).to.contain(text);
            }

            expect([await count('infrastructure_changes'), await count('technique_assignments'), await count('asset_ownerships')]).to.equal(counted);
        });

        it('updates, lists and removes assignments, and refuses a duplicate', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const created = await ok('blue_lead', 'POST', '/ownership/assignments', { technique_id: techniqueId, team: 'Detection engineering', role: 'detection_engineer', notes: 'Q1' }, 201);
            expect(json(await request('blue_lead', 'POST', '/ownership/assignments', { technique_id: techniqueId, team: 'Detection engineering', role: 'detection_engineer' })).code).to.equal('already_exists');
            const updated = await ok('red_lead', 'PATCH', `/ownership/assignments/${created.id}`, { user_id: context.users.blue_tech.id, role: 'detection_owner' });
            expect(updated).to.include({ user_id: context.users.blue_tech.id, team: null, role: 'detection_owner', notes: 'Q1' });
            expect((await ok('viewer', 'GET', `/ownership/assignments?technique_id=${techniqueId}`)).items).to.equal([updated]);
            await ok('admin', 'DELETE', `/ownership/assignments/${created.id}`, undefined, 204);
            expect((await request('admin', 'DELETE', `/ownership/assignments/${created.id}`)).statusCode).to.equal(404);

            const asset = await newAsset();
            const record = await ok('admin', 'POST', '/ownership/assets', { asset_id: asset.id, user_id: context.users.blue_lead.id, role: 'escalation' }, 201);
            expect((await ok('viewer', 'GET', `/ownership/assets?asset_id=${asset.id}`)).items).to.equal([record]);
        });
    });
});
