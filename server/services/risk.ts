import type { Knex } from 'knex';

import { NotFoundError } from '../errors';
import type { Queue } from '../jobs';
import { LockKey } from '../locks';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { withTransaction, type ChangeOptions } from './changes';
import type { CoverageStatus } from './coverage';
import { confidenceSettingsOf, confidenceSource } from './detection';
import { pageOfQuery, type ListQuery, type Page } from './lists';
import { bandOf, impactOf, likelihoodOf, osintPrevalence, reasonOf, riskOf, scoreTechniques, type Outcome, type RiskBand, type ScoreConfig } from './scoring';
import type { TechniqueScoreView } from './scores';
import type { SettingsService } from './settings';


export interface RiskConfig extends ScoreConfig {
    likelihood_saturation: number;
}


export interface RiskFilters extends ListQuery {
    domain?: string;
    band?: RiskBand;
    coverage_status?: CoverageStatus;
    tactic?: string;
    subtechniques?: boolean;
}


export interface RiskProfileView extends TechniqueScoreView {
    actor_count: number;
    likelihood: number;
    impact: number;
    impact_source: string;
    risk: number;
    band: RiskBand;
    reason: string;
}


interface Facts {
    mitre_id: string;
    parent_id: string | null;
    is_subtechnique: boolean;
    domain: string;
    impact: number | null;
    own_coverage_status: CoverageStatus;
    coverage_status: CoverageStatus;
    outcome: Outcome | null;
    validated_at: Date | null;
    detection_confidence: number | null;
}


