import * as Crypto from 'crypto';

import { CronExpressionParser } from 'cron-parser';
import type { Knex } from 'knex';

import { renderMail } from '../../integrations/mail';
import { NotFoundError, ValidationError } from '../errors';
import { ReportSchedule, ReportScheduleRun, User, type DocumentKind } from '../models';
import { everyReader, isAdmin, ownsOrAdmin, type Actor, type Role } from '../policy';

import type { AuditService } from './audit';
import { renderDocument } from './document-templates';
import type { DocumentParams, DocumentsService, PdfPrinter } from './documents';
import { page, type ListQuery, type Page } from './lists';
import type { MailService } from './mail';
import type { SettingsService } from './settings';
import { isUuid } from './sql';


// Scheduled report e-mails (issue 13): a document, its parameters, a cron expression or a simple period in a time
// zone, recipients. The worker's tick claims each due occurrence as one (schedule, period) row in a transaction, so a
// period is sent once however many workers tick; a failed run is retried. See docs/documents.md.

export type SchedulePeriod = 'daily' | 'weekly' | 'monthly' | 'quarterly';

export interface ScheduleInput {
    name: string;
    kind: DocumentKind;
    params?: DocumentParams;
    cron?: string | null;
    period?: SchedulePeriod | null;
    timezone?: string;
    recipient_user_ids?: string[];
    recipient_emails?: string[];
    enabled?: boolean;
}

export interface ScheduleFilters extends ListQuery {
    owner_id?: string;
    kind?: DocumentKind;
}

export interface TickResult {
    claimed: number;
    retried: number;
    sent: number;
    failed: number;
}


const internals = {
    // A simple period is a cron expression at 07:00 in the schedule's time zone
    periods: { daily: '0 7 * * *', weekly: '0 7 * * 1', monthly: '0 7 1 * *', quarterly: '0 7 1 1,4,7,10 *' } as Record<SchedulePeriod, string>,
    maxAttempts: 3,
    retryAfterMs: (attempts: number) => attempts * 5 * 60_000,        // 5 min after the first failure, 10 after the second
    staleRunMs: 30 * 60_000,                                           // a run still 'running' after this: its worker died

    expression: (schedule: Pick<ReportSchedule, 'cron' | 'period'>): string => schedule.cron ?? internals.periods[schedule.period!],

    next: (schedule: Pick<ReportSchedule, 'cron' | 'period' | 'timezone'>, after: Date): Date => CronExpressionParser.parse(internals.expression(schedule), { currentDate: after, tz: schedule.timezone }).next().toDate()
};


