import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import * as Schemas from '../schemas/threat-actors';
import type { ThreatActorCreate, ThreatActorFilters, ThreatActorLink, ThreatActorUpdate } from '../services/threat-actors';

import { route } from './route';


export const threatActorRoutes = [
    route<{ Query: ThreatActorFilters }>({
        method: 'GET',
        path: '/api/v1/threat-actors',
        options: {
            description: 'List threat actors (MITRE groups and the organisation\'s own), searched by name, id or alias, filtered by a technique they use',
            tags: ['api', 'threat-actors'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.threatActorListQuery },
            response: { schema: Schemas.threatActorPage }
        },
        handler: (request) => request.services().threatActors.list(actorOf(request), request.query)
    }),

    route<{ Payload: ThreatActorCreate }>({
        method: 'POST',
        path: '/api/v1/threat-actors',
        options: {
            description: 'Create the organisation\'s own threat actor',
            tags: ['api', 'threat-actors'],
            auth: { access: { scope: [...Access.leads] } },
            validate: { payload: Schemas.threatActorCreate },
            response: { status: { 201: Schemas.threatActorDetail } }
        },
        handler: async (request, h) => h.response(await request.services().threatActors.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/threat-actors/{id}',
        options: {
            description: 'A threat actor with the techniques it uses, its software, campaigns and ATT&CK references',
            tags: ['api', 'threat-actors'],
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { schema: Schemas.threatActorDetail },
            plugins: answers(404)
        },
        handler: (request) => request.services().threatActors.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: ThreatActorUpdate }>({
        method: 'PATCH',
        path: '/api/v1/threat-actors/{id}',
        options: {
            description: 'Update a threat actor; on a MITRE group only tracked, country and motivations (409 otherwise: the sync owns the rest)',
            tags: ['api', 'threat-actors'],
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams, payload: Schemas.threatActorUpdate },
            response: { schema: Schemas.threatActorDetail },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().threatActors.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/threat-actors/{id}',
        options: {
            description: 'Delete the organisation\'s own threat actor (a MITRE group answers 409: untrack it instead)',
            tags: ['api', 'threat-actors'],
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: idParams },
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().threatActors.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string; mitre_id: string }; Payload: ThreatActorLink | null }>({
        method: 'POST',
        path: '/api/v1/threat-actors/{id}/techniques/{mitre_id}',
        options: {
            description: 'Link a technique to a threat actor (a manual link, kept across syncs)',
            tags: ['api', 'threat-actors'],
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: Schemas.actorTechniqueParams, payload: Schemas.threatActorLink },
            response: { status: { 201: Schemas.threatActorTechnique } },
            // 409: already linked
            plugins: answers(404, 409)
        },
        handler: async (request, h) => h.response(await request.services().threatActors.link(actorOf(request), request.params.id, request.params.mitre_id, request.payload ?? {})).code(201)
    }),

    route<{ Params: { id: string; mitre_id: string } }>({
        method: 'DELETE',
        path: '/api/v1/threat-actors/{id}/techniques/{mitre_id}',
        options: {
            description: 'Unlink a manually linked technique (links from ATT&CK answer 409)',
            tags: ['api', 'threat-actors'],
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: Schemas.actorTechniqueParams },
            // 409: a link from ATT&CK
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().threatActors.unlink(actorOf(request), request.params.id, request.params.mitre_id);
            return h.response().code(204);
        }
    })
];
