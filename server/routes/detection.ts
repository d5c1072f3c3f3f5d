import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import {
    asset, assetCreate, assetListQuery, assetOwnership, assetOwnershipCreate, assetOwnershipListQuery, assetOwnershipPage, assetPage, assetTechniqueParams, assetUpdate,
    assignment, assignmentCreate, assignmentListQuery, assignmentPage, assignmentUpdate, changeCreate, changeCreated, changeListQuery, changePage, dashboard, dashboardQuery,
    detectionListQuery, evaluationInput, evaluationResult, invalidateInput, queueGenerated, queueListQuery, queuePage, ruleCreate, ruleDetail, ruleListQuery, rulePage,
    ruleUpdate, testDetectionPage, validation, validationCreate, validationListQuery, validationPage
} from '../schemas/detection';
import type { AssetFilters, AssetInput, ChangeFilters, ChangeInput, DashboardFilters, DetectionFilters, ValidationFilters, ValidationInput } from '../services/detection';
import type { EvaluationInput, RuleFilters, RuleInput } from '../services/detection-rules';
import type { AssetOwnershipFilters, AssetOwnershipInput, AssignmentFilters, AssignmentInput, QueueFilters } from '../services/ownership';

import { route } from './route';


const internals = {
    lifecycle: ['api', 'detection-lifecycle'],
    rules: ['api', 'detection-rules'],
    ownership: ['api', 'ownership'],
    base: '/api/v1/detection-lifecycle'
};


