import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { DetectionAsset, DetectionValidation, InfrastructureChange, TestDetection, type AssetType, type ValidatedOutcome } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import { likePattern, page, pageOfQuery, whereEquals, type ListQuery, type Page } from './lists';
import type { SettingsService } from './settings';
import type { TechniquesService } from './techniques';


export interface AssetInput {
    name: string;
    type: AssetType;
    platform?: string | null;
    owner_id?: string | null;
    description?: string | null;
    data_sources?: string[];
}

export interface AssetFilters extends ListQuery {
    type?: AssetType;
    platform?: string;
    owner_id?: string;
    technique_id?: string;
    search?: string;
}

export interface ValidationInput {
    technique_id: string;
    asset_id: string;
    outcome: ValidatedOutcome;
    validated_at?: Date;
    reason: string;
}

export interface ValidationFilters extends ListQuery {
    technique_id?: string;
    asset_id?: string;
    test_id?: string;
    status?: 'valid' | 'invalidated';
    source?: 'test' | 'manual';
}

export interface ChangeInput {
    title: string;
    description: string;
    changed_at: Date;
    asset_ids?: string[];
    platforms?: string[];
    data_sources?: string[];
}

export interface ChangeFilters extends ListQuery {
    asset_id?: string;
    platform?: string;
    data_source?: string;
    changed_from?: Date;
    changed_to?: Date;
}

export interface DetectionFilters extends ListQuery {
    test_id?: string;
    asset_id?: string;
    technique_id?: string;
    outcome?: string;
    rule_id?: string;
    detected_from?: Date;
    detected_to?: Date;
}

export interface DashboardFilters extends ListQuery {
    technique_id?: string;
    min_confidence?: number;
    max_confidence?: number;
    needs_review?: boolean;
}

export interface ConfidenceSettings {
    half_life_days: number;
    weights: { prevented: number; alerted: number; logged: number };
}

export interface TechniqueConfidence {
    technique_id: string;
    confidence: number;
    valid_validations: number;
    latest_validated_at: Date | null;
}


// The decay of docs/detection.md, in memory: weight/100 × 0.5^(age in days / half-life). The SQL function
// technique_detection_confidence computes the same figure; the dashboard shows each validation's share with this.
export const decayedConfidence = (outcome: ValidatedOutcome, validatedAt: Date, at: Date, settings: ConfidenceSettings): number => {

    const ageDays = Math.max(0, at.getTime() - validatedAt.getTime()) / 86_400_000;
    return settings.weights[outcome] / 100 * Math.pow(0.5, ageDays / settings.half_life_days);
};


const internals = {
    round: (value: number) => Math.round(value * 10_000) / 10_000,

    // The dashboard lists at most this many validations per technique, latest first (validations_total says how many)
    validationsShown: 20,

    formula: 'confidence(technique) = max over its counted validations of weight(outcome) / 100 × 0.5 ^ (age_days / half_life_days); a validation counts while it is valid and no invalidated validation of the same asset and technique is as recent or more; 0 without one'
};


