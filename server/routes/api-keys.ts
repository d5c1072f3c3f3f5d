import type { ApiKeyScope } from '../models';
import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { apiKeyCreate, apiKeyListQuery, apiKeyPage, createdApiKey } from '../schemas/api-keys';
import { answers, idParams } from '../schemas/common';

import { route } from './route';


export const apiKeyRoutes = [
    route<{ Query: { limit: number; offset: number; sort?: string; order?: 'asc' | 'desc'; include_revoked?: boolean } }>({
        method: 'GET',
        path: '/api/v1/api-keys',
        options: {
            description: 'List the own API keys (never the keys themselves)',
            tags: ['api', 'api-keys'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: apiKeyListQuery },
            response: { schema: apiKeyPage }
        },
        handler: (request) => request.services().apiKeys.list(actorOf(request), request.query)
    }),

    route<{ Payload: { name: string; scope: ApiKeyScope; expires_at?: Date } }>({
        method: 'POST',
        path: '/api/v1/api-keys',
        options: {
            description: 'Create an API key (interactive sessions only, not with an API key); the key is answered once, in `key`, and only its hash is kept. It expires at `expires_at`, at most API_KEY_MAX_LIFETIME_DAYS from now (the default)',
            tags: ['api', 'api-keys'],
            auth: { access: { scope: [...Access.any] } },
            plugins: { aegis: { interactiveOnly: true } },
            validate: { payload: apiKeyCreate },
            response: { status: { 201: createdApiKey } }
        },
        handler: async (request, h) => h.response(await request.services().apiKeys.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/api-keys/{id}',
        options: {
            description: 'Revoke an API key (own, or any as admin; interactive sessions only, not with an API key)',
            tags: ['api', 'api-keys'],
            auth: { access: { scope: [...Access.any] } },
            plugins: { aegis: { interactiveOnly: true }, ...answers(204, 404) },
            validate: { params: idParams }
        },
        handler: async (request, h) => {

            await request.services().apiKeys.revoke(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    })
];
