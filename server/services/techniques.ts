import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { LockKey } from '../locks';
import { Technique, Test, type AttackDomainName, type CoverageStatusName } from '../models';
import type { Actor } from '../policy';

import { d3fendTactics } from './attack-import';
import type { AuditService } from './audit';
import { lockOr404 } from './changes';
import { scoreOf, type CoverageService } from './coverage';
import { nextCustomId } from './custom-ids';
import { likePattern, pageOfQuery, type ListQuery, type Page } from './lists';


export interface TechniqueFilters extends ListQuery {
    tactic_id?: string;
    platform?: string;
    coverage_status?: CoverageStatusName;
    search?: string;
    domain?: AttackDomainName;
    needs_review?: boolean;
    is_custom?: boolean;
    parent_id?: string;
    include_subtechniques?: boolean;
    include_deprecated?: boolean;
}

export interface TechniqueCreate {
    name: string;
    description?: string | null;
    domain?: AttackDomainName;
    platforms?: string[];
    tactic_ids?: string[];
    parent_id?: string | null;
    impact?: number | null;
    notes?: string | null;
}

export type TechniqueUpdate = Partial<TechniqueCreate>;

export interface TechniqueReview {
    needs_review: boolean;
    reason?: string | null;
}

export interface TacticRef {
    id: string | null;
    shortname: string;
    name: string;
}

export interface TechniqueSummary {
    mitre_id: string;
    name: string;
    domain: AttackDomainName;
    is_subtechnique: boolean;
    parent_id: string | null;
    platforms: string[];
    tactics: TacticRef[];
    coverage_status: CoverageStatusName;
    score: number | null;
    own_coverage_status: CoverageStatusName;
    own_score: number | null;
    needs_review: boolean;
    impact: number | null;
    is_custom: boolean;
    revoked: boolean;
    deprecated: boolean;
    revoked_by_id: string | null;
    latest_validated_at: Date | null;
    url: string | null;
}


// The fields of a MITRE technique that belong to the organisation; everything else is the sync's.
export const organisationFields = ['impact', 'notes'] as const;

export const customPrefix = 'X';


const internals = {
    summaryColumns: [
        'techniques.mitre_id', 'techniques.name', 'techniques.domain', 'techniques.is_subtechnique', 'techniques.parent_id', 'techniques.platforms',
        'techniques.coverage_status', 'techniques.score', 'techniques.own_coverage_status', 'techniques.own_score', 'techniques.needs_review', 'techniques.impact', 'techniques.is_custom', 'techniques.revoked', 'techniques.deprecated',
        'techniques.revoked_by_id', 'techniques.latest_validated_at', 'techniques.url'
    ],

    summary: (row: Record<string, any>): TechniqueSummary => row as TechniqueSummary
};


