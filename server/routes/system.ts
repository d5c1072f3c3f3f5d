import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import { eventDelivery, failedDeliveryPage, failedDeliveryQuery } from '../schemas/events';
import { syncRequest } from '../schemas/heatmap';
import * as SystemSchemas from '../schemas/system';
import type { AuditFilters } from '../services/audit';
import type { FailedDeliveryFilters } from '../services/events';

import { route } from './route';


export const systemRoutes = [
    route({
        method: 'GET',
        path: '/api/v1/system/health',
        options: {
            description: 'Liveness and the state of each dependency (public)',
            tags: ['api', 'system'],
            auth: false,
            // The same body either way: 503 when the database is down
            response: { status: { 200: SystemSchemas.health, 503: SystemSchemas.health } }
        },
        handler: async (request, h) => {

            const health = await request.services().system.health();
            return h.response(health).code(health.dependencies.database.status === 'ok' ? 200 : 503);
        }
    }),

    route({
        method: 'GET',
        path: '/api/v1/system/scheduler',
        options: {
            description: 'The worker\'s jobs (name, schedule, last and next run, state, progress), the live workers, and each event consumer\'s lag, retries and parked deliveries',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            response: { schema: SystemSchemas.scheduler }
        },
        handler: (request) => request.services().system.scheduler(actorOf(request))
    }),

    route({
        method: 'POST',
        path: '/api/v1/system/sync',
        options: {
            description: 'Queue an ATT&CK and D3FEND sync now (answers the job id; a sync already queued or running is answered instead of a second one)',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            response: { status: { 202: syncRequest } }
        },
        handler: async (request, h) => h.response(await request.services().attackImport.requestSync(actorOf(request))).code(202)
    }),

    route<{ Query: FailedDeliveryFilters }>({
        method: 'GET',
        path: '/api/v1/system/events/failed',
        options: {
            description: 'Deliveries of domain events parked after their last attempt, with the event and the last error, newest first',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { query: failedDeliveryQuery },
            response: { status: { 200: failedDeliveryPage } }
        },
        handler: (request) => request.services().events.failed(actorOf(request), request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'POST',
        path: '/api/v1/system/events/failed/{id}/retry',
        options: {
            description: 'Hand a parked delivery back to the relay now, with a fresh set of attempts (409 when it is not parked)',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams },
            response: { status: { 200: eventDelivery } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().events.retry(actorOf(request), request.params.id)
    }),

    route<{ Query: AuditFilters }>({
        method: 'GET',
        path: '/api/v1/audit-logs',
        options: {
            description: 'The audit trail, newest first, filtered by actor, action, entity, outcome and time range',
            tags: ['api', 'audit-logs'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { query: SystemSchemas.auditLogQuery },
            response: { schema: SystemSchemas.auditLogPage }
        },
        handler: (request) => request.services().audit.list(actorOf(request), request.query)
    })
];