export class ReportSchedulesService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; documents: DocumentsService; mail: MailService; settings: SettingsService }) { }

    list(actor: Actor, filters: ScheduleFilters): Promise<Page<ReportSchedule>> {

        const query = ReportSchedule.query(this.deps.knex);
        if (!isAdmin(actor)) {
            query.where('owner_id', actor.id!);
        }
        else if (filters.owner_id) {
            query.where('owner_id', filters.owner_id);
        }

        if (filters.kind) {
            query.where('kind', filters.kind);
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async get(actor: Actor, id: string): Promise<ReportSchedule> {

        const schedule = await ReportSchedule.query(this.deps.knex).findById(id);
        if (!schedule || !ownsOrAdmin(actor, schedule.owner_id)) {
            throw new NotFoundError('Report schedule');
        }

        return schedule;
    }

    async create(actor: Actor, input: ScheduleInput): Promise<ReportSchedule> {

        const row = await this.checked(input);
        return await ReportSchedule.transaction(this.deps.knex, async (trx) => {

            const schedule = await ReportSchedule.insertReturning(trx, { ...row, owner_id: actor.id! });
            await this.deps.audit.record(trx, actor, { action: 'report_schedule.create', entity_type: 'report_schedule', entity_id: schedule.id, details: { kind: schedule.kind, recipients: schedule.recipient_user_ids.length + schedule.recipient_emails.length } });
            return schedule;
        });
    }

    async update(actor: Actor, id: string, input: Partial<ScheduleInput>): Promise<ReportSchedule> {

        return await ReportSchedule.transaction(this.deps.knex, async (trx) => {

            const schedule = await ReportSchedule.query(trx).findById(id).forUpdate();
            if (!schedule || !ownsOrAdmin(actor, schedule.owner_id)) {
                throw new NotFoundError('Report schedule');
            }

            // Giving one of cron and period clears the other
            const merged: ScheduleInput = {
                name: schedule.name, kind: schedule.kind, params: schedule.params as DocumentParams, timezone: schedule.timezone, recipient_user_ids: schedule.recipient_user_ids,
                recipient_emails: schedule.recipient_emails, enabled: schedule.enabled, cron: schedule.cron, period: schedule.period, ...input,
                ...(input.cron ? { period: null } : {}), ...(input.period ? { cron: null } : {}),
                ...(input.kind && input.kind !== schedule.kind && !input.params ? { params: {} } : {})
            };
            const updated = await schedule.$patchReturning(trx, await this.checked(merged));
            await this.deps.audit.record(trx, actor, { action: 'report_schedule.update', entity_type: 'report_schedule', entity_id: id, details: { fields: Object.keys(input) } });
            return updated;
        });
    }

    async remove(actor: Actor, id: string): Promise<void> {

        await ReportSchedule.transaction(this.deps.knex, async (trx) => {

            const schedule = await ReportSchedule.query(trx).findById(id).forUpdate();
            if (!schedule || !ownsOrAdmin(actor, schedule.owner_id)) {
                throw new NotFoundError('Report schedule');
            }

            await schedule.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'report_schedule.delete', entity_type: 'report_schedule', entity_id: id });
        });
    }

    async runs(actor: Actor, id: string, list: ListQuery): Promise<Page<ReportScheduleRun>> {

        await this.get(actor, id);
        return await page(ReportScheduleRun.query(this.deps.knex).where('schedule_id', id), list, { sort: 'started_at', order: 'desc' });
    }

    // The worker, every minute: claim the due occurrences, then retry the failed runs whose time has come
    async tick(printer: PdfPrinter, now = new Date()): Promise<TickResult> {

        const result: TickResult = { claimed: 0, retried: 0, sent: 0, failed: 0 };
        const due = await ReportSchedule.query(this.deps.knex).where('enabled', true).where('next_run_at', '<=', now).orderBy('next_run_at').limit(100).select('id');
        for (const { id } of due) {
            const run = await this.claim(id, now);
            if (run) {
                result.claimed++;
                result[await this.send(run, printer) ? 'sent' : 'failed']++;
            }
        }

        const retries = await ReportScheduleRun.query(this.deps.knex)
            .where((q) => q.where('status', 'failed').where('attempts', '<', internals.maxAttempts))
            .orWhere((q) => q.where('status', 'running').where('started_at', '<', new Date(now.getTime() - internals.staleRunMs)))
            .orderBy('started_at').limit(100);
        for (const candidate of retries) {
            if (candidate.status === 'failed' && candidate.finished_at && candidate.finished_at.getTime() + internals.retryAfterMs(candidate.attempts) > now.getTime()) {
                continue;
            }

            // Taken from the state it was read in, so that two workers never retry the same run. A message that was in
            // flight when the run's worker died may have been accepted: it is not sent again (at most once), but listed
            const [row] = await this.deps.knex('report_schedule_runs').where({ id: candidate.id, status: candidate.status, attempts: candidate.attempts })
                .update({
                    status: 'running', attempts: candidate.attempts + 1, started_at: now, error: null, finished_at: null, in_flight: null,
                    unconfirmed: this.deps.knex.raw('case when in_flight is null then unconfirmed else array_append(unconfirmed, in_flight) end'), updated_at: this.deps.knex.fn.now()
                }).returning('*');
            const run = row ? ReportScheduleRun.fromDatabaseJson(row) as ReportScheduleRun : undefined;
            if (run) {
                result.retried++;
                result[await this.send(run, printer) ? 'sent' : 'failed']++;
            }
        }

        return result;
    }

    // One transaction: the schedule's due occurrence becomes a run row (unique per schedule and period) and the schedule
    // moves to its next occurrence. A second worker finds the schedule locked or already moved on.
    private async claim(id: string, now: Date): Promise<ReportScheduleRun | null> {

        return await ReportSchedule.transaction(this.deps.knex, async (trx) => {

            const schedule = await ReportSchedule.query(trx).findById(id).where('enabled', true).where('next_run_at', '<=', now).forUpdate().skipLocked();
            if (!schedule) {
                return null;
            }

            const period = schedule.next_run_at!.toISOString();
            await schedule.$query(trx).patch({ next_run_at: internals.next(schedule, now) });
            const [row] = await trx('report_schedule_runs').insert({ schedule_id: id, period_key: period, status: 'running' }).onConflict(['schedule_id', 'period_key']).ignore().returning('*');
            return row ? ReportScheduleRun.fromDatabaseJson(row) as ReportScheduleRun : null;
        });
    }

    // Each recipient receives what they may see: the document is gathered as each user (an outside address as a viewer
    // assigned to nothing), printed once per distinct content and sent one message per recipient.
    private async send(run: ReportScheduleRun, printer: PdfPrinter): Promise<boolean> {

        const { knex } = this.deps;
        let refused = false;
        try {
            const schedule = await ReportSchedule.query(knex).findById(run.schedule_id);
            if (!schedule) {
                throw new Error('The schedule was deleted');
            }

            const users = schedule.recipient_user_ids.length ? await User.query(knex).whereIn('id', schedule.recipient_user_ids).where('is_active', true).whereNotNull('email') : [];
            const external = (await this.deps.settings.get('reports.external_recipients')) ? schedule.recipient_emails : [];
            const recipients: { to: string; actor: Actor }[] = [
                ...users.map((user) => ({ to: user.email!, actor: { id: user.id, role: user.role as Role } })),
                ...external.map((to) => ({ to, actor: everyReader }))
            ].filter((recipient) => !run.sent_to.includes(recipient.to) && !run.unconfirmed.includes(recipient.to));

            const occurrence = new Date(run.period_key);
            const documents = new Map<string, { html: string; pdf?: Buffer; title: string }>();
            for (const recipient of recipients) {
                const data = await this.deps.documents.data(recipient.actor, schedule.kind, schedule.params as DocumentParams, occurrence);
                const { generated_at: _generated, ...content } = data;
                const key = Crypto.createHash('sha256').update(JSON.stringify(content)).digest('hex');
                const document = documents.get(key) ?? { html: renderDocument(data), title: data.title };
                document.pdf ??= await printer.pdf(document.html, { title: document.title });
                documents.set(key, document);

                const body = renderMail({
                    subject: `${schedule.name}: ${data.title}`,
                    heading: data.title,
                    paragraphs: [`The report "${schedule.name}" is attached as a PDF.`, 'It shows what your account may see in Aegis.'],
                    facts: [['Period', data.period ? `${data.period.from} to ${data.period.to}` : 'current state'], ['Generated', data.generated_at]]
                });
                // The address is written before the message goes and moved to sent_to once it is accepted: a worker that
                // dies in between leaves it in flight, and the run's next worker does not send it again
                await knex('report_schedule_runs').where('id', run.id).update({ in_flight: recipient.to });
                try {
                    await this.deps.mail.send({ to: recipient.to, ...body, attachments: [{ filename: `${schedule.kind}-${occurrence.toISOString().slice(0, 10)}.pdf`, content: document.pdf, contentType: 'application/pdf' }] });
                }
                catch (err) {
                    refused = true;
                    throw err;
                }

                await knex('report_schedule_runs').where('id', run.id).update({ sent_to: knex.raw('array_append(sent_to, ?)', [recipient.to]), in_flight: null });
                run.sent_to = [...run.sent_to, recipient.to];
            }

            await ReportScheduleRun.query(knex).findById(run.id).patch({ status: 'sent', recipients: run.sent_to.length, finished_at: new Date() });
            return true;
        }
        catch (err) {
            // A refused message was not accepted: nothing is in flight any more. A failure after an acceptance (its
            // record) leaves the address in flight, and the retry lists it as unconfirmed instead of sending it again
            await ReportScheduleRun.query(knex).findById(run.id).patch({ status: 'failed', error: (err as Error).message.slice(0, 500), recipients: run.sent_to.length, finished_at: new Date(), ...(refused ? { in_flight: null } : {}) });
            return false;
        }
    }

    // The row a valid input becomes; every rule that joi cannot check names its field
    private async checked(input: ScheduleInput): Promise<Partial<ReportSchedule>> {

        const timezone = input.timezone ?? 'UTC';
        try {
            new Intl.DateTimeFormat('en', { timeZone: timezone });
        }
        catch {
            throw new ValidationError(`"timezone" is not a known IANA time zone (e.g. Europe/Paris)`, ['timezone']);
        }

        if (!input.cron === !input.period) {
            throw new ValidationError('Give one of "cron" (a cron expression) or "period" (daily, weekly, monthly, quarterly), not both', ['cron']);
        }

        let next: Date;
        try {
            next = internals.next({ cron: input.cron ?? null, period: input.period ?? null, timezone }, new Date());
        }
        catch (err) {
            throw new ValidationError(`"cron" is not a valid cron expression: ${(err as Error).message}`, ['cron']);
        }

        // The document's parameters: a technique report names a technique, a campaign report a campaign (by id)
        const params = input.params ?? {};
        const subject = input.kind === 'purple-campaign' ? 'campaign' : 'technique';
        if (input.kind === 'purple-campaign' && !isUuid(params.id ?? '')) {
            throw new ValidationError('"params.id" must be the id of the campaign to report on', ['params.id']);
        }

        await this.deps.documents.data(everyReader, input.kind, params).catch((err: Error) => {

            throw err instanceof NotFoundError ? new ValidationError(`"params.id" is not a known ${subject}`, ['params.id']) : err;
        });

        const userIds = [...new Set(input.recipient_user_ids ?? [])];
        const emails = [...new Set((input.recipient_emails ?? []).map((email) => email.toLowerCase()))];
        if (!userIds.length && !emails.length) {
            throw new ValidationError('Give at least one recipient (recipient_user_ids or recipient_emails)', ['recipient_user_ids']);
        }

        const found = userIds.length ? await User.query(this.deps.knex).whereIn('id', userIds).where('is_active', true).whereNotNull('email').select('id') : [];
        if (found.length !== userIds.length) {
            throw new ValidationError('Every recipient user must be an active user with an e-mail address', ['recipient_user_ids']);
        }

        if (emails.length && !(await this.deps.settings.get('reports.external_recipients'))) {
            throw new ValidationError('Sending to addresses outside Aegis is off: an admin can allow it with the reports.external_recipients setting', ['recipient_emails']);
        }

        return {
            name: input.name, kind: input.kind, params: params as Record<string, unknown>, cron: input.cron ?? null, period: input.period ?? null, timezone,
            recipient_user_ids: userIds, recipient_emails: emails, enabled: input.enabled ?? true, next_run_at: next
        };
    }
}
