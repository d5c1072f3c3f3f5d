import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers } from '../schemas/common';
import {
    complianceImport, controlDetail, controlListQuery, controlPage, domainQuery, frameworkDetail, frameworkListQuery, frameworkPage, idParams, jobAccepted,
    riskAggregateQuery, riskImpactUpdate, riskMatrix, riskProfile, riskProfilePage, riskProfileQuery, riskRecommendationQuery, riskSummary, riskTopQuery, scoreConfig, scoreConfigUpdate,
    scoreOverview, tacticScorePage, tacticScoreQuery, techniqueParams, techniqueScoreDetail, techniqueScorePage, techniqueScoreQuery, unmatchedListQuery, unmatchedPage
} from '../schemas/posture';
import type { ControlFilters, UnmatchedFilters } from '../services/compliance';
import type { RiskFilters } from '../services/risk';
import type { ScoreConfigUpdate, ScoreFilters } from '../services/scores';

import { route } from './route';


// Scores, risk and compliance (issue 12): docs/posture.md and docs/compliance.md

const internals = {
    scores: ['api', 'scores'],
    risk: ['api', 'risk'],
    compliance: ['api', 'compliance']
};

type Aggregate = { Query: Pick<RiskFilters, 'domain' | 'subtechniques'> };


export const scoreRoutes = [
    route<{ Query: { domain: string } }>({
        method: 'GET',
        path: '/api/v1/scores',
        options: {
            description: 'Score 0-100 overall and per tactic of a domain (default enterprise-attack): the mean of its top-level techniques\' scores, untested ones counting 0',
            tags: internals.scores,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: domainQuery },
            response: { status: { 200: scoreOverview } }
        },
        handler: (request) => request.services().scores.overview(actorOf(request), request.query)
    }),

    route<{ Query: { domain: string; limit: number; offset: number; sort?: string; order?: 'asc' | 'desc' } }>({
        method: 'GET',
        path: '/api/v1/scores/tactics',
        options: {
            description: 'Score per tactic of a domain (default enterprise-attack), in matrix order unless sorted',
            tags: internals.scores,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: tacticScoreQuery },
            response: { status: { 200: tacticScorePage } }
        },
        handler: (request) => request.services().scores.tactics(actorOf(request), request.query)
    }),

    route<{ Query: ScoreFilters }>({
        method: 'GET',
        path: '/api/v1/scores/techniques',
        options: {
            description: 'Score per technique, highest first. Filters: domain, tactic (shortname), coverage_status, subtechniques',
            tags: internals.scores,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: techniqueScoreQuery },
            response: { status: { 200: techniqueScorePage } }
        },
        handler: (request) => request.services().scores.techniques(actorOf(request), request.query)
    }),

    route<{ Params: { technique_id: string } }>({
        method: 'GET',
        path: '/api/v1/scores/techniques/{technique_id}',
        options: {
            description: 'A technique\'s score with its parts (outcome weight, decay, confidence) and its sub-techniques\' scores',
            tags: internals.scores,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: techniqueParams },
            response: { status: { 200: techniqueScoreDetail } },
            plugins: answers(404)
        },
        handler: (request) => request.services().scores.technique(actorOf(request), request.params.technique_id)
    }),

    route({
        method: 'GET',
        path: '/api/v1/scores/config',
        options: {
            description: 'Outcome weights, half-life and likelihood saturation (the settings), with the default impact of each tactic',
            tags: internals.scores,
            auth: { access: { scope: [...Access.any] } },
            response: { status: { 200: scoreConfig } }
        },
        handler: (request) => request.services().scores.config(actorOf(request))
    }),

    route<{ Payload: ScoreConfigUpdate }>({
        method: 'PATCH',
        path: '/api/v1/scores/config',
        options: {
            description: 'Change outcome weights (any of them), half-life or likelihood saturation; every score and risk is recomputed before the answer',
            tags: internals.scores,
            auth: { access: { scope: [...Access.admin] } },
            validate: { payload: scoreConfigUpdate },
            response: { status: { 200: scoreConfig } }
        },
        handler: (request) => request.services().scores.updateConfig(actorOf(request), request.payload)
    })
];


