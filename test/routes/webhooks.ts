import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { OutboundHttp } from '../../integrations/http';
import { AuditLog, Notification, Webhook, WebhookAttempt, WebhookDelivery } from '../../server/models';
import { systemActor, type Role } from '../../server/policy';
import { resolveSecretKey } from '../../server/runtime';
import type { DomainEventType } from '../../server/services/events';
import { retryDelayMs, signWebhook, WebhooksService, webhookDefaults } from '../../server/services/webhooks';

import { json } from '../helpers/factories';
import { startReceiver } from '../helpers/receiver';
import { init, type TestContext } from '../helpers/server';
import { webhooksConsumer } from '../../worker/consumers/webhooks';
import { EventRelay } from '../../worker/relay';
import { WebhookSender } from '../../worker/webhook-sender';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Webhooks', () => {

    let context: TestContext;
    let sender: WebhooksService;            // the service with a short attempt timeout (the hanging receiver)
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    const counts = async () => ({
        webhooks: await Webhook.query(context.knex).resultSize(),
        deliveries: await WebhookDelivery.query(context.knex).resultSize(),
        attempts: await WebhookAttempt.query(context.knex).resultSize()
    });

    const emit = async (type: DomainEventType, payload: Record<string, unknown>) => {

        const entityId = Crypto.randomUUID();
        await context.knex.transaction((trx) => context.services.events.emit(trx, context.actor('admin'), [{ type, entity_type: 'test', entity_id: entityId, payload: { test_id: entityId, ...payload } }]));
        await context.relay.drain();
        return entityId;
    };

    const sendAll = async (service = sender) => {

        while (await service.sendDue(systemActor)) { }
    };

    const due = (id: string) => WebhookDelivery.query(context.knex).where('webhook_id', id).where('status', 'pending').patch({ next_attempt_at: new Date(Date.now() - 1000) });

    before(async () => {

        context = await init({ redis: false, env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1' } });
        sender = new WebhooksService({ knex: context.knex, audit: context.services.audit, notifications: context.services.notifications, outbound: new OutboundHttp(context.config.outbound), secretKey: resolveSecretKey(context.config), settings: { timeoutMs: 400 } });
        await context.relay.drain();                    // places the `webhooks` consumer (from: 'now') before any event of ours
    });

    after(async () => {

        await context.stop();
    });

    it('computes the back-off by hand: 5 s doubling, capped at an hour, plus up to a quarter', () => {

        expect(retryDelayMs(webhookDefaults, 1, 0)).to.equal(5_000);
        expect(retryDelayMs(webhookDefaults, 2, 0)).to.equal(10_000);
        expect(retryDelayMs(webhookDefaults, 4, 0.5)).to.equal(45_000);                 // 40 s × 1.125
        expect(retryDelayMs(webhookDefaults, 10, 0)).to.equal(2_560_000);
        expect(retryDelayMs(webhookDefaults, 11, 0)).to.equal(3_600_000);               // 5,120 s capped
        expect(retryDelayMs(webhookDefaults, 60, 0.999)).to.equal(4_499_100);
        // Standard Webhooks' example: secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek, ts 1614265330
        expect(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).to.equal('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    });

    it('creates, reads, changes and deletes a subscription; the secret is answered once and never stored in clear', async () => {

        const receiver = await startReceiver(() => '');
        const res = await request('admin', 'POST', '/webhooks', { name: 'SOAR', url: receiver.url, events: ['test.validated', 'coverage.changed'], description: 'to the SOAR' });
        expect(res.statusCode, res.payload).to.equal(201);
        const created = json(res);
        expect(created.secret).to.match(/^whsec_[A-Za-z0-9+/]{43}=$/);
        expect(Buffer.from(created.secret.slice(6), 'base64').length).to.equal(32);
        expect(created).to.equal({
            id: created.id, name: 'SOAR', url: receiver.url, events: ['test.validated', 'coverage.changed'], description: 'to the SOAR', enabled: true,
            disabled_reason: null, failing_since: null, created_by: context.users.admin.id, created_at: created.created_at, updated_at: created.updated_at, secret: created.secret
        });

        const { secret, ...shown } = created;
        expect(json(await request('admin', 'GET', `/webhooks/${created.id}`))).to.equal(shown);
        const listed = json(await request('admin', 'GET', '/webhooks?event=coverage.changed&enabled=true&limit=500'));
        expect(listed.items.find((item: { id: string }) => item.id === created.id)).to.equal(shown);
        expect(json(await request('admin', 'GET', '/webhooks?event=alert.fired&limit=500')).items.map((item: { id: string }) => item.id)).to.not.include(created.id);

        const row = await context.knex('webhooks').where('id', created.id).first();
        expect(row.secret_ciphertext.toString('latin1')).to.not.include(secret.slice(6));
        const audits = await AuditLog.query(context.knex).where('entity_id', created.id);
        expect(JSON.stringify(audits)).to.not.include(secret.slice(6));

        const given = `whsec_${Crypto.randomBytes(24).toString('base64')}`;
        const patched = json(await request('admin', 'PATCH', `/webhooks/${created.id}`, { name: 'SOAR 2', events: ['alert.fired'], secret: given, description: '' }));
        expect(patched).to.equal({ ...shown, name: 'SOAR 2', events: ['alert.fired'], description: null, updated_at: patched.updated_at });
        expect(JSON.stringify(await AuditLog.query(context.knex).where('entity_id', created.id))).to.not.include(given.slice(6));

        const off = json(await request('admin', 'PATCH', `/webhooks/${created.id}`, { enabled: false }));
        expect(off).to.include({ enabled: false, disabled_reason: 'Disabled by an administrator' });
        expect(json(await request('admin', 'PATCH', `/webhooks/${created.id}`, { enabled: true }))).to.include({ enabled: true, disabled_reason: null });

        expect((await request('admin', 'DELETE', `/webhooks/${created.id}`)).statusCode).to.equal(204);
        expect((await request('admin', 'GET', `/webhooks/${created.id}`)).statusCode).to.equal(404);
        expect((await AuditLog.query(context.knex).where('entity_id', created.id).select('action').orderBy('created_at')).map((item) => item.action)).to.equal(['webhook.create', 'webhook.update', 'webhook.update', 'webhook.update', 'webhook.delete']);
        await receiver.close();
    });

    it('refuses bad input with 400 naming the field, private URLs at save, unknown ids with 404, and writes nothing', async () => {

        const initial = await counts();
        const valid = { name: 'x', url: 'https://hooks.example.com/in', events: ['test.validated'] };
        const cases: [object, string][] = [
            [{ ...valid, name: undefined }, 'name'],
            [{ ...valid, events: [] }, 'events'],
            [{ ...valid, events: ['test.deleted'] }, 'events[0]'],
            [{ ...valid, events: ['test.validated', 'test.validated'] }, 'events[1]'],
            [{ ...valid, secret: `whsec_${Crypto.randomBytes(16).toString('base64')}` }, 'secret'],
            [{ ...valid, secret: 'not-a-secret' }, 'secret'],
            [{ ...valid, url: 'http://10.0.0.5/hook' }, 'url'],
            [{ ...valid, url: 'https://169.254.169.254/latest' }, 'url'],
            [{ ...valid, url: 'ftp://example.com/x' }, 'url'],
            [{ ...valid, url: 'not a url' }, 'url'],
            [{ ...valid, extra: 1 }, 'extra']
        ];

        for (const [payload, field] of cases) {
            const res = await request('admin', 'POST', '/webhooks', payload);
            expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
            expect(res.payload, JSON.stringify(payload)).to.include(field);
        }

        const privateUrl = json(await request('admin', 'POST', '/webhooks', { ...valid, url: 'https://192.168.1.10/hook' }));
        expect(privateUrl).to.include({ code: 'url_not_allowed', fields: ['url'] });

        const missing = Crypto.randomUUID();
        expect((await request('admin', 'GET', `/webhooks/${missing}`)).statusCode).to.equal(404);
        expect((await request('admin', 'PATCH', `/webhooks/${missing}`, { name: 'y' })).statusCode).to.equal(404);
        expect((await request('admin', 'DELETE', `/webhooks/${missing}`)).statusCode).to.equal(404);
        expect((await request('admin', 'POST', `/webhooks/${missing}/test`)).statusCode).to.equal(404);
        expect((await request('admin', 'GET', `/webhooks/${missing}/deliveries`)).statusCode).to.equal(404);
        expect((await request('admin', 'POST', `/webhooks/${missing}/deliveries/${missing}/redeliver`)).statusCode).to.equal(404);
        expect((await request('admin', 'PATCH', `/webhooks/${missing}`, {})).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/webhooks/not-a-uuid')).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/webhooks?sort=secret_ciphertext')).statusCode).to.equal(400);
        expect(await counts()).to.equal(initial);
    });

    it('delivers each subscribed event once, signed, from the relay through the sender, and logs the attempt', async () => {

        let secret = '';
        const receiver = await startReceiver(() => secret);
        const created = json(await request('admin', 'POST', '/webhooks', { name: 'SIEM', url: receiver.url, events: ['test.state_changed', 'test.validated'] }));
        secret = created.secret;

        const testId = await emit('test.state_changed', { action: 'submit-red', from: 'red_executing', to: 'blue_evaluating', technique_id: 'T1059.001' });
        await emit('coverage.changed', { technique_id: 'T1059.001', from: 'none', to: 'partial', test_id: null });           // not subscribed
        await context.relay.drain();                                                                                    // a second drain adds nothing

        const rows = await WebhookDelivery.query(context.knex).where('webhook_id', created.id);
        expect(rows.length).to.equal(1);
        expect(rows[0]).to.include({ status: 'pending', attempts: 0, event_type: 'test.state_changed' });

        await sendAll();
        const mine = receiver.received.filter((item) => item.body.includes(testId));
        expect(mine.length).to.equal(1);
        expect(mine[0]!.verified).to.be.true();
        expect(mine[0]!.id).to.equal(rows[0]!.id);
        const body = JSON.parse(mine[0]!.body);
        expect(body).to.equal({ type: 'test.state_changed', timestamp: body.timestamp, data: { event_id: body.data.event_id, entity_type: 'test', entity_id: testId, test_id: testId, action: 'submit-red', from: 'red_executing', to: 'blue_evaluating', technique_id: 'T1059.001' } });

        const log = json(await request('admin', 'GET', `/webhooks/${created.id}/deliveries`));
        expect(log.total).to.equal(1);
        const [item] = log.items;
        expect(item).to.include({ id: rows[0]!.id, status: 'delivered', attempts: 1, last_status_code: 204, last_error: null, body: mine[0]!.body, next_attempt_at: null });
        expect(item.attempt_log).to.have.length(1);
        expect(item.attempt_log[0]).to.include({ attempt: 1, status_code: 204, error: null });
        expect(item.attempt_log[0].latency_ms as number).to.be.within(0, 5000);
        expect(json(await request('admin', 'GET', `/webhooks/${created.id}/deliveries?status=failed`)).total).to.equal(0);

        // A disabled subscription gets no new delivery
        await request('admin', 'PATCH', `/webhooks/${created.id}`, { enabled: false });
        await emit('test.validated', { technique_id: 'T1059.001', detection_outcome: 'alerted' });
        expect(await WebhookDelivery.query(context.knex).where('webhook_id', created.id).resultSize()).to.equal(1);

        await request('admin', 'DELETE', `/webhooks/${created.id}`);
        expect(await WebhookDelivery.query(context.knex).where('webhook_id', created.id).resultSize()).to.equal(0);
        await receiver.close();
    });

    it('retries a receiver that fails, then times out, then recovers, under the same webhook-id, with growing back-off', async () => {

        let secret = '';
        const receiver = await startReceiver(() => secret, ['fail', 'hang', 'ok']);
        const created = json(await request('admin', 'POST', '/webhooks', { name: 'Flaky', url: receiver.url, events: ['alert.fired'] }));
        secret = created.secret;
        await emit('alert.fired', { alert_id: Crypto.randomUUID(), severity: 'high' });

        await sendAll();
        let [delivery] = await WebhookDelivery.query(context.knex).where('webhook_id', created.id);
        expect(delivery).to.include({ status: 'pending', attempts: 1, last_status_code: 500 });
        let wait = new Date(delivery!.next_attempt_at!).getTime() - new Date(delivery!.updated_at).getTime();
        expect(wait).to.be.within(5_000 - 1_000, 6_250 + 1_000);                       // 5 s, plus up to a quarter
        expect((await Webhook.query(context.knex).findById(created.id))!.failing_since).to.be.a.date();

        await sendAll();
        expect(receiver.received).to.have.length(1);                                    // not due yet

        await due(created.id);
        await sendAll();
        [delivery] = await WebhookDelivery.query(context.knex).where('webhook_id', created.id);
        expect(delivery).to.include({ status: 'pending', attempts: 2, last_status_code: null });
        expect(delivery!.last_error).to.include('did not answer in time');
        wait = new Date(delivery!.next_attempt_at!).getTime() - new Date(delivery!.updated_at).getTime();
        expect(wait).to.be.within(10_000 - 1_000, 12_500 + 1_000);

        await due(created.id);
        await sendAll();
        [delivery] = await WebhookDelivery.query(context.knex).where('webhook_id', created.id);
        expect(delivery).to.include({ status: 'delivered', attempts: 3, last_status_code: 204, last_error: null });
        expect(receiver.received.map((item) => item.id)).to.equal([delivery!.id, delivery!.id, delivery!.id]);
        expect(receiver.received.every((item) => item.verified)).to.be.true();
        expect(new Set(receiver.received.map((item) => item.body)).size).to.equal(1);
        expect((await Webhook.query(context.knex).findById(created.id))!.failing_since).to.be.null();

        const log = json(await request('admin', 'GET', `/webhooks/${created.id}/deliveries`)).items[0].attempt_log;
        expect(log.map((item: { attempt: number; status_code: number | null }) => [item.attempt, item.status_code])).to.equal([[1, 500], [2, null], [3, 204]]);
        expect(log[1].latency_ms as number).to.be.within(350, 3000);

        await request('admin', 'DELETE', `/webhooks/${created.id}`);
        await receiver.close();
    });

    it('marks a delivery failed after its retry window, disables a subscription that failed all that time and tells the admins', async () => {

        let secret = '';
        const receiver = await startReceiver(() => secret, ['fail']);
        const created = json(await request('admin', 'POST', '/webhooks', { name: `Dead ${Crypto.randomBytes(3).toString('hex')}`, url: receiver.url, events: ['campaign.completed'] }));
        secret = created.secret;
        await emit('campaign.completed', { campaign_id: Crypto.randomUUID() });
        await sendAll();

        // A day passes: the delivery's window closes and the webhook has failed since before it
        const dayAgo = new Date(Date.now() - webhookDefaults.retryWindowMs - 60_000);
        await WebhookDelivery.query(context.knex).where('webhook_id', created.id).patch({ retry_until: new Date(Date.now() - 1000) });
        await Webhook.query(context.knex).findById(created.id).patch({ failing_since: dayAgo });
        await due(created.id);
        await sendAll();

        const [delivery] = await WebhookDelivery.query(context.knex).where('webhook_id', created.id);
        expect(delivery).to.include({ status: 'failed', attempts: 2, last_status_code: 500, next_attempt_at: null });
        const webhook = json(await request('admin', 'GET', `/webhooks/${created.id}`));
        expect(webhook).to.include({ enabled: false, disabled_reason: `Every delivery failed since ${dayAgo.toISOString()}` });

        const notes = await Notification.query(context.knex).where({ entity_id: created.id, type: 'webhook.disabled' });
        expect(notes.map((note) => note.user_id)).to.include(context.users.admin.id);
        expect(notes[0]!.title).to.equal(`Webhook "${created.name}" was disabled`);
        expect(await AuditLog.query(context.knex).where({ entity_id: created.id, action: 'webhook.disabled' }).resultSize()).to.equal(1);

        // Redelivery: refused while disabled, then accepted, sent under the same id, and refused again while pending
        const redeliver = `/webhooks/${created.id}/deliveries/${delivery!.id}/redeliver`;
        expect(json(await request('admin', 'POST', redeliver))).to.include({ code: 'webhook_disabled' });
        receiver.script(['ok']);
        await request('admin', 'PATCH', `/webhooks/${created.id}`, { enabled: true });
        const again = await request('admin', 'POST', redeliver);
        expect(again.statusCode, again.payload).to.equal(202);
        expect(json(again)).to.include({ id: delivery!.id, status: 'pending', attempts: 2 });
        const pending = await request('admin', 'POST', redeliver);
        expect(pending.statusCode).to.equal(409);
        expect(json(pending)).to.include({ code: 'delivery_pending' });

        await sendAll();
        expect(await WebhookDelivery.query(context.knex).findById(delivery!.id)).to.include({ status: 'delivered', attempts: 3, last_status_code: 204 });
        expect(receiver.received.map((item) => item.id)).to.equal([delivery!.id, delivery!.id, delivery!.id]);
        expect(receiver.received.at(-1)!.verified).to.be.true();
        expect((await request('admin', 'POST', `/webhooks/${created.id}/deliveries/${Crypto.randomUUID()}/redeliver`)).statusCode).to.equal(404);

        await request('admin', 'DELETE', `/webhooks/${created.id}`);
        await receiver.close();
    });

    it('sends a signed ping on demand and answers what the receiver did', async () => {

        let secret = '';
        const receiver = await startReceiver(() => secret, ['ok', 'fail']);
        const created = json(await request('admin', 'POST', '/webhooks', { name: 'Ping', url: receiver.url, events: ['coverage.changed'] }));
        secret = created.secret;

        const ok = await request('admin', 'POST', `/webhooks/${created.id}/test`);
        expect(ok.statusCode, ok.payload).to.equal(200);
        const sent = json(ok);
        expect(sent).to.include({ event_type: 'ping', event_id: null, status: 'delivered', attempts: 1, last_status_code: 204, last_error: null });
        expect(JSON.parse(sent.body)).to.equal({ type: 'ping', timestamp: JSON.parse(sent.body).timestamp, data: { webhook_id: created.id } });
        expect(receiver.received[0]).to.include({ id: sent.id, verified: true, body: sent.body });

        const failed = json(await request('admin', 'POST', `/webhooks/${created.id}/test`));
        expect(failed).to.include({ status: 'failed', attempts: 1, last_status_code: 500, next_attempt_at: null });
        expect(failed.last_error).to.include('answered 500');
        expect((await Webhook.query(context.knex).findById(created.id))!.failing_since).to.be.null();        // a ping is not a failing delivery

        await request('admin', 'DELETE', `/webhooks/${created.id}`);
        await receiver.close();
    });

    it('delivers without anyone draining: the worker relay wakes the sender once the deliveries of the consumer commit', async () => {

        let secret = '';
        let arrived: () => void = () => undefined;
        const receiver = await startReceiver(() => secret);
        const created = json(await request('admin', 'POST', '/webhooks', { name: 'Live', url: receiver.url, events: ['coverage.changed'] }));
        secret = created.secret;

        // As worker/index.ts wires them; the poll is an hour, so only the wake-up can deliver within the test
        const live = new WebhookSender({ webhooks: sender, pollMs: 3600_000 });
        const relay = new EventRelay({ knex: context.knex, consumers: [webhooksConsumer(context.services) as never], databaseUrl: context.config.database.url, onDelivery: (consumer) => consumer === 'webhooks' && live.wake(), options: { pollMs: 3600_000 } });
        const delivered = new Promise<void>((resolve) => (arrived = resolve));
        const poll = setInterval(() => receiver.received.length && arrived(), 5);
        await relay.start();
        live.start();
        try {
            const entityId = Crypto.randomUUID();
            await context.knex.transaction((trx) => context.services.events.emit(trx, context.actor('admin'), [{ type: 'coverage.changed', entity_type: 'technique', entity_id: entityId, payload: { technique_id: 'T1059.001', from: 'none', to: 'covered', test_id: null } }]));
            await delivered;
            expect(receiver.received[0]!.verified).to.be.true();
            expect(JSON.parse(receiver.received[0]!.body).data.entity_id).to.equal(entityId);
        }
        finally {
            clearInterval(poll);
            await relay.stop();
            await live.stop();
        }

        await request('admin', 'DELETE', `/webhooks/${created.id}`);
        await receiver.close();
    });

    it('forgets an attempt whose webhook was deleted while the request was out', async () => {

        let secret = '';
        const receiver = await startReceiver(() => secret, ['hang']);
        const created = json(await request('admin', 'POST', '/webhooks', { name: 'Deleted', url: receiver.url, events: ['test.validated'] }));
        secret = created.secret;
        await emit('test.validated', { technique_id: 'T1059.001', detection_outcome: 'logged' });

        const sending = sendAll();
        for (let i = 0; i < 200 && !receiver.received.length; ++i) {
            await new Promise((resolve) => setTimeout(resolve, 10));
        }

        expect(receiver.received).to.have.length(1);
        expect((await request('admin', 'DELETE', `/webhooks/${created.id}`)).statusCode).to.equal(204);
        await sending;
        expect(await WebhookDelivery.query(context.knex).where('webhook_id', created.id).resultSize()).to.equal(0);
        await receiver.close();
    });

    it('checks the URL again at delivery: an address the outbound rules refuse now is a failed attempt, never a request', async () => {

        let secret = '';
        const receiver = await startReceiver(() => secret);
        const created = json(await request('admin', 'POST', '/webhooks', { name: 'Moved', url: receiver.url, events: ['test.validated'] }));
        secret = created.secret;
        await emit('test.validated', { technique_id: 'T1059.001', detection_outcome: 'alerted' });

        // The same service under the default outbound rules (no allowed private hosts, https only)
        const strict = new WebhooksService({ knex: context.knex, audit: context.services.audit, notifications: context.services.notifications, outbound: new OutboundHttp(), secretKey: resolveSecretKey(context.config) });
        await sendAll(strict);
        const [delivery] = await WebhookDelivery.query(context.knex).where('webhook_id', created.id);
        expect(delivery).to.include({ status: 'pending', attempts: 1, last_status_code: null });
        expect(delivery!.last_error).to.include('not allowed');
        expect(receiver.received).to.have.length(0);

        await request('admin', 'DELETE', `/webhooks/${created.id}`);
        await receiver.close();
    });
});
