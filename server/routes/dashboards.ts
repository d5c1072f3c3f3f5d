import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import {
    activityPage, activityQuery, comparison, compareQuery, coverageByTactic, domainQuery, evolution, evolutionQuery, executive, executiveQuery, historyQuery,
    kpis, outcomes, outcomesQuery, periodQuery, rateQuery, snapshot, snapshotCreate, snapshotDetail, snapshotDetailQuery, snapshotListQuery, snapshotPage,
    testsPerWeek, throughput, timeToDetect, ttdQuery, validationRate
} from '../schemas/dashboards';
import type { Period, OutcomeGroup, RateGroup, TimeToDetectGroup } from '../services/analytics';
import type { ActivityFilters, DomainFilter } from '../services/dashboards';
import type { PeriodFilters, SnapshotCreate, SnapshotFilters } from '../services/snapshots';

import { route } from './route';


const internals = {
    dashboard: ['api', 'dashboard'],
    snapshots: ['api', 'snapshots'],
    analytics: ['api', 'analytics']
};


// Dashboard, snapshots and analytics (issue 12, docs/dashboards.md)
export const dashboardRoutes = [
    route<{ Query: DomainFilter }>({
        method: 'GET',
        path: '/api/v1/dashboard/kpis',
        options: {
            description: 'Key metrics: techniques and their coverage (covered %, per status, needing review), the tests the caller may see per state and validated outcome, the validation rate, campaigns (null until the campaigns module). Query: domain (enterprise-attack)',
            tags: internals.dashboard,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: domainQuery },
            response: { status: { 200: kpis } }
        },
        handler: (request) => request.services().dashboards.kpis(actorOf(request), request.query)
    }),

    route<{ Query: DomainFilter & { days?: number } }>({
        method: 'GET',
        path: '/api/v1/dashboard/executive',
        options: {
            description: 'Executive summary: sentences built by templates from the figures they state, over the last `days` (30) compared with the period before. Query: domain, days (1-183)',
            tags: internals.dashboard,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: executiveQuery },
            response: { status: { 200: executive } }
        },
        handler: (request) => request.services().dashboards.executive(actorOf(request), request.query)
    }),

    route<{ Query: DomainFilter }>({
        method: 'GET',
        path: '/api/v1/dashboard/coverage-by-tactic',
        options: {
            description: 'Coverage per tactic: its top-level techniques per status, covered %, and the visible tests of its techniques (sub-techniques under their parent). Query: domain',
            tags: internals.dashboard,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: domainQuery },
            response: { status: { 200: coverageByTactic } }
        },
        handler: (request) => request.services().dashboards.coverageByTactic(actorOf(request), request.query)
    }),

    route<{ Query: DomainFilter & { days?: number } }>({
        method: 'GET',
        path: '/api/v1/dashboard/posture-history',
        options: {
            description: 'Coverage trend: the last snapshot of each day over the last `days` (90), then the live figure. Query: domain, days (1-365)',
            tags: internals.dashboard,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: historyQuery },
            response: { status: { 200: evolution } }
        },
        handler: (request) => request.services().dashboards.postureHistory(actorOf(request), request.query)
    }),

    route<{ Query: ActivityFilters }>({
        method: 'GET',
        path: '/api/v1/dashboard/activity',
        options: {
            description: 'Recent activity of the tests the caller may see: creations, state changes and validations (verdicts) of the last `days` (30), newest first. Query: days (1-365), type (test, validation), limit, offset',
            tags: internals.dashboard,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: activityQuery },
            response: { status: { 200: activityPage } }
        },
        handler: (request) => request.services().dashboards.activity(actorOf(request), request.query)
    }),

    route<{ Payload: SnapshotCreate | null }>({
        method: 'POST',
        path: '/api/v1/dashboard/posture-snapshot',
        options: {
            description: 'Take a posture snapshot now (the same as POST /snapshots)',
            tags: internals.dashboard,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: snapshotCreate.allow(null) },
            response: { status: { 201: snapshot } }
        },
        handler: async (request, h) => h.response(await request.services().snapshots.create(actorOf(request), request.payload ?? {})).code(201)
    }),

    route<{ Query: SnapshotFilters }>({
        method: 'GET',
        path: '/api/v1/snapshots',
        options: {
            description: 'Posture snapshots, newest first, with their summary per domain. Filters: kind (manual, scheduled), from, to',
            tags: internals.snapshots,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: snapshotListQuery },
            response: { status: { 200: snapshotPage } }
        },
        handler: (request) => request.services().snapshots.list(actorOf(request), request.query)
    }),

    route<{ Payload: SnapshotCreate | null }>({
        method: 'POST',
        path: '/api/v1/snapshots',
        options: {
            description: 'Take a manual snapshot: the coverage of every active technique now, with an optional note',
            tags: internals.snapshots,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: snapshotCreate.allow(null) },
            response: { status: { 201: snapshot } }
        },
        handler: async (request, h) => h.response(await request.services().snapshots.create(actorOf(request), request.payload ?? {})).code(201)
    }),

    route<{ Query: PeriodFilters }>({
        method: 'GET',
        path: '/api/v1/snapshots/evolution',
        options: {
            description: 'Coverage over time: the summary of each snapshot of the period for one domain, oldest first (at most the latest 1,000). Query: domain, from, to',
            tags: internals.snapshots,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: evolutionQuery },
            response: { status: { 200: evolution } }
        },
        handler: (request) => request.services().snapshots.evolution(actorOf(request), request.query)
    }),

    route<{ Query: { a: string; b: string; domain?: string } }>({
        method: 'GET',
        path: '/api/v1/snapshots/compare',
        options: {
            description: 'From snapshot a to snapshot b: techniques improved, regressed and unchanged (by coverage status), added and removed, with their states in each',
            tags: internals.snapshots,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: compareQuery },
            response: { status: { 200: comparison } },
            plugins: answers(404)
        },
        handler: (request) => request.services().snapshots.compare(actorOf(request), request.query.a, request.query.b, request.query)
    }),

    route<{ Params: { id: string }; Query: { domain?: string } }>({
        method: 'GET',
        path: '/api/v1/snapshots/{id}',
        options: {
            description: 'A snapshot with the state of every technique it holds. Query: domain',
            tags: internals.snapshots,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: snapshotDetailQuery },
            response: { status: { 200: snapshotDetail } },
            plugins: answers(404)
        },
        handler: (request) => request.services().snapshots.get(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/snapshots/{id}',
        options: {
            description: 'Delete a snapshot',
            tags: internals.snapshots,
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().snapshots.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Query: Period & { group_by?: TimeToDetectGroup } }>({
        method: 'GET',
        path: '/api/v1/analytics/time-to-detect',
        options: {
            description: 'Time to detect (detected_at - executed_at) of the visible tests validated in the period: mean, median and p90 in seconds, overall or per tactic, tool, technique, week or detection asset (each asset\'s first detection of the test, from test_detections). Query: from, to (90 days up to now by default; at most 366 days), group_by',
            tags: internals.analytics,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: ttdQuery },
            response: { status: { 200: timeToDetect } }
        },
        handler: (request) => request.services().analytics.timeToDetect(actorOf(request), request.query)
    }),

    route<{ Query: Period & { group_by?: OutcomeGroup } }>({
        method: 'GET',
        path: '/api/v1/analytics/outcomes',
        options: {
            description: 'Detection outcomes of the visible tests validated in the period, overall or per tactic or tool. Query: from, to, group_by',
            tags: internals.analytics,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: outcomesQuery },
            response: { status: { 200: outcomes } }
        },
        handler: (request) => request.services().analytics.outcomes(actorOf(request), request.query)
    }),

    route<{ Query: Period }>({
        method: 'GET',
        path: '/api/v1/analytics/tests-per-week',
        options: {
            description: 'Per week (Monday, UTC): visible tests created, validated and rejected. Query: from, to',
            tags: internals.analytics,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: periodQuery },
            response: { status: { 200: testsPerWeek } }
        },
        handler: (request) => request.services().analytics.testsPerWeek(actorOf(request), request.query)
    }),

    route<{ Query: Period & { group_by?: RateGroup } }>({
        method: 'GET',
        path: '/api/v1/analytics/validation-rate',
        options: {
            description: 'Validation rate: of the verdicts given in the period, the share that validated (validated / (validated + rejected)), overall or per week. Query: from, to, group_by',
            tags: internals.analytics,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: rateQuery },
            response: { status: { 200: validationRate } }
        },
        handler: (request) => request.services().analytics.validationRate(actorOf(request), request.query)
    }),

    route<{ Query: Period }>({
        method: 'GET',
        path: '/api/v1/analytics/throughput',
        options: {
            description: 'Throughput per team and week: tests the red team handed over (submit-red) and the blue team submitted (submit-blue), with their mean working time. Query: from, to',
            tags: internals.analytics,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: periodQuery },
            response: { status: { 200: throughput } }
        },
        handler: (request) => request.services().analytics.throughput(actorOf(request), request.query)
    })
];
