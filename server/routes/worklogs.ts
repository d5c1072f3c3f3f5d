import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import { worklog, worklogCreate, worklogListQuery, worklogPage, worklogSummary, worklogSummaryQuery, worklogUpdate } from '../schemas/worklogs';
import type { WorklogCreate, WorklogFilters, WorklogUpdate } from '../services/worklogs';

import { route } from './route';


const internals = {
    tags: ['api', 'worklogs']
};


export const worklogRoutes = [
    route<{ Query: WorklogFilters }>({
        method: 'GET',
        path: '/api/v1/worklogs',
        options: {
            description: 'List time entries: the own ones, or everyone\'s for an admin (user_id filters). Filters: user_id, test_id, campaign_id, date_from, date_to',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: worklogListQuery },
            response: { status: { 200: worklogPage } }
        },
        handler: (request) => request.services().worklogs.list(actorOf(request), request.query)
    }),

    route<{ Query: Omit<WorklogFilters, 'limit' | 'offset' | 'sort' | 'order'> & { group_by: 'test' | 'user' | 'campaign' } }>({
        method: 'GET',
        path: '/api/v1/worklogs/summary',
        options: {
            description: 'Total minutes per test, user or campaign over the entries the caller may read',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: worklogSummaryQuery },
            response: { status: { 200: worklogSummary } }
        },
        handler: (request) => request.services().worklogs.summary(actorOf(request), request.query)
    }),

    route<{ Payload: WorklogCreate }>({
        method: 'POST',
        path: '/api/v1/worklogs',
        options: {
            description: 'Log time on a test or a campaign (always the caller\'s own entry)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { payload: worklogCreate },
            response: { status: { 201: worklog } },
            // 404: a test the caller cannot see, or no such campaign
            plugins: answers(404)
        },
        handler: async (request, h) => h.response(await request.services().worklogs.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/worklogs/{id}',
        options: {
            description: 'A time entry (own, or any for an admin)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: worklog } },
            plugins: answers(404)
        },
        handler: (request) => request.services().worklogs.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: WorklogUpdate }>({
        method: 'PATCH',
        path: '/api/v1/worklogs/{id}',
        options: {
            description: 'Correct a time entry (own, or any for an admin)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, payload: worklogUpdate },
            response: { status: { 200: worklog } },
            plugins: answers(404)
        },
        handler: (request) => request.services().worklogs.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/worklogs/{id}',
        options: {
            description: 'Delete a time entry (own, or any for an admin)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().worklogs.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    })
];
