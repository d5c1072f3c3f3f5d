import type { Readable } from 'stream';

import type { ResponseToolkit } from '@hapi/hapi';

import { actorOf } from '../plugins/services';
import { Access, type Actor } from '../policy';
import { responses } from '../schemas/common';
import { coverageQuery, coverageSummary, csvFile, remediationPage, remediationQuery, testResultsPage, testResultsQuery } from '../schemas/reports';
import type { CoverageFilters, RemediationFilters, ReportsService, TestResultFilters } from '../services/reports';

import { route } from './route';


declare module '@hapi/hapi' {
    interface PluginSpecificConfiguration {
        // A route whose JSON answer has a streamed alternative (?format=csv): hapi cannot validate a stream, so the
        // JSON schema is documented, not declared in response.status; the route's tests validate every JSON answer
        'aegis/formats'?: { stream: 'text/csv' };
    }
}


const internals = {
    tags: ['api', 'reports'],
    any: { access: { scope: [...Access.any] } },

    csv: (h: ResponseToolkit<any>, stream: Readable, name: string) => h.response(stream)
        .type('text/csv; charset=utf-8; header=present')
        .header('content-disposition', `attachment; filename="aegis-${name}-${new Date().toISOString().slice(0, 10)}.csv"`)
        .header('x-content-type-options', 'nosniff'),

    // A report answered as a JSON page (its schema documented with its streamed alternative in words: one media type
    // per answer in hapi-swagger), or with ?format=csv as a streamed attachment
    dualRoute: <Q extends { format?: 'json' | 'csv' }>(definition: {
        path: string;
        description: string;
        query: object;
        page: object;
        name: string;
        json: (reports: ReportsService, actor: Actor, query: Q) => Promise<object>;
        csv: (reports: ReportsService, actor: Actor, query: Q) => Promise<Readable>;
    }) => route<{ Query: Q }>({
        method: 'GET',
        path: definition.path,
        options: {
            description: definition.description,
            tags: internals.tags,
            auth: internals.any,
            validate: { query: definition.query },
            plugins: {
                'aegis/formats': { stream: 'text/csv' },
                'hapi-swagger': { responses: { 200: { description: 'A page of rows and a summary over every matching row (JSON), or with ?format=csv the rows as a text/csv attachment', schema: definition.page }, ...responses() } }
            }
        },
        handler: async (request, h) => {

            const { reports } = request.services();
            const actor = actorOf(request);
            return request.query.format === 'csv' ? internals.csv(h, await definition.csv(reports, actor, request.query), definition.name) : await definition.json(reports, actor, request.query);
        }
    })
};


export const reportRoutes = [
    route<{ Query: CoverageFilters }>({
        method: 'GET',
        path: '/api/v1/reports/coverage-summary',
        options: {
            description: 'Coverage as JSON: counts per coverage status over the domain\'s techniques (sub-techniques rolled up into their parent) and per tactic, with the percentage 100 × (covered + partial / 2) / techniques; test counts are those the caller may see',
            tags: internals.tags,
            auth: internals.any,
            validate: { query: coverageQuery },
            response: { status: { 200: coverageSummary } }
        },
        handler: (request) => request.services().reports.coverageSummary(actorOf(request), request.query)
    }),

    route<{ Query: CoverageFilters }>({
        method: 'GET',
        path: '/api/v1/reports/coverage-csv',
        options: {
            description: 'Coverage as a CSV download: one row per technique and sub-technique of the domain, streamed',
            tags: internals.tags,
            auth: internals.any,
            validate: { query: coverageQuery },
            plugins: { 'hapi-swagger': { responses: { 200: csvFile } } }
        },
        handler: async (request, h) => internals.csv(h, await request.services().reports.coverageCsv(actorOf(request), request.query), 'coverage')
    }),

    internals.dualRoute<TestResultFilters>({
        path: '/api/v1/reports/test-results',
        description: 'Test results of the tests the caller may see. Filters: campaign_id (the campaign\'s tests), date_from/date_to (execution day, UTC), tactic, technique_id, outcome (detection), state. ?format=csv streams every matching row as RFC 4180 CSV instead of a page',
        query: testResultsQuery,
        page: testResultsPage,
        name: 'test-results',
        json: (reports, actor, query) => reports.testResults(actor, query),
        csv: (reports, actor, query) => reports.testResultsCsv(actor, query)
    }),

    internals.dualRoute<RemediationFilters>({
        path: '/api/v1/reports/remediation-status',
        description: 'Remediation tracking of the tests the caller may see (remediation_status other than none unless filtered). Filters: remediation_status, owner_id, overdue, tactic, technique_id. ?format=csv streams every matching row as RFC 4180 CSV instead of a page',
        query: remediationQuery,
        page: remediationPage,
        name: 'remediation',
        json: (reports, actor, query) => reports.remediationStatus(actor, query),
        csv: (reports, actor, query) => reports.remediationCsv(actor, query)
    })
];
