import * as Crypto from 'crypto';

import type { Knex } from 'knex';

import { ConflictError, InvalidTransitionError, NotFoundError, ValidationError } from '../errors';
import { Test, TestTemplate, TestTimelineEntry, User, type AttackResult, type DataClassification, type Priority, type RemediationStatus } from '../models';
import { Access, Role, blindFields, blindTo, hidesRedFrom, type Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404, timelineRow, withRecords, withTransaction, writeRecords, type ChangeOptions, type RecordRows } from './changes';
import type { CoverageService } from './coverage';
import { checkDetectionReferences, recordTestValidations, writeTestDetections } from './detection-hooks';
import type { EventsService, DomainEvent, RemediationSource, StoredEvent } from './events';
import { likePattern, page, type ListQuery, type Page } from './lists';
import type { NotificationCreate, NotificationsService } from './notifications';
import { visibleTestTotal } from './test-counts';
import {
    applyTimer, decide, deriveDetection, detectedBefore, edits, incompleteDetections, lifecycle,
    type Audience, type Detection, type EditAction, type Refusal, type TestAction, type TestState
} from './test-lifecycle';


export interface TestGeneral {
    title?: string;
    objective?: string | null;
    description?: string | null;
    technique_id?: string;
    platform?: string | null;
    priority?: Priority;
    tags?: string[];
    red_assignee_id?: string | null;
    blue_assignee_id?: string | null;
    expected_outcome?: string | null;
    expected_detection_asset_ids?: string[];
}

export interface TestCreate extends TestGeneral {
    template_id?: string;
    retest_of_id?: string;
}

export type TestUpdate = TestGeneral;

export interface RedUpdate {
    procedure?: string | null;
    tool?: string | null;
    command?: string | null;
    target_host?: string | null;
    executed_at?: Date | null;
    attack_result?: AttackResult | null;
    red_notes?: string | null;
}

export interface BlueUpdate {
    detections?: Detection[];
    blue_notes?: string | null;
}

export interface RemediationUpdate {
    remediation_status?: RemediationStatus;
    remediation_notes?: string | null;
    remediation_owner_id?: string | null;
    remediation_due?: string | null;
}

export interface ClassificationUpdate {
    data_classification: DataClassification;
}

export interface TransitionInput {
    approved?: boolean;
    comment?: string;
}

export interface FromTemplate {
    template_ids: string[];
    technique_ids?: string[];
    overrides?: Omit<TestGeneral, 'technique_id' | 'objective' | 'description' | 'expected_detection_asset_ids'>;
}

export interface TestFilters extends ListQuery {
    state?: TestState | TestState[];
    technique_id?: string;
    campaign_id?: string;
    assigned_to?: string;
    platform?: string;
    priority?: Priority;
    tag?: string;
    red_assignee_id?: string;
    blue_assignee_id?: string;
    remediation_status?: RemediationStatus;
    created_from?: Date;
    created_to?: Date;
    search?: string;
}

type Changes = Record<string, { from: unknown; to: unknown }>;


const internals = {
    techniqueId: /^[TX]\d{4}(\.\d{3})?$/i,

    generalFields: ['title', 'objective', 'description', 'technique_id', 'platform', 'priority', 'tags', 'red_assignee_id', 'blue_assignee_id', 'expected_outcome', 'expected_detection_asset_ids'] as const,

    comparable: (value: unknown): unknown => (value instanceof Date ? value.toISOString() : value === '' ? null : value),

    // Field-by-field differences, for the timeline and the audit row
    diff: (current: Record<string, unknown>, next: Record<string, unknown>): Changes => {

        const changes: Changes = {};
        for (const [field, value] of Object.entries(next)) {
            const from = internals.comparable(current[field]);
            const to = internals.comparable(value);
            if (JSON.stringify(from) !== JSON.stringify(to)) {
                changes[field] = { from: from ?? null, to: to ?? null };
            }
        }

        return changes;
    },

    empty: (value: string | null | undefined) => (value === '' ? null : value),

    refusal: (action: string, state: string, refusal: Refusal): Error => {

        switch (refusal.kind) {
            case 'state':
                return new InvalidTransitionError(action, state);
            case 'conflict':
                return new ConflictError(refusal.message, refusal.code);
            default:
                return new ValidationError(`Missing before ${action}: ${refusal.fields.join(', ')}`, refusal.fields, 'missing_fields');
        }
    },

    notificationType: (action: TestAction, to: TestState): string => {

        if (to === 'validated' || to === 'rejected') {
            return `test.${to}`;
        }

        return action === 'submit-blue' ? 'test.review' : 'test.assigned';
    }
};


