import type { ReqRef, ResponseToolkit, RouteOptionsValidate } from '@hapi/hapi';

import { contentDisposition } from '../../integrations/storage';
import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams, responses } from '../schemas/common';
import {
    coverageDocumentQuery, documentAnswer, documentFile, executiveDocumentQuery, quarterlyDocumentQuery, renderFile, renderStatus, schedule, scheduleCreate, scheduleListQuery,
    schedulePage, scheduleRunPage, scheduleRunsQuery, scheduleUpdate, techniqueDocumentParams, techniqueDocumentQuery, campaignDocumentParams
} from '../schemas/documents';
import type { DocumentFormat, DocumentParams, Generated } from '../services/documents';
import type { ListQuery } from '../services/lists';
import type { ScheduleFilters, ScheduleInput } from '../services/report-schedules';

import { route } from './route';


const internals = {
    tags: ['api', 'reports'],
    // A document is shown, never run: no script, nothing loaded from elsewhere
    policy: 'default-src \'none\'; style-src \'unsafe-inline\'; img-src data:; frame-ancestors \'none\'; base-uri \'none\'; form-action \'none\'; sandbox',

    // The answer of a document in its format; a PDF still printing is a 202 that says where to ask again
    // A PDF printed within the wait is a 303 to its render, which streams it from the store: the generate routes'
    // own 200 is a body hapi validates (the JSON against its schema, the HTML as text)
    answer: <R extends ReqRef>(h: ResponseToolkit<R>, generated: Generated) => {

        switch (generated.format) {
            case 'json':
                return h.response(generated.data);
            case 'html':
                return h.response(generated.html).type('text/html; charset=utf-8')
                    .header('content-security-policy', internals.policy).header('x-content-type-options', 'nosniff')
                    .header('content-disposition', contentDisposition(generated.file_name).replace(/^attachment/, 'inline'));
            case 'pdf':
                return h.response(generated.file).type('application/pdf').bytes(generated.size)
                    .header('content-disposition', contentDisposition(generated.file_name)).header('x-content-type-options', 'nosniff');
            case 'ready':
                return h.response(generated.render).code(303).header('location', generated.render.location);
            default:
                return h.response(generated.render).code(202).header('location', generated.render.location).header('retry-after', '1');
        }
    },

    pdfAnswers: {
        202: { description: 'format=pdf: the worker is still printing it; ask the Location again', schema: renderStatus },
        303: { description: 'format=pdf: printed; the PDF is at the Location (GET /reports/renders/{id})', schema: renderStatus }
    },

    document: (path: string, description: string, query: RouteOptionsValidate['query'], kind: 'coverage-summary' | 'executive-summary' | 'quarterly-summary') => route<{ Query: DocumentParams & { format: DocumentFormat } }>({
        method: 'GET',
        path: `/api/v1/reports/generate/${path}`,
        options: {
            description,
            tags: internals.tags,
            auth: { access: { scope: [...Access.reports] } },
            validate: { query },
            response: { status: { 200: documentAnswer, 202: renderStatus, 303: renderStatus } },
            plugins: { 'hapi-swagger': { responses: { 200: documentFile, ...internals.pdfAnswers, ...responses(409) } } }
        },
        handler: async (request, h) => {

            const { format, ...params } = request.query;
            return internals.answer(h, await request.services().documents.generate(actorOf(request), kind, params, format));
        }
    })
};


