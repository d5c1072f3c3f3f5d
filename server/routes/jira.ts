import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams, responses } from '../schemas/common';
import { jiraConnectionReport, jiraIssueListQuery, jiraIssuePage, jiraLink, jiraLinkPayload, jiraSyncListQuery, jiraSyncRun, jiraSyncRunPage, jiraWebhookAnswer, jiraWebhookPayload, jiraWebhookQuery } from '../schemas/jira';
import type { JiraIssueFilters, JiraSyncFilters } from '../services/jira';

import { route } from './route';


// jira (issue 14): docs/jira.md. The configuration is the `jira` setting (PUT /system/settings/jira, A).
const internals = {
    tags: ['api', 'jira'],
    leads: { access: { scope: [...Access.jira] } },
    admin: { access: { scope: [...Access.admin] } }
};


export const jiraRoutes = [
    route({
        method: 'POST',
        path: '/api/v1/jira/test-connection',
        options: {
            description: 'Check the saved jira setting against Jira: reach, credentials, project and issue type, each said in words (never Jira\'s own body). 200 with ok=false when something is wrong',
            tags: internals.tags,
            auth: internals.admin,
            response: { status: { 200: jiraConnectionReport } }
        },
        handler: (request) => request.services().jira.testConnection(actorOf(request))
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/tests/{id}/jira',
        options: {
            description: 'The Jira issue linked to a test, with its last-known Jira status',
            tags: ['api', 'tests', 'jira'],
            auth: internals.leads,
            validate: { params: idParams },
            response: { status: { 200: jiraLink } },
            plugins: answers(404)
        },
        handler: (request) => request.services().jira.getLink(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string } }>({
        method: 'POST',
        path: '/api/v1/tests/{id}/jira',
        options: {
            description: 'Create a Jira issue from a validated or rejected test whose remediation is open or in progress: summary, description (technique, outcome, what was expected, the link back, evidence names and SHA-256), labels and the configured fields. Sets the test\'s jira_issue_key. 409 when already linked, the remediation is not open or Jira is not configured; 502 when Jira refuses or is unreachable',
            tags: ['api', 'tests', 'jira'],
            auth: internals.leads,
            validate: { params: idParams },
            response: { status: { 201: jiraLink } },
            plugins: { 'hapi-swagger': { responses: responses(404, 409, 502) } }
        },
        handler: async (request, h) => h.response(await request.services().jira.createIssue(actorOf(request), request.params.id)).code(201)
    }),

    route<{ Params: { id: string }; Payload: { key: string } }>({
        method: 'PUT',
        path: '/api/v1/tests/{id}/jira',
        options: {
            description: 'Link an existing Jira issue (it must exist in Jira and follow no other test) to a test whose remediation is open or in progress',
            tags: ['api', 'tests', 'jira'],
            auth: internals.leads,
            validate: { params: idParams, payload: jiraLinkPayload },
            response: { status: { 200: jiraLink } },
            plugins: { 'hapi-swagger': { responses: responses(404, 409, 502) } }
        },
        handler: (request) => request.services().jira.linkIssue(actorOf(request), request.params.id, request.payload.key)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/tests/{id}/jira',
        options: {
            description: 'Unlink the test\'s Jira issue (the issue stays in Jira; comments not yet posted are dropped)',
            tags: ['api', 'tests', 'jira'],
            auth: internals.leads,
            validate: { params: idParams },
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().jira.unlink(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route({
        method: 'POST',
        path: '/api/v1/jira/sync',
        options: {
            description: 'Run a sync now (a worker job): 202 with the queued run, or with the run already queued or running',
            tags: internals.tags,
            auth: internals.leads,
            response: { status: { 202: jiraSyncRun } },
            plugins: answers(409)
        },
        handler: async (request, h) => h.response((await request.services().jira.requestSync(actorOf(request))).run).code(202)
    }),

    route<{ Query: JiraSyncFilters }>({
        method: 'GET',
        path: '/api/v1/jira/sync',
        options: {
            description: 'The sync runs, newest first: issues seen, changed and failed (each failure with its issue key and reason). Filters: status, trigger',
            tags: internals.tags,
            auth: internals.leads,
            validate: { query: jiraSyncListQuery },
            response: { status: { 200: jiraSyncRunPage } }
        },
        handler: (request) => request.services().jira.runs(actorOf(request), request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/jira/sync/{id}',
        options: {
            description: 'One sync run',
            tags: internals.tags,
            auth: internals.leads,
            validate: { params: idParams },
            response: { status: { 200: jiraSyncRun } },
            plugins: answers(404)
        },
        handler: (request) => request.services().jira.run(actorOf(request), request.params.id)
    }),

    route<{ Query: JiraIssueFilters }>({
        method: 'GET',
        path: '/api/v1/jira/issues',
        options: {
            description: 'The linked issues with their last-known Jira status and their test\'s remediation status. Filters: status_category, remediation_status, failing',
            tags: internals.tags,
            auth: internals.leads,
            validate: { query: jiraIssueListQuery },
            response: { status: { 200: jiraIssuePage } }
        },
        handler: (request) => request.services().jira.issues(actorOf(request), request.query)
    }),

    route<{ Query: { secret?: string }; Payload: Buffer }>({
        method: 'POST',
        path: '/api/v1/jira/webhook',
        options: {
            description: 'Jira\'s webhook (issue updated), public: authenticated by the shared webhook_secret of the jira setting, as the `secret` query parameter (Data Center) or the X-Hub-Signature HMAC-SHA256 of the body (Cloud). Only the issue key is read; the worker reads the issue again from Jira. 64 KiB at most',
            tags: internals.tags,
            auth: false,
            payload: { parse: false, output: 'data', maxBytes: 64 * 1024, allow: ['application/json'] },
            // The raw bytes reach the service (the HMAC is over them); the documented shape is jiraWebhookPayload
            validate: { query: jiraWebhookQuery, payload: true },
            response: { status: { 202: jiraWebhookAnswer } },
            plugins: { 'hapi-swagger': { validate: { payload: jiraWebhookPayload }, responses: responses(401) } }
        },
        handler: async (request, h) => h.response(await request.services().jira.receiveWebhook({
            body: Buffer.isBuffer(request.payload) ? request.payload : Buffer.alloc(0),
            signature: request.headers['x-hub-signature'] as string | undefined,
            secret: request.query.secret
        })).code(202)
    })
];
