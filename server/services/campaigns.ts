import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { Campaign, CampaignHistoryEntry, CampaignTest, Test, TestTemplate, ThreatActor } from '../models';
import { blindTo, type Actor } from '../policy';

import type { AuditService } from './audit';
import {
    campaignLifecycle, decideCampaign, editAllowed, editsFor, overdueSql,
    type CampaignAction, type CampaignEditAction, type CampaignStatus, type CampaignType
} from './campaign-lifecycle';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import type { EventsService } from './events';
import { likePattern, page, pageOfQuery, type ListQuery, type Page } from './lists';
import { parseNavigatorLayer } from './navigator-layer';
import { detectionOutcomes, testStates } from './test-lifecycle';
import type { FromTemplate, TestsService } from './tests';


export interface CampaignCreate {
    name: string;
    description?: string | null;
    type?: CampaignType;
    threat_actor_id?: string | null;
    notes?: string | null;
    blind?: boolean;
    start_date?: string | null;
    end_date?: string | null;
}

export type CampaignUpdate = Partial<Omit<CampaignCreate, 'start_date' | 'end_date'>>;

export interface CampaignSchedule {
    start_date?: string | null;
    end_date?: string | null;
}

export interface CampaignAddTests {
    test_id?: string;
    template_id?: string;
    technique_ids?: string[];
    overrides?: FromTemplate['overrides'];
}

export interface CampaignFilters extends ListQuery {
    status?: CampaignStatus | CampaignStatus[];
    type?: CampaignType;
    threat_actor_id?: string;
    overdue?: boolean;
    from?: string;
    to?: string;
    search?: string;
}

// The options of from-threat-actor and from-layer
export interface GenerateOptions {
    name?: string;
    description?: string | null;
    type?: CampaignType;
    blind?: boolean;
    start_date?: string | null;
    end_date?: string | null;
    platforms?: string[];
    coverage?: ('untested' | 'not_covered' | 'partial' | 'covered')[];
}

export type SkipReason = 'revoked' | 'deprecated' | 'platform' | 'coverage' | 'unknown_technique' | 'disabled' | 'score';

export interface Generated {
    campaign: Campaign;
    created: { test_id: string; technique_id: string; title: string; template_id: string | null }[];
    skipped: { technique_id: string; reason: SkipReason; detail: string }[];
}

export interface CampaignProgress {
    campaign_id: string;
    total: number;
    validated: number;
    percent: number;
    by_state: Record<string, number>;
    by_outcome: Record<string, number>;
    by_tactic: { tactic: string | null; name: string | null; total: number; validated: number }[];
}

type Changes = Record<string, { from: unknown; to: unknown }>;

interface Candidate {
    technique_id: string;
    objective: string;
    skip?: { reason: SkipReason; detail: string };
}


const internals = {
    // The member tests the actor may see (the visibility rule), joined on their membership `ct`: every count of a
    // campaign's tests reads this, so that a figure never counts what the reader cannot open (docs/dashboards.md)
    visibleMembers: (db: Knex | Knex.Transaction, actor: Actor) => Test.query(db).modify('visibleTo', actor).join('campaign_tests as ct', 'ct.test_id', 'tests.id').toKnexQuery(),

    // The campaign and the number of its tests the actor may see, as every read answers it
    withCount: <Q extends ReturnType<typeof Campaign.query>>(query: Q, db: Knex | Knex.Transaction, actor: Actor): Q => query.select('campaigns.*',
        Campaign.raw('(?)::integer as test_count', [internals.visibleMembers(db, actor).whereRaw('ct.campaign_id = campaigns.id').clearSelect().count('*')])) as Q,

    diff: (current: Record<string, unknown>, next: Record<string, unknown>): Changes => {

        const changes: Changes = {};
        for (const [field, value] of Object.entries(next)) {
            const from = current[field] ?? null;
            const to = value === '' ? null : value ?? null;
            if (from !== to) {
                changes[field] = { from, to };
            }
        }

        return changes;
    },

    checkSchedule: (schedule: { start_date?: string | null | undefined; end_date?: string | null | undefined }) => {

        if (schedule.start_date && schedule.end_date && schedule.start_date > schedule.end_date) {
            throw new ValidationError(`start_date (${schedule.start_date}) is after end_date (${schedule.end_date}): set an end on or after the start`, ['start_date', 'end_date'], 'invalid_schedule');
        }
    },

    frozen: (action: CampaignEditAction, status: CampaignStatus) => new ConflictError(
        action === 'metadata' ? 'A completed campaign\'s metadata is frozen: only its notes can change' :
            action === 'schedule' ? 'A completed campaign\'s schedule is frozen' :
                'A completed campaign\'s tests cannot change: start a new campaign (a regression campaign) to test again',
        'campaign_frozen', { action, status }),

    // Free text is trimmed by joi; an empty string clears a nullable field
    clean: <T extends object>(input: T): Record<string, unknown> => Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined).map(([key, value]) => [key, value === '' ? null : value])),

    zeros: (keys: readonly string[]) => Object.fromEntries(keys.map((key) => [key, 0]))
};


