import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import { template, templateCreate, templateListQuery, templatePage, templateUpdate } from '../schemas/test-templates';
import type { TemplateCreate, TemplateFields, TemplateFilters } from '../services/test-templates';

import { route } from './route';


const internals = {
    tags: ['api', 'test-templates']
};


export const testTemplateRoutes = [
    route<{ Query: TemplateFilters }>({
        method: 'GET',
        path: '/api/v1/test-templates',
        options: {
            description: 'List templates. Filters: technique_id, platform, source (manual, test, atomic), tag, search',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: templateListQuery },
            response: { status: { 200: templatePage } }
        },
        handler: (request) => request.services().testTemplates.list(actorOf(request), request.query)
    }),

    route<{ Payload: TemplateCreate }>({
        method: 'POST',
        path: '/api/v1/test-templates',
        options: {
            description: 'Create a template from scratch, or from an existing public or internal test (source_test_id) with overrides; a confidential or restricted source answers 409 classified_source',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: templateCreate },
            response: { status: { 201: template } }
        },
        handler: async (request, h) => h.response(await request.services().testTemplates.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/test-templates/{id}',
        options: {
            description: 'A template with its procedure, commands and input arguments',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: template } },
            plugins: answers(404)
        },
        handler: (request) => request.services().testTemplates.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: TemplateFields }>({
        method: 'PATCH',
        path: '/api/v1/test-templates/{id}',
        options: {
            description: 'Update a template',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: templateUpdate },
            response: { status: { 200: template } },
            plugins: answers(404)
        },
        handler: (request) => request.services().testTemplates.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/test-templates/{id}',
        options: {
            description: 'Delete a template (tests made from it keep their copy)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().testTemplates.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    })
];