const internals = {
    statuses: ['untested', 'not_covered', 'partial', 'covered'] as CoverageStatus[],
    bands: ['critical', 'high', 'medium', 'low'] as RiskBand[],

    // A covered technique whose decayed score fell below this is weak: recommended for retesting
    weakScore: 50,

    columns: ['rp.technique_id', 't.name', 'rp.domain', 'rp.is_subtechnique', 't.parent_id', 'rp.tactics', 'rp.coverage_status', 'rp.outcome', 'rp.validated_at', 'rp.own_score', 'rp.score', 'rp.decay', 'rp.confidence',
        'rp.actor_count', 'rp.likelihood', 'rp.impact', 'rp.impact_source', 'rp.risk', 'rp.band', 'rp.reason', 'rp.computed_at'],

    round: (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits,

    // Debounce of the recompute that coverage changes ask for: 5 s after the last change, at most a minute after the first
    debounce: { key: 'coverage', debounceMs: 5_000, maxWaitMs: 60_000 },
    alertsDebounce: { key: 'risk', debounceMs: 2_000, maxWaitMs: 30_000 }
};


// What the alerts' risk_threshold rule reads of risk (docs/alerts.md): the stored profiles (of some techniques, or all
// active ones) whose risk is above a value, highest first. The figures are those of the last recompute.
export interface TechniqueRisk {
    technique_id: string;
    risk: number;
    band: RiskBand;
    likelihood: number;
    impact: number;
    score: number | null;
}

export type RiskSource = (knex: Knex | Knex.Transaction, above: number, techniques: string[] | null) => Promise<TechniqueRisk[]>;

export const risksAbove: RiskSource = (knex, above, techniques) => knex('risk_profiles as rp')
    .join('techniques as t', 't.mitre_id', 'rp.technique_id')
    .where('rp.risk', '>', above).where('t.revoked', false).where('t.deprecated', false)
    .modify((query) => (techniques ? query.whereIn('rp.technique_id', techniques) : query))
    .select('rp.technique_id', 'rp.risk', 'rp.band', 'rp.likelihood', 'rp.impact', 'rp.score')
    .orderBy([{ column: 'rp.risk', order: 'desc' }, { column: 'rp.technique_id' }]);


// Risk per technique (docs/posture.md): likelihood x impact x (1 - score/100), stored in risk_profiles with the score by
// recompute() (the risk-recompute job, POST /risk/compute, a config or impact change), read by every route.
export class RiskService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; settings: SettingsService; queue: Queue }) { }

    async config(): Promise<RiskConfig> {

        const [weights, halfLife, saturation] = await Promise.all([
            this.deps.settings.get('scores.weights'),
            this.deps.settings.get('scores.half_life_days'),
            this.deps.settings.get('risk.likelihood_saturation')
        ]);

        return { weights: weights!, half_life_days: halfLife!, likelihood_saturation: saturation! };
    }

    // Every active technique's score and risk from the stored coverage: its latest validated test (one row per technique,
    // by id), its tactics, the tracked threat actors that use it (or one of its sub-techniques). One transaction under
    // an advisory lock, so that two recomputes serialise and readers see the old figures or the new, never a mix.
    async recompute(actor: Actor, options: ChangeOptions & { now?: Date } = {}): Promise<{ profiles: number; computed_at: Date }> {

        const [config, confidenceSettings] = await Promise.all([this.config(), confidenceSettingsOf(this.deps.settings)]);
        const now = options.now ?? new Date();
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.riskRecompute]);
            const facts: Facts[] = await trx('techniques as t')
                .leftJoin('tests as x', 'x.id', 't.latest_validated_test_id')
                .leftJoin(confidenceSource(trx, confidenceSettings, now).as('dc'), 'dc.technique_id', 't.mitre_id')
                .where('t.revoked', false).where('t.deprecated', false)
                .orderBy('t.mitre_id')
                .select('t.mitre_id', 't.parent_id', 't.is_subtechnique', 't.domain', 't.impact', 't.own_coverage_status', 't.coverage_status',
                    trx.raw(`case when x.detection_outcome in ('prevented', 'alerted', 'logged', 'not_detected') then x.detection_outcome end as outcome`),
                    't.latest_validated_at as validated_at',
                    // Detection confidence only where the technique has detection validations (docs/posture.md)
                    trx.raw('case when exists (select 1 from detection_validations dv where dv.technique_id = t.mitre_id) then coalesce(dc.confidence, 0) end::float8 as detection_confidence'));

            const tacticRows: { technique_id: string; shortname: string }[] = await trx('technique_tactics as tt').join('tactics as ta', 'ta.id', 'tt.tactic_id').select('tt.technique_id', 'ta.shortname');
            // osint (issue 14): the prevalence of every technique a feed reports, read once per recompute
            const prevalence = new Map((await trx('osint_technique_prevalence').select('technique_id', 'prevalence') as { technique_id: string; prevalence: number }[]).map((row) => [row.technique_id, row.prevalence]));
            const actorRows: { technique_id: string; threat_actor_id: string }[] = await trx('threat_actor_techniques as tat').join('threat_actors as a', 'a.id', 'tat.threat_actor_id')
                .where('a.tracked', true).where('a.revoked', false).where('a.deprecated', false).select('tat.technique_id', 'tat.threat_actor_id');

            const active = new Set(facts.map((row) => row.mitre_id));
            const parentOf = new Map(facts.map((row) => [row.mitre_id, row.parent_id]));
            const tactics = new Map<string, string[]>();
            for (const row of tacticRows) {
                tactics.set(row.technique_id, [...tactics.get(row.technique_id) ?? [], row.shortname]);
            }

            // A parent is used by the actors of its own and of its sub-techniques
            const actors = new Map<string, Set<string>>();
            for (const row of actorRows) {
                for (const id of [row.technique_id, parentOf.get(row.technique_id)]) {
                    if (id && active.has(id)) {
                        actors.set(id, (actors.get(id) ?? new Set()).add(row.threat_actor_id));
                    }
                }
            }

            const scores = scoreTechniques(facts.map((row) => ({ ...row, parent_id: row.parent_id && active.has(row.parent_id) ? row.parent_id : null })), config, now);
            const rows = facts.map((row) => {

                const score = scores.get(row.mitre_id)!;
                const techniqueTactics = [...new Set(tactics.get(row.mitre_id) ?? [])].sort();
                const actorCount = actors.get(row.mitre_id)?.size ?? 0;
                const likelihood = likelihoodOf(actorCount, config.likelihood_saturation, osintPrevalence(prevalence, row.mitre_id));
                const { impact, source } = impactOf(row.impact, techniqueTactics);
                const risk = riskOf(likelihood, impact, score.score);
                return {
                    technique_id: row.mitre_id,
                    domain: row.domain,
                    is_subtechnique: row.is_subtechnique,
                    tactics: techniqueTactics,
                    coverage_status: row.coverage_status,
                    outcome: row.outcome,
                    validated_at: row.validated_at,
                    decay: score.decay,
                    confidence: score.confidence,
                    own_score: score.own_score,
                    score: score.score,
                    actor_count: actorCount,
                    likelihood,
                    impact,
                    impact_source: source,
                    risk,
                    band: bandOf(risk),
                    reason: reasonOf({ coverage_status: row.coverage_status, outcome: row.outcome, validated_at: row.validated_at, score: score.score, actor_count: actorCount, likelihood, impact, impact_source: source, risk }),
                    computed_at: now
                };
            });

            for (let i = 0; i < rows.length; i += 500) {
                await trx('risk_profiles').insert(rows.slice(i, i + 500)).onConflict('technique_id').merge();
            }

            // Revoked or deprecated since the last run
            await trx('risk_profiles').whereNotIn('technique_id', trx('techniques').where('revoked', false).where('deprecated', false).select('mitre_id')).delete();
            await this.deps.audit.record(trx, actor, { action: 'risk.recompute', entity_type: 'risk_profile', details: { profiles: rows.length, ...config } });
            return { profiles: rows.length, computed_at: now };
        });
    }

    // POST /risk/compute: the worker recomputes (audited when it runs; the request is audited here)
    async requestCompute(actor: Actor): Promise<{ job_id: string; status: 'queued' }> {

        const jobId = await this.deps.queue.enqueue('risk-recompute', { reason: 'manual', requested_by: actor.id });
        await this.deps.audit.record(this.deps.knex, actor, { action: 'risk.compute_requested', entity_type: 'job', entity_id: jobId });
        return { job_id: jobId, status: 'queued' };
    }

    // After a recompute outside the worker (PATCH /scores/config, PATCH /risk/impact): the alert rules evaluated by the
    // worker on the new risks (risk_threshold reads them), one job for a burst of changes. The risk-recompute job
    // evaluates the risk_threshold rules itself (worker/jobs/risk.ts).
    async riskChanged(): Promise<string> {

        return await this.deps.queue.enqueueDebounced('alerts.evaluate', { reason: 'risk' }, internals.alertsDebounce);
    }

    // After a coverage change (the `risk` consumer): one recompute for a burst of changes
    async coverageChanged(): Promise<string> {

        return await this.deps.queue.enqueueDebounced('risk-recompute', { reason: 'coverage' }, internals.debounce);
    }

    // PATCH /risk/impact/{technique_id}: the technique's own impact (null: back to its tactics' default), then the
    // profiles again, in one transaction
    async setImpact(actor: Actor, techniqueId: string, impact: number | null): Promise<RiskProfileView> {

        await withTransaction(this.deps.knex, undefined, async (trx) => {

            const technique: { mitre_id: string; impact: number | null } | undefined = await trx('techniques').where('mitre_id', techniqueId).where('revoked', false).where('deprecated', false).forUpdate().first('mitre_id', 'impact');
            if (!technique) {
                throw new NotFoundError('Technique', { technique_id: techniqueId });
            }

            await trx('techniques').where('mitre_id', techniqueId).update({ impact, updated_at: trx.fn.now() });
            await this.deps.audit.record(trx, actor, { action: 'technique.impact', entity_type: 'technique', entity_id: techniqueId, details: { from: technique.impact, to: impact } });
            await this.recompute(actor, { trx });
        });

        await this.riskChanged();
        return await this.profile(actor, techniqueId);
    }

    async profile(actor: Actor, techniqueId: string): Promise<RiskProfileView> {

        const row = await this.base().where('rp.technique_id', techniqueId).first(internals.columns);
        if (!row) {
            throw new NotFoundError('Risk profile', { technique_id: techniqueId });
        }

        return row as RiskProfileView;
    }

    profiles(actor: Actor, filters: RiskFilters): Promise<Page<RiskProfileView>> {

        const filtered = this.filtered(filters);
        const sort = filters.sort ?? 'risk';
        const order = filters.order ?? 'desc';
        const items = filtered.clone().select(internals.columns).orderBy(`rp.${sort}`, order).orderBy('rp.technique_id', 'asc');
        return pageOfQuery<RiskProfileView>(this.deps.knex, items, filtered, filters);
    }

    // What to test next: untested, not covered, partial, or covered with a decayed score below 50, by risk
    recommendations(actor: Actor, filters: RiskFilters): Promise<Page<RiskProfileView>> {

        const filtered = this.filtered(filters).where((query) => query.whereNot('rp.coverage_status', 'covered').orWhere('rp.score', '<', internals.weakScore));
        const items = filtered.clone().select(internals.columns).orderBy('rp.risk', 'desc').orderBy('rp.technique_id', 'asc');
        return pageOfQuery<RiskProfileView>(this.deps.knex, items, filtered, filters);
    }

    // The N highest risks among the techniques not covered
    top(actor: Actor, filters: Pick<RiskFilters, 'domain' | 'subtechniques'> & { limit: number }): Promise<Page<RiskProfileView>> {

        const filtered = this.filtered(filters).whereNot('rp.coverage_status', 'covered');
        const items = filtered.clone().select(internals.columns).orderBy('rp.risk', 'desc').orderBy('rp.technique_id', 'asc');
        return pageOfQuery<RiskProfileView>(this.deps.knex, items, filtered, { limit: filters.limit, offset: 0 });
    }

    // Impact (rows) x coverage status (columns): how many techniques and how much risk in each cell. Top-level
    // techniques only by default (their figures roll up their sub-techniques).
    async matrix(actor: Actor, filters: Pick<RiskFilters, 'domain' | 'subtechniques'>) {

        const rows: { impact: number; coverage_status: CoverageStatus; techniques: string; risk: number }[] = await this.filtered(filters).clearSelect()
            .select('rp.impact', 'rp.coverage_status').count('* as techniques').sum('rp.risk as risk').groupBy('rp.impact', 'rp.coverage_status');

        const cells = new Map(rows.map((row) => [`${row.impact}/${row.coverage_status}`, row]));
        return {
            domain: filters.domain ?? null,
            coverage_statuses: internals.statuses,
            rows: [5, 4, 3, 2, 1].map((impact) => ({
                impact,
                cells: internals.statuses.map((status) => {

                    const cell = cells.get(`${impact}/${status}`);
                    return { coverage_status: status, techniques: Number(cell?.techniques ?? 0), risk: internals.round(Number(cell?.risk ?? 0), 2) };
                })
            }))
        };
    }

    async summary(actor: Actor, filters: Pick<RiskFilters, 'domain' | 'subtechniques'>) {

        const [totals] = await this.filtered(filters).clearSelect().select(
            this.deps.knex.raw('count(*)::integer as techniques'),
            this.deps.knex.raw('coalesce(sum(rp.risk), 0)::float as total_risk'),
            this.deps.knex.raw('coalesce(avg(rp.risk), 0)::float as mean_risk'),
            this.deps.knex.raw('coalesce(max(rp.risk), 0)::float as max_risk'),
            this.deps.knex.raw('coalesce(sum(rp.likelihood * rp.impact), 0)::float as max_possible_risk'),
            this.deps.knex.raw('max(rp.computed_at) as computed_at'),
            ...internals.bands.map((band) => this.deps.knex.raw('(count(*) filter (where rp.band = ?))::integer as ??', [band, band])),
            ...internals.statuses.map((status) => this.deps.knex.raw('(count(*) filter (where rp.coverage_status = ?))::integer as ??', [status, `status_${status}`])),
            this.deps.knex.raw(`(count(*) filter (where rp.band in ('critical', 'high') and rp.coverage_status <> 'covered'))::integer as uncovered_high`)
        );

        const row = totals as Record<string, any>;
        return {
            domain: filters.domain ?? null,
            techniques: row.techniques,
            total_risk: internals.round(row.total_risk, 2),
            mean_risk: internals.round(row.mean_risk, 2),
            max_risk: internals.round(row.max_risk, 2),
            // Share of the risk that validations have taken away: 1 - total / (the total if every technique scored 0)
            risk_reduction: row.max_possible_risk > 0 ? internals.round(1 - row.total_risk / row.max_possible_risk, 4) : null,
            by_band: Object.fromEntries(internals.bands.map((band) => [band, row[band]])),
            by_coverage_status: Object.fromEntries(internals.statuses.map((status) => [status, row[`status_${status}`]])),
            uncovered_high_risk: row.uncovered_high,
            computed_at: row.computed_at ?? null
        };
    }

    private base() {

        return this.deps.knex('risk_profiles as rp').join('techniques as t', 't.mitre_id', 'rp.technique_id');
    }

    private filtered(filters: Pick<RiskFilters, 'domain' | 'band' | 'coverage_status' | 'tactic' | 'subtechniques'>) {

        const query = this.base();
        if (filters.domain) {
            query.where('rp.domain', filters.domain);
        }

        if (filters.band) {
            query.where('rp.band', filters.band);
        }

        if (filters.coverage_status) {
            query.where('rp.coverage_status', filters.coverage_status);
        }

        if (filters.tactic) {
            query.whereRaw('? = any(rp.tactics)', [filters.tactic]);
        }

        if (filters.subtechniques === false) {
            query.where('rp.is_subtechnique', false);
        }

        return query;
    }
}