// Detection lifecycle (issue 11): detection assets and the techniques they cover, the detections of tests as rows,
// detection validations and their decaying confidence per technique, infrastructure changes.
export class DetectionService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; settings: SettingsService; techniques: TechniquesService }) { }

    // ---- Assets

    listAssets(actor: Actor, filters: AssetFilters): Promise<Page<DetectionAsset>> {

        const query = DetectionAsset.query(this.deps.knex).select('detection_assets.*', this.linkedTechniques());
        whereEquals(query, filters, ['type', 'platform', 'owner_id'], 'detection_assets');

        if (filters.technique_id) {
            query.whereExists(this.deps.knex('detection_asset_techniques').where('asset_id', this.deps.knex.ref('detection_assets.id')).where('technique_id', filters.technique_id));
        }

        if (filters.search) {
            query.where('detection_assets.name', 'ilike', likePattern(filters.search));
        }

        return page(query, filters, { sort: 'name', order: 'asc' });
    }

    async getAsset(actor: Actor, id: string): Promise<DetectionAsset> {

        const asset = await DetectionAsset.query(this.deps.knex).findById(id).select('detection_assets.*', this.linkedTechniques());
        if (!asset) {
            throw new NotFoundError('Detection asset');
        }

        return asset;
    }

    async createAsset(actor: Actor, input: AssetInput, options: ChangeOptions = {}): Promise<DetectionAsset> {

        const id = await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await this.checkAssetFields(trx, input);
            const asset = await DetectionAsset.insertReturning(trx, { ...input, created_by: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'detection_asset.create', entity_type: 'detection_asset', entity_id: asset.id, details: { name: asset.name, type: asset.type } });
            return asset.id;
        });

        return await this.getAsset(actor, id);
    }

    async updateAsset(actor: Actor, id: string, input: Partial<AssetInput>, options: ChangeOptions = {}): Promise<DetectionAsset> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const asset = await lockOr404(DetectionAsset.query(trx).findById(id), 'Detection asset');
            await this.checkAssetFields(trx, input, id);
            await asset.$patchReturning(trx, input);
            await this.deps.audit.record(trx, actor, { action: 'detection_asset.update', entity_type: 'detection_asset', entity_id: id, details: { fields: Object.keys(input) } });
        });

        return await this.getAsset(actor, id);
    }

    // Its technique links, validations and ownership records go with it; detections of tests and rules keep it (409)
    async removeAsset(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const asset = await lockOr404(DetectionAsset.query(trx).findById(id), 'Detection asset');
            const [detections, rules] = await Promise.all([
                trx('test_detections').where('asset_id', id).count('* as count').first(),
                trx('detection_rules').where('asset_id', id).count('* as count').first()
            ]);
            if (Number(detections!.count) || Number(rules!.count)) {
                throw new ConflictError(`The asset is named by ${Number(detections!.count)} test detections and ${Number(rules!.count)} detection rules: reassign or delete those first`, 'asset_in_use', { detections: Number(detections!.count), rules: Number(rules!.count) });
            }

            await asset.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'detection_asset.delete', entity_type: 'detection_asset', entity_id: id, details: { name: asset.name } });
        });
    }

    async linkTechnique(actor: Actor, id: string, techniqueId: string, options: ChangeOptions = {}): Promise<DetectionAsset> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await lockOr404(DetectionAsset.query(trx).findById(id), 'Detection asset');
            if (!await trx('techniques').where('mitre_id', techniqueId).first('mitre_id')) {
                throw new NotFoundError('Technique');
            }

            const inserted = await trx('detection_asset_techniques').insert({ asset_id: id, technique_id: techniqueId, created_by: actor.id }).onConflict(['asset_id', 'technique_id']).ignore().returning('asset_id');
            if (inserted.length) {
                await this.deps.audit.record(trx, actor, { action: 'detection_asset.link_technique', entity_type: 'detection_asset', entity_id: id, details: { technique_id: techniqueId } });
            }
        });

        return await this.getAsset(actor, id);
    }

    async unlinkTechnique(actor: Actor, id: string, techniqueId: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await lockOr404(DetectionAsset.query(trx).findById(id), 'Detection asset');
            const removed = await trx('detection_asset_techniques').where({ asset_id: id, technique_id: techniqueId }).delete();
            if (!removed) {
                throw new NotFoundError('Link between the asset and the technique');
            }

            await this.deps.audit.record(trx, actor, { action: 'detection_asset.unlink_technique', entity_type: 'detection_asset', entity_id: id, details: { technique_id: techniqueId } });
        });
    }

    // ---- Detections of tests, as rows (only those of tests the actor may see)

    listDetections(actor: Actor, filters: DetectionFilters): Promise<Page<TestDetection>> {

        const query = TestDetection.query(this.deps.knex).modify('visibleTo', actor);
        whereEquals(query, filters, ['test_id', 'asset_id', 'outcome'], 'test_detections');

        if (filters.technique_id) {
            query.whereExists(this.deps.knex('tests').where('tests.id', this.deps.knex.ref('test_detections.test_id')).where('tests.technique_id', filters.technique_id));
        }

        if (filters.rule_id) {
            query.whereRaw('? = any(test_detections.rule_ids)', [filters.rule_id]);
        }

        if (filters.detected_from) {
            query.where('test_detections.detected_at', '>=', filters.detected_from);
        }

        if (filters.detected_to) {
            query.where('test_detections.detected_at', '<=', filters.detected_to);
        }

        return page(query, filters, { sort: 'detected_at', order: 'desc' });
    }

    // ---- Validations

    listValidations(actor: Actor, filters: ValidationFilters): Promise<Page<DetectionValidation>> {

        const query = DetectionValidation.query(this.deps.knex).modify('visibleTo', actor);
        whereEquals(query, filters, ['technique_id', 'asset_id', 'test_id', 'status', 'source'], 'detection_validations');

        return page(query, filters, { sort: 'validated_at', order: 'desc' });
    }

    async createValidation(actor: Actor, input: ValidationInput, options: ChangeOptions = {}): Promise<DetectionValidation> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await this.checkReferences(trx, { technique_id: input.technique_id, asset_ids: [input.asset_id] }, 'asset_id');
            const validation = await DetectionValidation.insertReturning(trx, {
                technique_id: input.technique_id, asset_id: input.asset_id, outcome: input.outcome, validated_at: input.validated_at ?? new Date(),
                reason: input.reason, source: 'manual', created_by: actor.id
            });
            await trx('detection_asset_techniques').insert({ asset_id: input.asset_id, technique_id: input.technique_id, created_by: actor.id }).onConflict(['asset_id', 'technique_id']).ignore();
            await this.deps.audit.record(trx, actor, { action: 'detection_validation.create', entity_type: 'detection_validation', entity_id: validation.id, details: { technique_id: input.technique_id, asset_id: input.asset_id, outcome: input.outcome } });
            return validation;
        });
    }

    // Revokes the proof: the technique needs review, and its confidence no longer counts this asset's older proofs
    async invalidate(actor: Actor, id: string, reason: string, options: ChangeOptions = {}): Promise<DetectionValidation> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const validation = await lockOr404(DetectionValidation.query(trx).findById(id).modify('visibleTo', actor), 'Detection validation');
            if (validation.status === 'invalidated') {
                throw new ConflictError('The validation is already invalidated', 'validation_already_invalidated', { invalidated_at: validation.invalidated_at });
            }

            const updated = await validation.$patchReturning(trx, { status: 'invalidated', invalidated_at: new Date(), invalidated_by: actor.id, invalidation_reason: reason });
            await this.deps.techniques.markForReview(trx, [validation.technique_id], `Detection validation invalidated: ${reason}`, actor);
            await this.deps.audit.record(trx, actor, { action: 'detection_validation.invalidate', entity_type: 'detection_validation', entity_id: id, details: { technique_id: validation.technique_id, reason } });
            return updated;
        });
    }

    // ---- Infrastructure changes

    listChanges(actor: Actor, filters: ChangeFilters): Promise<Page<InfrastructureChange>> {

        const query = InfrastructureChange.query(this.deps.knex);
        const arrays = { asset_id: 'asset_ids', platform: 'platforms', data_source: 'data_sources' } as const;
        for (const [filter, column] of Object.entries(arrays) as [keyof typeof arrays, string][]) {
            if (filters[filter]) {
                query.whereRaw(`? = any(infrastructure_changes.${column})`, [filters[filter]]);
            }
        }

        if (filters.changed_from) {
            query.where('changed_at', '>=', filters.changed_from);
        }

        if (filters.changed_to) {
            query.where('changed_at', '<=', filters.changed_to);
        }

        return page(query, filters, { sort: 'changed_at', order: 'desc' });
    }

    // Recording a change marks the techniques it touches for review (domain.md "Coverage"); the revalidation queue
    // turns them into retests (OwnershipService.generateQueue)
    async createChange(actor: Actor, input: ChangeInput, options: ChangeOptions = {}): Promise<InfrastructureChange & { techniques_marked: number }> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await this.checkReferences(trx, { asset_ids: input.asset_ids ?? [], data_sources: input.data_sources ?? [] }, 'asset_ids');
            const change = await InfrastructureChange.insertReturning(trx, { ...input, created_by: actor.id });
            const touched = await trx.select('technique_id').from(touchedTechniques(trx, [change.id]).as('touched')).distinct() as { technique_id: string }[];
            const marked = await this.deps.techniques.markForReview(trx, touched.map((row) => row.technique_id), `Infrastructure change: ${input.title}`, actor);
            await this.deps.audit.record(trx, actor, { action: 'infrastructure_change.create', entity_type: 'infrastructure_change', entity_id: change.id, details: { title: input.title, techniques_marked: marked.length } });
            return Object.assign(change, { techniques_marked: marked.length });
        });
    }

    // ---- Confidence

    async confidenceSettings(): Promise<ConfidenceSettings> {

        return await confidenceSettingsOf(this.deps.settings);
    }

    // Detection confidence (0..1) per technique as of `at`, for other modules (scores): techniques without a counted
    // validation are absent (their confidence is 0). The figure depends on no test's fields, so it needs no visibility.
    async confidence(actor: Actor, techniqueIds?: string[], at = new Date()): Promise<Map<string, TechniqueConfidence>> {

        const settings = await this.confidenceSettings();
        const query = this.deps.knex.select('*').from(confidenceSource(this.deps.knex, settings, at).as('c'));
        if (techniqueIds) {
            query.whereIn('technique_id', techniqueIds);
        }

        const rows = await query as { technique_id: string; confidence: string; valid_validations: string; latest_validated_at: Date | null }[];
        return new Map(rows.map((row) => [row.technique_id, { technique_id: row.technique_id, confidence: internals.round(Number(row.confidence)), valid_validations: Number(row.valid_validations), latest_validated_at: row.latest_validated_at }]));
    }

    // Every technique with a validation or an asset link: its confidence now, and the validations behind it (those
    // of tests the actor may not see are left out of the list, not of the figure)
    async dashboard(actor: Actor, filters: DashboardFilters) {

        const { knex } = this.deps;
        const settings = await this.confidenceSettings();
        const at = new Date();
        const filtered: Knex.QueryBuilder = knex('techniques as t')
            .leftJoin(confidenceSource(knex, settings, at).as('c'), 'c.technique_id', 't.mitre_id')
            .where((q) => q.whereExists(knex('detection_validations as v').where('v.technique_id', knex.ref('t.mitre_id'))).orWhereExists(knex('detection_asset_techniques as l').where('l.technique_id', knex.ref('t.mitre_id'))))
            .select('t.mitre_id as technique_id', 't.name', 't.needs_review', 't.coverage_status', knex.raw('coalesce(c.confidence, 0)::float8 as confidence'), knex.raw('coalesce(c.valid_validations, 0)::int as counted_validations'), 'c.latest_validated_at');

        if (filters.technique_id) {
            filtered.where('t.mitre_id', filters.technique_id);
        }

        if (filters.needs_review !== undefined) {
            filtered.where('t.needs_review', filters.needs_review);
        }

        if (filters.min_confidence !== undefined) {
            filtered.whereRaw('coalesce(c.confidence, 0) >= ?', [filters.min_confidence]);
        }

        if (filters.max_confidence !== undefined) {
            filtered.whereRaw('coalesce(c.confidence, 0) <= ?', [filters.max_confidence]);
        }

        const sort = filters.sort ?? 'confidence';
        const order = filters.order ?? (sort === 'confidence' ? 'asc' : 'asc');
        const items = knex.select('*').from(filtered.clone().as('d')).orderBy(sort, order).orderBy('technique_id', 'asc');
        const result = await pageOfQuery<{ technique_id: string; confidence: number; latest_validated_at: Date | null }>(knex, items, filtered, filters);

        const ids = result.items.map((item) => item.technique_id);
        // The latest validations of each technique (those the actor may see), as plain rows: a page of 500 techniques
        // would otherwise build thousands of model instances
        const ranked = DetectionValidation.query(knex).modify('visibleTo', actor).whereIn('technique_id', ids)
            .select('detection_validations.*', knex.raw('row_number() over (partition by technique_id order by validated_at desc, id) as rank'), knex.raw('count(*) over (partition by technique_id) as listed_of'))
            .toKnexQuery();
        const validations = ids.length ? await knex.select('*').from(ranked.as('r')).where('rank', '<=', internals.validationsShown).orderBy([{ column: 'validated_at', order: 'desc' }, { column: 'id' }]) as (DetectionValidation & { rank?: string; listed_of?: string })[] : [];
        const byTechnique = new Map<string, DetectionValidation[]>();
        const totals = new Map<string, number>();
        for (const { rank, listed_of: listedOf, ...validation } of validations) {
            byTechnique.set(validation.technique_id, [...byTechnique.get(validation.technique_id) ?? [], validation as DetectionValidation]);
            totals.set(validation.technique_id, Number(listedOf));
        }

        // The latest invalidation per technique and asset, of every validation (visible or not): it voids the older ones
        const voidedUntil = new Map<string, number>();
        for (const row of ids.length ? await this.invalidations(ids) : []) {
            const key = `${row.technique_id} ${row.asset_id}`;
            voidedUntil.set(key, Math.max(voidedUntil.get(key) ?? 0, row.validated_at.getTime()));
        }

        return {
            as_of: at,
            half_life_days: settings.half_life_days,
            weights: settings.weights,
            formula: internals.formula,
            ...result,
            items: result.items.map((item) => ({
                ...item,
                confidence: internals.round(Number(item.confidence)),
                validations_total: totals.get(item.technique_id) ?? 0,
                validations: (byTechnique.get(item.technique_id) ?? []).map((validation) => {

                    const voided = (voidedUntil.get(`${validation.technique_id} ${validation.asset_id}`) ?? -Infinity) >= validation.validated_at.getTime();
                    const counted = validation.status === 'valid' && !voided;
                    const ageDays = Math.max(0, at.getTime() - validation.validated_at.getTime()) / 86_400_000;
                    return {
                        ...validation,
                        age_days: Math.round(ageDays * 100) / 100,
                        counted,
                        contribution: counted ? internals.round(decayedConfidence(validation.outcome, validation.validated_at, at, settings)) : 0
                    };
                })
            }))
        };
    }

    private async invalidations(techniqueIds: string[]) {

        return await this.deps.knex('detection_validations').whereIn('technique_id', techniqueIds).where('status', 'invalidated').select('asset_id', 'technique_id', 'validated_at') as { asset_id: string; technique_id: string; validated_at: Date }[];
    }

    // ---- Helpers

    private linkedTechniques() {

        return this.deps.knex.raw('coalesce((select array_agg(l.technique_id order by l.technique_id) from detection_asset_techniques l where l.asset_id = detection_assets.id), \'{}\') as technique_ids');
    }

    private async checkAssetFields(trx: Knex.Transaction, input: Partial<AssetInput>, id?: string): Promise<void> {

        if (input.name) {
            const same = await trx('detection_assets').whereRaw('lower(name) = lower(?)', [input.name]).whereNot('id', id ?? '00000000-0000-0000-0000-000000000000').first('id');
            if (same) {
                throw new ConflictError(`A detection asset is already named ${input.name}`, 'asset_name_taken', { fields: ['name'] });
            }
        }

        if (input.owner_id && !await trx('users').where('id', input.owner_id).first('id')) {
            throw new ValidationError('owner_id names no user', ['owner_id'], 'unknown_reference');
        }

        if (input.data_sources?.length) {
            await this.checkReferences(trx, { data_sources: input.data_sources }, 'data_sources');
        }
    }

    // Ids named in a body must exist: 400 naming the field
    private async checkReferences(trx: Knex.Transaction, refs: { technique_id?: string; asset_ids?: string[]; data_sources?: string[] }, assetField: string): Promise<void> {

        const fields: string[] = [];
        if (refs.technique_id && !await trx('techniques').where('mitre_id', refs.technique_id).first('mitre_id')) {
            fields.push('technique_id');
        }

        if (refs.asset_ids?.length) {
            const found = await trx('detection_assets').whereIn('id', refs.asset_ids).pluck('id');
            if (found.length !== new Set(refs.asset_ids).size) {
                fields.push(assetField);
            }
        }

        if (refs.data_sources?.length) {
            const found = await trx('data_sources').whereIn('mitre_id', refs.data_sources).pluck('mitre_id');
            if (new Set(found).size !== new Set(refs.data_sources).size) {
                fields.push('data_sources');
            }
        }

        if (fields.length) {
            throw new ValidationError(`Unknown ${fields.join(', ')}: name existing techniques, detection assets and ATT&CK data sources (DS0009)`, fields, 'unknown_reference');
        }
    }
}


