import type { Preferences } from '../models';
import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import * as UserSchemas from '../schemas/users';
import type { UserCreate, UserFilters, UserUpdate } from '../services/users';

import { route } from './route';


export const userRoutes = [
    route<{ Query: UserFilters }>({
        method: 'GET',
        path: '/api/v1/users',
        options: {
            description: 'List users',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { query: UserSchemas.userListQuery },
            response: { schema: UserSchemas.userPage }
        },
        handler: (request) => request.services().users.list(actorOf(request), request.query)
    }),

    route<{ Payload: UserCreate }>({
        method: 'POST',
        path: '/api/v1/users',
        options: {
            description: 'Create a user; the user must change the password at first login',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { payload: UserSchemas.userCreate },
            response: { status: { 201: UserSchemas.user } },
            // 409: the username or email is taken
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().users.create(actorOf(request), request.payload)).code(201)
    }),

    route({
        method: 'GET',
        path: '/api/v1/users/me',
        options: {
            description: 'The own profile',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.any] } },
            response: { schema: UserSchemas.user }
        },
        handler: (request) => request.services().users.get(actorOf(request), request.auth.credentials.user!.id)
    }),

    route<{ Payload: Preferences }>({
        method: 'PATCH',
        path: '/api/v1/users/me/preferences',
        options: {
            description: 'Update the own UI and notification preferences (merged into the stored ones)',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.any] } },
            validate: { payload: UserSchemas.preferences },
            response: { schema: UserSchemas.user }
        },
        handler: (request) => request.services().users.updatePreferences(actorOf(request), request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/users/{id}',
        options: {
            description: 'Get a user',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams },
            response: { schema: UserSchemas.user },
            plugins: answers(404)
        },
        handler: (request) => request.services().users.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: UserUpdate }>({
        method: 'PATCH',
        path: '/api/v1/users/{id}',
        options: {
            description: 'Update a user (role, is_active, display name, email, must_change_password)',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams, payload: UserSchemas.userUpdate },
            response: { schema: UserSchemas.user },
            // 409: the last active admin, or a taken email
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().users.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/users/{id}',
        options: {
            description: 'Deactivate a user (soft delete): every token and API key of the user stops working at once',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams },
            response: { schema: UserSchemas.user },
            // 409: the own account, or the last active admin
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().users.deactivate(actorOf(request), request.params.id)
    })
];