export const documentRoutes = [
    internals.document('coverage-summary', 'Coverage status report: coverage by status and tactic, outcomes, time to detect, gaps ranked by risk, remediation, the last 12 weeks\' trend. ?format=json|html|pdf', coverageDocumentQuery, 'coverage-summary'),
    internals.document('executive-summary', 'Executive briefing for a period (from, to; default the last 30 days) against the previous period of the same length. ?format=json|html|pdf', executiveDocumentQuery, 'executive-summary'),
    internals.document('quarterly-summary', 'Quarterly review (quarter=YYYY-Qn; default the current quarter) against the previous quarter. ?format=json|html|pdf', quarterlyDocumentQuery, 'quarterly-summary'),

    route<{ Params: { id: string }; Query: { format: DocumentFormat } }>({
        method: 'GET',
        path: '/api/v1/reports/generate/technique/{id}',
        options: {
            description: 'Per-technique report: the technique, its coverage, and its tests the caller may see with outcomes, time to detect and evidence names with their SHA-256. ?format=json|html|pdf',
            tags: internals.tags,
            auth: { access: { scope: [...Access.reports] } },
            validate: { params: techniqueDocumentParams, query: techniqueDocumentQuery },
            response: { status: { 200: documentAnswer, 202: renderStatus, 303: renderStatus } },
            plugins: { 'hapi-swagger': { responses: { 200: documentFile, ...internals.pdfAnswers, ...responses(404, 409) } } }
        },
        handler: async (request, h) => internals.answer(h, await request.services().documents.generate(actorOf(request), 'technique', { id: request.params.id }, request.query.format))
    }),

    route<{ Params: { id: string }; Query: { format: DocumentFormat } }>({
        method: 'GET',
        path: '/api/v1/reports/generate/purple-campaign/{id}',
        options: {
            description: 'Full campaign report: the campaign\'s scope and progress, and its tests the caller may see with outcomes, time to detect and evidence names with their SHA-256. ?format=json|html|pdf',
            tags: internals.tags,
            auth: { access: { scope: [...Access.reports] } },
            validate: { params: campaignDocumentParams, query: techniqueDocumentQuery },
            response: { status: { 200: documentAnswer, 202: renderStatus, 303: renderStatus } },
            plugins: { 'hapi-swagger': { responses: { 200: documentFile, ...internals.pdfAnswers, ...responses(404, 409) } } }
        },
        handler: async (request, h) => internals.answer(h, await request.services().documents.generate(actorOf(request), 'purple-campaign', { id: request.params.id }, request.query.format))
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/reports/renders/{id}',
        options: {
            description: 'A PDF render asked for by a document route: 200 with the PDF once printed, 202 with its status while the worker prints it (to those who asked for it, and admins)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.reports] } },
            validate: { params: idParams },
            response: { status: { 202: renderStatus } },
            plugins: { 'hapi-swagger': { responses: { 200: renderFile, 202: { description: 'Still printing', schema: renderStatus }, ...responses(404) } } }
        },
        handler: async (request, h) => internals.answer(h, await request.services().documents.render(actorOf(request), request.params.id))
    }),

    route<{ Query: ScheduleFilters }>({
        method: 'GET',
        path: '/api/v1/reports/schedules',
        options: {
            description: 'Report schedules: the own ones, or everyone\'s for an admin (owner_id filters). Filters: owner_id, kind',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { query: scheduleListQuery },
            response: { status: { 200: schedulePage } }
        },
        handler: (request) => request.services().reportSchedules.list(actorOf(request), request.query)
    }),

    route<{ Payload: ScheduleInput }>({
        method: 'POST',
        path: '/api/v1/reports/schedules',
        options: {
            description: 'Schedule a report e-mail: a document and its parameters, a cron expression or a period, a time zone, recipients (users; outside addresses when the reports.external_recipients setting allows them). The PDF is attached',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: scheduleCreate },
            response: { status: { 201: schedule } }
        },
        handler: async (request, h) => h.response(await request.services().reportSchedules.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/reports/schedules/{id}',
        options: {
            description: 'A report schedule (own, or any for an admin)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            response: { status: { 200: schedule } },
            plugins: answers(404)
        },
        handler: (request) => request.services().reportSchedules.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: Partial<ScheduleInput> }>({
        method: 'PATCH',
        path: '/api/v1/reports/schedules/{id}',
        options: {
            description: 'Change a report schedule (own, or any for an admin); giving cron clears period and the other way round',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: scheduleUpdate },
            response: { status: { 200: schedule } },
            plugins: answers(404)
        },
        handler: (request) => request.services().reportSchedules.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/reports/schedules/{id}',
        options: {
            description: 'Delete a report schedule and its runs (own, or any for an admin)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().reportSchedules.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string }; Query: ListQuery }>({
        method: 'GET',
        path: '/api/v1/reports/schedules/{id}/runs',
        options: {
            description: 'The runs of a report schedule, newest first: one per period, sent or failed with the reason, with its attempts',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, query: scheduleRunsQuery },
            response: { status: { 200: scheduleRunPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().reportSchedules.runs(actorOf(request), request.params.id, request.query)
    })
];
