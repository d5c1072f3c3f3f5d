import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import { delivery, deliveryListQuery, deliveryPage, deliveryParams, webhook, webhookCreate, webhookCreated, webhookListQuery, webhookPage, webhookUpdate } from '../schemas/webhooks';
import type { DeliveryFilters, WebhookCreate, WebhookFilters, WebhookUpdate } from '../services/webhooks';

import { route } from './route';


const internals = {
    tags: ['api', 'webhooks'],
    admin: { access: { scope: [...Access.admin] } }
};


export const webhookRoutes = [
    route<{ Query: WebhookFilters }>({
        method: 'GET',
        path: '/api/v1/webhooks',
        options: {
            description: 'List webhook subscriptions (the secret is never shown). Filters: enabled, event',
            tags: internals.tags,
            auth: internals.admin,
            validate: { query: webhookListQuery },
            response: { status: { 200: webhookPage } }
        },
        handler: (request) => request.services().webhooks.list(actorOf(request), request.query)
    }),

    route<{ Payload: WebhookCreate }>({
        method: 'POST',
        path: '/api/v1/webhooks',
        options: {
            description: 'Subscribe a URL to events. The URL must pass the outbound rules (public address, allowed scheme and port). The signing secret (whsec_…) is the one given or a new one, answered here once',
            tags: internals.tags,
            auth: internals.admin,
            validate: { payload: webhookCreate },
            response: { status: { 201: webhookCreated } }
        },
        handler: async (request, h) => h.response(await request.services().webhooks.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/webhooks/{id}',
        options: {
            description: 'A webhook subscription (the secret is never shown)',
            tags: internals.tags,
            auth: internals.admin,
            validate: { params: idParams },
            response: { status: { 200: webhook } },
            plugins: answers(404)
        },
        handler: (request) => request.services().webhooks.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: WebhookUpdate }>({
        method: 'PATCH',
        path: '/api/v1/webhooks/{id}',
        options: {
            description: 'Change a webhook: name, url, events, description, enabled (true re-enables one disabled after failures), secret (replaced, never shown)',
            tags: internals.tags,
            auth: internals.admin,
            validate: { params: idParams, payload: webhookUpdate },
            response: { status: { 200: webhook } },
            plugins: answers(404)
        },
        handler: (request) => request.services().webhooks.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/webhooks/{id}',
        options: {
            description: 'Delete a webhook and its delivery log',
            tags: internals.tags,
            auth: internals.admin,
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().webhooks.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string } }>({
        method: 'POST',
        path: '/api/v1/webhooks/{id}/test',
        options: {
            description: 'Send a signed `ping` now, once, and answer the delivery with its attempt (status code, latency, error)',
            tags: internals.tags,
            auth: internals.admin,
            validate: { params: idParams },
            response: { status: { 200: delivery } },
            plugins: answers(404)
        },
        handler: (request) => request.services().webhooks.ping(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Query: DeliveryFilters }>({
        method: 'GET',
        path: '/api/v1/webhooks/{id}/deliveries',
        options: {
            description: 'The deliveries of a webhook, newest first, each with its attempts (status code, latency, error). Filters: status, event_type',
            tags: internals.tags,
            auth: internals.admin,
            validate: { params: idParams, query: deliveryListQuery },
            response: { status: { 200: deliveryPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().webhooks.deliveries(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string; delivery_id: string } }>({
        method: 'POST',
        path: '/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver',
        options: {
            description: 'Send a delivered or failed delivery again: same webhook-id and body, a fresh retry window. 409 while it is pending or when the webhook is disabled',
            tags: internals.tags,
            auth: internals.admin,
            validate: { params: deliveryParams },
            response: { status: { 202: delivery } },
            plugins: answers(404, 409)
        },
        handler: async (request, h) => h.response(await request.services().webhooks.redeliver(actorOf(request), request.params.id, request.params.delivery_id)).code(202)
    })
];
