import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import {
    attackPath, attackPathCreate, attackPathListQuery, attackPathPage, attackPathUpdate, execution, executionAbort, executionComplete,
    executionCreate, executionListQuery, executionPage, executionStart, stepCreate, stepParams, stepRecord, stepUpdate
} from '../schemas/attack-paths';
import { answers, idParams } from '../schemas/common';
import { executionLifecycle, type AttackPathCreate, type AttackPathFilters, type AttackPathUpdate, type ExecutionFilters, type StepCreate, type StepRecord, type StepUpdate } from '../services/attack-paths';

import { route } from './route';


const internals = {
    tags: ['api', 'attack-paths']
};


export const attackPathRoutes = [
    route<{ Query: AttackPathFilters }>({
        method: 'GET',
        path: '/api/v1/attack-paths',
        options: {
            description: 'List attack paths with their step and execution counts. Filters: technique_id (a step of that technique), tag, search (name)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: attackPathListQuery },
            response: { status: { 200: attackPathPage } }
        },
        handler: (request) => request.services().attackPaths.list(actorOf(request), request.query)
    }),

    route<{ Payload: AttackPathCreate }>({
        method: 'POST',
        path: '/api/v1/attack-paths',
        options: {
            description: 'Create an attack path, optionally with its first steps (positions 1..n in the order given)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.allExceptViewer] } },
            validate: { payload: attackPathCreate },
            response: { status: { 201: attackPath } },
            // 404: a template the caller cannot see
            plugins: answers(404)
        },
        handler: async (request, h) => h.response(await request.services().attackPaths.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/attack-paths/{id}',
        options: {
            description: 'An attack path with its steps in order',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: attackPath } },
            plugins: answers(404)
        },
        handler: (request) => request.services().attackPaths.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: AttackPathUpdate }>({
        method: 'PATCH',
        path: '/api/v1/attack-paths/{id}',
        options: {
            description: 'Update an attack path\'s name, description or tags (steps have routes of their own)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.allExceptViewer] } },
            validate: { params: idParams, payload: attackPathUpdate },
            response: { status: { 200: attackPath } },
            plugins: answers(404)
        },
        handler: (request) => request.services().attackPaths.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/attack-paths/{id}',
        options: {
            description: 'Delete an attack path and its steps; its executions are kept, readable, with the path\'s name and their own copy of the steps',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().attackPaths.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string }; Payload: StepCreate }>({
        method: 'POST',
        path: '/api/v1/attack-paths/{id}/steps',
        options: {
            description: 'Add a step: appended, or inserted at `position` (the steps from there move down one)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.allExceptViewer] } },
            validate: { params: idParams, payload: stepCreate },
            response: { status: { 201: attackPath } },
            plugins: answers(404)
        },
        handler: async (request, h) => h.response(await request.services().attackPaths.addStep(actorOf(request), request.params.id, request.payload)).code(201)
    }),

    route<{ Params: { id: string; sid: string }; Payload: StepUpdate }>({
        method: 'PATCH',
        path: '/api/v1/attack-paths/{id}/steps/{sid}',
        options: {
            description: 'Change a step, or move it to another `position` (the steps in between shift by one; positions stay 1..n)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.allExceptViewer] } },
            validate: { params: stepParams, payload: stepUpdate },
            response: { status: { 200: attackPath } },
            plugins: answers(404)
        },
        handler: (request) => request.services().attackPaths.updateStep(actorOf(request), request.params.id, request.params.sid, request.payload)
    }),

    route<{ Params: { id: string; sid: string } }>({
        method: 'DELETE',
        path: '/api/v1/attack-paths/{id}/steps/{sid}',
        options: {
            description: 'Remove a step; the later steps move up one. Answers the path as it now is',
            tags: internals.tags,
            auth: { access: { scope: [...Access.allExceptViewer] } },
            validate: { params: stepParams },
            response: { status: { 200: attackPath } },
            plugins: answers(404)
        },
        handler: (request) => request.services().attackPaths.removeStep(actorOf(request), request.params.id, request.params.sid)
    }),

    route<{ Params: { id: string }; Query: ExecutionFilters }>({
        method: 'GET',
        path: '/api/v1/attack-paths/{id}/executions',
        options: {
            description: 'The executions of an attack path, newest first. Filter: state',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: executionListQuery },
            response: { status: { 200: executionPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().attackPaths.listExecutions(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string }; Payload: { notes?: string | null } }>({
        method: 'POST',
        path: '/api/v1/attack-paths/{id}/executions',
        options: {
            description: 'Create an execution (pending) with a copy of the path\'s steps as they are now; 409 path_empty for a path without steps',
            tags: internals.tags,
            auth: { access: { scope: [...Access.allExceptViewer] } },
            validate: { params: idParams, payload: executionCreate },
            response: { status: { 201: execution } },
            plugins: answers(404, 409)
        },
        handler: async (request, h) => h.response(await request.services().attackPaths.createExecution(actorOf(request), request.params.id, request.payload ?? {})).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/executions/{id}',
        options: {
            description: 'An execution with its steps; a proving test hidden from the caller is neither shown nor named',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: execution } },
            plugins: answers(404)
        },
        handler: (request) => request.services().attackPaths.getExecution(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string } }>({
        method: 'POST',
        path: '/api/v1/executions/{id}/start',
        options: {
            description: executionLifecycle.start.description,
            tags: internals.tags,
            auth: { access: { scope: [...executionLifecycle.start.roles] } },
            validate: { params: idParams, payload: executionStart },
            response: { status: { 200: execution } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().attackPaths.start(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string; sid: string }; Payload: StepRecord }>({
        method: 'POST',
        path: '/api/v1/executions/{id}/steps/{sid}',
        options: {
            description: `${executionLifecycle['record-step'].description}. \`sid\` is the execution step's id; the test must be visible to the caller and of the step's technique (or a sub-technique)`,
            tags: internals.tags,
            auth: { access: { scope: [...executionLifecycle['record-step'].roles] } },
            validate: { params: stepParams, payload: stepRecord },
            response: { status: { 200: execution } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().attackPaths.recordStep(actorOf(request), request.params.id, request.params.sid, request.payload)
    }),

    route<{ Params: { id: string }; Payload: { notes?: string | null } }>({
        method: 'POST',
        path: '/api/v1/executions/{id}/complete',
        options: {
            description: executionLifecycle.complete.description,
            tags: internals.tags,
            auth: { access: { scope: [...executionLifecycle.complete.roles] } },
            validate: { params: idParams, payload: executionComplete },
            response: { status: { 200: execution } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().attackPaths.complete(actorOf(request), request.params.id, request.payload ?? {})
    }),

    route<{ Params: { id: string }; Payload: { reason?: string | null } }>({
        method: 'POST',
        path: '/api/v1/executions/{id}/abort',
        options: {
            description: executionLifecycle.abort.description,
            tags: internals.tags,
            auth: { access: { scope: [...executionLifecycle.abort.roles] } },
            validate: { params: idParams, payload: executionAbort },
            response: { status: { 200: execution } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().attackPaths.abort(actorOf(request), request.params.id, request.payload ?? {})
    })
];
