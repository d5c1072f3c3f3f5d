import * as Crypto from 'crypto';

import type { Knex } from 'knex';
import { UniqueViolationError } from 'objection';

import { JiraClient, JiraError, type JiraClientOptions, type JiraIssueRef, type JiraStatus } from '../../integrations/jira';
import type { OutboundHttp } from '../../integrations/http';
import { ConflictError, NotConfiguredError, NotFoundError, UnauthorizedError, UpstreamError, ValidationError } from '../errors';
import type { Queue } from '../jobs';
import { LockKey } from '../locks';
import { Evidence, JiraComment, JiraIssue, JiraSyncRun, Technique, Test, User, type JiraSyncStatus, type JiraSyncTrigger } from '../models';
import { Role, systemActor, type Actor } from '../policy';
import type { JiraMappableStatus, JiraSettings } from '../settings';

import type { AuditService } from './audit';
import { appendTimeline, lockOr404, withTransaction, type ChangeOptions } from './changes';
import type { StoredEvent } from './events';
import { page, pageOfQuery, type ListQuery, type Page } from './lists';
import type { NotificationsService } from './notifications';
import type { SettingsService } from './settings';
import type { TestsService } from './tests';


export interface JiraOptions {
    publicUrl?: string | undefined;                 // AEGIS_PUBLIC_URL: the links back to Aegis in issues and comments
    client?: JiraClientOptions;                     // timeouts, the longest Retry-After waited in place, sleep (tests)
    staleRunMs?: number;                            // a queued or running run older than this was abandoned (a worker died)
    commentRetryBaseMs?: number;
    commentMaxAttempts?: number;
    webhookMaxBytes?: number;
}

export interface JiraSyncFilters extends ListQuery {
    status?: JiraSyncStatus;
    trigger?: JiraSyncTrigger;
}

export interface JiraIssueFilters extends ListQuery {
    status_category?: string;
    remediation_status?: string;
    failing?: boolean;
}

export interface ConnectionCheck {
    check: 'configuration' | 'reach' | 'credentials' | 'project' | 'issue_type';
    ok: boolean;
    message: string;
}

export interface ConnectionReport {
    ok: boolean;
    deployment: 'cloud' | 'data_center' | null;
    checks: ConnectionCheck[];
}

export type JiraLinkView = JiraIssue & { url: string | null };

export type JiraIssueRow = JiraLinkView & { test_title: string; technique_id: string; remediation_status: string };


const internals = {
    open: ['open', 'in_progress'],
    // A retest validated with one of these outcomes proves the fix; another outcome reopens an awaiting remediation
    detected: ['prevented', 'alerted', 'logged'],
    final: ['resolved', 'accepted_risk'],
    categories: { new: 'open', indeterminate: 'in_progress', done: 'awaiting_retest' } as Record<string, JiraMappableStatus>,
    overlapMinutes: 2,
    concurrency: 4,
    keysPerQuery: 50,
    maxBackoffMs: 6 * 3600_000,

    key: /^[A-Z][A-Z0-9_]{1,19}-\d{1,9}$/,

    // Constant-time comparison of two secrets of any length (the HMAC of each makes them equal-sized)
    same: (given: string, expected: string): boolean => {

        const a = Crypto.createHmac('sha256', 'aegis-jira').update(given).digest();
        const b = Crypto.createHmac('sha256', 'aegis-jira').update(expected).digest();
        return Crypto.timingSafeEqual(a, b);
    },

    wiki: (text: string): string => text.replace(/[{}[\]|]/g, (char) => `\\${char}`),

    reason: (err: unknown): string => {

        if (err instanceof JiraError || err instanceof ConflictError || err instanceof NotFoundError || err instanceof ValidationError) {
            return err.message.slice(0, 500);
        }

        return 'An unexpected error stopped this issue (the worker log has it)';
    },

    upstream: (err: unknown): Error => {

        if (err instanceof JiraError) {
            return err.kind === 'not_configured' ? new NotConfiguredError(err.message, 'jira_not_configured') : new UpstreamError(err.message, `jira_${err.kind}`);
        }

        return err as Error;
    }
};


// Jira remediation workflows (docs/jira.md): issues created or linked from tests whose remediation is open, the
// two-way sync (Jira statuses into remediation statuses by polling and by the inbound webhook, remediation changes
// into Jira comments), every sync run recorded. Jira is called through integrations/jira over the outbound client,
// never inside a transaction that has written anything.
export class JiraService {

    private readonly options: Required<Omit<JiraOptions, 'publicUrl' | 'client'>> & Pick<JiraOptions, 'publicUrl' | 'client'>;

    constructor(private readonly deps: { knex: Knex; audit: AuditService; tests: TestsService; notifications: NotificationsService; settings: SettingsService; outbound: OutboundHttp; queue: Queue; options?: JiraOptions | undefined }) {

        this.options = { staleRunMs: 30 * 60_000, commentRetryBaseMs: 30_000, commentMaxAttempts: 10, webhookMaxBytes: 256 * 1024, ...deps.options };
    }

    // --- configuration ------------------------------------------------------------------------------------------

