import type { Knex } from 'knex';

import { ConflictError, NotFoundError } from '../errors';
import { ThreatActor } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404 } from './changes';
import { likePattern, page, type ListQuery, type Page } from './lists';


export interface ThreatActorFilters extends ListQuery {
    search?: string;
    technique_id?: string;
    source?: 'mitre' | 'custom' | 'misp' | 'osint';
    tracked?: boolean;
    include_deprecated?: boolean;
}

export interface ThreatActorReference {
    source_name: string;
    external_id?: string | null;
    url?: string | null;
    description?: string | null;
}

export interface ThreatActorCreate {
    name: string;
    aliases?: string[];
    description?: string | null;
    country?: string | null;
    motivations?: string[];
    tracked?: boolean;
    references?: ThreatActorReference[];
}

export type ThreatActorUpdate = Partial<ThreatActorCreate>;

export interface ThreatActorLink {
    description?: string | null;
}


// What the organisation may change on a MITRE group: the sync owns the rest (name, aliases, description, references).
export const organisationActorFields = ['tracked', 'country', 'motivations'] as const;


export class ThreatActorsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService }) { }

    list(actor: Actor, filters: ThreatActorFilters): Promise<Page<ThreatActor>> {

        const query = ThreatActor.query(this.deps.knex)
            .select('threat_actors.*')
            .select(ThreatActor.raw('(select count(*) from threat_actor_techniques tat where tat.threat_actor_id = threat_actors.id)::integer as technique_count'));

        if (!filters.include_deprecated) {
            query.where('revoked', false).where('deprecated', false);
        }

        for (const field of ['source', 'tracked'] as const) {
            if (filters[field] !== undefined) {
                query.where(field, filters[field]);
            }
        }

        if (filters.search) {
            const pattern = likePattern(filters.search);
            query.where((q) => q.where('name', 'ilike', pattern).orWhere('mitre_id', 'ilike', pattern).orWhereRaw('array_to_string(aliases, \' \') ilike ?', [pattern]));
        }

        if (filters.technique_id) {
            query.whereExists((sub) => sub.select(ThreatActor.raw('1')).from('threat_actor_techniques as tat')
                .whereRaw('tat.threat_actor_id = threat_actors.id').where('tat.technique_id', filters.technique_id!));
        }

        return page(query, filters, { sort: 'name', order: 'asc' });
    }

    async get(actor: Actor, id: string) {

        const { knex } = this.deps;
        const threatActor = await ThreatActor.query(knex).findById(id);
        if (!threatActor) {
            throw new NotFoundError('Threat actor');
        }

        const [techniques, software, campaigns] = await Promise.all([
            knex('threat_actor_techniques as tat').join('techniques as t', 't.mitre_id', 'tat.technique_id').where('tat.threat_actor_id', id)
                .select('t.mitre_id', 't.name', 't.is_subtechnique', 't.parent_id', 't.coverage_status', 't.revoked', 't.deprecated', 'tat.source', 'tat.description').orderBy('t.mitre_id'),
            knex('threat_actor_software as tas').join('software as s', 's.id', 'tas.software_id').where('tas.threat_actor_id', id)
                .select('s.id', 's.mitre_id', 's.name', 's.type').orderBy('s.mitre_id'),
            knex('attack_campaign_actors as aca').join('attack_campaigns as c', 'c.id', 'aca.attack_campaign_id').where('aca.threat_actor_id', id)
                .select('c.id', 'c.mitre_id', 'c.name', 'c.first_seen', 'c.last_seen').orderBy('c.mitre_id')
        ]);

        return { ...threatActor, techniques, software, campaigns };
    }

    async create(actor: Actor, input: ThreatActorCreate) {

        const created = await ThreatActor.transaction(this.deps.knex, async (trx) => {

            const row = await ThreatActor.insertReturning(trx, {
                source: 'custom',
                name: input.name,
                aliases: input.aliases ?? [],
                description: input.description ?? null,
                country: input.country ?? null,
                motivations: input.motivations ?? [],
                tracked: input.tracked ?? true,
                references: input.references ?? [],
                created_by: actor.id
            } as Partial<ThreatActor>);

            await this.deps.audit.record(trx, actor, { action: 'threat_actor.create', entity_type: 'threat_actor', entity_id: row.id, details: { name: input.name } });
            return row;
        });

        return await this.get(actor, created.id);
    }

    async update(actor: Actor, id: string, input: ThreatActorUpdate) {

        await ThreatActor.transaction(this.deps.knex, async (trx) => {

            const row = await this.lock(trx, id);
            if (row.source === 'mitre') {
                const managed = Object.keys(input).filter((field) => !(organisationActorFields as readonly string[]).includes(field));
                if (managed.length) {
                    throw new ConflictError(`${managed.join(', ')} of a MITRE group are kept by the ATT&CK sync; only ${organisationActorFields.join(', ')} may be edited`, 'mitre_managed', { fields: managed });
                }
            }

            await row.$query(trx).patch(input as Partial<ThreatActor>);
            await this.deps.audit.record(trx, actor, { action: 'threat_actor.update', entity_type: 'threat_actor', entity_id: id, details: { changes: input } });
        });

        return await this.get(actor, id);
    }

    async remove(actor: Actor, id: string): Promise<void> {

        await ThreatActor.transaction(this.deps.knex, async (trx) => {

            const row = await this.lock(trx, id);
            if (row.source === 'mitre') {
                throw new ConflictError('A MITRE group is kept by the ATT&CK sync and cannot be deleted; set tracked to false to hide it', 'mitre_managed');
            }

            await row.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'threat_actor.delete', entity_type: 'threat_actor', entity_id: id, details: { name: row.name } });
        });
    }

    // A manual link (kept across syncs, which only manage their own 'mitre' links)
    async link(actor: Actor, id: string, mitreId: string, input: ThreatActorLink) {

        return await ThreatActor.transaction(this.deps.knex, async (trx) => {

            await this.lock(trx, id);
            const technique = await trx('techniques').where('mitre_id', mitreId).first('mitre_id');
            if (!technique) {
                throw new NotFoundError('Technique');
            }

            const existing = await trx('threat_actor_techniques').where({ threat_actor_id: id, technique_id: mitreId }).first();
            if (existing) {
                throw new ConflictError('The threat actor already uses this technique', 'already_linked');
            }

            const [link] = await trx('threat_actor_techniques')
                .insert({ threat_actor_id: id, technique_id: mitreId, source: 'manual', description: input.description ?? null, created_by: actor.id })
                .returning(['threat_actor_id', 'technique_id', 'source', 'description', 'created_by', 'created_at']);
            await this.deps.audit.record(trx, actor, { action: 'threat_actor.link_technique', entity_type: 'threat_actor', entity_id: id, details: { technique_id: mitreId } });
            return link;
        });
    }

    async unlink(actor: Actor, id: string, mitreId: string): Promise<void> {

        await ThreatActor.transaction(this.deps.knex, async (trx) => {

            await this.lock(trx, id);
            const link = await trx('threat_actor_techniques').where({ threat_actor_id: id, technique_id: mitreId }).first('source');
            if (!link) {
                throw new NotFoundError('Link');
            }

            if (link.source === 'mitre') {
                throw new ConflictError('This link comes from ATT&CK and would come back with the next sync', 'mitre_managed');
            }

            await trx('threat_actor_techniques').where({ threat_actor_id: id, technique_id: mitreId }).delete();
            await this.deps.audit.record(trx, actor, { action: 'threat_actor.unlink_technique', entity_type: 'threat_actor', entity_id: id, details: { technique_id: mitreId } });
        });
    }

    private async lock(trx: Knex.Transaction, id: string): Promise<ThreatActor> {

        const row = await lockOr404(ThreatActor.query(trx).findById(id), 'Threat actor');

        return row;
    }
}
