import type { Knex } from 'knex';

import { ValidationError } from '../errors';
import type { Test } from '../models';
import type { Actor } from '../policy';

import type { Detection } from './test-lifecycle';


// What the tests module does for detection engineering inside its own transactions (docs/detection.md): the
// detections of a test as rows, and the validations a validated test proves.

const internals = {
    detected: ['prevented', 'alerted', 'logged'],
    strength: ['prevented', 'alerted', 'logged', 'not_detected', 'not_applicable']
};


// The named assets and rules must exist: a 400 naming each offending field, before anything is written
export const checkDetectionReferences = async (trx: Knex.Transaction | Knex, detections: readonly Detection[]): Promise<void> => {

    const assetIds = [...new Set(detections.map((item) => item.asset_id).filter((id): id is string => Boolean(id)))];
    const ruleIds = [...new Set(detections.flatMap((item) => item.rule_ids ?? []))];
    const assets = new Set(assetIds.length ? await trx('detection_assets').whereIn('id', assetIds).pluck('id') : []);
    const rules = new Set(ruleIds.length ? await trx('detection_rules').whereIn('id', ruleIds).pluck('id') : []);
    const fields = detections.flatMap((item, index) => [
        ...(item.asset_id && !assets.has(item.asset_id) ? [`detections.${index}.asset_id`] : []),
        ...((item.rule_ids ?? []).some((id) => !rules.has(id)) ? [`detections.${index}.rule_ids`] : [])
    ]);

    if (fields.length) {
        throw new ValidationError('A detection names a detection asset or rule that does not exist: create it first (/detection-lifecycle/assets, /detection-rules)', fields, 'unknown_detection_reference');
    }
};


// The test's detections become its rows (replaced as a whole, as the blue side edits its list)
export const writeTestDetections = async (trx: Knex.Transaction, testId: string, detections: readonly Detection[]): Promise<void> => {

    await trx('test_detections').where('test_id', testId).delete();
    if (!detections.length) {
        return;
    }

    await trx('test_detections').insert(detections.map((item, position) => ({
        test_id: testId,
        position,
        asset_id: item.asset_id ?? null,
        tool: item.tool ?? null,
        outcome: item.outcome,
        detected_at: item.detected_at ?? null,
        rule_ids: item.rule_ids ?? [],
        alert_reference: item.alert_reference ?? null,
        notes: item.notes ?? null
    })));
};


// A validated test proves, as of its validation, that each asset which detected it (prevented, alerted or logged)
// covers its technique: one validation per asset, with that asset's strongest outcome; the asset is linked to the
// technique; the open revalidation entries of the technique whose change came before are closed by this test.
export const recordTestValidations = async (trx: Knex.Transaction, actor: Actor, test: Test): Promise<void> => {

    const rows = await trx('test_detections').where('test_id', test.id).whereNotNull('asset_id').whereIn('outcome', internals.detected).select('asset_id', 'outcome') as { asset_id: string; outcome: string }[];
    const strongest = new Map<string, string>();
    for (const row of rows) {
        const current = strongest.get(row.asset_id);
        if (!current || internals.strength.indexOf(row.outcome) < internals.strength.indexOf(current)) {
            strongest.set(row.asset_id, row.outcome);
        }
    }

    if (strongest.size) {
        await trx('detection_validations')
            .insert([...strongest].map(([assetId, outcome]) => ({ technique_id: test.technique_id, asset_id: assetId, test_id: test.id, source: 'test', outcome, validated_at: test.validated_at, created_by: actor.id })))
            .onConflict(['test_id', 'asset_id']).ignore();

        await trx('detection_asset_techniques')
            .insert([...strongest.keys()].map((assetId) => ({ asset_id: assetId, technique_id: test.technique_id, created_by: actor.id })))
            .onConflict(['asset_id', 'technique_id']).ignore();
    }

    await trx('revalidation_queue')
        .where({ technique_id: test.technique_id, status: 'open' })
        .whereIn('change_id', trx('infrastructure_changes').where('changed_at', '<', test.validated_at!).select('id'))
        .update({ status: 'closed', closed_at: test.validated_at, closed_by_test_id: test.id, updated_at: trx.fn.now() });
};
