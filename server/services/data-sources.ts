import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { LockKey } from '../locks';
import { DataComponent, type AttackDomainName, type DataQuality } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404 } from './changes';
import { nextCustomId } from './custom-ids';
import { likePattern, page, pageOfQuery, type ListQuery, type Page } from './lists';


export interface DataSourceFilters extends ListQuery {
    search?: string;
    collected?: boolean;
    is_custom?: boolean;
    domain?: AttackDomainName;
    include_deprecated?: boolean;
}

export interface DataSourceAssessment {
    collected?: boolean;
    quality?: DataQuality;
    notes?: string | null;
}

// The organisation's own data component: what it is, the techniques it can reveal, and its assessment
export interface DataSourceCreate extends DataSourceAssessment {
    name: string;
    description?: string | null;
    domain?: AttackDomainName;
    log_sources?: { name: string; channel?: string | null }[];
    technique_ids?: string[];
}

export type DataSourceUpdate = Partial<DataSourceCreate>;

export interface GapFilters {
    limit?: number;
    offset?: number;
    domain?: AttackDomainName;
    platform?: string;
}


// DeTT&CT's data quality dimensions, each scored 0-5.
export const qualityDimensions = ['device_completeness', 'data_field_completeness', 'timeliness', 'consistency', 'retention'] as const;

// What the organisation may change on an imported component: the sync owns the rest.
export const assessmentFields = ['collected', 'quality', 'notes'] as const;

// Custom data components are numbered under a prefix ATT&CK does not use (its components are DC0001...).
export const customDataComponentPrefix = 'XDC';


const internals = {
    // The mean of the dimensions scored, 0-5, or null when none is
    qualityScore: (quality: DataQuality): number | null => {

        const values = qualityDimensions.map((dimension) => quality[dimension]).filter((value): value is number => typeof value === 'number');
        return values.length ? Math.round(values.reduce((sum, value) => sum + value, 0) / values.length * 10) / 10 : null;
    },

    // The assessment columns an input changes: quality dimensions merge into the stored ones; any change is dated
    assessment: (current: Pick<DataComponent, 'quality'>, input: DataSourceAssessment, actor: Actor): Partial<DataComponent> => {

        if (input.collected === undefined && !input.quality && input.notes === undefined) {
            return {};
        }

        return {
            ...input.collected !== undefined ? { collected: input.collected } : {},
            ...input.quality ? { quality: { ...current.quality, ...input.quality } } : {},
            ...input.notes !== undefined ? { notes: input.notes } : {},
            assessed_by: actor.id,
            assessed_at: new Date()
        };
    },

    activeTechniques: (knex: Knex, filters: GapFilters) => {

        const query = knex('techniques as t').where('t.revoked', false).where('t.deprecated', false).where('t.domain', filters.domain ?? 'enterprise-attack');
        if (filters.platform) {
            query.whereRaw('t.platforms @> array[?]::text[]', [filters.platform]);
        }

        return query;
    }
};


