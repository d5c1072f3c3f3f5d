import type { Knex } from 'knex';

import { NotFoundError } from '../errors';
import { PostureSnapshot, type CoverageStatusName, type PostureSummary } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import { page, type ListQuery, type Page } from './lists';


export interface SnapshotCreate {
    note?: string | null;
}

export interface SnapshotFilters extends ListQuery {
    kind?: 'manual' | 'scheduled';
    from?: Date;
    to?: Date;
}

export interface PeriodFilters {
    domain?: string;
    from?: Date;
    to?: Date;
}

export interface SnapshotTechnique {
    technique_id: string;
    name: string | null;
    domain: string;
    is_subtechnique: boolean;
    coverage_status: CoverageStatusName;
    score: number | null;
    own_coverage_status: CoverageStatusName;
    own_score: number | null;
    needs_review: boolean;
    latest_validated_at: Date | null;
}

export interface EvolutionPoint extends PostureSummary {
    snapshot_id: string | null;
    taken_at: Date;
    kind: 'manual' | 'scheduled' | 'live';
}

export interface TechniqueChange {
    technique_id: string;
    name: string | null;
    is_subtechnique: boolean;
    from: { coverage_status: CoverageStatusName; score: number | null } | null;
    to: { coverage_status: CoverageStatusName; score: number | null } | null;
}

export interface Comparison {
    a: { id: string; taken_at: Date };
    b: { id: string; taken_at: Date };
    domain: string | null;
    counts: { improved: number; regressed: number; unchanged: number; added: number; removed: number };
    improved: TechniqueChange[];
    regressed: TechniqueChange[];
    unchanged: TechniqueChange[];
    added: TechniqueChange[];
    removed: TechniqueChange[];
}


// The order of coverage: a move up this list is an improvement, down a regression
export const coverageRank: Record<CoverageStatusName, number> = { untested: 0, not_covered: 1, partial: 2, covered: 3 };

const percent = (part: number, whole: number) => (whole ? Math.round(part / whole * 1000) / 10 : 0);


// The posture of one domain from rows counted per (is_subtechnique, coverage_status, needs_review): the figures of
// the KPIs and of every snapshot. Top-level techniques count, with their rolled-up status (sub-techniques are inside
// it); sub-techniques are reported by number only.
export const summarise = (rows: { is_subtechnique: boolean; coverage_status: CoverageStatusName; needs_review: boolean; n: number | string }[]): PostureSummary => {

    const byStatus: Record<CoverageStatusName, number> = { untested: 0, not_covered: 0, partial: 0, covered: 0 };
    let subtechniques = 0;
    let needsReview = 0;
    for (const row of rows) {
        const n = Number(row.n);
        if (row.is_subtechnique) {
            subtechniques += n;
            continue;
        }

        byStatus[row.coverage_status] += n;
        needsReview += row.needs_review ? n : 0;
    }

    const techniques = byStatus.untested + byStatus.not_covered + byStatus.partial + byStatus.covered;
    return {
        techniques,
        subtechniques,
        by_status: byStatus,
        covered_percent: percent(byStatus.covered, techniques),
        tested_percent: percent(techniques - byStatus.untested, techniques),
        needs_review: needsReview
    };
};


// The posture of every domain from rows shaped as techniques (the techniques themselves, or a snapshot's)
const postureOf = async (rows: Knex.QueryBuilder): Promise<Record<string, PostureSummary>> => {

    const counted = await rows.select('domain', 'is_subtechnique', 'coverage_status', 'needs_review').count('* as n')
        .groupBy('domain', 'is_subtechnique', 'coverage_status', 'needs_review') as { domain: string; is_subtechnique: boolean; coverage_status: CoverageStatusName; needs_review: boolean; n: string }[];

    const domains = [...new Set(['enterprise-attack', ...counted.map((row) => row.domain)])];
    return Object.fromEntries(domains.map((domain) => [domain, summarise(counted.filter((row) => row.domain === domain))]));
};


