import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import * as Schemas from '../schemas/tests';
import { edits } from '../services/test-lifecycle';
import type { BlueUpdate, ClassificationUpdate, FromTemplate, RedUpdate, RemediationUpdate, TestCreate, TestFilters, TestUpdate } from '../services/tests';
import type { ListQuery } from '../services/lists';

import { route } from './route';


const internals = {
    tags: ['api', 'tests']
};


export const testRoutes = [
    route<{ Query: TestFilters }>({
        method: 'GET',
        path: '/api/v1/tests',
        options: {
            description: 'List tests. Filters: state (repeatable), technique_id, campaign_id, assigned_to (uuid or "me"), platform, priority, tag, red_assignee_id, blue_assignee_id, remediation_status, created_from, created_to, search',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.testListQuery },
            response: { status: { 200: Schemas.testPage } }
        },
        handler: (request) => request.services().tests.list(actorOf(request), request.query)
    }),

    route<{ Payload: TestCreate }>({
        method: 'POST',
        path: '/api/v1/tests',
        options: {
            description: 'Create a test in draft; with retest_of_id, a retest of a validated or rejected test that copies its general fields',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: Schemas.testCreate },
            response: { status: { 201: Schemas.test } },
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().tests.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Payload: FromTemplate }>({
        method: 'POST',
        path: '/api/v1/tests/from-template',
        options: {
            description: 'Create draft tests from templates: one per template and technique, with overrides',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: Schemas.fromTemplate },
            response: { status: { 201: Schemas.createdTests } },
            plugins: answers(404, 409)
        },
        handler: async (request, h) => h.response(await request.services().tests.fromTemplate(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/tests/{id}',
        options: {
            description: 'A test with all its fields, its timer reading and time to detect',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: Schemas.test } },
            plugins: answers(404)
        },
        handler: (request) => request.services().tests.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: TestUpdate }>({
        method: 'PATCH',
        path: '/api/v1/tests/{id}',
        options: {
            description: 'Update the general fields; draft and rejected only',
            tags: internals.tags,
            auth: { access: { scope: [...edits.update.roles] } },
            validate: { params: idParams, payload: Schemas.testUpdate },
            response: { status: { 200: Schemas.test } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().tests.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string }; Payload: ClassificationUpdate }>({
        method: 'PATCH',
        path: '/api/v1/tests/{id}/classification',
        options: {
            description: 'Set the data classification (narrows who may read the test, its evidence and timeline)',
            tags: internals.tags,
            auth: { access: { scope: [...edits.classification.roles] } },
            validate: { params: idParams, payload: Schemas.classificationUpdate },
            response: { status: { 200: Schemas.test } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().tests.setClassification(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string }; Payload: RedUpdate }>({
        method: 'PATCH',
        path: '/api/v1/tests/{id}/red',
        options: {
            description: 'Update the red-side fields; red_executing only',
            tags: internals.tags,
            auth: { access: { scope: [...edits.red.roles] } },
            validate: { params: idParams, payload: Schemas.redUpdate },
            response: { status: { 200: Schemas.test } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().tests.updateRed(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string }; Payload: BlueUpdate }>({
        method: 'PATCH',
        path: '/api/v1/tests/{id}/blue',
        options: {
            description: 'Update the blue-side fields (detections per tool; the outcome and detection time are derived); blue_evaluating only',
            tags: internals.tags,
            auth: { access: { scope: [...edits.blue.roles] } },
            validate: { params: idParams, payload: Schemas.blueUpdate },
            response: { status: { 200: Schemas.test } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().tests.updateBlue(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string }; Payload: RemediationUpdate }>({
        method: 'PATCH',
        path: '/api/v1/tests/{id}/remediation',
        options: {
            description: 'Update remediation status (none, open, in_progress, awaiting_retest, resolved, accepted_risk), notes, owner and due date; validated and rejected only. The Jira key is set by /tests/{id}/jira',
            tags: internals.tags,
            auth: { access: { scope: [...edits.remediation.roles] } },
            validate: { params: idParams, payload: Schemas.remediationUpdate },
            response: { status: { 200: Schemas.test } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().tests.updateRemediation(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string }; Query: ListQuery }>({
        method: 'GET',
        path: '/api/v1/tests/{id}/timeline',
        options: {
            description: 'The test timeline: transitions, field changes and evidence changes, oldest first',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: Schemas.timelineQuery },
            response: { schema: Schemas.timelinePage },
            plugins: answers(404)
        },
        handler: (request) => request.services().tests.timeline(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/tests/{id}/retest-chain',
        options: {
            description: 'Every test of the retest lineage of this test, oldest first',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { schema: Schemas.retestChain },
            plugins: answers(404)
        },
        handler: (request) => request.services().tests.retestChain(actorOf(request), request.params.id)
    })
];