// Data components (ATT&CK's telemetry), the techniques each can reveal, and the organisation's view of them.
export class DataSourcesService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService }) { }

    async list(actor: Actor, filters: DataSourceFilters): Promise<Page<DataComponent & { technique_count: number; quality_score: number | null }>> {

        const query = DataComponent.query(this.deps.knex)
            .select('data_components.*')
            .select(DataComponent.raw('(select name from data_sources ds where ds.id = data_components.data_source_id) as data_source_name'))
            .select(DataComponent.raw('(select count(distinct tdc.technique_id) from technique_data_components tdc where tdc.data_component_id = data_components.id)::integer as technique_count'));

        if (!filters.include_deprecated) {
            query.where('revoked', false).where('deprecated', false);
        }

        for (const field of ['collected', 'is_custom'] as const) {
            if (filters[field] !== undefined) {
                query.where(field, filters[field]);
            }
        }

        if (filters.domain) {
            query.whereRaw('domains @> array[?]::text[]', [filters.domain]);
        }

        if (filters.search) {
            const pattern = likePattern(filters.search);
            query.where((q) => q.where('name', 'ilike', pattern).orWhere('mitre_id', 'ilike', pattern).orWhere('description', 'ilike', pattern));
        }

        const result = await page(query, filters, { sort: 'name', order: 'asc' });
        return { ...result, items: result.items.map((item) => Object.assign(item, { quality_score: internals.qualityScore(item.quality) }) as DataComponent & { technique_count: number; quality_score: number | null }) };
    }

    async get(actor: Actor, id: string) {

        const { knex } = this.deps;
        const component = await DataComponent.query(knex).findById(id);
        if (!component) {
            throw new NotFoundError('Data component');
        }

        const techniques = await knex('technique_data_components as tdc').join('techniques as t', 't.mitre_id', 'tdc.technique_id').where('tdc.data_component_id', id)
            .where('t.revoked', false).where('t.deprecated', false)
            .select('t.mitre_id', 't.name', 't.coverage_status', 't.is_subtechnique')
            .select(knex.raw('array_agg(distinct tdc.source) as sources'))
            .groupBy('t.mitre_id', 't.name', 't.coverage_status', 't.is_subtechnique').orderBy('t.mitre_id');
        const source = component.data_source_id ? await knex('data_sources').where('id', component.data_source_id).first('id', 'mitre_id', 'name') : null;

        return { ...component, quality_score: internals.qualityScore(component.quality), data_source: source ?? null, techniques };
    }

    async create(actor: Actor, input: DataSourceCreate) {

        const id = await DataComponent.transaction(this.deps.knex, async (trx) => {

            const mitreId = await nextCustomId(trx, { table: 'data_components', prefix: customDataComponentPrefix, lock: LockKey.customDataComponentId });
            const domain = input.domain ?? 'enterprise-attack';
            const row = await DataComponent.insertReturning(trx, {
                mitre_id: mitreId,
                is_custom: true,
                domain,
                domains: [domain],
                name: input.name,
                description: input.description ?? null,
                log_sources: (input.log_sources ?? []).map((source) => ({ name: source.name, channel: source.channel ?? null })),
                ...internals.assessment({ quality: {} }, input, actor),
                created_by: actor.id
            } as Partial<DataComponent>);

            await this.link(trx, row.id, input.technique_ids ?? []);
            await this.deps.audit.record(trx, actor, { action: 'data_component.create', entity_type: 'data_component', entity_id: row.id, details: { mitre_id: mitreId, name: input.name, technique_ids: input.technique_ids ?? [] } });
            return row.id;
        });

        return await this.get(actor, id);
    }

    // An imported component takes only the organisation's view (collected, quality, notes); a custom one every field
    async update(actor: Actor, id: string, input: DataSourceUpdate) {

        await DataComponent.transaction(this.deps.knex, async (trx) => {

            const component = await this.lock(trx, id);
            if (!component.is_custom) {
                const managed = Object.keys(input).filter((field) => !(assessmentFields as readonly string[]).includes(field));
                if (managed.length) {
                    throw new ConflictError(`${managed.join(', ')} of an ATT&CK data component are kept by the ATT&CK sync; only ${assessmentFields.join(', ')} may be edited`, 'mitre_managed', { fields: managed });
                }
            }

            const { technique_ids: techniqueIds, log_sources: logSources, domain, ...fields } = input;
            await component.$query(trx).patch({
                ...fields.name !== undefined ? { name: fields.name } : {},
                ...fields.description !== undefined ? { description: fields.description } : {},
                ...domain ? { domain, domains: [domain] } : {},
                ...logSources ? { log_sources: logSources.map((source) => ({ name: source.name, channel: source.channel ?? null })) } : {},
                ...internals.assessment(component, input, actor)
            } as Partial<DataComponent>);

            if (techniqueIds) {
                await this.link(trx, id, techniqueIds);
            }

            await this.deps.audit.record(trx, actor, { action: component.is_custom ? 'data_component.update' : 'data_component.assess', entity_type: 'data_component', entity_id: id, details: { changes: input } });
        });

        return await this.get(actor, id);
    }

    async remove(actor: Actor, id: string): Promise<void> {

        await DataComponent.transaction(this.deps.knex, async (trx) => {

            const component = await this.lock(trx, id);
            if (!component.is_custom) {
                throw new ConflictError('An ATT&CK data component is kept by the ATT&CK sync and cannot be deleted; set collected to false instead', 'mitre_managed');
            }

            await component.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'data_component.delete', entity_type: 'data_component', entity_id: id, details: { mitre_id: component.mitre_id, name: component.name } });
        });
    }

    // Active techniques that no collected data component can reveal (mapped to none, or only to uncollected ones).
    async blindSpots(actor: Actor, filters: GapFilters) {

        const { knex } = this.deps;
        const query = internals.activeTechniques(knex, filters)
            .whereNotExists((sub) => sub.select(knex.raw('1')).from('technique_data_components as tdc').join('data_components as dc', 'dc.id', 'tdc.data_component_id')
                .whereRaw('tdc.technique_id = t.mitre_id').where('dc.collected', true));

        const items = query.clone().select('t.mitre_id', 't.name', 't.is_subtechnique', 't.coverage_status')
            .select(knex.raw('(select count(distinct tdc.data_component_id) from technique_data_components tdc where tdc.technique_id = t.mitre_id)::integer as data_component_count'))
            .orderBy('t.mitre_id');
        return await pageOfQuery(knex, items, query, filters);
    }

    // Techniques whose telemetry is collected but which are not covered: the best places to write a detection, ranked
    // by weakest coverage first (untested and not_covered before partial), then the number of collected components
    // that can reveal them, their mean data quality, and how many threat actors use them.
    async opportunities(actor: Actor, filters: GapFilters) {

        const { knex } = this.deps;
        // Materialised: aggregated once, whatever the planner believes of the techniques it joins
        const collected = knex('technique_data_components as tdc').join('data_components as dc', 'dc.id', 'tdc.data_component_id').where('dc.collected', true)
            .groupBy('tdc.technique_id')
            .select('tdc.technique_id')
            .select(knex.raw('count(distinct dc.id)::integer as collected_count'))
            .select(knex.raw('json_agg(distinct jsonb_build_object(\'id\', dc.id, \'mitre_id\', dc.mitre_id, \'name\', dc.name)) as collected_components'))
            .select(knex.raw(`avg((select avg(value::numeric) from jsonb_each_text(dc.quality) where key = any(?)))::float as quality`, [qualityDimensions as unknown as string[]]));

        const query = internals.activeTechniques(knex, filters).withMaterialized('c', collected).join('c', 'c.technique_id', 't.mitre_id').whereIn('t.coverage_status', ['untested', 'not_covered', 'partial']);
        const items = query.clone()
            .select('t.mitre_id', 't.name', 't.is_subtechnique', 't.coverage_status', 'c.collected_count', 'c.collected_components', 'c.quality')
            .select(knex.raw('(select count(*) from threat_actor_techniques tat where tat.technique_id = t.mitre_id)::integer as threat_actor_count'))
            .orderByRaw(`case t.coverage_status when 'partial' then 1 else 0 end`)
            .orderBy([{ column: 'c.collected_count', order: 'desc' }])
            .orderByRaw('c.quality desc nulls last')
            .orderBy([{ column: 'threat_actor_count', order: 'desc' }, { column: 't.mitre_id', order: 'asc' }]);
        const result = await pageOfQuery<{ quality: number | null }>(knex, items, query, filters);
        return { ...result, items: result.items.map((item, index) => ({ rank: result.offset + index + 1, ...item, quality: item.quality === null ? null : Math.round(item.quality * 10) / 10 })) };
    }

    private async lock(trx: Knex.Transaction, id: string): Promise<DataComponent> {

        const component = await lockOr404(DataComponent.query(trx).findById(id), 'Data component');

        return component;
    }

    // The manual links of a custom component, replaced whole; unknown techniques answer 400 naming them
    private async link(trx: Knex.Transaction, id: string, techniqueIds: string[]): Promise<void> {

        const wanted = [...new Set(techniqueIds)];
        const known: string[] = wanted.length ? await trx('techniques').whereIn('mitre_id', wanted).pluck('mitre_id') : [];
        const unknown = wanted.filter((techniqueId) => !known.includes(techniqueId));
        if (unknown.length) {
            throw new ValidationError(`Unknown technique: ${unknown.join(', ')}`, ['technique_ids'], 'unknown_technique');
        }

        await trx('technique_data_components').where({ data_component_id: id, source: 'manual' }).delete();
        if (wanted.length) {
            await trx('technique_data_components').insert(wanted.map((techniqueId) => ({ technique_id: techniqueId, data_component_id: id, source: 'manual' })));
        }
    }
}