// Issue 11: detection lifecycle (assets, detections, validations, infrastructure changes, dashboard)
export const detectionLifecycleRoutes = [
    route<{ Query: AssetFilters }>({
        method: 'GET',
        path: `${internals.base}/assets`,
        options: {
            description: 'List detection assets (SIEM, EDR, NDR, log sources, analytics) with the techniques they cover. Filters: type, platform, owner_id, technique_id, search',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: assetListQuery },
            response: { status: { 200: assetPage } }
        },
        handler: (request) => request.services().detection.listAssets(actorOf(request), request.query)
    }),

    route<{ Payload: AssetInput }>({
        method: 'POST',
        path: `${internals.base}/assets`,
        options: {
            description: 'Create a detection asset (name unique, case-insensitively)',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { payload: assetCreate },
            response: { status: { 201: asset } },
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().detection.createAsset(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: `${internals.base}/assets/{id}`,
        options: {
            description: 'A detection asset with the techniques it covers',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: asset } },
            plugins: answers(404)
        },
        handler: (request) => request.services().detection.getAsset(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: Partial<AssetInput> }>({
        method: 'PATCH',
        path: `${internals.base}/assets/{id}`,
        options: {
            description: 'Update a detection asset',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { params: idParams, payload: assetUpdate },
            response: { status: { 200: asset } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().detection.updateAsset(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: `${internals.base}/assets/{id}`,
        options: {
            description: 'Delete a detection asset with its technique links, validations and ownership records; 409 asset_in_use while test detections or rules name it',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { params: idParams },
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().detection.removeAsset(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string; tid: string } }>({
        method: 'POST',
        path: `${internals.base}/assets/{id}/techniques/{tid}`,
        options: {
            description: 'Link an asset to a technique it covers (idempotent); answers the asset',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { params: assetTechniqueParams },
            response: { status: { 200: asset } },
            plugins: answers(404)
        },
        handler: (request) => request.services().detection.linkTechnique(actorOf(request), request.params.id, request.params.tid)
    }),

    route<{ Params: { id: string; tid: string } }>({
        method: 'DELETE',
        path: `${internals.base}/assets/{id}/techniques/{tid}`,
        options: {
            description: 'Unlink an asset from a technique (404 when they are not linked)',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { params: assetTechniqueParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().detection.unlinkTechnique(actorOf(request), request.params.id, request.params.tid);
            return h.response().code(204);
        }
    }),

    route<{ Query: DetectionFilters }>({
        method: 'GET',
        path: `${internals.base}/detections`,
        options: {
            description: 'The per-tool detections of the tests the caller may see, one row each. Filters: test_id, asset_id, technique_id, outcome, rule_id, detected_from, detected_to',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: detectionListQuery },
            response: { status: { 200: testDetectionPage } }
        },
        handler: (request) => request.services().detection.listDetections(actorOf(request), request.query)
    }),

    route<{ Query: ValidationFilters }>({
        method: 'GET',
        path: `${internals.base}/validations`,
        options: {
            description: 'List detection validations (those from tests the caller may see). Filters: technique_id, asset_id, test_id, status, source',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: validationListQuery },
            response: { status: { 200: validationPage } }
        },
        handler: (request) => request.services().detection.listValidations(actorOf(request), request.query)
    }),

    route<{ Payload: ValidationInput }>({
        method: 'POST',
        path: `${internals.base}/validations`,
        options: {
            description: 'Record a manual validation (an asset detects a technique as of a date), with a reason; validated tests record theirs automatically',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { payload: validationCreate },
            response: { status: { 201: validation } }
        },
        handler: async (request, h) => h.response(await request.services().detection.createValidation(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string }; Payload: { reason: string } }>({
        method: 'POST',
        path: `${internals.base}/validations/{id}/invalidate`,
        options: {
            description: 'Invalidate (revoke) a validation with a reason: the technique needs review and its confidence no longer counts this asset\'s proofs up to that date',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { params: idParams, payload: invalidateInput },
            response: { status: { 200: validation } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().detection.invalidate(actorOf(request), request.params.id, request.payload.reason)
    }),

    route<{ Query: ChangeFilters }>({
        method: 'GET',
        path: `${internals.base}/infrastructure-changes`,
        options: {
            description: 'List infrastructure changes. Filters: asset_id, platform, data_source, changed_from, changed_to',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: changeListQuery },
            response: { status: { 200: changePage } }
        },
        handler: (request) => request.services().detection.listChanges(actorOf(request), request.query)
    }),

    route<{ Payload: ChangeInput }>({
        method: 'POST',
        path: `${internals.base}/infrastructure-changes`,
        options: {
            description: 'Record an infrastructure change naming the assets, platforms or ATT&CK data sources it touches; the techniques it touches need review',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { payload: changeCreate },
            response: { status: { 201: changeCreated } }
        },
        handler: async (request, h) => h.response(await request.services().detection.createChange(actorOf(request), request.payload)).code(201)
    }),

    route<{ Query: DashboardFilters }>({
        method: 'GET',
        path: `${internals.base}/dashboard`,
        options: {
            description: 'Detection confidence (0-1) per technique with a validation or an asset, decaying with the age of its validations, with the validations behind it. Filters: technique_id, min_confidence, max_confidence, needs_review',
            tags: internals.lifecycle,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: dashboardQuery },
            response: { status: { 200: dashboard } }
        },
        handler: (request) => request.services().detection.dashboard(actorOf(request), request.query)
    })
];


// Issue 11: detection rules
export const detectionRuleRoutes = [
    route<{ Query: RuleFilters }>({
        method: 'GET',
        path: '/api/v1/detection-rules',
        options: {
            description: 'List detection rules. Filters: language, status, severity, technique_id, asset_id, source, search, expected_for_test (the rules a test should fire)',
            tags: internals.rules,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: ruleListQuery },
            response: { status: { 200: rulePage } },
            // 404: expected_for_test names a test the caller cannot see
            plugins: answers(404)
        },
        handler: (request) => request.services().detectionRules.list(actorOf(request), request.query)
    }),

    route<{ Payload: RuleInput }>({
        method: 'POST',
        path: '/api/v1/detection-rules',
        options: {
            description: 'Create a detection rule',
            tags: internals.rules,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { payload: ruleCreate },
            response: { status: { 201: ruleDetail } }
        },
        handler: async (request, h) => h.response(await request.services().detectionRules.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Payload: EvaluationInput }>({
        method: 'POST',
        path: '/api/v1/detection-rules/evaluate',
        options: {
            description: 'Record whether a rule fired for a test; while blue evaluates, a rule that fired also enters the test\'s detections',
            tags: internals.rules,
            auth: { access: { scope: [...Access.blue] } },
            validate: { payload: evaluationInput },
            response: { status: { 200: evaluationResult } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().detectionRules.evaluate(actorOf(request), request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/detection-rules/{id}',
        options: {
            description: 'A detection rule, the test templates that should make it fire, and its evaluations',
            tags: internals.rules,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: ruleDetail } },
            plugins: answers(404)
        },
        handler: (request) => request.services().detectionRules.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: Partial<RuleInput> }>({
        method: 'PATCH',
        path: '/api/v1/detection-rules/{id}',
        options: {
            description: 'Update a detection rule',
            tags: internals.rules,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { params: idParams, payload: ruleUpdate },
            response: { status: { 200: ruleDetail } },
            plugins: answers(404)
        },
        handler: (request) => request.services().detectionRules.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/detection-rules/{id}',
        options: {
            description: 'Delete a detection rule; 409 rule_in_use while test detections name it',
            tags: internals.rules,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { params: idParams },
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().detectionRules.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    })
];


// Issue 11: ownership and the revalidation queue
export const ownershipRoutes = [
    route<{ Query: AssignmentFilters }>({
        method: 'GET',
        path: '/api/v1/ownership/assignments',
        options: {
            description: 'Technique-to-owner assignments. Filters: technique_id, user_id, team, role',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: assignmentListQuery },
            response: { status: { 200: assignmentPage } }
        },
        handler: (request) => request.services().ownership.listAssignments(actorOf(request), request.query)
    }),

    route<{ Payload: AssignmentInput }>({
        method: 'POST',
        path: '/api/v1/ownership/assignments',
        options: {
            description: 'Assign a technique to a user or a team, with a role (detection_owner, detection_engineer, red_owner, reviewer)',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: assignmentCreate },
            response: { status: { 201: assignment } },
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().ownership.createAssignment(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string }; Payload: Partial<AssignmentInput> }>({
        method: 'PATCH',
        path: '/api/v1/ownership/assignments/{id}',
        options: {
            description: 'Update an assignment (owner, role, notes)',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: assignmentUpdate },
            response: { status: { 200: assignment } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().ownership.updateAssignment(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/ownership/assignments/{id}',
        options: {
            description: 'Remove an assignment',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().ownership.removeAssignment(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Query: AssetOwnershipFilters }>({
        method: 'GET',
        path: '/api/v1/ownership/assets',
        options: {
            description: 'Asset ownership records. Filters: asset_id, user_id, team',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: assetOwnershipListQuery },
            response: { status: { 200: assetOwnershipPage } }
        },
        handler: (request) => request.services().ownership.listAssetOwnerships(actorOf(request), request.query)
    }),

    route<{ Payload: AssetOwnershipInput }>({
        method: 'POST',
        path: '/api/v1/ownership/assets',
        options: {
            description: 'Record who owns (operates, is the escalation for) a detection asset: a user or a team',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { payload: assetOwnershipCreate },
            response: { status: { 201: assetOwnership } },
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().ownership.createAssetOwnership(actorOf(request), request.payload)).code(201)
    }),

    route<{ Query: QueueFilters }>({
        method: 'GET',
        path: '/api/v1/ownership/revalidation-queue',
        options: {
            description: 'Techniques requiring revalidation, highest priority first, each with the change, asset and reason behind it. Filters: status, technique_id, change_id, owner_user_id',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.blueLead] } },
            validate: { query: queueListQuery },
            response: { status: { 200: queuePage } }
        },
        handler: (request) => request.services().ownership.listQueue(actorOf(request), request.query)
    }),

    route({
        method: 'POST',
        path: '/api/v1/ownership/revalidation-queue/generate',
        options: {
            description: 'Turn infrastructure changes into techniques to retest (idempotent: running it twice adds nothing); answers the entries it added',
            tags: internals.ownership,
            auth: { access: { scope: [...Access.blueLead] } },
            response: { status: { 200: queueGenerated } }
        },
        handler: (request) => request.services().ownership.generateQueue(actorOf(request))
    })
];
