import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import * as Schemas from '../schemas/campaigns';
import { layerMaxBytes } from '../schemas/heatmap';
import { campaignActions, campaignEdits, campaignLifecycle } from '../services/campaign-lifecycle';
import type { CampaignAddTests, CampaignCreate, CampaignFilters, CampaignSchedule, CampaignUpdate, GenerateOptions } from '../services/campaigns';
import type { ListQuery } from '../services/lists';

import { route } from './route';


const internals = {
    tags: ['api', 'campaigns']
};


export const campaignRoutes = [
    route<{ Query: CampaignFilters }>({
        method: 'GET',
        path: '/api/v1/campaigns',
        options: {
            description: 'List campaigns. Filters: status (repeatable), type, threat_actor_id, overdue, from/to (the schedule overlaps the range), search (name)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.campaignListQuery },
            response: { status: { 200: Schemas.campaignPage } }
        },
        handler: (request) => request.services().campaigns.list(actorOf(request), request.query)
    }),

    route<{ Payload: CampaignCreate }>({
        method: 'POST',
        path: '/api/v1/campaigns',
        options: {
            description: 'Create a campaign (draft)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: Schemas.campaignCreate },
            response: { status: { 201: Schemas.campaign } }
        },
        handler: async (request, h) => h.response(await request.services().campaigns.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/campaigns/{id}',
        options: {
            description: 'A campaign, with its number of tests and whether it is overdue (active past its end date)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: Schemas.campaign } },
            plugins: answers(404)
        },
        handler: (request) => request.services().campaigns.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: CampaignUpdate }>({
        method: 'PATCH',
        path: '/api/v1/campaigns/{id}',
        options: {
            description: `Update the metadata (${campaignEdits.metadata.statuses.join(', ')}) or the notes (any status)`,
            tags: internals.tags,
            auth: { access: { scope: [...campaignEdits.metadata.roles] } },
            validate: { params: idParams, payload: Schemas.campaignUpdate },
            response: { status: { 200: Schemas.campaign } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().campaigns.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string }; Payload: CampaignAddTests }>({
        method: 'POST',
        path: '/api/v1/campaigns/{id}/tests',
        options: {
            description: `Add an existing test ({ test_id }) or new tests from a template ({ template_id, technique_ids?, overrides? }); ${campaignEdits['add-test'].statuses.join(' or ')} campaigns only`,
            tags: internals.tags,
            auth: { access: { scope: [...campaignEdits['add-test'].roles] } },
            validate: { params: idParams, payload: Schemas.campaignAddTests },
            response: { status: { 201: Schemas.campaignMemberships } },
            plugins: answers(404, 409)
        },
        handler: async (request, h) => h.response(await request.services().campaigns.addTests(actorOf(request), request.params.id, request.payload)).code(201)
    }),

    route<{ Params: { id: string; ctid: string } }>({
        method: 'DELETE',
        path: '/api/v1/campaigns/{id}/tests/{ctid}',
        options: {
            description: 'Remove a test from the campaign (ctid: the membership id or the test id); the test itself stays',
            tags: internals.tags,
            auth: { access: { scope: [...campaignEdits['remove-test'].roles] } },
            validate: { params: Schemas.campaignTestParams },
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().campaigns.removeTest(actorOf(request), request.params.id, request.params.ctid);
            return h.response().code(204);
        }
    }),

    // One route per transition of the lifecycle table
    ...campaignActions.map((action) => route<{ Params: { id: string } }>({
        method: 'POST',
        path: `/api/v1/campaigns/{id}/${action}`,
        options: {
            description: `${campaignLifecycle[action].description} (${campaignLifecycle[action].from.join(', ')} → ${campaignLifecycle[action].to})`,
            tags: internals.tags,
            auth: { access: { scope: [...campaignLifecycle[action].roles] } },
            validate: { params: idParams, payload: Schemas.campaignTransitionInput },
            response: { status: { 200: Schemas.campaign } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().campaigns.transition(actorOf(request), request.params.id, action)
    })),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/campaigns/{id}/progress',
        options: {
            description: 'Validated / total tests, and the counts by state, by tactic and by detection outcome (of the validated tests)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: Schemas.campaignProgress } },
            plugins: answers(404)
        },
        handler: (request) => request.services().campaigns.progress(actorOf(request), request.params.id)
    }),

    route<{ Params: { actor_id: string }; Payload: GenerateOptions | null }>({
        method: 'POST',
        path: '/api/v1/campaigns/from-threat-actor/{actor_id}',
        options: {
            description: 'Create a campaign and one draft test per technique the threat actor uses (filters: platforms, coverage), from the best matching template where one exists; answers what was created and what was skipped and why',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: Schemas.actorParams, payload: Schemas.fromThreatActorPayload.allow(null) },
            response: { status: { 201: Schemas.generatedCampaign } },
            plugins: answers(404, 409)
        },
        handler: async (request, h) => h.response(await request.services().campaigns.fromThreatActor(actorOf(request), request.params.actor_id, request.payload ?? {})).code(201)
    }),

    route<{ Payload: Record<string, unknown>; Query: GenerateOptions & { min_score?: number } }>({
        method: 'POST',
        path: '/api/v1/campaigns/from-layer',
        options: {
            description: 'Create a campaign and one draft test per enabled technique of an ATT&CK Navigator layer (the layer file as the body; options in the query: name, type, dates, platforms, coverage, min_score)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.leads] } },
            payload: { maxBytes: layerMaxBytes },
            validate: { payload: Schemas.fromLayerPayload, query: Schemas.fromLayerQuery },
            response: { status: { 201: Schemas.generatedCampaign } }
        },
        handler: async (request, h) => h.response(await request.services().campaigns.fromLayer(actorOf(request), request.payload, request.query)).code(201)
    }),

    route<{ Params: { id: string }; Payload: CampaignSchedule }>({
        method: 'PATCH',
        path: '/api/v1/campaigns/{id}/schedule',
        options: {
            description: `Set start_date / end_date (start on or before end; ${campaignEdits.schedule.statuses.join(' or ')} campaigns)`,
            tags: internals.tags,
            auth: { access: { scope: [...campaignEdits.schedule.roles] } },
            validate: { params: idParams, payload: Schemas.campaignSchedule },
            response: { status: { 200: Schemas.campaign } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().campaigns.schedule(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string }; Query: ListQuery }>({
        method: 'GET',
        path: '/api/v1/campaigns/{id}/history',
        options: {
            description: 'Every change of the campaign (status, metadata, schedule, membership) with actor and time, oldest first',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: Schemas.campaignHistoryQuery },
            response: { status: { 200: Schemas.campaignHistoryPage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().campaigns.history(actorOf(request), request.params.id, request.query)
    })
];
