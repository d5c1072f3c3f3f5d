import type { Knex } from 'knex';

import { ValidationError } from '../errors';
import { LockKey } from '../locks';
import { AssetOwnership, RevalidationEntry, TechniqueAssignment, type AssetOwnershipRole, type AssignmentRole } from '../models';
import { Role, type Actor } from '../policy';

import type { AuditService } from './audit';
import type { NotificationsService } from './notifications';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import { touchedTechniques } from './detection';
import { page, whereEquals, type ListQuery, type Page } from './lists';


export interface AssignmentInput {
    technique_id: string;
    user_id?: string | null;
    team?: string | null;
    role: AssignmentRole;
    notes?: string | null;
}

export interface AssignmentFilters extends ListQuery {
    technique_id?: string;
    user_id?: string;
    team?: string;
    role?: AssignmentRole;
}

export interface AssetOwnershipInput {
    asset_id: string;
    user_id?: string | null;
    team?: string | null;
    role?: AssetOwnershipRole;
    notes?: string | null;
}

export interface AssetOwnershipFilters extends ListQuery {
    asset_id?: string;
    user_id?: string;
    team?: string;
}

export interface QueueFilters extends ListQuery {
    status?: 'open' | 'closed';
    technique_id?: string;
    change_id?: string;
    owner_user_id?: string;
}


// The queue's priority (docs/detection.md), 0-100: the technique's stored risk (risk_profiles, 0-25, docs/posture.md)
// × 4. Pure, for the tests' hand-computed cases.
export const riskPriority = (profile: { risk: number; likelihood: number; impact: number; score: number | null }): { priority: number; basis: string } => ({
    priority: Math.round(profile.risk * 4 * 100) / 100,
    basis: `risk ${profile.risk} of 25 (likelihood ${profile.likelihood} × impact ${profile.impact} × (1 − score ${profile.score ?? 0}/100)) × 4`
});


// The fallback for a technique without a risk profile yet (risk not recomputed since it was created): impact (1-5,
// 3 when unset) × 20 × how much coverage the change may have broken. Pure, for the tests' hand-computed cases.
export const coverageAtStake = { covered: 1, partial: 0.75, not_covered: 0.5, untested: 0.25 } as const;

export const impactCoveragePriority = (impact: number | null, coverage: keyof typeof coverageAtStake): { priority: number; basis: string } => {

    const value = impact ?? 3;
    const factor = coverageAtStake[coverage];
    return { priority: Math.round(value * 20 * factor * 100) / 100, basis: `impact ${value}${impact === null ? ' (unset, default)' : ''} × 20 × coverage ${coverage} (${factor})` };
};


const internals = {
    // Why a user who is not the entry's owner is told of it
    ownerNote: (entry: RevalidationEntry, userId: string): string => (entry.owner_user_id === userId ? '' :
        entry.owner_user_id ? ' Its owner\'s account is inactive: reassign it (PATCH /ownership/assignments/{id}).' :
            entry.owner_team ? ` Its owner is the team ${entry.owner_team}: pass it on.` :
                ' No owner is recorded for it: assign one (POST /ownership/assignments).'),

    owned: (input: { user_id?: string | null; team?: string | null }) => {

        if (Boolean(input.user_id) === Boolean(input.team)) {
            throw new ValidationError('Name exactly one owner: user_id or team', ['user_id', 'team'], 'owner_required');
        }
    }
};


