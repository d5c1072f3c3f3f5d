import type { Knex } from 'knex';

import { NotFoundError } from '../errors';
import type { Actor } from '../policy';

import type { CoverageStatus } from './coverage';
import { pageOfQuery, type ListQuery, type Page } from './lists';
import type { RiskConfig, RiskService } from './risk';
import { tacticImpacts, type Outcome, type OutcomeWeights } from './scoring';
import type { SettingsService } from './settings';


export interface ScoreConfigUpdate {
    weights?: Partial<OutcomeWeights>;
    half_life_days?: number;
    likelihood_saturation?: number;
}


export interface ScoreFilters extends ListQuery {
    domain?: string;
    tactic?: string;
    coverage_status?: CoverageStatus;
    subtechniques?: boolean;
}


export interface TechniqueScoreView {
    technique_id: string;
    name: string;
    domain: string;
    is_subtechnique: boolean;
    parent_id: string | null;
    tactics: string[];
    coverage_status: CoverageStatus;
    outcome: Outcome | null;
    validated_at: Date | null;
    decay: number | null;
    confidence: number;
    own_score: number | null;
    score: number | null;
    computed_at: Date;
}


const internals = {
    columns: ['rp.technique_id', 't.name', 'rp.domain', 'rp.is_subtechnique', 't.parent_id', 'rp.tactics', 'rp.coverage_status', 'rp.outcome', 'rp.validated_at', 'rp.decay', 'rp.confidence', 'rp.own_score', 'rp.score', 'rp.computed_at'],

    // The mean score of a set of risk_profiles rows, untested ones counting 0, one decimal
    aggregates: (knex: Knex) => [
        knex.raw('count(rp.technique_id)::integer as techniques'),
        knex.raw('count(rp.score)::integer as tested'),
        knex.raw('round(avg(coalesce(rp.score, 0))::numeric, 1)::float as score')
    ]
};


// /scores (docs/posture.md "Scores"): the stored per-technique scores of risk_profiles, averaged per tactic and
// overall; the configuration lives in the settings and a change recomputes at once.
export class ScoresService {

    constructor(private readonly deps: { knex: Knex; settings: SettingsService; risk: RiskService }) { }

    async config(actor: Actor): Promise<RiskConfig & { tactic_impacts: Record<string, number>; detection_confidence: string }> {

        return {
            ...await this.deps.risk.config(),
            tactic_impacts: { ...tacticImpacts },
            detection_confidence: 'technique_detection_confidence (docs/detection.md, settings detection.half_life_days and detection.weights) for a technique with detection validations (0 when none counts any more); factor 1 for a technique without any'
        };
    }

    // Each changed setting through the settings store (validated and audited there), then every score and risk again
    async updateConfig(actor: Actor, input: ScoreConfigUpdate) {

        const current = await this.deps.risk.config();
        if (input.weights) {
            await this.deps.settings.set(actor, 'scores.weights', { ...current.weights, ...input.weights });
        }

        if (input.half_life_days !== undefined) {
            await this.deps.settings.set(actor, 'scores.half_life_days', input.half_life_days);
        }

        if (input.likelihood_saturation !== undefined) {
            await this.deps.settings.set(actor, 'risk.likelihood_saturation', input.likelihood_saturation);
        }

        const recomputed = await this.deps.risk.recompute(actor);
        await this.deps.risk.riskChanged();
        return { ...await this.config(actor), recomputed };
    }

    // Overall and per tactic, over the top-level techniques of a domain (their scores roll up their sub-techniques)
    async overview(actor: Actor, filters: { domain: string }) {

        const [[overall], tactics] = await Promise.all([
            this.deps.knex('risk_profiles as rp').where('rp.domain', filters.domain).where('rp.is_subtechnique', false).select(...internals.aggregates(this.deps.knex), this.deps.knex.raw('max(rp.computed_at) as computed_at')),
            this.tacticQuery(filters.domain).orderBy('ta.matrix_order', 'asc').orderBy('ta.mitre_id', 'asc')
        ]);
        const { computed_at: computedAt, ...totals } = overall as { techniques: number; tested: number; score: number | null; computed_at: Date | null };
        return { domain: filters.domain, overall: { ...totals, score: totals.techniques ? totals.score : null }, tactics, computed_at: computedAt ?? null };
    }

    tactics(actor: Actor, filters: ListQuery & { domain: string }) {

        const filtered = this.tacticQuery(filters.domain);
        const sort = filters.sort ?? 'matrix_order';
        const items = filtered.clone().orderBy(sort === 'matrix_order' ? 'ta.matrix_order' : sort, filters.order ?? (sort === 'score' ? 'desc' : 'asc')).orderBy('ta.mitre_id', 'asc');
        return pageOfQuery(this.deps.knex, items, filtered, filters);
    }

    techniques(actor: Actor, filters: ScoreFilters): Promise<Page<TechniqueScoreView>> {

        const filtered = this.deps.knex('risk_profiles as rp').join('techniques as t', 't.mitre_id', 'rp.technique_id');
        if (filters.domain) {
            filtered.where('rp.domain', filters.domain);
        }

        if (filters.tactic) {
            filtered.whereRaw('? = any(rp.tactics)', [filters.tactic]);
        }

        if (filters.coverage_status) {
            filtered.where('rp.coverage_status', filters.coverage_status);
        }

        if (filters.subtechniques === false) {
            filtered.where('rp.is_subtechnique', false);
        }

        const items = filtered.clone().select(internals.columns).orderByRaw(`rp.${filters.sort ?? 'score'} ${filters.order ?? 'desc'} nulls last`).orderBy('rp.technique_id', 'asc');
        return pageOfQuery<TechniqueScoreView>(this.deps.knex, items, filtered, filters);
    }

    // One technique's score with its parts, and its sub-techniques' scores
    async technique(actor: Actor, techniqueId: string) {

        const row: TechniqueScoreView | undefined = await this.deps.knex('risk_profiles as rp').join('techniques as t', 't.mitre_id', 'rp.technique_id').where('rp.technique_id', techniqueId).first(internals.columns);
        if (!row) {
            throw new NotFoundError('Score', { technique_id: techniqueId });
        }

        const config = await this.deps.risk.config();
        const subtechniques: TechniqueScoreView[] = await this.deps.knex('risk_profiles as rp').join('techniques as t', 't.mitre_id', 'rp.technique_id').where('t.parent_id', techniqueId).orderBy('rp.technique_id').select(internals.columns);
        return { ...row, weight: row.outcome ? config.weights[row.outcome] : null, half_life_days: config.half_life_days, subtechniques };
    }

    private tacticQuery(domain: string) {

        return this.deps.knex('tactics as ta')
            .join('technique_tactics as tt', 'tt.tactic_id', 'ta.id')
            .join('risk_profiles as rp', (join) => join.on('rp.technique_id', 'tt.technique_id').andOn('rp.is_subtechnique', this.deps.knex.raw('false')))
            .where('ta.domain', domain).where('ta.revoked', false).where('ta.deprecated', false)
            .groupBy('ta.id')
            .select('ta.mitre_id as tactic_id', 'ta.name', 'ta.shortname', 'ta.domain', 'ta.matrix_order', ...internals.aggregates(this.deps.knex));
    }
}