export class TechniquesService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; coverage: CoverageService }) { }

    // Tactics of each technique as a column of the row; coverage and score are stored (CoverageService).
    summaries(knex: Knex | Knex.Transaction = this.deps.knex) {

        return knex('techniques')
            .select(internals.summaryColumns)
            .select(knex.raw(`coalesce((select json_agg(json_build_object('id', ta.mitre_id, 'shortname', ta.shortname, 'name', ta.name) order by ta.matrix_order, ta.mitre_id)
                from technique_tactics tt join tactics ta on ta.id = tt.tactic_id where tt.technique_id = techniques.mitre_id), '[]'::json) as tactics`));
    }

    async list(actor: Actor, filters: TechniqueFilters): Promise<Page<TechniqueSummary>> {

        const { knex } = this.deps;
        const query = knex('techniques');
        if (!filters.include_deprecated) {
            query.where('techniques.revoked', false).where('techniques.deprecated', false);
        }

        if (filters.include_subtechniques === false) {
            query.where('techniques.is_subtechnique', false);
        }

        for (const field of ['coverage_status', 'domain', 'needs_review', 'is_custom', 'parent_id'] as const) {
            if (filters[field] !== undefined) {
                query.where(`techniques.${field}`, filters[field]);
            }
        }

        if (filters.platform) {
            query.whereRaw('techniques.platforms @> array[?]::text[]', [filters.platform]);
        }

        if (filters.tactic_id) {
            query.whereExists((sub) => sub.select(knex.raw('1')).from('technique_tactics as tt').join('tactics as ta', 'ta.id', 'tt.tactic_id')
                .whereRaw('tt.technique_id = techniques.mitre_id').where('ta.mitre_id', filters.tactic_id!));
        }

        let rank: Knex.Raw | null = null;
        if (filters.search) {
            const pattern = likePattern(filters.search);
            const prefix = `${pattern.slice(1)}`;
            query.where((q) => q.where('techniques.mitre_id', 'ilike', pattern).orWhere('techniques.name', 'ilike', pattern).orWhere('techniques.description', 'ilike', pattern));
            rank = knex.raw(`case when lower(techniques.mitre_id) = lower(?) then 0 when techniques.mitre_id ilike ? then 1 when techniques.name ilike ? then 2 when techniques.name ilike ? then 3 else 4 end`,
                [filters.search, prefix, prefix, pattern]);
        }

        const order = filters.order ?? 'asc';
        const items = this.summaries().whereIn('techniques.mitre_id', query.clone().select('techniques.mitre_id'));
        if (rank && !filters.sort) {
            items.orderByRaw(rank.toSQL().sql, rank.toSQL().bindings as any[]);
        }

        items.orderBy(`techniques.${filters.sort ?? 'mitre_id'}`, order).orderBy('techniques.mitre_id', order);
        const result = await pageOfQuery<Record<string, any>>(knex, items, query, filters);
        return { ...result, items: result.items.map(internals.summary) };
    }

    // The technique's latest validated tests are those the actor may see
    async get(actor: Actor, mitreId: string) {

        const { knex } = this.deps;
        const technique = await Technique.query(knex).findById(mitreId);
        if (!technique) {
            throw new NotFoundError('Technique');
        }

        const [[summary], dataComponents, mitigations, subtechniques, parent, actors, tests, successor, latest] = await Promise.all([
            this.summaries().where('techniques.mitre_id', mitreId),
            knex('technique_data_components as tdc').join('data_components as dc', 'dc.id', 'tdc.data_component_id').where('tdc.technique_id', mitreId)
                .distinct('dc.id', 'dc.mitre_id', 'dc.name', 'dc.collected').orderBy('dc.mitre_id'),
            knex('technique_mitigations as tm').join('mitigations as m', 'm.id', 'tm.mitigation_id').where('tm.technique_id', mitreId)
                .select('m.mitre_id', 'm.name', 'tm.description').orderBy('m.mitre_id'),
            this.summaries().where('techniques.parent_id', mitreId).orderBy('techniques.mitre_id'),
            technique.parent_id ? knex('techniques').where('mitre_id', technique.parent_id).first('mitre_id', 'name') : null,
            knex('threat_actor_techniques as tat').join('threat_actors as a', 'a.id', 'tat.threat_actor_id').where('tat.technique_id', mitreId)
                .select('a.id', 'a.mitre_id', 'a.name', 'tat.source').orderBy('a.name'),
            Test.query(knex).modify('visibleTo', actor).where({ technique_id: mitreId, state: 'validated' }).orderBy('validated_at', 'desc').limit(10)
                .select('id', 'title', 'platform', 'detection_outcome', 'validated_at').toKnexQuery(),
            technique.revoked_by_id ? knex('techniques').where('mitre_id', technique.revoked_by_id).first('mitre_id', 'name') : null,
            technique.latest_validated_test_id ? Test.query(knex).modify('visibleTo', actor).where('tests.id', technique.latest_validated_test_id).select('tests.id').toKnexQuery() : []
        ]);

        return {
            ...technique,
            // The coverage is the organisation's; which test it comes from is named only to those who may see that test
            latest_validated_test_id: latest.length ? technique.latest_validated_test_id : null,
            ...internals.summary(summary),
            description: technique.description,
            review_reason: technique.review_reason,
            review_requested_at: technique.review_requested_at,
            notes: technique.notes,
            version: technique.version,
            modified: technique.modified,
            attack_version: technique.attack_version,
            detection: technique.detection,
            legacy_data_sources: technique.legacy_data_sources,
            parent: parent ?? null,
            revoked_by: successor ?? null,
            subtechniques: subtechniques.map(internals.summary),
            data_components: dataComponents,
            mitigations,
            threat_actors: actors,
            latest_validated_tests: tests.map((test: { detection_outcome: string | null }) => ({ ...test, score: scoreOf(test.detection_outcome) }))
        };
    }

    async create(actor: Actor, input: TechniqueCreate) {

        const mitreId = await Technique.transaction(this.deps.knex, async (trx) => {

            const next = await nextCustomId(trx, { table: 'techniques', prefix: customPrefix, lock: LockKey.customTechniqueId });
            const parent = input.parent_id ? await this.parentOf(trx, input.parent_id) : null;

            await trx('techniques').insert({
                mitre_id: next,
                domain: input.domain ?? parent?.domain ?? 'enterprise-attack',
                domains: [input.domain ?? parent?.domain ?? 'enterprise-attack'],
                name: input.name,
                description: input.description ?? null,
                platforms: input.platforms ?? [],
                parent_id: parent?.mitre_id ?? null,
                is_subtechnique: Boolean(parent),
                impact: input.impact ?? null,
                notes: input.notes ?? null,
                is_custom: true,
                created_by: actor.id
            });

            if (input.tactic_ids) {
                await this.setTactics(trx, next, input.domain ?? parent?.domain ?? 'enterprise-attack', input.tactic_ids);
            }

            // A new sub-technique is an untested member of its parent's roll-up
            if (parent) {
                await this.deps.coverage.recompute(trx, actor, [next]);
            }

            await this.deps.audit.record(trx, actor, { action: 'technique.create', entity_type: 'technique', entity_id: next, details: { name: input.name } });
            return next;
        });

        return await this.get(actor, mitreId);
    }

    async update(actor: Actor, mitreId: string, input: TechniqueUpdate) {

        await Technique.transaction(this.deps.knex, async (trx) => {

            const technique = await lockOr404(Technique.query(trx).findById(mitreId), 'Technique');

            if (!technique.is_custom) {
                const managed = Object.keys(input).filter((field) => !(organisationFields as readonly string[]).includes(field));
                if (managed.length) {
                    throw new ConflictError(`${managed.join(', ')} of a MITRE technique are kept by the ATT&CK sync; only ${organisationFields.join(', ')} may be edited`, 'mitre_managed', { fields: managed });
                }
            }

            const { tactic_ids: tacticIds, parent_id: parentId, ...fields } = input;
            const formerParent = technique.parent_id;
            const patch: Record<string, unknown> = { ...fields };
            if (parentId !== undefined) {
                if (parentId === mitreId) {
                    throw new ValidationError('A technique cannot be its own parent', ['parent_id']);
                }

                const parent = parentId ? await this.parentOf(trx, parentId) : null;
                patch.parent_id = parent?.mitre_id ?? null;
                patch.is_subtechnique = Boolean(parent);
            }

            if (fields.domain) {
                patch.domains = [fields.domain];
            }

            if (Object.keys(patch).length) {
                await technique.$query(trx).patch(patch);
            }

            if (tacticIds) {
                await this.setTactics(trx, mitreId, fields.domain ?? technique.domain, tacticIds);
            }

            // Moved between parents: both roll-ups change
            if (parentId !== undefined && patch.parent_id !== formerParent) {
                await this.deps.coverage.recompute(trx, actor, [mitreId, ...formerParent ? [formerParent] : []]);
            }

            await this.deps.audit.record(trx, actor, { action: 'technique.update', entity_type: 'technique', entity_id: mitreId, details: { changes: input } });
        });

        return await this.get(actor, mitreId);
    }

    async review(actor: Actor, mitreId: string, input: TechniqueReview) {

        await Technique.transaction(this.deps.knex, async (trx) => {

            await lockOr404(Technique.query(trx).findById(mitreId), 'Technique');

            await this.markForReview(trx, [mitreId], input.needs_review ? input.reason ?? null : null, actor, input.needs_review);
            await this.deps.audit.record(trx, actor, { action: input.needs_review ? 'technique.review_requested' : 'technique.review_cleared', entity_type: 'technique', entity_id: mitreId, details: { reason: input.reason ?? null } });
        });

        return await this.get(actor, mitreId);
    }

    // Sets (or clears) needs_review on techniques, inside the caller's transaction. Answers the ids it changed.
    async markForReview(trx: Knex.Transaction, mitreIds: string[], reason: string | null, actor: Actor, needsReview = true): Promise<string[]> {

        if (!mitreIds.length) {
            return [];
        }

        const rows = await trx('techniques').whereIn('mitre_id', mitreIds).update(needsReview ?
            { needs_review: true, review_reason: reason, review_requested_at: trx.fn.now(), review_requested_by: actor.id, updated_at: trx.fn.now() } :
            { needs_review: false, review_reason: null, review_requested_at: null, review_requested_by: null, updated_at: trx.fn.now() }, ['mitre_id']);
        return rows.map((row: { mitre_id: string }) => row.mitre_id);
    }

    // D3FEND countermeasures of a technique, grouped by D3FEND tactic in display order. A parent technique also
    // answers those mapped to its sub-techniques (D3FEND maps mostly at sub-technique level), each with the ids it came through.
    async d3fend(actor: Actor, mitreId: string) {

        const { knex } = this.deps;
        const technique = await knex('techniques').where('mitre_id', mitreId).first('mitre_id', 'name', 'is_subtechnique');
        if (!technique) {
            throw new NotFoundError('Technique');
        }

        const ids = [mitreId];
        if (!technique.is_subtechnique) {
            ids.push(...(await knex('techniques').where('parent_id', mitreId).pluck('mitre_id')));
        }

        const rows = await knex('d3fend_mappings as m').join('d3fend_countermeasures as c', 'c.d3fend_id', 'm.d3fend_id').whereIn('m.technique_id', ids)
            .select('c.d3fend_id', 'c.name', 'c.tactic', 'c.definition', 'c.parent_id', 'm.technique_id', 'm.inferences').orderBy(['c.d3fend_id', 'm.technique_id']);

        interface Entry { d3fend_id: string; name: string; tactic: string; definition: string | null; parent_id: string | null; technique_ids: string[]; inferences: Record<string, unknown>[] }
        const byId = new Map<string, Entry>();
        for (const row of rows) {
            const entry: Entry = byId.get(row.d3fend_id) ?? { d3fend_id: row.d3fend_id, name: row.name, tactic: row.tactic, definition: row.definition, parent_id: row.parent_id, technique_ids: [], inferences: [] };
            entry.technique_ids.push(row.technique_id);
            entry.inferences.push(...(row.inferences as { via: string }[]).map((inference) => ({ ...inference, technique_id: row.technique_id })));
            byId.set(row.d3fend_id, entry);
        }

        const tactics = [...d3fendTactics, ...new Set([...byId.values()].map((entry) => entry.tactic).filter((tactic) => !d3fendTactics.includes(tactic)))];
        return {
            technique_id: mitreId,
            name: technique.name,
            total: byId.size,
            tactics: tactics.map((tactic) => ({ tactic, countermeasures: [...byId.values()].filter((entry) => entry.tactic === tactic) })).filter((group) => group.countermeasures.length)
        };
    }

    private async parentOf(trx: Knex.Transaction, parentId: string): Promise<{ mitre_id: string; domain: AttackDomainName }> {

        const parent = await trx('techniques').where('mitre_id', parentId).first('mitre_id', 'domain', 'is_subtechnique');
        if (!parent) {
            throw new ValidationError('The parent technique does not exist', ['parent_id']);
        }

        if (parent.is_subtechnique) {
            throw new ValidationError('A sub-technique cannot be a parent', ['parent_id']);
        }

        return parent;
    }

    private async setTactics(trx: Knex.Transaction, mitreId: string, domain: string, tacticIds: string[]): Promise<void> {

        const tactics = await trx('tactics').whereIn('mitre_id', tacticIds).where({ domain, revoked: false, deprecated: false }).select('id', 'mitre_id');
        const missing = tacticIds.filter((id) => !tactics.some((tactic: { mitre_id: string }) => tactic.mitre_id === id));
        if (missing.length) {
            throw new ValidationError(`Unknown tactic(s) in ${domain}: ${missing.join(', ')}`, ['tactic_ids']);
        }

        await trx('technique_tactics').where('technique_id', mitreId).delete();
        if (tactics.length) {
            await trx('technique_tactics').insert(tactics.map((tactic: { id: string }) => ({ technique_id: mitreId, tactic_id: tactic.id })));
        }
    }
}