// The live posture of every domain, from the stored coverage of the active techniques (a few hundred rows, whatever
// the number of tests)
export const livePosture = (knex: Knex | Knex.Transaction): Promise<Record<string, PostureSummary>> => postureOf(knex('techniques').where({ revoked: false, deprecated: false }));


export const emptySummary = (): PostureSummary => summarise([]);


// Snapshots: the coverage of every active technique at a point in time (docs/dashboards.md "Snapshots"). They hold
// coverage only, which is the organisation's whatever the reader: no test, no test id, no count of tests.
export class SnapshotsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; settings: { retentionDays: number } }) { }

    async create(actor: Actor, input: SnapshotCreate, kind: 'manual' | 'scheduled' = 'manual', options: ChangeOptions = {}): Promise<PostureSnapshot> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            // The rows in one statement (one consistent read of the techniques), then the summary from those rows, so
            // that the two always agree whatever validations commit meanwhile
            const inserted = await PostureSnapshot.insertReturning(trx, { kind, note: input.note || null, summary: {}, created_by: actor.id });
            await trx.raw(`insert into posture_snapshot_techniques
                (snapshot_id, technique_id, domain, is_subtechnique, coverage_status, score, own_coverage_status, own_score, needs_review, latest_validated_at)
                select ?, mitre_id, domain, is_subtechnique, coverage_status, score, own_coverage_status, own_score, needs_review, latest_validated_at
                from techniques where not revoked and not deprecated`, [inserted.id]);

            const summary = await postureOf(trx('posture_snapshot_techniques').where('snapshot_id', inserted.id));
            const snapshot = await inserted.$patchReturning(trx, { summary });
            await this.deps.audit.record(trx, actor, { action: 'snapshot.create', entity_type: 'snapshot', entity_id: snapshot.id, details: { kind } });
            return snapshot;
        });
    }

    list(_actor: Actor, filters: SnapshotFilters): Promise<Page<PostureSnapshot>> {

        const query = PostureSnapshot.query(this.deps.knex);
        if (filters.kind) {
            query.where('kind', filters.kind);
        }

        if (filters.from) {
            query.where('taken_at', '>=', filters.from);
        }

        if (filters.to) {
            query.where('taken_at', '<', filters.to);
        }

        return page(query, filters, { sort: 'taken_at', order: 'desc' });
    }

    async get(_actor: Actor, id: string, filters: { domain?: string } = {}): Promise<PostureSnapshot & { techniques: SnapshotTechnique[] }> {

        const snapshot = await PostureSnapshot.query(this.deps.knex).findById(id);
        if (!snapshot) {
            throw new NotFoundError('Snapshot');
        }

        const techniques = await this.techniques(this.deps.knex, id, filters.domain);
        return Object.assign(snapshot, { techniques });
    }

    async remove(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const snapshot = await lockOr404(PostureSnapshot.query(trx).findById(id), 'Snapshot');
            await snapshot.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'snapshot.delete', entity_type: 'snapshot', entity_id: id, details: { kind: snapshot.kind, taken_at: snapshot.taken_at } });
        });
    }

    // The summaries of the snapshots of a period, oldest first, for one domain (at most 1,000 points: a year of daily
    // snapshots and their manual ones)
    async evolution(_actor: Actor, filters: PeriodFilters): Promise<{ domain: string; points: EvolutionPoint[] }> {

        const domain = filters.domain ?? 'enterprise-attack';
        const query = PostureSnapshot.query(this.deps.knex).select('id', 'kind', 'taken_at', 'summary').orderBy([{ column: 'taken_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(1000);
        if (filters.from) {
            query.where('taken_at', '>=', filters.from);
        }

        if (filters.to) {
            query.where('taken_at', '<', filters.to);
        }

        const rows = await query;
        const points = rows.reverse().map((row) => ({ snapshot_id: row.id, taken_at: row.taken_at, kind: row.kind, ...row.summary[domain] ?? emptySummary() }));
        return { domain, points };
    }

    // The latest snapshot taken at or before a time (the executive summary's start of period)
    async before(time: Date): Promise<PostureSnapshot | null> {

        return await PostureSnapshot.query(this.deps.knex).where('taken_at', '<=', time).orderBy([{ column: 'taken_at', order: 'desc' }, { column: 'id', order: 'desc' }]).first() ?? null;
    }

    // From a to b, technique by technique: improved when b's status ranks above a's, regressed when below, unchanged
    // when equal (a score that moved within a status is shown, not counted as a change); added and removed when a
    // technique is only in one of them (an import in between)
    async compare(_actor: Actor, a: string, b: string, filters: { domain?: string } = {}): Promise<Comparison> {

        const { knex } = this.deps;
        const [first, second] = await Promise.all([PostureSnapshot.query(knex).findById(a), PostureSnapshot.query(knex).findById(b)]);
        if (!first || !second) {
            throw new NotFoundError('Snapshot');
        }

        const [before, after] = await Promise.all([this.techniques(knex, a, filters.domain), this.techniques(knex, b, filters.domain)]);
        return { a: { id: first.id, taken_at: first.taken_at }, b: { id: second.id, taken_at: second.taken_at }, domain: filters.domain ?? null, ...diff(before, after) };
    }

    // The daily job: a scheduled snapshot, then the scheduled ones older than the retention period deleted (manual
    // snapshots stay until an admin deletes them)
    async daily(actor: Actor, now = new Date()): Promise<{ snapshot_id: string; pruned: number }> {

        const snapshot = await this.create(actor, { note: null }, 'scheduled');
        const cutoff = new Date(now.getTime() - this.deps.settings.retentionDays * 86_400_000);
        const pruned = await this.deps.knex.transaction(async (trx) => {

            const count = await PostureSnapshot.query(trx).where('kind', 'scheduled').where('taken_at', '<', cutoff).delete();
            if (count) {
                await this.deps.audit.record(trx, actor, { action: 'snapshot.prune', entity_type: 'snapshot', details: { retention_days: this.deps.settings.retentionDays, count } });
            }

            return count;
        });

        return { snapshot_id: snapshot.id, pruned };
    }

    private async techniques(knex: Knex, id: string, domain?: string): Promise<SnapshotTechnique[]> {

        const query = knex('posture_snapshot_techniques as s').leftJoin('techniques as t', 't.mitre_id', 's.technique_id')
            .select('s.technique_id', 't.name', 's.domain', 's.is_subtechnique', 's.coverage_status', 's.score', 's.own_coverage_status', 's.own_score', 's.needs_review', 's.latest_validated_at')
            .where('s.snapshot_id', id).orderBy('s.technique_id');
        if (domain) {
            query.where('s.domain', domain);
        }

        return await query;
    }
}


// improved / regressed / unchanged / added / removed between two sets of technique states
export const diff = (before: SnapshotTechnique[], after: SnapshotTechnique[]): Omit<Comparison, 'a' | 'b' | 'domain'> => {

    const state = (row: SnapshotTechnique) => ({ coverage_status: row.coverage_status, score: row.score });
    const change = (from: SnapshotTechnique | undefined, to: SnapshotTechnique | undefined): TechniqueChange => {

        const row = (to ?? from)!;
        return { technique_id: row.technique_id, name: row.name, is_subtechnique: row.is_subtechnique, from: from ? state(from) : null, to: to ? state(to) : null };
    };

    const old = new Map(before.map((row) => [row.technique_id, row]));
    const result: Omit<Comparison, 'a' | 'b' | 'domain' | 'counts'> = { improved: [], regressed: [], unchanged: [], added: [], removed: [] };
    for (const row of after) {
        const previous = old.get(row.technique_id);
        old.delete(row.technique_id);
        if (!previous) {
            result.added.push(change(undefined, row));
            continue;
        }

        const delta = coverageRank[row.coverage_status] - coverageRank[previous.coverage_status];
        result[delta > 0 ? 'improved' : delta < 0 ? 'regressed' : 'unchanged'].push(change(previous, row));
    }

    result.removed = [...old.values()].map((row) => change(row, undefined));
    return {
        counts: { improved: result.improved.length, regressed: result.regressed.length, unchanged: result.unchanged.length, added: result.added.length, removed: result.removed.length },
        ...result
    };
};
