import * as Crypto from 'crypto';

import type { Knex } from 'knex';
import { ForeignKeyViolationError } from 'objection';

import { OutboundError, type OutboundHttp } from '../../integrations/http';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { User, Webhook, WebhookAttempt, WebhookDelivery, type WebhookEventType } from '../models';
import { Role, type Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import type { StoredEvent } from './events';
import { page, type ListQuery, type Page } from './lists';
import type { NotificationsService } from './notifications';
import { SecretBox } from './secret-box';


export interface WebhookCreate {
    name: string;
    url: string;
    events: WebhookEventType[];
    description?: string | null;
    enabled?: boolean;
    secret?: string;
}

export type WebhookUpdate = Partial<WebhookCreate>;

export interface WebhookFilters extends ListQuery {
    enabled?: boolean;
    event?: WebhookEventType;
}

export interface DeliveryFilters extends ListQuery {
    status?: WebhookDelivery['status'];
    event_type?: string;
}

export interface WebhookSettings {
    retryWindowMs: number;              // a delivery is retried for this long after it was created (24 h)
    retryBaseMs: number;                // back-off: base × 2^(attempt − 1), capped, times 1 to 1.25 (jitter)
    retryCapMs: number;
    timeoutMs: number;                  // one attempt, connect to last byte
    batchSize: number;                  // deliveries one sender pass claims (and sends at once)
}

export type DeliveryView = WebhookDelivery & { attempt_log: WebhookAttempt[] };


export const webhookDefaults: WebhookSettings = { retryWindowMs: 24 * 3600_000, retryBaseMs: 5_000, retryCapMs: 3600_000, timeoutMs: 10_000, batchSize: 10 };


// Standard Webhooks 1.0: the secret is `whsec_` + base64 of the key; the signature is `v1,` + base64 of
// HMAC-SHA256(key, `${id}.${timestamp}.${body}`), the timestamp in whole seconds.
export const signWebhook = (secret: string, id: string, timestamp: number, body: string): string => {

    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    return `v1,${Crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
};


export const generateWebhookSecret = (): string => `whsec_${Crypto.randomBytes(32).toString('base64')}`;


// The wait before attempt `attempt + 1` after `attempt` failures: base × 2^(attempt − 1), capped, spread by up to a
// quarter (`random` in [0, 1)) so that receivers that come back are not hit by every sender at once.
export const retryDelayMs = (settings: Pick<WebhookSettings, 'retryBaseMs' | 'retryCapMs'>, attempt: number, random: number): number => {

    const exponential = Math.min(settings.retryCapMs, settings.retryBaseMs * 2 ** Math.min(attempt - 1, 40));
    return Math.round(exponential * (1 + random / 4));
};


const internals = {
    context: (id: string) => `webhook:${id}`,
    leaseMs: 60_000,
    errorText: (err: unknown) => (err instanceof OutboundError ? err.message : 'The request failed before an answer came').slice(0, 1000)
};


// Webhooks (docs/webhooks.md): admin-owned subscriptions to domain events. The relay's `webhooks` consumer writes
// one delivery per event and subscription in the relay's own transaction (`enqueue`); the worker's sender
// (`worker/webhook-sender.ts`) claims due deliveries, POSTs them through the outbound client, signed, and records
// each attempt (`sendDue`), outside any long transaction.
export class WebhooksService {

    private readonly box: SecretBox;
    private readonly settings: WebhookSettings;

    constructor(private readonly deps: { knex: Knex; audit: AuditService; outbound: OutboundHttp; notifications: NotificationsService; secretKey: Buffer; settings?: Partial<WebhookSettings> | undefined }) {

        this.box = new SecretBox(deps.secretKey);
        this.settings = { ...webhookDefaults, ...deps.settings };
    }

    list(actor: Actor, filters: WebhookFilters): Promise<Page<Webhook>> {

        const query = Webhook.query(this.deps.knex);
        if (filters.enabled !== undefined) {
            query.where('enabled', filters.enabled);
        }

        if (filters.event) {
            query.whereRaw('? = any(events)', [filters.event]);
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async get(actor: Actor, id: string): Promise<Webhook> {

        const webhook = await Webhook.query(this.deps.knex).findById(id);
        if (!webhook) {
            throw new NotFoundError('Webhook');
        }

        return webhook;
    }

    // The secret is answered here once (the one the admin gave, or a new one), never again
    async create(actor: Actor, input: WebhookCreate, options: ChangeOptions = {}): Promise<Webhook & { secret: string }> {

        const url = await this.checkUrl(input.url);
        const secret = input.secret ?? generateWebhookSecret();
        const id = Crypto.randomUUID();
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const sealed = this.box.seal(internals.context(id), secret);
            const webhook = await Webhook.insertReturning(trx, {
                id,
                name: input.name,
                url,
                events: [...new Set(input.events)],
                description: input.description || null,
                enabled: input.enabled ?? true,
                disabled_reason: input.enabled === false ? 'Created disabled' : null,
                secret_ciphertext: sealed.ciphertext,
                secret_iv: sealed.iv,
                secret_tag: sealed.tag,
                secret_key_id: sealed.key_id,
                created_by: actor.id
            });

            await this.deps.audit.record(trx, actor, { action: 'webhook.create', entity_type: 'webhook', entity_id: id, details: { name: input.name, url, events: webhook.events, secret_generated: !input.secret } });
            return Object.assign(webhook, { secret });
        });
    }

    async update(actor: Actor, id: string, input: WebhookUpdate, options: ChangeOptions = {}): Promise<Webhook> {

        const url = input.url === undefined ? undefined : await this.checkUrl(input.url);
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const webhook = await lockOr404(Webhook.query(trx).findById(id), 'Webhook');
            const { secret, ...fields } = input;
            const patch: Partial<Webhook> = { ...fields, ...(url ? { url } : {}) };
            if (input.events) {
                patch.events = [...new Set(input.events)];
            }

            if (input.description === '') {
                patch.description = null;
            }

            if (input.enabled === true) {
                Object.assign(patch, { disabled_reason: null, failing_since: null });
            }
            else if (input.enabled === false && webhook.enabled) {
                patch.disabled_reason = 'Disabled by an administrator';
            }

            if (secret) {
                const sealed = this.box.seal(internals.context(id), secret);
                Object.assign(patch, { secret_ciphertext: sealed.ciphertext, secret_iv: sealed.iv, secret_tag: sealed.tag, secret_key_id: sealed.key_id });
            }

            const updated = await webhook.$patchReturning(trx, patch);
            await this.deps.audit.record(trx, actor, { action: 'webhook.update', entity_type: 'webhook', entity_id: id, details: { fields: Object.keys(input) } });
            return updated;
        });
    }

    async remove(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const webhook = await lockOr404(Webhook.query(trx).findById(id), 'Webhook');
            await webhook.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'webhook.delete', entity_type: 'webhook', entity_id: id, details: { name: webhook.name, url: webhook.url } });
        });
    }

    async deliveries(actor: Actor, id: string, filters: DeliveryFilters): Promise<Page<DeliveryView>> {

        await this.get(actor, id);
        const query = WebhookDelivery.query(this.deps.knex).where('webhook_id', id);
        if (filters.status) {
            query.where('status', filters.status);
        }

        if (filters.event_type) {
            query.where('event_type', filters.event_type);
        }

        const result = await page(query, filters, { sort: 'created_at', order: 'desc' });
        return { ...result, items: await this.withAttempts(result.items) };
    }

    // An admin hands a delivery back to the sender: the same id and body, a fresh retry window
    async redeliver(actor: Actor, id: string, deliveryId: string, options: ChangeOptions = {}): Promise<DeliveryView> {

        const delivery = await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const webhook = await lockOr404(Webhook.query(trx).findById(id), 'Webhook');
            const found = await lockOr404(WebhookDelivery.query(trx).findById(deliveryId).where('webhook_id', id), 'Delivery');
            if (found.status === 'pending') {
                throw new ConflictError('The delivery is still pending: the sender will try it again on its own', 'delivery_pending', { next_attempt_at: found.next_attempt_at });
            }

            if (!webhook.enabled) {
                throw new ConflictError('The webhook is disabled: enable it (PATCH enabled=true) before redelivering', 'webhook_disabled');
            }

            const now = Date.now();
            const updated = await found.$patchReturning(trx, { status: 'pending', next_attempt_at: new Date(now), retry_until: new Date(now + this.settings.retryWindowMs), delivered_at: null });
            await this.deps.audit.record(trx, actor, { action: 'webhook.redeliver', entity_type: 'webhook', entity_id: id, details: { delivery_id: deliveryId, event_type: found.event_type } });
            return updated;
        });

        return (await this.withAttempts([delivery]))[0]!;
    }

    // A signed `ping`, sent now, once (no retries): the answer says what the receiver did with it
    async ping(actor: Actor, id: string): Promise<DeliveryView> {

        const webhook = await this.get(actor, id);
        const now = new Date();
        const body = JSON.stringify({ type: 'ping', timestamp: now.toISOString(), data: { webhook_id: id } });
        const delivery = await this.deps.knex.transaction(async (trx) => {

            const created = await WebhookDelivery.insertReturning(trx, { webhook_id: id, event_id: null, event_type: 'ping', body, status: 'pending', attempts: 1, next_attempt_at: new Date(now.getTime() + internals.leaseMs), retry_until: now });
            await this.deps.audit.record(trx, actor, { action: 'webhook.test', entity_type: 'webhook', entity_id: id, details: { delivery_id: created.id } });
            return created;
        });

        const sent = await this.send(webhook, delivery);
        return (await this.withAttempts([sent]))[0]!;
    }

    // The relay's `webhooks` consumer, in the relay's transaction: one delivery per enabled subscription to the
    // event's type, idempotent on (webhook, event). The body is fixed here: what the event says, nothing re-read.
    async enqueue(actor: Actor, event: StoredEvent, trx: Knex.Transaction): Promise<number> {

        const webhooks = await Webhook.query(trx).where('enabled', true).whereRaw('? = any(events)', [event.type]).select('id');
        if (!webhooks.length) {
            return 0;
        }

        const body = JSON.stringify({ type: event.type, timestamp: new Date(event.created_at).toISOString(), data: { event_id: event.id, entity_type: event.entity_type, entity_id: event.entity_id, ...event.payload } });
        const rows = webhooks.map((webhook) => ({ webhook_id: webhook.id, event_id: event.id, event_type: event.type, body, status: 'pending', next_attempt_at: trx.fn.now(), retry_until: trx.raw(`now() + ? * interval '1 millisecond'`, [this.settings.retryWindowMs]) }));
        const inserted = await trx('webhook_deliveries').insert(rows).onConflict(['webhook_id', 'event_id']).ignore().returning('id');
        return inserted.length;
    }

    // The sender's pass: claims up to `batchSize` due deliveries of enabled webhooks (a lease: a sender that dies
    // leaves them due again after it), sends them at once, records each attempt. Answers how many it claimed.
    async sendDue(actor: Actor): Promise<number> {

        const { rows } = await this.deps.knex.raw<{ rows: Record<string, unknown>[] }>(`
            update webhook_deliveries d set attempts = d.attempts + 1, next_attempt_at = now() + ? * interval '1 millisecond', updated_at = now()
            where d.id in (
                select c.id from webhook_deliveries c join webhooks w on w.id = c.webhook_id
                where c.status = 'pending' and c.next_attempt_at <= now() and w.enabled
                order by c.next_attempt_at
                limit ?
                for update of c skip locked
            )
            returning d.*`, [this.settings.timeoutMs + internals.leaseMs, this.settings.batchSize]);

        if (!rows.length) {
            return 0;
        }

        const claimed = rows.map((row) => WebhookDelivery.fromDatabaseJson(row));
        const webhooks = new Map((await Webhook.query(this.deps.knex).findByIds([...new Set(claimed.map((item) => item.webhook_id))])).map((webhook) => [webhook.id, webhook]));
        await Promise.all(claimed.map((delivery) => this.send(webhooks.get(delivery.webhook_id), delivery)));
        return claimed.length;
    }

    private async send(webhook: Webhook | undefined, delivery: WebhookDelivery): Promise<WebhookDelivery> {

        const started = process.hrtime.bigint();
        let statusCode: number | null = null;
        let error: string | null = null;
        const secret = webhook && this.box.open(internals.context(webhook.id), { ciphertext: webhook.secret_ciphertext, iv: webhook.secret_iv, tag: webhook.secret_tag, key_id: webhook.secret_key_id });
        if (!webhook || !secret) {
            error = 'The signing secret cannot be opened (AEGIS_SECRET_KEY changed?): set a new secret with PATCH';
        }
        else {
            const timestamp = Math.floor(Date.now() / 1000);
            try {
                const response = await this.deps.outbound.request(webhook.url, {
                    method: 'POST',
                    timeoutMs: this.settings.timeoutMs,
                    maxBytes: 64 * 1024,
                    body: delivery.body,
                    headers: {
                        'content-type': 'application/json',
                        'user-agent': 'Aegis-Webhooks/1',
                        'webhook-id': delivery.id,
                        'webhook-timestamp': String(timestamp),
                        'webhook-signature': signWebhook(secret, delivery.id, timestamp, delivery.body)
                    }
                });
                statusCode = response.status;
            }
            catch (err) {
                statusCode = err instanceof OutboundError ? err.status ?? null : null;
                error = internals.errorText(err);
            }
        }

        const latency = Number((process.hrtime.bigint() - started) / 1_000_000n);
        try {
            return await this.record(webhook, delivery, { statusCode, error, latency });
        }
        catch (err) {
            // The webhook (and its deliveries) was deleted while the request was out: nothing left to record
            if (err instanceof ForeignKeyViolationError || (err as { code?: string }).code === '23503') {
                return delivery;
            }

            throw err;
        }
    }

    // One attempt's outcome: the attempt row, the delivery, and the webhook's failing streak, which disables it once a
    // delivery has failed for its whole retry window with no success in between (a failure: one short transaction)
    private async record(webhook: Webhook | undefined, delivery: WebhookDelivery, outcome: { statusCode: number | null; error: string | null; latency: number }): Promise<WebhookDelivery> {

        if (!outcome.error) {
            // The common case in one statement (one round trip): the attempt, the delivery done (unless it was
            // claimed again after our lease ran out), the webhook's failing streak ended
            const { rows: [done] } = await this.deps.knex.raw<{ rows: Record<string, unknown>[] }>(`
                with attempt as (insert into webhook_attempts (delivery_id, attempt, status_code, latency_ms) values (:id, :attempts, :status, :latency)),
                done as (
                    update webhook_deliveries set status = 'delivered', delivered_at = now(), next_attempt_at = null, last_status_code = :status, last_latency_ms = :latency, last_error = null, updated_at = now()
                    where id = :id and attempts = :attempts and status = 'pending'
                    returning *),
                streak as (update webhooks set failing_since = null where id = :webhook and failing_since is not null and exists (select 1 from done))
                select * from done`, { id: delivery.id, attempts: delivery.attempts, status: outcome.statusCode, latency: outcome.latency, webhook: delivery.webhook_id });

            return done ? WebhookDelivery.fromDatabaseJson(done) : delivery;
        }

        return await this.deps.knex.transaction(async (trx) => {

            await WebhookAttempt.query(trx).insert({ delivery_id: delivery.id, attempt: delivery.attempts, status_code: outcome.statusCode, latency_ms: outcome.latency, error: outcome.error });
            const now = new Date();
            const last = { last_status_code: outcome.statusCode, last_latency_ms: outcome.latency, last_error: outcome.error };
            const current = await WebhookDelivery.query(trx).findById(delivery.id).forUpdate();
            if (!current || current.attempts !== delivery.attempts || current.status !== 'pending') {
                return current ?? delivery;                     // deleted, or claimed again after our lease ran out
            }

            if (webhook && !webhook.failing_since && current.event_type !== 'ping') {
                await Webhook.query(trx).findById(webhook.id).whereNull('failing_since').patch({ failing_since: now });
            }

            const next = now.getTime() + retryDelayMs(this.settings, current.attempts, Math.random());
            const until = new Date(current.retry_until).getTime();
            if (now.getTime() < until) {
                return await current.$patchReturning(trx, { ...last, next_attempt_at: new Date(Math.min(next, until)) });
            }

            const failed = await current.$patchReturning(trx, { ...last, status: 'failed', next_attempt_at: null });
            if (webhook && current.event_type !== 'ping') {
                await this.disableIfFailing(trx, webhook.id, now);
            }

            return failed;
        });
    }

    private async disableIfFailing(trx: Knex.Transaction, id: string, now: Date): Promise<void> {

        const webhook = await Webhook.query(trx).findById(id).forUpdate();
        if (!webhook?.enabled || !webhook.failing_since || now.getTime() - new Date(webhook.failing_since).getTime() < this.settings.retryWindowMs) {
            return;
        }

        const reason = `Every delivery failed since ${new Date(webhook.failing_since).toISOString()}`;
        await webhook.$query(trx).patch({ enabled: false, disabled_reason: reason });
        await this.deps.audit.record(trx, { id: null, role: 'system' }, { action: 'webhook.disabled', entity_type: 'webhook', entity_id: id, details: { reason } });
        const admins = await User.query(trx).where({ role: Role.admin, is_active: true }).select('id');
        await this.deps.notifications.notify(trx, admins.map((admin) => ({
            user_id: admin.id,
            type: 'webhook.disabled',
            title: `Webhook "${webhook.name}" was disabled`,
            body: `${reason}. Fix the receiver, then enable the webhook again (PATCH /webhooks/${id} enabled=true) and redeliver what failed.`,
            entity_type: 'webhook',
            entity_id: id
        })));
    }

    private async checkUrl(url: string): Promise<string> {

        try {
            return await this.deps.outbound.check(url);
        }
        catch (err) {
            throw new ValidationError(`url: ${internals.errorText(err)}`, ['url'], 'url_not_allowed');
        }
    }

    private async withAttempts(deliveries: WebhookDelivery[]): Promise<DeliveryView[]> {

        const attempts = deliveries.length ? await WebhookAttempt.query(this.deps.knex).whereIn('delivery_id', deliveries.map((item) => item.id)).orderBy('id') : [];
        return deliveries.map((delivery) => Object.assign(delivery, { attempt_log: attempts.filter((attempt) => attempt.delivery_id === delivery.id) }));
    }
}
