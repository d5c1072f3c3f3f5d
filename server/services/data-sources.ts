import type { Knex } from 'knex';

import { NotFoundError } from '../errors';
import { DataComponent, type AttackDomainName, type DataQuality } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { likePattern, page, type ListQuery, type Page } from './lists';


export interface DataSourceFilters extends ListQuery {
    search?: string;
    collected?: boolean;
    domain?: AttackDomainName;
    include_deprecated?: boolean;
}

export interface DataSourceAssessment {
    collected?: boolean;
    quality?: DataQuality;
    notes?: string | null;
}

export interface GapFilters {
    limit?: number;
    offset?: number;
    domain?: AttackDomainName;
    platform?: string;
}


// DeTT&CT's data quality dimensions, each scored 0-5.
export const qualityDimensions = ['device_completeness', 'data_field_completeness', 'timeliness', 'consistency', 'retention'] as const;


const internals = {
    // The mean of the dimensions scored, 0-5, or null when none is
    qualityScore: (quality: DataQuality): number | null => {

        const values = qualityDimensions.map((dimension) => quality[dimension]).filter((value): value is number => typeof value === 'number');
        return values.length ? Math.round(values.reduce((sum, value) => sum + value, 0) / values.length * 10) / 10 : null;
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

    async list(filters: DataSourceFilters): Promise<Page<DataComponent & { technique_count: number; quality_score: number | null }>> {

        const query = DataComponent.query(this.deps.knex)
            .select('data_components.*')
            .select(DataComponent.raw('(select name from data_sources ds where ds.id = data_components.data_source_id) as data_source_name'))
            .select(DataComponent.raw('(select count(distinct tdc.technique_id) from technique_data_components tdc where tdc.data_component_id = data_components.id)::integer as technique_count'));

        if (!filters.include_deprecated) {
            query.where('revoked', false).where('deprecated', false);
        }

        if (filters.collected !== undefined) {
            query.where('collected', filters.collected);
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

    async get(id: string) {

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

    async assess(actor: Actor, id: string, input: DataSourceAssessment) {

        await DataComponent.transaction(this.deps.knex, async (trx) => {

            const component = await DataComponent.query(trx).findById(id).forUpdate();
            if (!component) {
                throw new NotFoundError('Data component');
            }

            await component.$query(trx).patch({
                ...input.collected !== undefined ? { collected: input.collected } : {},
                ...input.quality ? { quality: { ...component.quality, ...input.quality } } : {},
                ...input.notes !== undefined ? { notes: input.notes } : {},
                assessed_by: actor.id,
                assessed_at: new Date()
            });

            await this.deps.audit.record(trx, actor, { action: 'data_component.assess', entity_type: 'data_component', entity_id: id, details: { changes: input } });
        });

        return await this.get(id);
    }

    // Active techniques that no collected data component can reveal (mapped to none, or only to uncollected ones).
    async blindSpots(filters: GapFilters) {

        const { knex } = this.deps;
        const query = internals.activeTechniques(knex, filters)
            .whereNotExists((sub) => sub.select(knex.raw('1')).from('technique_data_components as tdc').join('data_components as dc', 'dc.id', 'tdc.data_component_id')
                .whereRaw('tdc.technique_id = t.mitre_id').where('dc.collected', true));

        const limit = filters.limit ?? 50;
        const offset = filters.offset ?? 0;
        const [items, [counted]] = await Promise.all([
            query.clone().select('t.mitre_id', 't.name', 't.is_subtechnique', 't.coverage_status')
                .select(knex.raw('(select count(distinct tdc.data_component_id) from technique_data_components tdc where tdc.technique_id = t.mitre_id)::integer as data_component_count'))
                .orderBy('t.mitre_id').limit(limit).offset(offset),
            query.clone().count('* as count')
        ]);

        return { items, total: Number(counted?.count ?? 0), limit, offset };
    }

    // Techniques whose telemetry is collected but which are not covered: the best places to write a detection, ranked
    // by weakest coverage first (untested and not_covered before partial), then the number of collected components
    // that can reveal them, their mean data quality, and how many threat actors use them.
    async opportunities(filters: GapFilters) {

        const { knex } = this.deps;
        // Materialised: aggregated once, whatever the planner believes of the techniques it joins
        const collected = knex('technique_data_components as tdc').join('data_components as dc', 'dc.id', 'tdc.data_component_id').where('dc.collected', true)
            .groupBy('tdc.technique_id')
            .select('tdc.technique_id')
            .select(knex.raw('count(distinct dc.id)::integer as collected_count'))
            .select(knex.raw('json_agg(distinct jsonb_build_object(\'id\', dc.id, \'mitre_id\', dc.mitre_id, \'name\', dc.name)) as collected_components'))
            .select(knex.raw(`avg((select avg(value::numeric) from jsonb_each_text(dc.quality) where key = any(?)))::float as quality`, [qualityDimensions as unknown as string[]]));

        const query = internals.activeTechniques(knex, filters).withMaterialized('c', collected).join('c', 'c.technique_id', 't.mitre_id').whereIn('t.coverage_status', ['untested', 'not_covered', 'partial']);
        const limit = filters.limit ?? 50;
        const offset = filters.offset ?? 0;
        const [items, [counted]] = await Promise.all([
            query.clone()
                .select('t.mitre_id', 't.name', 't.is_subtechnique', 't.coverage_status', 'c.collected_count', 'c.collected_components', 'c.quality')
                .select(knex.raw('(select count(*) from threat_actor_techniques tat where tat.technique_id = t.mitre_id)::integer as threat_actor_count'))
                .orderByRaw(`case t.coverage_status when 'partial' then 1 else 0 end`)
                .orderBy([{ column: 'c.collected_count', order: 'desc' }])
                .orderByRaw('c.quality desc nulls last')
                .orderBy([{ column: 'threat_actor_count', order: 'desc' }, { column: 't.mitre_id', order: 'asc' }])
                .limit(limit).offset(offset),
            query.clone().count('* as count')
        ]);

        return {
            items: items.map((item: { quality: number | null }, index: number) => ({ rank: offset + index + 1, ...item, quality: item.quality === null ? null : Math.round(item.quality * 10) / 10 })),
            total: Number(counted?.count ?? 0),
            limit,
            offset
        };
    }
}
