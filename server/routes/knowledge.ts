import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import {
    knowledgeStats, lesson, lessonCreate, lessonListQuery, lessonPage, lessonUpdate, playbook, playbookCreate, playbookListQuery, playbookPage,
    playbookRestore, playbookUpdate, playbookVersionPage, playbookVersionParams, versionListQuery
} from '../schemas/knowledge';
import type { ListQuery } from '../services/lists';
import type { LessonCreate, LessonFields, LessonFilters, PlaybookCreate, PlaybookFilters, PlaybookUpdate } from '../services/knowledge';

import { route } from './route';


const internals = {
    tags: ['api', 'knowledge']
};


export const knowledgeRoutes = [
    route<{ Query: PlaybookFilters }>({
        method: 'GET',
        path: '/api/v1/knowledge/playbooks',
        options: {
            description: 'List playbooks (latest versions). Filters: technique_id, type, tag, search (title and body)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: playbookListQuery },
            response: { status: { 200: playbookPage } }
        },
        handler: (request) => request.services().knowledge.listPlaybooks(actorOf(request), request.query)
    }),

    route<{ Payload: PlaybookCreate }>({
        method: 'POST',
        path: '/api/v1/knowledge/playbooks',
        options: {
            description: 'Create a playbook (its version 1). The Markdown body is stored as written and never rendered',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: playbookCreate },
            response: { status: { 201: playbook } }
        },
        handler: async (request, h) => h.response(await request.services().knowledge.createPlaybook(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/knowledge/playbooks/{id}',
        options: {
            description: 'A playbook as of its latest version, with the list of its 50 newest versions (GET /versions pages through all)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: playbook } },
            plugins: answers(404)
        },
        handler: (request) => request.services().knowledge.getPlaybook(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: PlaybookUpdate }>({
        method: 'PATCH',
        path: '/api/v1/knowledge/playbooks/{id}',
        options: {
            description: 'Update a playbook: writes its next version, whole and immutable. Send `version` (the one you edited) to be refused with 409 stale_version if another update came first',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: playbookUpdate },
            response: { status: { 200: playbook } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().knowledge.updatePlaybook(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/knowledge/playbooks/{id}',
        options: {
            description: 'Delete a playbook with all its versions',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().knowledge.removePlaybook(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string }; Query: ListQuery }>({
        method: 'GET',
        path: '/api/v1/knowledge/playbooks/{id}/versions',
        options: {
            description: 'Every version of a playbook, whole (newest first)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: versionListQuery },
            response: { status: { 200: playbookVersionPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().knowledge.versions(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string; version: number }; Payload: { version?: number } | null }>({
        method: 'POST',
        path: '/api/v1/knowledge/playbooks/{id}/restore/{version}',
        options: {
            description: 'Restore a version: writes a new version equal to it (history is never rewritten). Body `version`: as for PATCH',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: playbookVersionParams, payload: playbookRestore },
            response: { status: { 200: playbook } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().knowledge.restorePlaybook(actorOf(request), request.params.id, request.params.version, request.payload ?? {})
    }),

    route<{ Query: LessonFilters }>({
        method: 'GET',
        path: '/api/v1/knowledge/lessons',
        options: {
            description: 'List lessons learned (those drawn from a test hidden from the caller are left out). Filters: severity, technique_id, campaign_id, test_id, status, search',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: lessonListQuery },
            response: { status: { 200: lessonPage } }
        },
        handler: (request) => request.services().knowledge.listLessons(actorOf(request), request.query)
    }),

    route<{ Payload: LessonCreate }>({
        method: 'POST',
        path: '/api/v1/knowledge/lessons',
        options: {
            description: 'Record a lesson learned; its test must be visible to the caller',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: lessonCreate },
            response: { status: { 201: lesson } },
            plugins: answers(404)
        },
        handler: async (request, h) => h.response(await request.services().knowledge.createLesson(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/knowledge/lessons/{id}',
        options: {
            description: 'A lesson learned (404 when drawn from a test hidden from the caller)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: lesson } },
            plugins: answers(404)
        },
        handler: (request) => request.services().knowledge.getLesson(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: LessonFields }>({
        method: 'PATCH',
        path: '/api/v1/knowledge/lessons/{id}',
        options: {
            description: 'Update a lesson learned (any status to any other)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: lessonUpdate },
            response: { status: { 200: lesson } },
            plugins: answers(404)
        },
        handler: (request) => request.services().knowledge.updateLesson(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/knowledge/lessons/{id}',
        options: {
            description: 'Delete a lesson learned',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().knowledge.removeLesson(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route({
        method: 'GET',
        path: '/api/v1/knowledge/stats',
        options: {
            description: 'Playbooks by type, lessons by severity (those the caller may see), and the techniques in use that no playbook names (their total and the first 100 by id)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            response: { status: { 200: knowledgeStats } }
        },
        handler: (request) => request.services().knowledge.stats(actorOf(request))
    })
];
