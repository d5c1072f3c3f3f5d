import Joi from 'joi';

import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams, listQuery } from '../schemas/common';
import { notification, notificationPage, readAll } from '../schemas/notifications';

import { route } from './route';


export const notificationRoutes = [
    route<{ Query: { limit: number; offset: number; sort?: string; order?: 'asc' | 'desc'; unread?: boolean; type?: string } }>({
        method: 'GET',
        path: '/api/v1/notifications',
        options: {
            description: 'List the own notifications, newest first; `unread=true` for the unread ones; answers `unread_count` too',
            tags: ['api', 'notifications'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: listQuery(['created_at'], { unread: Joi.boolean(), type: Joi.string().max(64) }) },
            response: { schema: notificationPage }
        },
        handler: (request) => request.services().notifications.list(actorOf(request), request.query)
    }),

    route<{ Payload: { read: true } }>({
        method: 'PATCH',
        path: '/api/v1/notifications',
        options: {
            description: 'Mark all own notifications read',
            tags: ['api', 'notifications'],
            auth: { access: { scope: [...Access.any] } },
            validate: { payload: Joi.object({ read: Joi.boolean().valid(true).required() }) },
            response: { schema: readAll }
        },
        handler: (request) => request.services().notifications.markAllRead(actorOf(request))
    }),

    route<{ Params: { id: string }; Payload: { read: boolean } }>({
        method: 'PATCH',
        path: '/api/v1/notifications/{id}',
        options: {
            description: 'Mark one own notification read or unread',
            tags: ['api', 'notifications'],
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, payload: Joi.object({ read: Joi.boolean().required() }) },
            response: { schema: notification },
            plugins: answers(404)
        },
        handler: (request) => request.services().notifications.markRead(actorOf(request), request.params.id, request.payload.read)
    })
];