// The confidence settings from the store, for the service and for the scores' recompute (server/services/risk.ts)
export const confidenceSettingsOf = async (settings: SettingsService): Promise<ConfidenceSettings> => {

    const [halfLife, weights] = await Promise.all([settings.get('detection.half_life_days'), settings.get('detection.weights')]);
    return { half_life_days: halfLife ?? 180, weights: weights ?? { prevented: 100, alerted: 100, logged: 50 } };
};


// The SQL function of the migration with the settings' half-life and weights
export const confidenceSource = (knex: Knex, settings: ConfidenceSettings, at: Date): Knex.QueryBuilder => knex.select('*').from(knex.raw('technique_detection_confidence(?::float8, ?::float8, ?::float8, ?::float8, ?::timestamptz)', [settings.half_life_days, settings.weights.prevented, settings.weights.alerted, settings.weights.logged, at]));


// What an infrastructure change touches (docs/detection.md): the techniques linked to a touched asset, to an asset on a
// touched platform, or, among techniques with a valid validation or an asset link, those whose ATT&CK data components
// belong to a touched data source. One row per match: change_id, technique_id, asset_id, matched_by, matched_value, rank.
export const touchedTechniques = (knex: Knex | Knex.Transaction, changeIds?: string[]): Knex.QueryBuilder => {

    const changes = knex('infrastructure_changes as c').modify((q) => {

        if (changeIds) {
            q.whereIn('c.id', changeIds);
        }
    });

    const byAsset = changes.clone()
        .join('detection_assets as a', knex.raw('a.id = any(c.asset_ids)'))
        .join('detection_asset_techniques as l', 'l.asset_id', 'a.id')
        .select('c.id as change_id', 'l.technique_id', 'a.id as asset_id', knex.raw('\'asset\' as matched_by'), 'a.name as matched_value', knex.raw('1 as rank'));

    const byPlatform = changes.clone()
        .join('detection_assets as a', knex.raw('lower(a.platform) = any(select lower(p) from unnest(c.platforms) p)'))
        .join('detection_asset_techniques as l', 'l.asset_id', 'a.id')
        .select('c.id as change_id', 'l.technique_id', 'a.id as asset_id', knex.raw('\'platform\' as matched_by'), 'a.platform as matched_value', knex.raw('2 as rank'));

    const byDataSource = changes.clone()
        .join('data_sources as ds', knex.raw('ds.mitre_id = any(c.data_sources)'))
        .join('data_components as dc', 'dc.data_source_id', 'ds.id')
        .join('technique_data_components as tdc', 'tdc.data_component_id', 'dc.id')
        .where((q) => q.whereExists(knex('detection_validations as v').where('v.technique_id', knex.ref('tdc.technique_id')).where('v.status', 'valid'))
            .orWhereExists(knex('detection_asset_techniques as l2').where('l2.technique_id', knex.ref('tdc.technique_id'))))
        .select('c.id as change_id', 'tdc.technique_id', knex.raw('null::uuid as asset_id'), knex.raw('\'data_source\' as matched_by'), knex.raw('ds.mitre_id || \' \' || ds.name as matched_value'), knex.raw('3 as rank'));

    return byAsset.unionAll([byPlatform, byDataSource]) as Knex.QueryBuilder;
};
