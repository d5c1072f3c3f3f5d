import type { Knex } from 'knex';

import type { Actor } from '../policy';

import type { EventsService } from './events';


export type CoverageStatus = 'untested' | 'not_covered' | 'partial' | 'covered';


// domain.md "Coverage": the latest validated test decides, by its detection outcome.
export const coverageOf = (outcome: string | null | undefined): CoverageStatus => {

    switch (outcome) {
        case 'prevented':
        case 'alerted':
            return 'covered';
        case 'logged':
            return 'partial';
        case 'not_detected':
            return 'not_covered';
        default:
            return 'untested';
    }
};


// domain.md "Scores and risk": the default outcome weights, kept here only. A technique's score is the weight of its
// latest validated outcome (null while untested). Decay and confidence come with the scores module.
export const outcomeWeights = { prevented: 100, alerted: 90, logged: 40, not_detected: 0 } as const;


export const scoreOf = (outcome: string | null | undefined): number | null => (outcome && outcome in outcomeWeights ? outcomeWeights[outcome as keyof typeof outcomeWeights] : null);


export interface CoverageFigure {
    coverage_status: CoverageStatus;
    score: number | null;
}


// The sub-technique roll-up of a parent (docs/attack.md): its own result when it has been tested itself; else from
// its active sub-techniques: untested when none is tested, covered when all are covered, not_covered when every
// tested one is not_covered, partial otherwise. The rolled-up score is the mean over all sub-techniques, untested
// ones counting 0, or null when none is tested.
export const rollUp = (own: CoverageFigure, subtechniques: CoverageFigure[]): CoverageFigure => {

    if (own.coverage_status !== 'untested' || !subtechniques.length) {
        return own;
    }

    const tested = subtechniques.filter((sub) => sub.coverage_status !== 'untested');
    if (!tested.length) {
        return { coverage_status: 'untested', score: null };
    }

    const score = Math.round(subtechniques.reduce((sum, sub) => sum + (sub.score ?? 0), 0) / subtechniques.length);
    if (tested.length === subtechniques.length && tested.every((sub) => sub.coverage_status === 'covered')) {
        return { coverage_status: 'covered', score };
    }

    if (tested.every((sub) => sub.coverage_status === 'not_covered')) {
        return { coverage_status: 'not_covered', score };
    }

    return { coverage_status: 'partial', score };
};


// The one place coverage is computed. Called inside the transaction that validates a test (or changes what coverage
// depends on), it updates the stored status of each technique and emits coverage.changed where it changed.
export class CoverageService {

    constructor(private readonly deps: { events: EventsService }) { }

    async recompute(trx: Knex.Transaction, actor: Actor, techniqueIds: string[]): Promise<void> {

        const ids = [...new Set(techniqueIds)];
        if (!ids.length) {
            return;
        }

        // Lock the techniques in a fixed order, so that two validations of tests on the same technique serialise
        const current = await trx('techniques').select('mitre_id', 'coverage_status').whereIn('mitre_id', ids).orderBy('mitre_id').forUpdate();

        // Latest validated test per technique whose outcome counts (not_applicable is no evidence either way)
        const latest = await trx('tests')
            .distinctOn('technique_id')
            .select('technique_id', 'id', 'detection_outcome', 'validated_at')
            .whereIn('technique_id', ids)
            .where('state', 'validated')
            .whereIn('detection_outcome', ['prevented', 'alerted', 'logged', 'not_detected'])
            .orderBy([{ column: 'technique_id' }, { column: 'validated_at', order: 'desc' }, { column: 'id', order: 'desc' }]);

        const byTechnique = new Map(latest.map((row: { technique_id: string }) => [row.technique_id, row]));
        const events = [];
        for (const technique of current as { mitre_id: string; coverage_status: CoverageStatus }[]) {
            const test = byTechnique.get(technique.mitre_id) as { id: string; detection_outcome: string; validated_at: Date } | undefined;
            const status = coverageOf(test?.detection_outcome);
            await trx('techniques').where('mitre_id', technique.mitre_id).update({
                coverage_status: status,
                latest_validated_test_id: test?.id ?? null,
                latest_validated_at: test?.validated_at ?? null,
                coverage_updated_at: trx.fn.now(),
                ...(test ? { needs_review: false, review_reason: null, review_requested_at: null, review_requested_by: null } : {})
            });

            if (status !== technique.coverage_status) {
                events.push({
                    type: 'coverage.changed' as const,
                    entity_type: 'technique',
                    entity_id: technique.mitre_id,
                    payload: { technique_id: technique.mitre_id, from: technique.coverage_status, to: status, test_id: test?.id ?? null }
                });
            }
        }

        await this.deps.events.emit(trx, actor, events);
    }
}
