import type { Knex } from 'knex';

import { LockKey } from '../locks';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import type { DomainEvent, EventsService } from './events';


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


export interface CoverageSettings {
    stalenessDays: number;              // COVERAGE_STALENESS_DAYS: a latest validation older than this needs review
}


export interface CoverageFigure {
    coverage_status: CoverageStatus;
    score: number | null;
}


// The one rule for a technique's coverage (docs/attack.md "Coverage and the sub-technique roll-up"). A technique
// without active sub-techniques has its own figure. A parent's figure combines its own result with its active
// sub-techniques': a sub-technique not tested on its own takes the parent's own result (a test of the parent stands
// for it), and the parent's own result counts as one more member when it has one. Then: untested when no member is
// tested, covered when every member is covered, not_covered when every tested member is not_covered, else partial.
// The score is the mean of the members' scores, untested ones counting 0, or null when none is tested.
export const rollUp = (own: CoverageFigure, subtechniques: CoverageFigure[]): CoverageFigure => {

    if (!subtechniques.length) {
        return own;
    }

    const members = [...own.coverage_status === 'untested' ? [] : [own], ...subtechniques.map((sub) => (sub.coverage_status === 'untested' ? own : sub))];
    const tested = members.filter((member) => member.coverage_status !== 'untested');
    if (!tested.length) {
        return { coverage_status: 'untested', score: null };
    }

    const score = Math.round(members.reduce((sum, member) => sum + (member.score ?? 0), 0) / members.length);
    if (tested.length === members.length && tested.every((member) => member.coverage_status === 'covered')) {
        return { coverage_status: 'covered', score };
    }

    if (tested.every((member) => member.coverage_status === 'not_covered')) {
        return { coverage_status: 'not_covered', score };
    }

    return { coverage_status: 'partial', score };
};


interface StoredCoverage {
    mitre_id: string;
    parent_id: string | null;
    revoked: boolean;
    deprecated: boolean;
    own_coverage_status: CoverageStatus;
    own_score: number | null;
    coverage_status: CoverageStatus;
    score: number | null;
    latest_validated_test_id: string | null;
}


const internals = {
    columns: ['mitre_id', 'parent_id', 'revoked', 'deprecated', 'own_coverage_status', 'own_score', 'coverage_status', 'score', 'latest_validated_test_id'],

    own: (row: StoredCoverage): CoverageFigure => ({ coverage_status: row.own_coverage_status, score: row.own_score })
};