    async testConnection(actor: Actor): Promise<ConnectionReport> {

        const settings = await this.deps.settings.get('jira');
        if (!settings) {
            return { ok: false, deployment: null, checks: [{ check: 'configuration', ok: false, message: 'Jira is not configured: set the jira setting (PUT /system/settings/jira)' }] };
        }

        const checks: ConnectionCheck[] = [];
        const done = (): ConnectionReport => ({ ok: checks.every((item) => item.ok), deployment: settings.deployment ?? 'cloud', checks });
        let client: JiraClient;
        try {
            client = this.client(settings, { retries: 0 });
            const me = await client.myself();
            checks.push({ check: 'reach', ok: true, message: `Jira at ${new URL(settings.url).origin} answered` });
            checks.push({ check: 'credentials', ok: true, message: `Signed in as ${String(me?.displayName ?? me?.name ?? me?.accountId ?? 'the configured account').slice(0, 200)}` });
        }
        catch (err) {
            const error = err instanceof JiraError ? err : new JiraError('unreachable', 'Jira could not be called');
            const reached = ['unauthorised', 'forbidden', 'rate_limited'].includes(error.kind);
            checks.push({ check: error.kind === 'not_configured' ? 'configuration' : 'reach', ok: reached, message: reached ? `Jira at ${new URL(settings.url).origin} answered` : error.message });
            if (reached) {
                checks.push({ check: 'credentials', ok: false, message: error.message });
            }

            return done();
        }

        if (!settings.project_key) {
            checks.push({ check: 'project', ok: false, message: 'No project_key in the jira setting: name the project issues are created in' });
            return done();
        }

        try {
            const project = await client.project(settings.project_key);
            checks.push({ check: 'project', ok: true, message: `Project ${settings.project_key} (${String(project?.name ?? '').slice(0, 200)}) found` });
            const type = settings.issue_type ?? 'Task';
            const types = Array.isArray(project?.issueTypes) ? project.issueTypes.map((item) => item?.name) : undefined;
            if (types && !types.some((name) => typeof name === 'string' && name.toLowerCase() === type.toLowerCase())) {
                checks.push({ check: 'issue_type', ok: false, message: `The project ${settings.project_key} has no issue type "${type}": choose one of ${types.filter((name) => typeof name === 'string').slice(0, 20).join(', ')}` });
            }
            else {
                checks.push({ check: 'issue_type', ok: true, message: `Issue type "${type}" exists` });
            }
        }
        catch (err) {
            checks.push({ check: 'project', ok: false, message: err instanceof JiraError ? err.message : 'The project could not be read' });
        }

        return done();
    }

    // --- links ------------------------------------------------------------------------------------------------

    async getLink(actor: Actor, testId: string): Promise<JiraLinkView> {

        const test = await Test.query(this.deps.knex).findById(testId).modify('visibleTo', actor).select('id');
        const link = test && await JiraIssue.query(this.deps.knex).findById(testId);
        if (!link) {
            throw new NotFoundError(test ? 'Jira issue of this test' : 'Test');
        }

        return this.view(link, await this.deps.settings.get('jira'));
    }

    // A new Jira issue from a test whose remediation is open (docs/jira.md: what the issue says). Creations for one
    // test serialise on an advisory lock held across the Jira call (an advisory lock takes no transaction id, so the
    // relay's horizon is not held back); the test is written after Jira answered.
    async createIssue(actor: Actor, testId: string, options: ChangeOptions = {}): Promise<JiraLinkView> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await trx.raw('select pg_advisory_xact_lock(?, hashtext(?))', [LockKey.jiraCreate, testId]);
            const test = await this.linkable(trx, actor, testId);
            const settings = await this.configured();
            if (!settings.project_key) {
                throw new NotConfiguredError('The jira setting has no project_key: name the project issues are created in (PUT /system/settings/jira)', 'jira_not_configured');
            }

            const fields = await this.issueFields(trx, settings, test);
            const client = this.client(settings);
            let created: { id: string; key: string };
            try {
                created = await client.createIssue(fields);
            }
            catch (err) {
                throw internals.upstream(err);
            }