export const riskRoutes = [
    route({
        method: 'POST',
        path: '/api/v1/risk/compute',
        options: {
            description: 'Recompute every score and risk now (the worker\'s risk-recompute job; also nightly and a few seconds after coverage changes)',
            tags: internals.risk,
            auth: { access: { scope: [...Access.leads] } },
            response: { status: { 202: jobAccepted } }
        },
        handler: async (request, h) => h.response(await request.services().risk.requestCompute(actorOf(request))).code(202)
    }),

    route<{ Query: RiskFilters }>({
        method: 'GET',
        path: '/api/v1/risk/profiles',
        options: {
            description: 'Risk profile per technique (likelihood x impact x (1 - score/100)), highest first. Filters: domain, tactic, coverage_status, band, subtechniques',
            tags: internals.risk,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: riskProfileQuery },
            response: { status: { 200: riskProfilePage } }
        },
        handler: (request) => request.services().risk.profiles(actorOf(request), request.query)
    }),

    route<{ Params: { technique_id: string } }>({
        method: 'GET',
        path: '/api/v1/risk/profiles/{technique_id}',
        options: {
            description: 'A technique\'s risk profile',
            tags: internals.risk,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: techniqueParams },
            response: { status: { 200: riskProfile } },
            plugins: answers(404)
        },
        handler: (request) => request.services().risk.profile(actorOf(request), request.params.technique_id)
    }),

    route<Aggregate>({
        method: 'GET',
        path: '/api/v1/risk/matrix',
        options: {
            description: 'Risk matrix: impact (rows, 5 to 1) x coverage status (columns), techniques and summed risk per cell; top-level techniques unless subtechniques=true',
            tags: internals.risk,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: riskAggregateQuery },
            response: { status: { 200: riskMatrix } }
        },
        handler: (request) => request.services().risk.matrix(actorOf(request), request.query)
    }),

    route<Aggregate>({
        method: 'GET',
        path: '/api/v1/risk/summary',
        options: {
            description: 'Aggregate risk: total, mean, max, risk reduction, counts per band and coverage status; top-level techniques unless subtechniques=true',
            tags: internals.risk,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: riskAggregateQuery },
            response: { status: { 200: riskSummary } }
        },
        handler: (request) => request.services().risk.summary(actorOf(request), request.query)
    }),

    route<{ Query: RiskFilters }>({
        method: 'GET',
        path: '/api/v1/risk/recommendations',
        options: {
            description: 'What to test next: untested, not covered, partial, or covered with a decayed score below 50, by risk, each with its reason',
            tags: internals.risk,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: riskRecommendationQuery },
            response: { status: { 200: riskProfilePage } }
        },
        handler: (request) => request.services().risk.recommendations(actorOf(request), request.query)
    }),

    route<{ Query: Pick<RiskFilters, 'domain' | 'subtechniques'> & { limit: number } }>({
        method: 'GET',
        path: '/api/v1/risk/top',
        options: {
            description: 'The N (limit, default 10, at most 100) highest-risk techniques that are not covered',
            tags: internals.risk,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: riskTopQuery },
            response: { status: { 200: riskProfilePage } }
        },
        handler: (request) => request.services().risk.top(actorOf(request), request.query)
    }),

    route<{ Params: { technique_id: string }; Payload: { impact: number | null } }>({
        method: 'PATCH',
        path: '/api/v1/risk/impact/{technique_id}',
        options: {
            description: 'Set a technique\'s impact (1-5; null: back to the default of its tactics) and recompute the risks; answers its new profile',
            tags: internals.risk,
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: techniqueParams, payload: riskImpactUpdate },
            response: { status: { 200: riskProfile } },
            plugins: answers(404)
        },
        handler: (request) => request.services().risk.setImpact(actorOf(request), request.params.technique_id, request.payload.impact)
    })
];


export const complianceRoutes = [
    route<{ Query: { limit: number; offset: number; sort?: string; order?: 'asc' | 'desc' } }>({
        method: 'GET',
        path: '/api/v1/compliance/frameworks',
        options: {
            description: 'Imported frameworks with their provenance, licence, mapping counts and coverage',
            tags: internals.compliance,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: frameworkListQuery },
            response: { status: { 200: frameworkPage } }
        },
        handler: (request) => request.services().compliance.frameworks(actorOf(request), request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/compliance/frameworks/{id}',
        options: {
            description: 'A framework\'s coverage, overall and per control family',
            tags: internals.compliance,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: frameworkDetail } },
            plugins: answers(404)
        },
        handler: (request) => request.services().compliance.framework(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Query: ControlFilters }>({
        method: 'GET',
        path: '/api/v1/compliance/frameworks/{id}/controls',
        options: {
            description: 'A framework\'s controls, each with its status from its techniques\' coverage. Filters: family, status',
            tags: internals.compliance,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: controlListQuery },
            response: { status: { 200: controlPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().compliance.controls(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string }; Query: ControlFilters }>({
        method: 'GET',
        path: '/api/v1/compliance/frameworks/{id}/gaps',
        options: {
            description: 'Controls whose techniques are not all covered, most uncovered techniques first, each with them. Filters: family, status',
            tags: internals.compliance,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: controlListQuery },
            response: { status: { 200: controlPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().compliance.gaps(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string }; Query: UnmatchedFilters }>({
        method: 'GET',
        path: '/api/v1/compliance/frameworks/{id}/unmatched',
        options: {
            description: 'Mappings whose ATT&CK id matches no technique of today (unknown, deprecated, or revoked without an active successor). Filter: reason',
            tags: internals.compliance,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: unmatchedListQuery },
            response: { status: { 200: unmatchedPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().compliance.unmatched(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/compliance/controls/{id}',
        options: {
            description: 'A control: its description, status, the techniques it maps to with their coverage (and the id each was mapped from), and what could not be matched',
            tags: internals.compliance,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: controlDetail } },
            plugins: answers(404)
        },
        handler: (request) => request.services().compliance.control(actorOf(request), request.params.id)
    }),

    route({
        method: 'POST',
        path: '/api/v1/compliance/import',
        options: {
            description: 'Import (again) every mapping file of the folder COMPLIANCE_SOURCE names, matching each mapping to today\'s techniques (409 compliance_source_unset without it)',
            tags: internals.compliance,
            auth: { access: { scope: [...Access.admin] } },
            response: { status: { 200: complianceImport } },
            plugins: answers(409)
        },
        handler: (request) => request.services().compliance.importConfigured(actorOf(request))
    })
];