// Ownership (issue 11): who owns each technique's detection and each asset, and the revalidation queue built from
// infrastructure changes.
export class OwnershipService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; notifications: NotificationsService }) { }

    listAssignments(actor: Actor, filters: AssignmentFilters): Promise<Page<TechniqueAssignment>> {

        const query = TechniqueAssignment.query(this.deps.knex);
        whereEquals(query, filters, ['technique_id', 'user_id', 'team', 'role'], 'technique_assignments');

        return page(query, filters, { sort: 'technique_id', order: 'asc' });
    }

    async createAssignment(actor: Actor, input: AssignmentInput, options: ChangeOptions = {}): Promise<TechniqueAssignment> {

        internals.owned(input);
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await this.checkReferences(trx, { technique_id: input.technique_id, user_id: input.user_id });
            const assignment = await TechniqueAssignment.insertReturning(trx, { ...input, created_by: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'technique_assignment.create', entity_type: 'technique_assignment', entity_id: assignment.id, details: { technique_id: input.technique_id, role: input.role } });
            return assignment;
        });
    }

    async updateAssignment(actor: Actor, id: string, input: Partial<AssignmentInput>, options: ChangeOptions = {}): Promise<TechniqueAssignment> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const assignment = await lockOr404(TechniqueAssignment.query(trx).findById(id), 'Assignment');
            const owner = 'user_id' in input || 'team' in input ? { user_id: input.user_id ?? null, team: input.team ?? null } : {};
            if ('user_id' in input || 'team' in input) {
                internals.owned(owner);
            }

            await this.checkReferences(trx, { user_id: input.user_id });
            const updated = await assignment.$patchReturning(trx, { ...input, ...owner });
            await this.deps.audit.record(trx, actor, { action: 'technique_assignment.update', entity_type: 'technique_assignment', entity_id: id, details: { fields: Object.keys(input) } });
            return updated;
        });
    }

    async removeAssignment(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const assignment = await lockOr404(TechniqueAssignment.query(trx).findById(id), 'Assignment');
            await assignment.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'technique_assignment.delete', entity_type: 'technique_assignment', entity_id: id, details: { technique_id: assignment.technique_id } });
        });
    }

    listAssetOwnerships(actor: Actor, filters: AssetOwnershipFilters): Promise<Page<AssetOwnership>> {

        const query = AssetOwnership.query(this.deps.knex);
        whereEquals(query, filters, ['asset_id', 'user_id', 'team'], 'asset_ownerships');

        return page(query, filters, { sort: 'created_at', order: 'asc' });
    }

    async createAssetOwnership(actor: Actor, input: AssetOwnershipInput, options: ChangeOptions = {}): Promise<AssetOwnership> {

        internals.owned(input);
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await this.checkReferences(trx, { asset_id: input.asset_id, user_id: input.user_id });
            const ownership = await AssetOwnership.insertReturning(trx, { ...input, created_by: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'asset_ownership.create', entity_type: 'asset_ownership', entity_id: ownership.id, details: { asset_id: input.asset_id } });
            return ownership;
        });
    }

    listQueue(actor: Actor, filters: QueueFilters): Promise<Page<RevalidationEntry>> {

        const query = RevalidationEntry.query(this.deps.knex);
        whereEquals(query, filters, ['status', 'technique_id', 'change_id', 'owner_user_id'], 'revalidation_queue');

        return page(query, filters, { sort: 'priority', order: 'desc' });
    }

    // Every (change, technique) the changes touch becomes an open entry, once: the strongest match explains it (a
    // touched asset before an asset on a touched platform before a touched data source). A technique already
    // validated by a test after the change needs no retest. Serialised by an advisory lock; running it again adds nothing.
    // Each new entry notifies, in the same transaction, the users it names (notify_user_ids): its owner when that is an
    // active user, else the active blue leads (a team has no members in Aegis, and an entry without an owner needs a
    // lead to assign one). Only new entries notify, so generating again notifies nobody twice.
    async generateQueue(actor: Actor, options: ChangeOptions = {}): Promise<{ created: number; notified: number; items: RevalidationEntry[] }> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.revalidationQueue]);
            const { rows } = await trx.raw<{ rows: Candidate[] }>(`
                select distinct on (m.change_id, m.technique_id)
                       m.change_id, m.technique_id, m.asset_id, m.matched_by, m.matched_value,
                       c.title as change_title, c.changed_at, t.name as technique_name, t.impact, t.coverage_status,
                       rp.risk, rp.likelihood as risk_likelihood, rp.impact as risk_impact, rp.score as risk_score,
                       a.name as asset_name, a.owner_id as asset_owner_id,
                       ta.user_id as assignee_user_id, ta.team as assignee_team,
                       ao.user_id as asset_owner_user_id, ao.team as asset_owner_team
                from (?) m
                join infrastructure_changes c on c.id = m.change_id
                join techniques t on t.mitre_id = m.technique_id
                left join risk_profiles rp on rp.technique_id = m.technique_id
                left join detection_assets a on a.id = m.asset_id
                left join lateral (select user_id, team from technique_assignments x where x.technique_id = m.technique_id
                                   order by (x.role = 'detection_owner') desc, x.created_at, x.id limit 1) ta on true
                left join lateral (select user_id, team from asset_ownerships y where y.asset_id = m.asset_id
                                   order by (y.role = 'owner') desc, y.created_at, y.id limit 1) ao on true
                where not exists (select 1 from revalidation_queue q where q.change_id = m.change_id and q.technique_id = m.technique_id)
                  and not exists (select 1 from tests v where v.technique_id = m.technique_id and v.state = 'validated' and v.validated_at > c.changed_at)
                order by m.change_id, m.technique_id, m.rank, m.matched_value`, [touchedTechniques(trx)]);

            if (!rows.length) {
                return { created: 0, notified: 0, items: [] };
            }

            const owners = [...new Set(rows.flatMap((row) => [row.assignee_user_id, row.asset_owner_user_id, row.asset_owner_id]).filter((id): id is string => Boolean(id)))];
            const active = new Set(await trx('users').whereIn('id', owners).where('is_active', true).pluck('id') as string[]);
            const leads = await trx('users').where({ role: Role.blueLead, is_active: true }).orderBy('id').pluck('id') as string[];

            const entries = rows.map((row) => {

                const { priority, basis } = row.risk === null ? impactCoveragePriority(row.impact, row.coverage_status) :
                    riskPriority({ risk: row.risk, likelihood: row.risk_likelihood!, impact: row.risk_impact!, score: row.risk_score });
                const via = row.matched_by === 'asset' ? `the asset ${row.matched_value}` :
                    row.matched_by === 'platform' ? `the platform ${row.matched_value} of the asset ${row.asset_name}` :
                        `the data source ${row.matched_value}`;
                const ownerUser = row.assignee_user_id ?? (row.assignee_team ? null : row.asset_owner_user_id ?? (row.asset_owner_team ? null : row.asset_owner_id));
                return {
                    change_id: row.change_id,
                    technique_id: row.technique_id,
                    asset_id: row.asset_id,
                    matched_by: row.matched_by,
                    matched_value: row.matched_value,
                    reason: `The infrastructure change "${row.change_title}" of ${row.changed_at.toISOString().slice(0, 10)} touches ${via}, which detects ${row.technique_id} ${row.technique_name}: retest it`,
                    priority,
                    priority_basis: basis,
                    owner_user_id: ownerUser,
                    owner_team: row.assignee_team ?? (row.assignee_user_id ? null : row.asset_owner_team),
                    notify_user_ids: ownerUser && active.has(ownerUser) ? [ownerUser] : leads
                };
            });

            const inserted = await trx('revalidation_queue').insert(entries).onConflict(['change_id', 'technique_id']).ignore().returning('*');
            const items = inserted.map((item) => RevalidationEntry.fromDatabaseJson(item));
            const notifications = items.flatMap((item) => item.notify_user_ids.map((userId) => ({
                user_id: userId,
                type: 'revalidation.required',
                title: `Retest ${item.technique_id}: an infrastructure change may have broken its detection (priority ${item.priority})`,
                body: `${item.reason}.${internals.ownerNote(item, userId)} The entry closes itself when a test of ${item.technique_id} is validated after the change.`,
                entity_type: 'revalidation_entry',
                entity_id: item.id
            })));
            const notified = await this.deps.notifications.notify(trx, notifications);
            await this.deps.audit.record(trx, actor, { action: 'revalidation_queue.generate', entity_type: 'revalidation_queue', details: { created: items.length, notified } });
            return { created: items.length, notified, items };
        });
    }

    private async checkReferences(trx: Knex.Transaction, refs: { technique_id?: string | undefined; asset_id?: string | undefined; user_id?: string | null | undefined }): Promise<void> {

        const fields: string[] = [];
        if (refs.technique_id && !await trx('techniques').where('mitre_id', refs.technique_id).first('mitre_id')) {
            fields.push('technique_id');
        }

        if (refs.asset_id && !await trx('detection_assets').where('id', refs.asset_id).first('id')) {
            fields.push('asset_id');
        }

        if (refs.user_id && !await trx('users').where('id', refs.user_id).first('id')) {
            fields.push('user_id');
        }

        if (fields.length) {
            throw new ValidationError(`Unknown ${fields.join(', ')}`, fields, 'unknown_reference');
        }
    }
}


interface Candidate {
    change_id: string;
    technique_id: string;
    asset_id: string | null;
    matched_by: 'asset' | 'platform' | 'data_source';
    matched_value: string;
    change_title: string;
    changed_at: Date;
    technique_name: string;
    impact: number | null;
    coverage_status: keyof typeof coverageAtStake;
    risk: number | null;
    risk_likelihood: number | null;
    risk_impact: number | null;
    risk_score: number | null;
    asset_name: string | null;
    asset_owner_id: string | null;
    assignee_user_id: string | null;
    assignee_team: string | null;
    asset_owner_user_id: string | null;
    asset_owner_team: string | null;
}