export class TestsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; events: EventsService; coverage: CoverageService; notifications: NotificationsService }) { }

    async list(actor: Actor, filters: TestFilters): Promise<Page<Test>> {

        const query = Test.query(this.deps.knex).modify('visibleTo', actor);
        const states = filters.state === undefined ? [] : [filters.state].flat();
        if (states.length) {
            query.whereIn('state', states);
        }

        for (const field of ['technique_id', 'platform', 'priority', 'red_assignee_id', 'blue_assignee_id', 'remediation_status'] as const) {
            if (filters[field] !== undefined) {
                query.where(field, filters[field]);
            }
        }

        if (filters.assigned_to) {
            const user = filters.assigned_to === 'me' ? actor.id : filters.assigned_to;
            query.where((q) => q.where('red_assignee_id', user).orWhere('blue_assignee_id', user));
        }

        // Membership as the test row carries it (campaign_tests keeps it, migrations/20261207010000_campaigns.ts)
        if (filters.campaign_id) {
            query.whereRaw('tests.campaign_ids @> array[?]::uuid[]', [filters.campaign_id]);
        }

        if (filters.tag) {
            query.whereRaw('tags @> ?::text[]', [[filters.tag]]);
        }

        if (filters.created_from) {
            query.where('created_at', '>=', filters.created_from);
        }

        if (filters.created_to) {
            query.where('created_at', '<', filters.created_to);
        }

        // The title by substring (trigram index); a technique id as such too, only when the text is one (an OR on
        // every search would keep the planner off the trigram index)
        if (filters.search) {
            const search = filters.search;
            query.where((q) => {

                q.whereILike('title', likePattern(search));
                if (internals.techniqueId.test(search)) {
                    q.orWhere('technique_id', search.toUpperCase());
                }
            });
        }

        // Unfiltered, or filtered only by state and technique (the counters' own keys), the total is the actor's visible
        // count from the test counters: counting a million rows per page would cost more than the page
        // (docs/dashboards.md "Cost at a million tests"); any other filter counts its filtered query
        const counted = Object.keys(filters).every((key) => ['limit', 'offset', 'sort', 'order', 'state', 'technique_id'].includes(key) || filters[key as keyof TestFilters] === undefined);
        const only = { states, ...filters.technique_id !== undefined ? { technique_id: filters.technique_id } : {} };
        const result = await page(query, filters, { sort: 'created_at', order: 'desc', ...counted ? { count: () => visibleTestTotal(this.deps.knex, actor, only) } : {} });
        result.items.forEach((test) => blindTo(actor, test));
        return result;
    }

    async get(actor: Actor, id: string): Promise<Test> {

        const test = await Test.query(this.deps.knex).findById(id).modify('visibleTo', actor);
        if (!test) {
            throw new NotFoundError('Test');
        }

        return blindTo(actor, test);
    }

    // Visible to the actor and locked for the rest of the transaction: concurrent changes to one test serialise
    lock(trx: Knex.Transaction, actor: Actor, id: string): Promise<Test> {

        return lockOr404(Test.query(trx).findById(id).modify('visibleTo', actor), 'Test');
    }

    async create(actor: Actor, input: TestCreate, options: ChangeOptions = {}): Promise<Test> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            let base: Partial<Test> = {};
            if (input.retest_of_id) {
                const original = await Test.query(trx).findById(input.retest_of_id).modify('visibleTo', actor);
                if (!original) {
                    throw new ValidationError('The test to retest does not exist', ['retest_of_id'], 'invalid_reference');
                }

                if (original.state !== 'validated' && original.state !== 'rejected') {
                    throw new ConflictError('Only a validated or rejected test can be retested', 'retest_not_allowed');
                }

                base = { ...Object.fromEntries(internals.generalFields.map((field) => [field, original[field]])), data_classification: original.data_classification, template_id: original.template_id };
            }

            if (input.template_id && !await TestTemplate.query(trx).findById(input.template_id)) {
                throw new ValidationError('The template does not exist', ['template_id'], 'invalid_reference');
            }

            const row = { ...base, ...this.clean(input) };
            await this.checkTechniques(trx, [row.technique_id!]);
            await this.checkAssignees(trx, row);

            // The id is chosen here so that the test, its timeline row and its audit row are one statement; every new
            // test is a draft (the column's default)
            const id = Crypto.randomUUID();
            const records = this.records(actor, { id, state: 'draft' }, 'create', { changes: internals.diff({}, row) });
            return await withRecords(trx, Test.query(trx), records).insert({ ...row, id, created_by: actor.id } as Partial<Test>).returning('*') as unknown as Test;
        });
    }

    async fromTemplate(actor: Actor, input: FromTemplate, options: ChangeOptions = {}): Promise<{ items: Test[] }> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const templates = await TestTemplate.query(trx).findByIds(input.template_ids);
            const missing = input.template_ids.filter((id) => !templates.some((template) => template.id === id));
            if (missing.length) {
                throw new NotFoundError('Test template', { ids: missing });
            }

            // A template copied from a test that was classified since passes the test's classification on with the copy
            const sourceIds = templates.map((template) => template.source_test_id).filter((id): id is string => Boolean(id));
            const sources = new Map((sourceIds.length ? await Test.query(trx).findByIds(sourceIds).select('id', 'data_classification') : []).map((test) => [test.id, test.data_classification]));

            const rows: Partial<Test>[] = [];
            for (const id of input.template_ids) {
                const template = templates.find((item) => item.id === id)!;
                const inherited = sources.get(template.source_test_id!);
                const classification = inherited === 'confidential' || inherited === 'restricted' ? { data_classification: inherited } : {};
                const techniques = input.technique_ids ? template.technique_ids.filter((technique) => input.technique_ids!.includes(technique)) : template.technique_ids;
                if (!techniques.length) {
                    throw new ValidationError(`Template ${template.name} names none of the requested techniques`, ['technique_ids'], 'no_technique');
                }

                const overrides = input.overrides ?? {};
                for (const technique of techniques) {
                    rows.push(this.clean({
                        title: overrides.title ?? (techniques.length > 1 ? `${template.name} (${technique})` : template.name),
                        objective: template.objective,
                        description: template.description,
                        technique_id: technique,
                        platform: overrides.platform !== undefined ? overrides.platform : template.platforms[0] ?? null,
                        priority: overrides.priority ?? template.priority,
                        tags: [...new Set([...template.tags, ...overrides.tags ?? []])],
                        red_assignee_id: overrides.red_assignee_id ?? null,
                        blue_assignee_id: overrides.blue_assignee_id ?? null,
                        expected_outcome: overrides.expected_outcome ?? template.expected_outcome ?? template.expected_detection
                    }) as Partial<Test>);
                    Object.assign(rows[rows.length - 1]!, { template_id: template.id, procedure: template.procedure, tool: template.tool, command: template.command, ...classification });
                }
            }

            await this.checkTechniques(trx, rows.map((row) => row.technique_id!));
            await this.checkAssignees(trx, rows[0]!);
            return { items: await this.insertAll(trx, actor, rows) };
        });
    }

    // Many plain drafts (no template, no retest) in one transaction and a few statements, whatever their number
    // (campaigns generated from a threat actor or a Navigator layer)
    async createMany(actor: Actor, inputs: Omit<TestCreate, 'template_id' | 'retest_of_id'>[], options: ChangeOptions = {}): Promise<Test[]> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const rows = inputs.map((input) => this.clean(input) as Partial<Test>);
            await this.checkTechniques(trx, rows.map((row) => row.technique_id!));
            for (const row of rows.filter((item) => item.red_assignee_id || item.blue_assignee_id)) {
                await this.checkAssignees(trx, row);
            }

            return await this.insertAll(trx, actor, rows);
        });
    }

    update(actor: Actor, id: string, input: TestUpdate, options: ChangeOptions = {}): Promise<Test> {

        return this.edit(actor, id, 'update', this.clean(input), options, async (trx, changes) => {

            if (changes.technique_id) {
                await this.checkTechniques(trx, [changes.technique_id as string]);
            }

            await this.checkAssignees(trx, changes);
        });
    }

    updateRed(actor: Actor, id: string, input: RedUpdate, options: ChangeOptions = {}): Promise<Test> {

        // A reopened test keeps its detections: the execution cannot move after the detection time they recorded
        return this.edit(actor, id, 'red', this.clean(input), options, (_trx, changes, test) => {

            const executed = changes.executed_at as Date | null | undefined;
            if (executed && test.detected_at && executed.getTime() > test.detected_at.getTime()) {
                throw new ValidationError(`executed_at is after the recorded detection time (${test.detected_at.toISOString()})`, ['executed_at'], 'detected_before_executed');
            }
        });
    }

    updateBlue(actor: Actor, id: string, input: BlueUpdate, options: ChangeOptions = {}): Promise<Test> {

        // detection_outcome and detected_at follow from the detections, never entered (domain.md)
        const changes: Record<string, unknown> = this.clean(input);
        if (input.detections) {
            Object.assign(changes, deriveDetection(input.detections));
        }

        // Nothing is detected before it happens: a negative time to detect is a typo or a wrong time zone
        return this.edit(actor, id, 'blue', changes, options, async (trx, _changes, test) => {

            const early = test.executed_at ? detectedBefore(input.detections ?? [], test.executed_at) : [];
            if (early.length) {
                throw new ValidationError(`A detection time is earlier than executed_at (${test.executed_at!.toISOString()})`, early, 'detected_before_executed');
            }

            // detection (issue 11): each detection is also a row, in this transaction
            if (input.detections) {
                await checkDetectionReferences(trx, input.detections);
                await writeTestDetections(trx, id, input.detections);
            }
        });
    }

    // jira (issue 14): a change of the remediation fields emits test.remediation_changed (Jira comments, docs/jira.md);
    // `source` says who made it (the Jira sync and the retest loop call this too)
    async updateRemediation(actor: Actor, id: string, input: RemediationUpdate, options: ChangeOptions & { source?: RemediationSource } = {}): Promise<Test> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            let before: { status: string; version: number } | undefined;
            const updated = await this.edit(actor, id, 'remediation', this.clean(input), { trx }, (_trx, _changes, test) => {

                before = { status: test.remediation_status, version: test.version };
            });

            if (before && updated.version !== before.version) {
                const fields = Object.keys(input).filter((field) => (input as Record<string, unknown>)[field] !== undefined);
                await this.deps.events.emit(trx, actor, [{ type: 'test.remediation_changed', entity_type: 'test', entity_id: id, payload: { test_id: id, from: before.status, to: updated.remediation_status, fields, source: options.source ?? 'aegis' } }]);
            }

            return updated;
        });
    }

    setClassification(actor: Actor, id: string, input: ClassificationUpdate, options: ChangeOptions = {}): Promise<Test> {

        return this.edit(actor, id, 'classification', { ...input }, options);
    }

    async transition(actor: Actor, id: string, action: TestAction, input: TransitionInput = {}, options: ChangeOptions = {}): Promise<Test> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const test = await this.lock(trx, actor, id);
            const transition = lifecycle[action];
            const incomplete = incompleteDetections(test.detections);
            const present = [
                ...(test.executed_at ? ['executed_at'] : []),
                ...(test.attack_result ? ['attack_result'] : []),
                ...(test.detections.length && !incomplete.length ? ['detections'] : [])
            ];

            const outcome = decide(action, test, { present, approved: input.approved });
            if (!outcome.ok) {
                const refusal = outcome.refusal.kind === 'missing' && outcome.refusal.fields.includes('detections') && incomplete.length ?
                    { kind: 'missing' as const, fields: [...outcome.refusal.fields.filter((field) => field !== 'detections'), ...incomplete] } :
                    outcome.refusal;
                throw internals.refusal(action, test.state, refusal);
            }

            const now = new Date();
            const from = test.state;
            const to = outcome.to;
            const patch: Partial<Test> = { ...applyTimer(transition.timer, test, now), state: to, version: test.version + 1 };
            const effects: readonly string[] = transition.effects;

            if (effects.includes('record-red-decision')) {
                Object.assign(patch, { red_approved: input.approved, red_validated_by: actor.id, red_validated_at: now, red_validation_comment: input.comment || null });
            }

            if (effects.includes('record-blue-decision')) {
                Object.assign(patch, { blue_approved: input.approved, blue_validated_by: actor.id, blue_validated_at: now, blue_validation_comment: input.comment || null });
            }

            if (effects.includes('clear-decisions')) {
                Object.assign(patch, {
                    red_approved: null, red_validated_by: null, red_validated_at: null, red_validation_comment: null,
                    blue_approved: null, blue_validated_by: null, blue_validated_at: null, blue_validation_comment: null,
                    validated_at: null, rejected_at: null
                });
            }

            if (to === 'validated') {
                patch.validated_at = now;
            }

            if (to === 'rejected') {
                patch.rejected_at = now;
            }

            const events: DomainEvent[] = [];
            if (from !== to && effects.includes('emit-state-changed')) {
                events.push({ type: 'test.state_changed', entity_type: 'test', entity_id: id, payload: { test_id: id, action, from, to, technique_id: test.technique_id } });
            }

            if (to === 'validated' && effects.includes('emit-validated')) {
                events.push({ type: 'test.validated', entity_type: 'test', entity_id: id, payload: { test_id: id, technique_id: test.technique_id, detection_outcome: test.detection_outcome } });
            }

            const records = this.records(actor, test, action, { from, to, comment: input.comment, details: input.approved === undefined ? {} : { approved: input.approved } }, events);
            const updated = await withRecords(trx, test.$query(trx), records).patch(patch).returning('*') as unknown as Test;
            const answer = blindTo(actor, updated.$clone());

            // detection (issue 11): the validations this test proves, in its transaction (read your own writes)
            if (to === 'validated') {
                await recordTestValidations(trx, actor, updated);
            }

            if (to === 'validated' && effects.includes('recompute-coverage')) {
                await this.deps.coverage.recompute(trx, actor, [test.technique_id]);
            }

            return answer;
        });
    }

    async timeline(actor: Actor, id: string, list: ListQuery): Promise<Page<TestTimelineEntry>> {

        const test = await Test.query(this.deps.knex).findById(id).modify('visibleTo', actor);
        if (!test) {
            throw new NotFoundError('Test');
        }

        const result = await page(TestTimelineEntry.query(this.deps.knex).where('test_id', id), list, { sort: 'created_at', order: 'asc' });
        if (hidesRedFrom(actor, test)) {
            for (const entry of result.items) {
                entry.changes = Object.fromEntries(Object.entries(entry.changes).filter(([field]) => !(blindFields as readonly string[]).includes(field)));
            }
        }

        return result;
    }

    // From any member: up to the first test, then every retest of it; oldest first, only what the actor may see
    async retestChain(actor: Actor, id: string): Promise<{ items: Test[] }> {

        await this.get(actor, id);
        const { rows } = await this.deps.knex.raw<{ rows: { id: string }[] }>(`
            with recursive up as (
                select id, retest_of_id, 0 as depth from tests where id = ?
                union all
                select t.id, t.retest_of_id, up.depth + 1 from tests t join up on t.id = up.retest_of_id where up.depth < 10000
            ),
            root as (select id from up order by depth desc limit 1),
            down as (
                select id from root
                union all
                select t.id from tests t join down on t.retest_of_id = down.id
            )
            select id from down`, [id]);

        const items = await Test.query(this.deps.knex).findByIds(rows.map((row) => row.id)).modify('visibleTo', actor).orderBy([{ column: 'created_at' }, { column: 'id' }]);
        return { items: items.map((test) => blindTo(actor, test)) };
    }

    // The shared path of every field edit: lock, check the state rule of the table, write, timeline, audit
    private async edit(actor: Actor, id: string, kind: EditAction, changes: Record<string, unknown>, options: ChangeOptions, check?: (trx: Knex.Transaction, changes: Record<string, unknown>, test: Test) => Promise<void> | void): Promise<Test> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const test = await this.lock(trx, actor, id);
            const rule = edits[kind];
            if (!(rule.states as readonly string[]).includes(test.state)) {
                throw new ConflictError(`Cannot edit ${kind === 'update' ? 'the general' : kind} fields of a test in state ${test.state}`, 'invalid_state_transition', { action: kind, state: test.state });
            }

            await check?.(trx, changes, test);
            const diff = internals.diff(test as unknown as Record<string, unknown>, changes);
            if (!Object.keys(diff).length) {
                return blindTo(actor, test);
            }

            if (diff.detections) {
                diff.detections = { from: test.detections, to: changes.detections };
            }

            const records = this.records(actor, test, `update-${kind === 'update' ? 'general' : kind}`, { changes: diff });
            const updated = await withRecords(trx, test.$query(trx), records).patch({ ...changes, version: test.version + 1 } as Partial<Test>).returning('*') as unknown as Test;
            return blindTo(actor, updated);
        });
    }

    // New drafts in bulk: one INSERT of the tests, one of their timeline rows and audit rows
    private async insertAll(trx: Knex.Transaction, actor: Actor, rows: Partial<Test>[]): Promise<Test[]> {

        if (!rows.length) {
            return [];
        }

        const items = await Test.query(trx).insert(rows.map((row) => ({ ...row, created_by: actor.id }))).returning('*') as unknown as Test[];
        const changes = rows.map((row) => internals.diff({}, row as Record<string, unknown>));
        await writeRecords(trx, [
            { table: 'test_timeline', rows: items.map((test, i) => timelineRow(actor, test.id, { action: 'create', to_state: test.state, changes: changes[i]! })) },
            {
                table: 'audit_logs',
                rows: this.deps.audit.rows(actor, items.map((test, i) => ({
                    action: 'test.create', entity_type: 'test', entity_id: test.id,
                    details: { ...(rows[i]!.template_id ? { template_id: rows[i]!.template_id } : {}), fields: Object.keys(changes[i]!) }
                })))
            }
        ]);
        return items;
    }

    // The timeline row, the audit row and the events of a change, written by the change's own statement (withRecords)
    private records(actor: Actor, test: Pick<Test, 'id' | 'state'>, action: string, entry: { from?: TestState; to?: TestState; changes?: Changes; comment?: string | undefined; details?: Record<string, unknown> }, events: DomainEvent[] = []): RecordRows[] {

        return [
            {
                table: 'test_timeline',
                rows: [timelineRow(actor, test.id, {
                    action,
                    from_state: entry.from ?? null,
                    to_state: entry.to ?? (action === 'create' ? test.state : null),
                    changes: entry.changes ?? {},
                    comment: entry.comment || null
                })]
            },
            {
                table: 'audit_logs',
                rows: this.deps.audit.rows(actor, {
                    action: `test.${action}`,
                    entity_type: 'test',
                    entity_id: test.id,
                    details: { ...entry.details, ...(entry.from ? { from: entry.from, to: entry.to } : {}), ...(entry.changes ? { fields: Object.keys(entry.changes) } : {}) }
                })
            },
            { table: 'domain_events', rows: this.deps.events.rows(actor, events) }
        ];
    }

    // The notifications consumer's handler (worker/consumers), after the commit, in the relay's transaction: the
    // users who act next are told of a state change. Decisions are announced once the test is decided: an approval
    // that waits for the other lead changes no state and emits nothing. The test is read again, as it is now.
    async announce(trx: Knex.Transaction, event: Pick<StoredEvent<'test.state_changed'>, 'actor_id' | 'payload'>): Promise<void> {

        const { test_id: id, action, to } = event.payload;
        const test = await Test.query(trx).findById(id);
        if (!test) {
            return;
        }

        const users = new Set<string>();
        const leadsOf = async (role: Role) => (await User.query(trx).select('id').where({ role, is_active: true })).map((user) => user.id);
        for (const audience of lifecycle[action].notify as readonly Audience[]) {
            const ids =
                audience === 'red_assignee' ? (test.red_assignee_id ? [test.red_assignee_id] : await leadsOf(Role.redLead)) :
                    audience === 'blue_assignee' ? (test.blue_assignee_id ? [test.blue_assignee_id] : await leadsOf(Role.blueLead)) :
                        audience === 'red_leads' ? await leadsOf(Role.redLead) :
                            audience === 'blue_leads' ? await leadsOf(Role.blueLead) :
                                [test.red_assignee_id, test.blue_assignee_id].filter((user): user is string => Boolean(user));

            ids.forEach((user) => users.add(user));
        }

        if (event.actor_id) {
            users.delete(event.actor_id);
        }

        const type = internals.notificationType(action, to);
        const title = `${test.title}: ${action.replace('-', ' ')} (${to.replace('_', ' ')})`.slice(0, 300);
        const notifications: NotificationCreate[] = [...users].map((user_id) => ({ user_id, type, title, entity_type: 'test', entity_id: test.id }));
        await this.deps.notifications.notify(trx, notifications);
    }

    // Revoked techniques answer 409 naming their successor; unknown ones 400
    private async checkTechniques(trx: Knex.Transaction, ids: string[]): Promise<void> {

        const wanted = [...new Set(ids)];
        const rows: { mitre_id: string; revoked: boolean; revoked_by_id: string | null }[] = await trx('techniques').select('mitre_id', 'revoked', 'revoked_by_id').whereIn('mitre_id', wanted);
        const unknown = wanted.filter((id) => !rows.some((row) => row.mitre_id === id));
        if (unknown.length) {
            throw new ValidationError(`Unknown technique: ${unknown.join(', ')}`, ['technique_id'], 'unknown_technique');
        }

        const revoked = rows.find((row) => row.revoked);
        if (revoked) {
            throw new ConflictError(`Technique ${revoked.mitre_id} was revoked${revoked.revoked_by_id ? `; use ${revoked.revoked_by_id}` : ''}`, 'technique_revoked', { technique_id: revoked.mitre_id, revoked_by_id: revoked.revoked_by_id });
        }
    }

    // An assignee is an active user of that side (or an admin)
    private async checkAssignees(trx: Knex.Transaction, row: { red_assignee_id?: unknown; blue_assignee_id?: unknown }): Promise<void> {

        const sides = [['red_assignee_id', Access.red], ['blue_assignee_id', Access.blue]] as const;
        for (const [field, allowed] of sides) {
            const id = row[field];
            if (typeof id === 'string') {
                const user = await User.query(trx).findById(id).where('is_active', true);
                if (!user || !(allowed as readonly string[]).includes(user.role)) {
                    throw new ValidationError(`${field} must be an active ${field.startsWith('red') ? 'red' : 'blue'} team member`, [field], 'invalid_assignee');
                }
            }
        }
    }

    // Empty strings from forms mean "no value"
    private clean<T extends object>(input: T): Record<string, unknown> {

        return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined).map(([key, value]) => [key, typeof value === 'string' ? internals.empty(value) : value]));
    }
}