export class CampaignsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; events: EventsService; tests: TestsService }) { }

    list(actor: Actor, filters: CampaignFilters): Promise<Page<Campaign>> {

        const query = internals.withCount(Campaign.query(this.deps.knex), this.deps.knex, actor);
        const statuses = filters.status === undefined ? [] : [filters.status].flat();
        if (statuses.length) {
            query.whereIn('campaigns.status', statuses);
        }

        for (const field of ['type', 'threat_actor_id'] as const) {
            if (filters[field] !== undefined) {
                query.where(`campaigns.${field}`, filters[field]);
            }
        }

        if (filters.overdue !== undefined) {
            query.whereRaw(filters.overdue ? `(${overdueSql})` : `not coalesce(${overdueSql}, false)`);
        }

        // The schedule overlaps the range: campaigns without dates are not in any range
        if (filters.from) {
            query.where('campaigns.end_date', '>=', filters.from);
        }

        if (filters.to) {
            query.where('campaigns.start_date', '<=', filters.to);
        }

        if (filters.search) {
            query.whereILike('campaigns.name', likePattern(filters.search));
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    // Every active campaign past its end date (the alerts issue's "overdue" rule), oldest end first
    async overdue(actor: Actor): Promise<Campaign[]> {

        return await internals.withCount(Campaign.query(this.deps.knex), this.deps.knex, actor).whereRaw(overdueSql).orderBy([{ column: 'end_date' }, { column: 'id' }]);
    }

    async get(actor: Actor, id: string, options: ChangeOptions = {}): Promise<Campaign> {

        const db = options.trx ?? this.deps.knex;
        const campaign = await internals.withCount(Campaign.query(db), db, actor).findById(id);
        if (!campaign) {
            throw new NotFoundError('Campaign');
        }

        return campaign;
    }

    async create(actor: Actor, input: CampaignCreate, options: ChangeOptions = {}): Promise<Campaign> {

        internals.checkSchedule(input);
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const row = internals.clean(input);
            await this.checkThreatActor(trx, row.threat_actor_id);
            const campaign = await Campaign.insertReturning(trx, { ...row, created_by: actor.id } as Partial<Campaign>);
            await this.record(trx, actor, campaign, 'create', { changes: internals.diff({}, row) });
            return await this.get(actor, campaign.id, { trx });
        });
    }

    async update(actor: Actor, id: string, input: CampaignUpdate, options: ChangeOptions = {}): Promise<Campaign> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const campaign = await this.lock(trx, id);
            const changes = internals.clean(input);
            const refused = editsFor(Object.keys(changes)).find((action) => !editAllowed(action, campaign.status));
            if (refused) {
                throw internals.frozen(refused, campaign.status);
            }

            await this.checkThreatActor(trx, changes.threat_actor_id);
            return await this.patch(trx, actor, campaign, 'update', changes);
        });
    }

    async schedule(actor: Actor, id: string, input: CampaignSchedule, options: ChangeOptions = {}): Promise<Campaign> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const campaign = await this.lock(trx, id);
            if (!editAllowed('schedule', campaign.status)) {
                throw internals.frozen('schedule', campaign.status);
            }

            internals.checkSchedule({ start_date: campaign.start_date, end_date: campaign.end_date, ...input });
            return await this.patch(trx, actor, campaign, 'schedule', internals.clean(input));
        });
    }

    async transition(actor: Actor, id: string, action: CampaignAction, options: ChangeOptions = {}): Promise<Campaign> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const campaign = await this.lock(trx, id);
            const [counted] = await CampaignTest.query(trx).where('campaign_id', id).count('* as count') as unknown as { count: string }[];
            const outcome = decideCampaign(action, campaign.status, { tests: Number(counted!.count) });
            if (!outcome.ok) {
                if (outcome.refusal.kind === 'state') {
                    throw new ConflictError(`Cannot ${action} a campaign in status ${campaign.status} (${action} moves a campaign from ${campaignLifecycle[action].from.join(' or ')})`, 'invalid_state_transition', { action, status: campaign.status });
                }

                throw new ConflictError('The campaign has no test: add tests before activating it', 'campaign_empty');
            }

            const transition = campaignLifecycle[action];
            const from = campaign.status;
            const updated = await campaign.$patchReturning(trx, { status: outcome.to, [transition.stamp]: new Date(), version: campaign.version + 1 } as Partial<Campaign>);
            await this.record(trx, actor, updated, action, { from, to: outcome.to });
            if (transition.emits) {
                await this.deps.events.emit(trx, actor, [{ type: transition.emits, entity_type: 'campaign', entity_id: id, payload: { campaign_id: id, name: campaign.name, tests: Number(counted!.count) } }]);
            }

            return await this.get(actor, id, { trx });
        });
    }

    // An existing test (visible to the actor), or new tests from a template; answers the new memberships
    async addTests(actor: Actor, id: string, input: CampaignAddTests, options: ChangeOptions = {}): Promise<{ items: (CampaignTest & { test: Test })[] }> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const campaign = await this.lockFor(trx, id, 'add-test');
            let testIds: string[];
            if (input.test_id) {
                const test = await Test.query(trx).findById(input.test_id).modify('visibleTo', actor);
                if (!test) {
                    throw new NotFoundError('Test');
                }

                if (await CampaignTest.query(trx).findOne({ campaign_id: id, test_id: test.id })) {
                    throw new ConflictError('The test is already in this campaign', 'already_in_campaign', { test_id: test.id });
                }

                testIds = [test.id];
            }
            else {
                const { items } = await this.deps.tests.fromTemplate(actor, { template_ids: [input.template_id!], ...input.technique_ids ? { technique_ids: input.technique_ids } : {}, ...input.overrides ? { overrides: input.overrides } : {} }, { trx });
                testIds = items.map((test) => test.id);
            }

            const memberships = await this.join(trx, actor, campaign, testIds);
            const tests = new Map((await Test.query(trx).findByIds(testIds)).map((test) => [test.id, test]));
            return { items: memberships.map((membership) => Object.assign(membership, { test: blindTo(actor, tests.get(membership.test_id)!) })) };
        });
    }

    // `ctid` is the membership's id, or the test's
    async removeTest(actor: Actor, id: string, ctid: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const campaign = await this.lockFor(trx, id, 'remove-test');
            const membership = await CampaignTest.query(trx).where('campaign_id', id).where((q) => q.where('id', ctid).orWhere('test_id', ctid))
                .whereIn('test_id', Test.query(trx).select('tests.id').modify('visibleTo', actor)).first();
            if (!membership) {
                throw new NotFoundError('Campaign test');
            }

            await CampaignTest.query(trx).deleteById(membership.id);
            await this.record(trx, actor, campaign, 'remove-test', { test_id: membership.test_id });
        });
    }

    // validated / total and the breakdowns by state, outcome (of the validated tests) and tactic: one statement,
    // whatever the number of tests; of the member tests the actor may see (the visibility rule), as every test figure
    async progress(actor: Actor, id: string): Promise<CampaignProgress> {

        const { knex } = this.deps;
        const members = internals.visibleMembers(knex, actor).where('ct.campaign_id', id).clearSelect().select('tests.state', 'tests.detection_outcome', 'tests.technique_id');
        const { rows } = await knex.raw<{ rows: { dimension: string; key: string | null; name: string | null; total: number; validated: number }[] }>(`
            with members as materialized (?)
            select 'campaign' as dimension, null as key, null as name, null::integer as ord, 0 as total, 0 as validated from campaigns where id = ?
            union all
            select 'state', state, null, null, count(*)::integer, count(*) filter (where state = 'validated')::integer from members group by state
            union all
            select 'outcome', detection_outcome, null, null, count(*)::integer, count(*)::integer from members where state = 'validated' group by detection_outcome
            union all
            select 'tactic', ta.shortname, ta.name, min(ta.matrix_order), count(*)::integer, count(*) filter (where m.state = 'validated')::integer
                from members m left join technique_tactics tt on tt.technique_id = m.technique_id left join tactics ta on ta.id = tt.tactic_id
                group by ta.shortname, ta.name
            order by dimension, ord nulls last, key`, [members, id]);

        if (!rows.some((row) => row.dimension === 'campaign')) {
            throw new NotFoundError('Campaign');
        }

        const progress: CampaignProgress = { campaign_id: id, total: 0, validated: 0, percent: 0, by_state: internals.zeros(testStates), by_outcome: internals.zeros([...detectionOutcomes, 'none']), by_tactic: [] };
        for (const row of rows) {
            if (row.dimension === 'state') {
                progress.by_state[row.key!] = row.total;
                progress.total += row.total;
                progress.validated += row.validated;
            }
            else if (row.dimension === 'outcome') {
                progress.by_outcome[row.key ?? 'none'] = row.total;
            }
            else if (row.dimension === 'tactic') {
                progress.by_tactic.push({ tactic: row.key, name: row.name, total: row.total, validated: row.validated });
            }
        }

        progress.percent = progress.total ? Math.round(progress.validated / progress.total * 1000) / 10 : 0;
        return progress;
    }

    // Oldest first. A membership change of a test the actor may not see keeps its row, without the test's id.
    async history(actor: Actor, id: string, list: ListQuery): Promise<Page<CampaignHistoryEntry>> {

        const { knex } = this.deps;
        await this.get(actor, id);
        const filtered = knex('campaign_history').where('campaign_id', id);
        const items = filtered.clone().select('*').orderBy([{ column: 'created_at' }, { column: 'seq' }]);
        const result = await pageOfQuery<Record<string, any>>(knex, items, filtered, list);
        const testIds = result.items.map((row) => row.test_id as string | null).filter((test): test is string => Boolean(test));
        const visible = new Set(testIds.length ? (await Test.query(knex).findByIds(testIds).select('tests.id').modify('visibleTo', actor)).map((test) => test.id) : []);
        return {
            ...result,
            items: result.items.map((row) => CampaignHistoryEntry.fromDatabaseJson(row.test_id && !visible.has(row.test_id) ? { ...row, test_id: null, changes: { test: 'not visible to you' } } : row))
        };
    }

    fromThreatActor(actor: Actor, actorId: string, options: GenerateOptions): Promise<Generated> {

        return withTransaction(this.deps.knex, undefined, async (trx) => {

            const threatActor = await ThreatActor.query(trx).findById(actorId);
            if (!threatActor) {
                throw new NotFoundError('Threat actor');
            }

            const techniques: { technique_id: string; name: string }[] = await trx('threat_actor_techniques as tat').join('techniques as t', 't.mitre_id', 'tat.technique_id')
                .where('tat.threat_actor_id', actorId).select('t.mitre_id as technique_id', 't.name').orderBy('t.mitre_id');
            if (!techniques.length) {
                throw new ConflictError(`${threatActor.name} uses no technique that Aegis knows: link techniques to it first`, 'actor_without_techniques');
            }

            const candidates = techniques.map((technique) => ({ technique_id: technique.technique_id, objective: `Emulate ${threatActor.name}: ${technique.name}` }));
            return await this.generate(trx, actor, { name: options.name ?? `${threatActor.name} emulation`, type: options.type ?? 'threat_actor', threat_actor_id: actorId }, candidates, options);
        });
    }

    // The body is an ATT&CK Navigator layer (heatmap's parser): one test per enabled technique it lists
    fromLayer(actor: Actor, body: unknown, options: GenerateOptions & { min_score?: number }): Promise<Generated> {

        const layer = parseNavigatorLayer(body, []);
        const candidates = new Map<string, Candidate>();
        for (const technique of layer.techniques) {
            const known = candidates.get(technique.technique_id);
            const skip: Candidate['skip'] =
                !technique.enabled ? { reason: 'disabled', detail: 'Disabled in the layer' } :
                    options.min_score !== undefined && (technique.score ?? -Infinity) < options.min_score ? { reason: 'score', detail: `Score ${technique.score ?? 'none'} is below ${options.min_score}` } :
                        undefined;
            // A technique listed under several tactics is one test; kept when any of its entries is kept
            if (!known || (known.skip && !skip)) {
                candidates.set(technique.technique_id, { technique_id: technique.technique_id, objective: `Listed in the ATT&CK Navigator layer "${layer.name || 'unnamed'}"${technique.comment ? `: ${technique.comment}` : ''}`.slice(0, 10_000), ...skip ? { skip } : {} });
            }
        }

        return withTransaction(this.deps.knex, undefined, (trx) => this.generate(trx, actor, { name: options.name ?? (layer.name || 'Navigator layer campaign'), type: options.type ?? 'purple_team' }, [...candidates.values()], options));
    }

    private async generate(trx: Knex.Transaction, actor: Actor, base: Pick<CampaignCreate, 'name' | 'type' | 'threat_actor_id'>, candidates: Candidate[], options: GenerateOptions): Promise<Generated> {

        const ids = candidates.map((candidate) => candidate.technique_id);
        const rows: { mitre_id: string; name: string; platforms: string[]; coverage_status: string; revoked: boolean; deprecated: boolean }[] = ids.length ?
            await trx('techniques').whereIn('mitre_id', ids).select('mitre_id', 'name', 'platforms', 'coverage_status', 'revoked', 'deprecated') : [];
        const known = new Map(rows.map((row) => [row.mitre_id, row]));

        const skipped: Generated['skipped'] = [];
        const kept: (Candidate & { name: string; platform: string | null })[] = [];
        for (const candidate of candidates) {
            const technique = known.get(candidate.technique_id);
            const overlap = technique?.platforms.filter((item) => options.platforms?.includes(item)) ?? [];
            const skip: Candidate['skip'] = candidate.skip ??
                (!technique ? { reason: 'unknown_technique', detail: 'Not in the ATT&CK catalogue: import ATT&CK or create the custom technique' } :
                    technique.revoked ? { reason: 'revoked', detail: 'Revoked by MITRE' } :
                        technique.deprecated ? { reason: 'deprecated', detail: 'Deprecated by MITRE' } :
                            options.platforms && !overlap.length ? { reason: 'platform', detail: `Runs on ${technique.platforms.join(', ') || 'no listed platform'}, not on ${options.platforms.join(', ')}` } :
                                options.coverage && !options.coverage.includes(technique.coverage_status as never) ? { reason: 'coverage', detail: `Coverage is ${technique.coverage_status}` } :
                                    undefined);
            if (skip) {
                skipped.push({ technique_id: candidate.technique_id, ...skip });
            }
            else {
                kept.push({ ...candidate, name: technique!.name, platform: overlap[0] ?? null });
            }
        }

        if (!kept.length) {
            throw new ValidationError(`No technique is left to test once ${skipped.length} were skipped (${[...new Set(skipped.map((item) => item.reason))].join(', ')}): widen the filters`, ['platforms', 'coverage'], 'nothing_to_test');
        }

        const campaign = await this.create(actor, { ...base, description: options.description ?? null, blind: options.blind ?? false, start_date: options.start_date ?? null, end_date: options.end_date ?? null }, { trx });
        const templates = await this.bestTemplates(trx, actor, kept.map((item) => item.technique_id), options.platforms);

        // A few statements whatever the number of techniques: one batch of plain drafts, and one from-template call per
        // template and platform (a template copies itself onto exactly the techniques that chose it)
        const tests = new Map<string, Test>();
        const plain = kept.filter((item) => !templates.has(item.technique_id));
        const made = await this.deps.tests.createMany(actor, plain.map((item) => ({ title: `${item.technique_id} ${item.name}`.slice(0, 300), objective: item.objective, technique_id: item.technique_id, platform: item.platform })), { trx });
        made.forEach((test) => tests.set(test.technique_id, test));

        const groups = new Map<string, { template: string; platform: string | null; techniques: string[] }>();
        for (const item of kept.filter((entry) => templates.has(entry.technique_id))) {
            const key = `${templates.get(item.technique_id)} ${item.platform ?? ''}`;
            const group = groups.get(key) ?? { template: templates.get(item.technique_id)!, platform: item.platform, techniques: [] };
            group.techniques.push(item.technique_id);
            groups.set(key, group);
        }

        for (const group of groups.values()) {
            const { items } = await this.deps.tests.fromTemplate(actor, { template_ids: [group.template], technique_ids: group.techniques, ...group.platform ? { overrides: { platform: group.platform } } : {} }, { trx });
            items.forEach((test) => tests.set(test.technique_id, test));
        }

        const created: Generated['created'] = kept.map((item) => {

            const test = tests.get(item.technique_id)!;
            return { test_id: test.id, technique_id: item.technique_id, title: test.title, template_id: templates.get(item.technique_id) ?? null };
        });

        await this.join(trx, actor, campaign, created.map((item) => item.test_id));
        await this.deps.audit.record(trx, actor, { action: 'campaign.generate', entity_type: 'campaign', entity_id: campaign.id, details: { created: created.length, skipped: skipped.length, with_template: created.filter((item) => item.template_id).length } });
        return { campaign: await this.get(actor, campaign.id, { trx }), created, skipped };
    }

    // Per technique, the template that fits best: one on a requested platform (when platforms are asked for, only
    // those or templates for no platform), then the most specific (fewest techniques), hand-written before imported,
    // the most recently updated
    private async bestTemplates(trx: Knex.Transaction, actor: Actor, techniqueIds: string[], platforms: string[] | undefined): Promise<Map<string, string>> {

        const query = TestTemplate.query(trx).modify('visibleTo', actor)
            .joinRaw('join unnest(?::text[]) as wanted(id) on test_templates.technique_ids @> array[wanted.id]', [techniqueIds])
            .select(TestTemplate.raw('distinct on (wanted.id) wanted.id as technique_id'), 'test_templates.id as template_id')
            .orderByRaw('wanted.id, (test_templates.platforms && ?::text[]) desc, cardinality(test_templates.technique_ids), (test_templates.source = \'manual\') desc, test_templates.updated_at desc, test_templates.id', [platforms ?? []]);
        if (platforms) {
            query.whereRaw('(test_templates.platforms && ?::text[] or cardinality(test_templates.platforms) = 0)', [platforms]);
        }

        const rows = await query.castTo<{ technique_id: string; template_id: string }[]>() as unknown as { technique_id: string; template_id: string }[];
        return new Map(rows.map((row) => [row.technique_id, row.template_id]));
    }

    // The memberships and their history rows, in bulk
    private async join(trx: Knex.Transaction, actor: Actor, campaign: Campaign, testIds: string[]): Promise<CampaignTest[]> {

        if (!testIds.length) {
            return [];
        }

        const memberships = await CampaignTest.query(trx).insert(testIds.map((test_id) => ({ campaign_id: campaign.id, test_id, added_by: actor.id }))).returning('*') as unknown as CampaignTest[];
        await CampaignHistoryEntry.query(trx).insert(testIds.map((test_id) => ({ campaign_id: campaign.id, actor_id: actor.id, actor_role: actor.role, action: 'add-test', test_id, changes: {} })));
        await this.deps.audit.record(trx, actor, { action: 'campaign.add-test', entity_type: 'campaign', entity_id: campaign.id, details: { test_ids: testIds.slice(0, 100), count: testIds.length } });
        return memberships;
    }

    private lock(trx: Knex.Transaction, id: string): Promise<Campaign> {

        return lockOr404(Campaign.query(trx).findById(id), 'Campaign');
    }

    private async lockFor(trx: Knex.Transaction, id: string, action: CampaignEditAction): Promise<Campaign> {

        const campaign = await this.lock(trx, id);
        if (!editAllowed(action, campaign.status)) {
            throw internals.frozen(action, campaign.status);
        }

        return campaign;
    }

    private async patch(trx: Knex.Transaction, actor: Actor, campaign: Campaign, action: 'update' | 'schedule', changes: Record<string, unknown>): Promise<Campaign> {

        const diff = internals.diff(campaign as unknown as Record<string, unknown>, changes);
        if (Object.keys(diff).length) {
            await campaign.$patchReturning(trx, { ...changes, version: campaign.version + 1 } as Partial<Campaign>);
            await this.record(trx, actor, campaign, action, { changes: diff });
        }

        return await this.get(actor, campaign.id, { trx });
    }

    private async checkThreatActor(trx: Knex.Transaction, id: unknown): Promise<void> {

        if (typeof id === 'string' && !await ThreatActor.query(trx).findById(id)) {
            throw new ValidationError('threat_actor_id names no threat actor', ['threat_actor_id'], 'invalid_reference');
        }
    }

    // The history row and the audit row of a change, in its transaction
    private async record(trx: Knex.Transaction, actor: Actor, campaign: Campaign, action: string, entry: { from?: CampaignStatus; to?: CampaignStatus; changes?: Changes; test_id?: string }): Promise<void> {

        await CampaignHistoryEntry.query(trx).insert({
            campaign_id: campaign.id,
            actor_id: actor.id,
            actor_role: actor.role,
            action,
            from_status: entry.from ?? null,
            to_status: entry.to ?? (action === 'create' ? campaign.status : null),
            test_id: entry.test_id ?? null,
            changes: entry.changes ?? {}
        });

        await this.deps.audit.record(trx, actor, {
            action: `campaign.${action}`,
            entity_type: 'campaign',
            entity_id: campaign.id,
            details: { ...(entry.from ? { from: entry.from, to: entry.to } : {}), ...(entry.changes ? { fields: Object.keys(entry.changes) } : {}), ...(entry.test_id ? { test_id: entry.test_id } : {}) }
        });
    }
}

