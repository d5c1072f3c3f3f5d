import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import { notification, notificationListQuery, notificationPage, readAll, readAllUpdate, readUpdate } from '../schemas/notifications';

import { route } from './route';


export const notificationRoutes = [
    route<{ Query: { limit: number; offset: number; sort?: string; order?: 'asc' | 'desc'; unread?: boolean; type?: string } }>({
        method: 'GET',
        path: '/api/v1/notifications',
        options: {
            description: 'List the own notifications, newest first; `unread=true` for the unread ones; answers `unread_count` too',
            tags: ['api', 'notifications'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: notificationListQuery },
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
            validate: { payload: readAllUpdate },
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
            validate: { params: idParams, payload: readUpdate },
            response: { schema: notification },
            plugins: answers(404)
        },
        handler: (request) => request.services().notifications.markRead(actorOf(request), request.params.id, request.payload.read)
    })
];