// The one place coverage is computed and stored: each technique's own figure from its validated tests, and the figure
// every route reads (coverage_status, score), rolled up for parents. Runs inside the transaction of the change.
export class CoverageService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; events: EventsService; settings: CoverageSettings }) { }

    // After a validation (or a change of what coverage depends on) on these techniques: their own figures from their
    // tests, then the stored figure of each and of their parents.
    async recompute(trx: Knex.Transaction, actor: Actor, techniqueIds: string[]): Promise<void> {

        const ids = [...new Set(techniqueIds)];
        if (!ids.length) {
            return;
        }

        // An import rewriting the knowledge base holds this exclusively; validations share it
        await trx.raw('select pg_advisory_xact_lock_shared(?)', [LockKey.coverage]);

        // Lock the techniques and their parents in a fixed order (a parent sorts before its sub-techniques), so
        // that validations of sub-techniques of one parent serialise
        const parents = await trx('techniques').whereIn('mitre_id', ids).whereNotNull('parent_id').distinct().pluck('parent_id') as string[];
        const scope = [...new Set([...ids, ...parents])].sort();
        const locked: { mitre_id: string; latest_validated_test_id: string | null }[] = await trx('techniques').whereIn('mitre_id', scope).orderBy('mitre_id').forUpdate().select('mitre_id', 'latest_validated_test_id');

        // Latest validated test per technique whose outcome counts (not_applicable is no evidence either way)
        const latest = await trx('tests')
            .distinctOn('technique_id')
            .select('technique_id', 'id', 'detection_outcome', 'validated_at')
            .whereIn('technique_id', ids)
            .where('state', 'validated')
            .whereIn('detection_outcome', ['prevented', 'alerted', 'logged', 'not_detected'])
            .orderBy([{ column: 'technique_id' }, { column: 'validated_at', order: 'desc' }, { column: 'id', order: 'desc' }]);

        const byTechnique = new Map((latest as { technique_id: string; id: string; detection_outcome: string; validated_at: Date }[]).map((row) => [row.technique_id, row]));
        const wanted = new Set(ids);
        for (const technique of locked.filter((row) => wanted.has(row.mitre_id))) {
            const test = byTechnique.get(technique.mitre_id);
            if ((test?.id ?? null) === technique.latest_validated_test_id) {
                continue;
            }

            const status = coverageOf(test?.detection_outcome);
            await trx('techniques').where('mitre_id', technique.mitre_id).update({
                own_coverage_status: status,
                own_score: scoreOf(test?.detection_outcome),
                latest_validated_test_id: test?.id ?? null,
                latest_validated_at: test?.validated_at ?? null,
                coverage_updated_at: trx.fn.now()
            });
        }

        // A validation newer than the request for review answers it; an older result (or no new one, such as a
        // not_applicable test) leaves the flag as it is. Clearing resets every review field.
        await trx('techniques').whereIn('mitre_id', ids).where('needs_review', true).whereRaw('latest_validated_at > review_requested_at')
            .update({ needs_review: false, review_reason: null, review_requested_at: null, review_requested_by: null, updated_at: trx.fn.now() });

        await this.store(trx, actor, scope);
    }

    // The stored figure of every technique from the own figures already stored: after an import, which may add, move,
    // revoke or deprecate sub-techniques. Answers how many statuses changed.
    async refresh(trx: Knex.Transaction, actor: Actor): Promise<number> {

        await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.coverage]);
        return await this.store(trx, actor, null);
    }

    // The daily staleness rule (domain.md): an active technique whose latest validation is older than the staleness
    // period needs review, asked by the system (review_requested_by null) with the date in the reason. A technique
    // already flagged keeps its own reason. Answers the techniques it flagged.
    async markStale(actor: Actor, now = new Date()): Promise<string[]> {

        const days = this.deps.settings.stalenessDays;
        const cutoff = new Date(now.getTime() - days * 86_400_000);
        return await this.deps.knex.transaction(async (trx) => {

            const rows: { mitre_id: string }[] = await trx('techniques')
                .where('needs_review', false).where('revoked', false).where('deprecated', false).where('latest_validated_at', '<', cutoff)
                .update({
                    needs_review: true,
                    review_reason: trx.raw(`'Latest validation on ' || to_char(latest_validated_at at time zone 'UTC', 'YYYY-MM-DD') || ' is older than the staleness period of ' || ?::integer || ' days'`, [days]),
                    review_requested_at: now,
                    review_requested_by: null,
                    updated_at: trx.fn.now()
                }, ['mitre_id']);

            const ids = rows.map((row) => row.mitre_id).sort();
            if (ids.length) {
                await this.deps.audit.record(trx, actor, { action: 'technique.review_stale', entity_type: 'technique', details: { staleness_days: days, count: ids.length, technique_ids: ids.slice(0, 1000) } });
            }

            return ids;
        });
    }

    // rollUp over the stored own figures; writes and announces only the figures that changed
    private async store(trx: Knex.Transaction, actor: Actor, scope: string[] | null): Promise<number> {

        const rows: StoredCoverage[] = scope ?
            await trx('techniques').select(internals.columns).whereIn('mitre_id', scope).orWhereIn('parent_id', scope) :
            await trx('techniques').select(internals.columns);

        const subsOf = new Map<string, CoverageFigure[]>();
        for (const row of rows) {
            if (row.parent_id && !row.revoked && !row.deprecated) {
                subsOf.set(row.parent_id, [...subsOf.get(row.parent_id) ?? [], internals.own(row)]);
            }
        }

        const wanted = scope ? new Set(scope) : null;
        const events: DomainEvent[] = [];
        for (const row of rows) {
            if (wanted && !wanted.has(row.mitre_id)) {
                continue;
            }

            const figure = rollUp(internals.own(row), subsOf.get(row.mitre_id) ?? []);
            if (figure.coverage_status === row.coverage_status && figure.score === row.score) {
                continue;
            }

            await trx('techniques').where('mitre_id', row.mitre_id).update({ coverage_status: figure.coverage_status, score: figure.score, coverage_updated_at: trx.fn.now() });
            if (figure.coverage_status !== row.coverage_status) {
                events.push({
                    type: 'coverage.changed',
                    entity_type: 'technique',
                    entity_id: row.mitre_id,
                    payload: { technique_id: row.mitre_id, from: row.coverage_status, to: figure.coverage_status, score: figure.score, own_coverage_status: row.own_coverage_status, test_id: row.latest_validated_test_id }
                });
            }
        }

        await this.deps.events.emit(trx, actor, events);
        return events.length;
    }
}
