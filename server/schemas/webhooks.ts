import Joi from 'joi';

import { webhookEventTypes } from '../models';
import type { DeliveryFilters, WebhookCreate, WebhookFilters, WebhookUpdate } from '../services/webhooks';

import { listQuery, pageOf, text, timestamp, uuid } from './common';


// Standard Webhooks secrets: `whsec_` + base64 of 24 to 64 random bytes (SEC-20: at least 24)
const secret = Joi.string().pattern(/^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/).custom((value: string, helpers) => {

    const bytes = Buffer.from(value.slice('whsec_'.length), 'base64').length;
    return bytes >= 24 && bytes <= 64 ? value : helpers.message({ custom: '"secret" must be whsec_ followed by the base64 of 24 to 64 random bytes' });
}).messages({ 'string.pattern.base': '"secret" must be whsec_ followed by the base64 of 24 to 64 random bytes' });

const events = Joi.array().items(Joi.string().valid(...webhookEventTypes)).min(1).max(webhookEventTypes.length).unique();

const fields = {
    name: text(200).min(1),
    url: Joi.string().trim().max(2000),
    events,
    description: text(2000).allow(null, ''),
    enabled: Joi.boolean(),
    secret
};

export const webhookCreate = Joi.object<WebhookCreate, true>({
    ...fields,
    name: fields.name.required(),
    url: fields.url.required(),
    events: events.required()
}).label('WebhookCreate');

export const webhookUpdate = Joi.object<WebhookUpdate, true>(fields).min(1).label('WebhookUpdate');

export const webhookListQuery = listQuery(['created_at', 'name', 'updated_at'], {
    enabled: Joi.boolean(),
    event: Joi.string().valid(...webhookEventTypes)
}) as Joi.ObjectSchema<WebhookFilters>;

export const deliveryListQuery = listQuery(['created_at', 'updated_at', 'next_attempt_at'], {
    status: Joi.string().valid('pending', 'delivered', 'failed'),
    event_type: Joi.string().valid('ping', ...webhookEventTypes)
}) as Joi.ObjectSchema<DeliveryFilters>;

export const deliveryParams = Joi.object({ id: uuid.required(), delivery_id: uuid.required() });

export const webhook = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    url: Joi.string().required(),
    events: Joi.array().items(Joi.string()).required(),
    description: Joi.string().allow(null).required(),
    enabled: Joi.boolean().required(),
    disabled_reason: Joi.string().allow(null).required(),
    failing_since: timestamp.allow(null).required(),
    created_by: Joi.string().allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('Webhook');

export const webhookCreated = webhook.keys({
    secret: Joi.string().required().description('The signing secret, answered once, here; write-only afterwards')
}).label('WebhookCreated');

export const webhookPage = pageOf(webhook, 'WebhookPage');

const attempt = Joi.object({
    id: Joi.alternatives(Joi.string(), Joi.number()).required(),
    delivery_id: Joi.string().required(),
    attempt: Joi.number().integer().required(),
    status_code: Joi.number().integer().allow(null).required(),
    latency_ms: Joi.number().integer().required(),
    error: Joi.string().allow(null).required(),
    created_at: timestamp
}).label('WebhookAttempt');

export const delivery = Joi.object({
    id: Joi.string().required().description('Also the `webhook-id` header of every attempt'),
    webhook_id: Joi.string().required(),
    event_id: Joi.string().allow(null).required(),
    event_type: Joi.string().required(),
    body: Joi.string().required().description('The JSON body sent, byte for byte'),
    status: Joi.string().valid('pending', 'delivered', 'failed').required(),
    attempts: Joi.number().integer().required(),
    next_attempt_at: timestamp.allow(null).required(),
    retry_until: timestamp.required(),
    last_status_code: Joi.number().integer().allow(null).required(),
    last_latency_ms: Joi.number().integer().allow(null).required(),
    last_error: Joi.string().allow(null).required(),
    delivered_at: timestamp.allow(null).required(),
    attempt_log: Joi.array().items(attempt).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('WebhookDelivery');

export const deliveryPage = pageOf(delivery, 'WebhookDeliveryPage');
