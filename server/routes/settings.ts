import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers } from '../schemas/common';
import { emailResult, emailTest, setting, settingListQuery, settingParams, settingsPage, settingUpdate } from '../schemas/settings';

import { route } from './route';


export const settingRoutes = [
    route<{ Query: { limit: number; offset: number; sort?: 'key'; order?: 'asc' | 'desc' } }>({
        method: 'GET',
        path: '/api/v1/system/settings',
        options: {
            description: 'Every run-time setting with its value or default (secret fields answered as { set }), in the registry\'s order or sorted by key',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { query: settingListQuery },
            response: { schema: settingsPage }
        },
        handler: (request) => request.services().settings.list(actorOf(request), request.query)
    }),

    route<{ Params: { key: string } }>({
        method: 'GET',
        path: '/api/v1/system/settings/{key}',
        options: {
            description: 'One setting (secret fields answered as { set })',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: settingParams },
            response: { schema: setting },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().settings.describe(actorOf(request), request.params.key)
    }),

    route<{ Params: { key: string }; Payload: { value: unknown } }>({
        method: 'PUT',
        path: '/api/v1/system/settings/{key}',
        options: {
            description: 'Set a setting: `{ "value": ... }`, validated by the key\'s schema; a secret field left out keeps its value, null clears it; URL fields must pass the outbound address rules',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: settingParams, payload: settingUpdate },
            response: { schema: setting },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().settings.set(actorOf(request), request.params.key, request.payload.value)
    }),

    route<{ Params: { key: string } }>({
        method: 'DELETE',
        path: '/api/v1/system/settings/{key}',
        options: {
            description: 'Reset a setting to its default (its secrets are deleted)',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: settingParams },
            response: { schema: setting },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().settings.reset(actorOf(request), request.params.key)
    }),

    route<{ Payload: { to?: string } | null }>({
        method: 'POST',
        path: '/api/v1/system/email/test',
        options: {
            description: 'Send a test e-mail (text, HTML and an attachment) to the given address or to the caller\'s own; 409 email_not_configured without SMTP',
            tags: ['api', 'system'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { payload: emailTest },
            response: { schema: emailResult },
            plugins: answers(409)
        },
        handler: (request) => request.services().mail.sendTest(actorOf(request), request.payload?.to)
    })
];