            const fresh = await client.issue(created.key).catch(() => undefined);
            return await this.attach(trx, actor, test.id, { key: created.key, id: created.id, origin: 'created', issue: fresh }, settings);
        });
    }

    // Links an existing issue: it must exist in Jira (its status is read now) and be linked to no other test
    async linkIssue(actor: Actor, testId: string, key: string, options: ChangeOptions = {}): Promise<JiraLinkView> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await trx.raw('select pg_advisory_xact_lock(?, hashtext(?))', [LockKey.jiraCreate, testId]);
            const test = await this.linkable(trx, actor, testId);
            await this.notLinkedElsewhere(trx, key);
            const settings = await this.configured();
            let issue: JiraIssueRef;
            try {
                issue = await this.client(settings).issue(key);
            }
            catch (err) {
                if (err instanceof JiraError && err.kind === 'not_found') {
                    throw new ValidationError(err.message, ['key'], 'jira_issue_not_found');
                }

                throw internals.upstream(err);
            }

            return await this.attach(trx, actor, test.id, { key: issue.key ?? key, id: issue.id ?? null, origin: 'linked', issue }, settings);
        });
    }

    async unlink(actor: Actor, testId: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const test = await lockOr404(Test.query(trx).findById(testId).modify('visibleTo', actor), 'Test');
            if (!test.jira_issue_key) {
                throw new ConflictError('The test has no Jira issue to unlink', 'jira_not_linked');
            }

            const key = test.jira_issue_key;
            await test.$query(trx).patch({ jira_issue_key: null, version: test.version + 1 } as Partial<Test>);
            await JiraIssue.query(trx).deleteById(testId);
            await JiraComment.query(trx).where({ test_id: testId, status: 'pending' }).delete();
            await appendTimeline(trx, actor, testId, { action: 'jira-unlink', changes: { jira_issue_key: { from: key, to: null } } });
            await this.deps.audit.record(trx, actor, { action: 'test.jira_unlink', entity_type: 'test', entity_id: testId, details: { issue_key: key } });
        });
    }

    async issues(actor: Actor, filters: JiraIssueFilters): Promise<Page<JiraIssueRow>> {

        const { knex } = this.deps;
        const filtered = knex('jira_issues').join('tests', 'tests.id', 'jira_issues.test_id')
            .whereIn('jira_issues.test_id', Test.query(knex).modify('visibleTo', actor).select('tests.id').toKnexQuery())
            .modify((query) => {

                if (filters.status_category) {
                    query.where('jira_issues.status_category', filters.status_category);
                }

                if (filters.remediation_status) {
                    query.where('tests.remediation_status', filters.remediation_status);
                }

                if (filters.failing !== undefined) {
                    query[filters.failing ? 'whereNotNull' : 'whereNull']('jira_issues.last_error');
                }
            });

        const sort = filters.sort ?? 'updated_at';
        const items = filtered.clone().select('jira_issues.*', 'tests.title as test_title', 'tests.technique_id', 'tests.remediation_status')
            .orderBy(sort === 'issue_key' ? 'jira_issues.issue_key' : `jira_issues.${sort}`, filters.order ?? 'desc').orderBy('jira_issues.test_id');
        const result = await pageOfQuery<Record<string, unknown>>(knex, items, filtered, filters);
        const settings = await this.deps.settings.get('jira');
        return { ...result, items: result.items.map((row) => ({ ...JiraIssue.fromDatabaseJson(row), test_title: row.test_title, technique_id: row.technique_id, remediation_status: row.remediation_status, url: this.browse(settings, row.issue_key as string) }) as unknown as JiraIssueRow) };
    }

    // --- sync runs ----------------------------------------------------------------------------------------------

    runs(actor: Actor, filters: JiraSyncFilters): Promise<Page<JiraSyncRun>> {

        const query = JiraSyncRun.query(this.deps.knex);
        if (filters.status) {
            query.where('status', filters.status);
        }

        if (filters.trigger) {
            query.where('trigger', filters.trigger);
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async run(actor: Actor, id: string): Promise<JiraSyncRun> {

        const run = await JiraSyncRun.query(this.deps.knex).findById(id);
        if (!run) {
            throw new NotFoundError('Sync run');
        }

        return run;
    }

    // POST /jira/sync: a run is queued for the worker; while one is queued or running, that one is the answer
    async requestSync(actor: Actor): Promise<{ run: JiraSyncRun; created: boolean }> {

        await this.configured();
        const outcome = await this.deps.knex.transaction(async (trx) => {

            const active = await this.active(trx);
            if (active) {
                return { run: active, created: false };
            }

            const run = await JiraSyncRun.insertReturning(trx, { trigger: 'manual', status: 'queued', requested_by: actor.id, since: await this.since(trx) });
            await this.deps.audit.record(trx, actor, { action: 'jira.sync', entity_type: 'jira_sync_run', entity_id: run.id, details: { trigger: 'manual' } });
            return { run, created: true };
        }).catch(async (err: unknown) => {

            // Two requests at once: the one-active index let one of them in; answer that one
            if (err instanceof UniqueViolationError) {
                const active = await this.active(this.deps.knex);
                if (active) {
                    return { run: active, created: false };
                }
            }

            throw err;
        });

        if (outcome.created) {
            await this.deps.queue.enqueue('jira.sync', { run_id: outcome.run.id });
        }

        return outcome;
    }

    // The scheduled pass (job jira.sync-due, every minute): a poll when one is due, then the comments that are due
    async syncDue(actor: Actor, now = new Date()): Promise<{ run: JiraSyncRun | null; comments: number }> {

        const settings = await this.deps.settings.get('jira');
        if (!settings) {
            return { run: null, comments: 0 };
        }

        let run: JiraSyncRun | null = null;
        if (settings.sync_enabled !== false && await this.due(settings, now)) {
            run = await this.deps.knex.transaction(async (trx) => {

                if (await this.active(trx)) {
                    return null;
                }

                return await JiraSyncRun.insertReturning(trx, { trigger: 'schedule', status: 'queued', since: await this.since(trx) });
            }).catch((err: unknown) => {

                if (err instanceof UniqueViolationError) {
                    return null;
                }

                throw err;
            });

            if (run) {
                run = await this.runSync(actor, run.id);
            }
        }

        const comments = await this.sendComments(actor);
        return { run, comments };
    }

    // One run (the jira.sync job, or syncDue): claims the queued run, reads what changed in Jira, applies each issue
    // in its own transaction, and records what it saw, changed and failed. Jira down: the run fails with the reason,
    // nothing is half-applied, and the cursor stays where it was (the next run reads the same window again).
    async runSync(actor: Actor, runId: string): Promise<JiraSyncRun> {

        const [claimed] = await JiraSyncRun.query(this.deps.knex).where({ id: runId, status: 'queued' }).patch({ status: 'running', started_at: new Date() }).returning('*') as unknown as JiraSyncRun[];
        if (!claimed) {
            return await this.run(actor, runId);
        }

        const started = claimed.started_at!;
        const stats = { seen: 0, changed: 0, failures: [] as { issue_key: string; reason: string }[] };
        let error: string | null = null;
        let notBefore: Date | null = null;
        try {
            const settings = await this.configured();
            const client = this.client(settings);
            const apply = async (issue: JiraIssueRef) => {

                stats.seen++;
                try {
                    if (await this.apply(settings, issue)) {
                        stats.changed++;
                    }
                }
                catch (err) {
                    const reason = internals.reason(err);
                    stats.failures.push({ issue_key: issue.key, reason });
                    await JiraIssue.query(this.deps.knex).where('issue_key', issue.key).patch({ last_error: reason, last_synced_at: new Date() });
                }
            };

            if (claimed.trigger === 'webhook' || claimed.issue_keys?.length) {
                await this.fetchEach(client, claimed.issue_keys ?? [], apply, stats.failures);
            }
            else {
                // Issues that failed last time are read one by one (a deleted issue would break a whole search)
                const failing = await this.deps.knex('jira_issues').whereNotNull('last_error').orderBy('issue_key').pluck('issue_key') as string[];
                await this.fetchEach(client, failing, apply, stats.failures);
                const { rows: projectRows } = await this.deps.knex.raw<{ rows: { project: string }[] }>(`select distinct split_part(issue_key, '-', 1) as project from jira_issues order by 1`);
                const projects = projectRows.map((row) => row.project);
                const since = claimed.since ?? await this.since(this.deps.knex) ?? started;
                const minutes = Math.max(1, Math.ceil((started.getTime() - new Date(since).getTime()) / 60_000)) + internals.overlapMinutes;
                const seen = new Set(failing);
                // One search per project: a project Jira no longer knows fails its own issues, not the whole run
                for (const project of projects) {
                    try {
                        for await (const issues of client.search(`project in ("${project}") AND updated >= "-${minutes}m" ORDER BY updated ASC`)) {
                            const fresh = issues.filter((issue) => !seen.has(issue.key));
                            fresh.forEach((issue) => seen.add(issue.key));
                            const moved = await this.touchUnmoved(fresh);
                            stats.seen += fresh.length - moved.length;
                            // Issues are independent: a few at a time overlap their round trips (each its own transaction)
                            for (let i = 0; i < moved.length; i += internals.concurrency) {
                                await Promise.all(moved.slice(i, i + internals.concurrency).map(apply));
                            }
                        }
                    }
                    catch (err) {
                        if (!(err instanceof JiraError && err.kind === 'refused')) {
                            throw err;
                        }

                        const reason = `Jira refused the search of the project ${project} (400): the project was deleted or renamed, or the account cannot see it`;
                        const keys = await this.deps.knex('jira_issues').where('issue_key', 'like', `${project}-%`).whereNotIn('issue_key', [...seen]).pluck('issue_key') as string[];
                        stats.failures.push(...keys.map((key) => ({ issue_key: key, reason })));
                        await this.deps.knex('jira_issues').whereIn('issue_key', keys).update({ last_error: reason, last_synced_at: new Date(), updated_at: new Date() });
                    }
                }
            }
        }
        catch (err) {
            error = err instanceof JiraError || err instanceof NotConfiguredError ? err.message : 'The sync stopped on an unexpected error (the worker log has it)';
            if (err instanceof JiraError && err.retryAfterMs !== undefined) {
                notBefore = new Date(Date.now() + err.retryAfterMs);
            }

            if (!(err instanceof JiraError || err instanceof NotConfiguredError)) {
                await this.finish(runId, { status: 'failed', stats, error, cursor: null, notBefore });
                throw err;
            }
        }

        const status: JiraSyncStatus = error ? 'failed' : stats.failures.length ? 'partial' : 'succeeded';
        return await this.finish(runId, { status, stats, error, cursor: error || claimed.trigger === 'webhook' ? null : started, notBefore });
    }

    // POST /jira/webhook: Jira's own webhook, authenticated by the shared secret (the `secret` query parameter that
    // Jira Data Center puts in the URL, or Jira Cloud's X-Hub-Signature HMAC of the body). The payload only names
    // the issue: the worker reads it again from Jira, so a forged status cannot be applied.
    async receiveWebhook(input: { body: Buffer; signature?: string | undefined; secret?: string | undefined }): Promise<{ accepted: boolean; run_id: string | null }> {

        const settings = await this.deps.settings.get('jira');
        const secret = settings?.webhook_secret;
        const signed = input.signature && secret ? internals.same(input.signature.replace(/^sha256=/i, '').toLowerCase(), Crypto.createHmac('sha256', secret).update(input.body).digest('hex')) : false;
        const given = input.secret && secret ? internals.same(input.secret, secret) : false;
        if (!signed && !given) {
            throw new UnauthorizedError('The Jira webhook secret is missing or wrong', 'jira_webhook_unauthorised');
        }

        let payload: { issue?: { key?: unknown } };
        try {
            payload = JSON.parse(input.body.toString('utf8')) as typeof payload;
        }
        catch {
            throw new ValidationError('The webhook body is not JSON', ['payload'], 'invalid_json');
        }

        const key = payload?.issue?.key;
        if (typeof key !== 'string' || !internals.key.test(key)) {
            throw new ValidationError('The webhook body names no issue (issue.key)', ['issue.key'], 'validation_failed');
        }

        const linked = await JiraIssue.query(this.deps.knex).where('issue_key', key).first();
        if (!linked) {
            return { accepted: false, run_id: null };
        }

        const run = await JiraSyncRun.insertReturning(this.deps.knex, { trigger: 'webhook', status: 'queued', issue_keys: [key] });
        await this.deps.queue.enqueue('jira.sync', { run_id: run.id });
        return { accepted: true, run_id: run.id };
    }

    // --- comments to Jira ---------------------------------------------------------------------------------------

    // The relay's `jira` consumer, in its transaction: a remediation changed in Aegis (not by Jira itself) on a test
    // with an issue: one comment is owed, idempotent on the event id
    async enqueueComment(actor: Actor, event: StoredEvent<'test.remediation_changed'>, trx: Knex.Transaction): Promise<boolean> {

        if (event.payload.source === 'jira') {
            return false;
        }

        const test = await Test.query(trx).findById(event.payload.test_id).select('id', 'title', 'jira_issue_key', 'remediation_status', 'remediation_notes', 'remediation_due');
        if (!test?.jira_issue_key) {
            return false;
        }

        const who = event.payload.source === 'retest' ? 'the validated retest' : event.actor_id ? (await User.query(trx).findById(event.actor_id).select('username'))?.username ?? 'a user' : 'Aegis';
        const lines = [
            `Aegis: the remediation of "${internals.wiki(test.title)}" changed from *${event.payload.from}* to *${event.payload.to}* (by ${internals.wiki(who)}).`,
            ...(event.payload.fields.includes('remediation_due') && test.remediation_due ? [`Due: ${test.remediation_due}`] : []),
            ...(this.options.publicUrl ? [`${this.options.publicUrl.replace(/\/+$/, '')}/tests/${test.id}`] : [])
        ];

        const inserted = await trx('jira_comments').insert({ test_id: test.id, issue_key: test.jira_issue_key, event_id: event.id, body: lines.join('\n'), status: 'pending', next_attempt_at: trx.fn.now() }).onConflict('event_id').ignore().returning('id');
        return inserted.length > 0;
    }

    // Posts the comments that are due (a lease while they are sent); a failure is retried with back-off, until
    // commentMaxAttempts or an issue that no longer exists
    async sendComments(actor: Actor): Promise<number> {

        const settings = await this.deps.settings.get('jira');
        if (!settings) {
            return 0;
        }

        let sent = 0;
        for (let i = 0; i < 100; ++i) {        // i: the passes made so far (20 comments each)
            const { rows } = await this.deps.knex.raw<{ rows: Record<string, unknown>[] }>(`
                update jira_comments c set attempts = c.attempts + 1, next_attempt_at = now() + interval '5 minutes', updated_at = now()
                where c.id in (select id from jira_comments where status = 'pending' and next_attempt_at <= now() order by next_attempt_at limit 20 for update skip locked)
                returning c.*`);
            if (!rows.length) {
                return sent;
            }

            const client = this.client(settings);
            for (const comment of rows.map((row) => JiraComment.fromDatabaseJson(row))) {
                try {
                    await client.addComment(comment.issue_key, comment.body);
                    await JiraComment.query(this.deps.knex).findById(comment.id).patch({ status: 'sent', sent_at: new Date(), next_attempt_at: null, last_error: null });
                    sent++;
                }
                catch (err) {
                    const reason = internals.reason(err);
                    const final = comment.attempts >= this.options.commentMaxAttempts || (err instanceof JiraError && ['not_found', 'not_configured'].includes(err.kind));
                    const wait = err instanceof JiraError && err.retryAfterMs !== undefined ? err.retryAfterMs : Math.min(3600_000, this.options.commentRetryBaseMs * 2 ** (comment.attempts - 1));
                    await JiraComment.query(this.deps.knex).findById(comment.id).patch(final ? { status: 'failed', next_attempt_at: null, last_error: reason } : { next_attempt_at: new Date(Date.now() + wait), last_error: reason });
                    if (err instanceof JiraError && ['unreachable', 'unavailable', 'rate_limited', 'unauthorised'].includes(err.kind)) {
                        return sent;                                    // the rest waits for the next pass
                    }
                }
            }
        }

        return sent;
    }

    // --- the retest loop ----------------------------------------------------------------------------------------

    // The relay's `jira-retest` consumer: a validated retest of a test whose remediation is open or awaiting its
    // retest resolves it when the retest detected the technique, and reopens an awaiting one when it did not
    async closeLoop(actor: Actor, event: StoredEvent<'test.validated'>, trx: Knex.Transaction): Promise<string | null> {

        const retest = await Test.query(trx).findById(event.payload.test_id).select('id', 'retest_of_id', 'detection_outcome', 'state');
        if (!retest?.retest_of_id || retest.state !== 'validated') {
            return null;
        }

        const original = await Test.query(trx).findById(retest.retest_of_id).select('id', 'state', 'remediation_status');
        if (!original || !['validated', 'rejected'].includes(original.state) || ![...internals.open, 'awaiting_retest'].includes(original.remediation_status)) {
            return null;
        }

        const detected = internals.detected.includes(retest.detection_outcome ?? '');
        const target = detected ? 'resolved' : original.remediation_status === 'awaiting_retest' ? 'open' : null;
        if (!target) {
            return null;
        }

        await this.deps.tests.updateRemediation(actor, original.id, { remediation_status: target }, { trx, source: 'retest' });
        return target;
    }

    // --- internals ----------------------------------------------------------------------------------------------

    private client(settings: JiraSettings, overrides: JiraClientOptions = {}): JiraClient {

        return new JiraClient(this.deps.outbound, {
            url: settings.url,
            deployment: settings.deployment ?? 'cloud',
            username: settings.username,
            apiToken: settings.api_token,
            personalAccessToken: settings.personal_access_token
        }, { ...this.options.client, ...overrides });
    }

    private async configured(): Promise<JiraSettings> {

        const settings = await this.deps.settings.get('jira');
        if (!settings) {
            throw new NotConfiguredError('Jira is not configured: an administrator sets the jira setting (PUT /system/settings/jira)', 'jira_not_configured');
        }

        return settings;
    }

    private browse(settings: JiraSettings | null, key: string): string | null {

        return settings ? `${settings.url.replace(/\/+$/, '')}/browse/${key}` : null;
    }

    private view(link: JiraIssue, settings: JiraSettings | null): JiraLinkView {

        return Object.assign(link, { url: this.browse(settings, link.issue_key) });
    }

    // The test, visible to the actor, in a state whose remediation may change, with an open remediation and no issue
    private async linkable(trx: Knex.Transaction, actor: Actor, testId: string): Promise<Test> {

        const test = await Test.query(trx).findById(testId).modify('visibleTo', actor);
        if (!test) {
            throw new NotFoundError('Test');
        }

        if (test.jira_issue_key) {
            throw new ConflictError(`The test is already linked to ${test.jira_issue_key}: unlink it first (DELETE /tests/${testId}/jira)`, 'jira_already_linked');
        }

        if (!['validated', 'rejected'].includes(test.state)) {
            throw new ConflictError(`A test in state ${test.state} has no remediation yet: validate or reject it first`, 'invalid_state_transition');
        }

        if (!internals.open.includes(test.remediation_status)) {
            throw new ConflictError(`The remediation is ${test.remediation_status}: open it first (PATCH /tests/${testId}/remediation remediation_status=open)`, 'remediation_not_open');
        }

        return test;
    }

    private async notLinkedElsewhere(trx: Knex.Transaction, key: string): Promise<void> {

        const other = await JiraIssue.query(trx).where('issue_key', key).first();
        if (other) {
            throw new ConflictError(`${key} is already linked to another test: one issue follows one test`, 'jira_issue_linked_elsewhere');
        }
    }

    private async attach(trx: Knex.Transaction, actor: Actor, testId: string, link: { key: string; id: string | null; origin: 'created' | 'linked'; issue: JiraIssueRef | undefined }, settings: JiraSettings): Promise<JiraLinkView> {

        const test = await lockOr404(Test.query(trx).findById(testId).modify('visibleTo', actor), 'Test');
        await this.notLinkedElsewhere(trx, link.key);
        await test.$query(trx).patch({ jira_issue_key: link.key, version: test.version + 1 } as Partial<Test>);
        const fields = link.issue?.fields ?? {};
        const row = await JiraIssue.insertReturning(trx, {
            test_id: testId,
            issue_key: link.key,
            issue_id: link.id,
            origin: link.origin,
            status_name: fields.status?.name ?? null,
            status_category: fields.status?.statusCategory?.key ?? null,
            resolution: fields.resolution?.name ?? null,
            jira_updated_at: fields.updated ? new Date(fields.updated) : null,
            last_synced_at: link.issue ? new Date() : null,
            linked_by: actor.id
        });

        await appendTimeline(trx, actor, testId, { action: link.origin === 'created' ? 'jira-create' : 'jira-link', changes: { jira_issue_key: { from: null, to: link.key } } });
        await this.deps.audit.record(trx, actor, { action: link.origin === 'created' ? 'test.jira_create' : 'test.jira_link', entity_type: 'test', entity_id: testId, details: { issue_key: link.key } });
        return this.view(row, settings);
    }

    // Summary, description (technique, outcome, what was expected, the link back, evidence names and hashes), labels
    private async issueFields(trx: Knex.Transaction, settings: JiraSettings, test: Test): Promise<Record<string, unknown>> {

        const technique = await Technique.query(trx).findById(test.technique_id).select('mitre_id', 'name') as unknown as { mitre_id: string; name: string } | undefined;
        const evidence = await Evidence.query(trx).where('test_id', test.id).orderBy('created_at').select('original_name', 'sha256', 'team');
        const link = this.options.publicUrl ? `${this.options.publicUrl.replace(/\/+$/, '')}/tests/${test.id}` : `Aegis test ${test.id}`;
        const description = [
            `h3. Aegis test: ${internals.wiki(test.title)}`,
            `*Technique:* ${test.technique_id}${technique ? ` ${internals.wiki(technique.name)}` : ''}`,
            `*Outcome:* detection ${test.detection_outcome ?? 'not recorded'}; attack ${test.attack_result ?? 'not recorded'}`,
            `*Expected:* ${internals.wiki(test.expected_outcome ?? 'not stated')}`,
            ...(test.remediation_notes ? [`*Remediation notes:* ${internals.wiki(test.remediation_notes)}`] : []),
            ...(test.remediation_due ? [`*Due:* ${test.remediation_due}`] : []),
            `*In Aegis:* ${link}`,
            ...(evidence.length ? ['h4. Evidence', ...evidence.map((item) => `* ${internals.wiki(item.original_name)} (${item.team}) sha256 ${item.sha256}`)] : [])
        ].join('\n');

        return {
            ...settings.fields,
            project: { key: settings.project_key },
            issuetype: { name: settings.issue_type ?? 'Task' },
            summary: `[Aegis] ${test.technique_id}: ${test.title}`.replace(/\s+/g, ' ').slice(0, 250),
            description: description.slice(0, 30_000),
            labels: [...new Set(['aegis', ...(settings.labels ?? [])])]
        };
    }

    // The remediation status a Jira status maps to: its name first (case-insensitive), then its category
    private mapped(settings: JiraSettings, status: JiraStatus | undefined): JiraMappableStatus | undefined {

        if (!status) {
            return undefined;
        }

        const names = Object.entries(settings.status_map?.statuses ?? {});
        const byName = names.find(([name]) => name.toLowerCase() === String(status.name).toLowerCase())?.[1];
        const category = String(status.statusCategory?.key ?? '');
        return byName ?? settings.status_map?.categories?.[category as 'new'] ?? internals.categories[category];
    }

    // One issue in its own transaction. The conflict rule (docs/jira.md): a Jira status that has not moved since the
    // last sync changes nothing (Aegis's own edits stand); one that moved is applied unless the remediation is final
    // in Aegis (resolved, accepted_risk). Answers whether the remediation changed.
    private async apply(settings: JiraSettings, issue: JiraIssueRef): Promise<boolean> {

        return await this.deps.knex.transaction(async (trx) => {

            const link = await JiraIssue.query(trx).where('issue_key', issue.key).forUpdate().first();
            if (!link) {
                return false;                                   // unlinked meanwhile, or another issue of the project
            }

            const status = issue.fields?.status;
            const moved = Boolean(status?.name) && status!.name !== link.status_name;
            await link.$query(trx).patch({
                issue_id: issue.id ?? link.issue_id,
                status_name: status?.name ?? link.status_name,
                status_category: status?.statusCategory?.key ?? link.status_category,
                resolution: issue.fields?.resolution?.name ?? null,
                jira_updated_at: issue.fields?.updated ? new Date(issue.fields.updated) : link.jira_updated_at,
                last_synced_at: new Date(),
                last_error: null
            });

            const target = moved ? this.mapped(settings, status) : undefined;
            const test = target && await Test.query(trx).findById(link.test_id).select('id', 'remediation_status', 'remediation_owner_id', 'title');
            if (!target || !test || test.remediation_status === target || internals.final.includes(test.remediation_status)) {
                return false;
            }

            await this.deps.tests.updateRemediation(systemActor, test.id, { remediation_status: target }, { trx, source: 'jira' });
            if (target === 'awaiting_retest') {
                const leads = await trx('users').whereIn('role', [Role.redLead, Role.blueLead]).where('is_active', true).pluck('id') as string[];
                const recipients = [...new Set([...leads, ...(test.remediation_owner_id ? [test.remediation_owner_id] : [])])];
                await this.deps.notifications.notify(trx, recipients.map((userId) => ({
                    user_id: userId,
                    type: 'remediation.awaiting_retest',
                    title: `${issue.key} was resolved in Jira: "${test.title}" awaits its retest`,
                    body: `Jira moved ${issue.key} to ${status!.name}. Retest the technique (POST /tests/${test.id}/retest); a validated retest that detects it resolves the remediation.`,
                    entity_type: 'test',
                    entity_id: test.id
                })));
            }

            return true;
        });
    }

    // A page's issues whose status and resolution did not move since the last sync, and whose last sync did not
    // fail, change nothing but their last-known row: one statement for all of them. Answers the others.
    private async touchUnmoved(issues: JiraIssueRef[]): Promise<JiraIssueRef[]> {

        if (!issues.length) {
            return [];
        }

        const known = new Map((await this.deps.knex('jira_issues').whereIn('issue_key', issues.map((issue) => issue.key)).select('issue_key', 'status_name', 'resolution', 'last_error') as { issue_key: string; status_name: string | null; resolution: string | null; last_error: string | null }[]).map((row) => [row.issue_key, row]));
        const unmoved = issues.filter((issue) => {

            const row = known.get(issue.key);
            return row && !row.last_error && issue.fields?.status?.name === row.status_name && (issue.fields?.resolution?.name ?? null) === row.resolution;
        });

        if (unmoved.length) {
            await this.deps.knex.raw(`
                update jira_issues j set last_synced_at = now(), updated_at = now(), jira_updated_at = coalesce(v.updated::timestamptz, j.jira_updated_at)
                from jsonb_to_recordset(?::jsonb) as v(issue_key text, updated text)
                where j.issue_key = v.issue_key`, [JSON.stringify(unmoved.map((issue) => ({ issue_key: issue.key, updated: issue.fields?.updated ?? null })))]);
        }

        const skipped = new Set(unmoved.map((issue) => issue.key));
        return issues.filter((issue) => known.has(issue.key) && !skipped.has(issue.key));
    }

    private async fetchEach(client: JiraClient, keys: string[], apply: (issue: JiraIssueRef) => Promise<void>, failures: { issue_key: string; reason: string }[]): Promise<void> {

        for (const key of keys) {
            try {
                await apply(await client.issue(key));
            }
            catch (err) {
                if (err instanceof JiraError && err.kind === 'not_found') {
                    failures.push({ issue_key: key, reason: err.message });
                    await JiraIssue.query(this.deps.knex).where('issue_key', key).patch({ last_error: err.message, last_synced_at: new Date() });
                    continue;
                }

                throw err;
            }
        }
    }

    private async finish(runId: string, result: { status: JiraSyncStatus; stats: { seen: number; changed: number; failures: { issue_key: string; reason: string }[] }; error: string | null; cursor: Date | null; notBefore: Date | null }): Promise<JiraSyncRun> {

        const [run] = await JiraSyncRun.query(this.deps.knex).where('id', runId).patch({
            status: result.status,
            issues_seen: result.stats.seen,
            issues_changed: result.stats.changed,
            issues_failed: result.stats.failures.length,
            failures: result.stats.failures.slice(0, 1000),
            error: result.error,
            cursor: result.cursor,
            not_before: result.notBefore,
            finished_at: new Date()
        }).returning('*') as unknown as JiraSyncRun[];
        return run!;
    }

    // The queued or running poll, unless it was abandoned (a worker that died): then it is failed and forgotten
    private async active(knex: Knex | Knex.Transaction): Promise<JiraSyncRun | undefined> {

        const active = await JiraSyncRun.query(knex).whereIn('status', ['queued', 'running']).whereNot('trigger', 'webhook').first();
        if (active && Date.now() - new Date(active.started_at ?? active.created_at).getTime() > this.options.staleRunMs) {
            await JiraSyncRun.query(knex).findById(active.id).patch({ status: 'failed', error: 'Abandoned: the worker running it stopped', finished_at: new Date() });
            return undefined;
        }

        return active;
    }

    // Where the next poll starts: the cursor of the last poll that finished, else the first link (its status was
    // read when it was linked)
    private async since(knex: Knex | Knex.Transaction): Promise<Date | null> {

        const last = await JiraSyncRun.query(knex).whereNotNull('cursor').whereNot('trigger', 'webhook').orderBy('cursor', 'desc').first();
        if (last?.cursor) {
            return last.cursor;
        }

        const first = await JiraIssue.query(knex).min('created_at as at').first() as unknown as { at: Date | null } | undefined;
        return first?.at ?? null;
    }

    // A poll is due poll_minutes after the last one, doubled after each failed poll in a row (up to 6 h), and never
    // before the time Jira asked to wait (Retry-After)
    private async due(settings: JiraSettings, now: Date): Promise<boolean> {

        const recent = await JiraSyncRun.query(this.deps.knex).whereNot('trigger', 'webhook').orderBy('created_at', 'desc').limit(8);
        const last = recent[0];
        if (!last) {
            return true;
        }

        const failedInRow = recent.findIndex((run) => run.status !== 'failed');
        const streak = failedInRow === -1 ? recent.length : failedInRow;
        const interval = Math.min(internals.maxBackoffMs, (settings.poll_minutes ?? 15) * 60_000 * 2 ** streak);
        const from = new Date(last.finished_at ?? last.created_at).getTime();
        return now.getTime() >= from + interval && (!last.not_before || now.getTime() >= new Date(last.not_before).getTime());
    }
}
