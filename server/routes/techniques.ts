import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers } from '../schemas/common';
import * as Schemas from '../schemas/techniques';
import type { TechniqueCreate, TechniqueFilters, TechniqueReview, TechniqueUpdate } from '../services/techniques';

import { route } from './route';


export const techniqueRoutes = [
    route<{ Query: TechniqueFilters }>({
        method: 'GET',
        path: '/api/v1/techniques',
        options: {
            description: 'List techniques (revoked and deprecated hidden unless include_deprecated); search ranks id, then name, then description matches',
            tags: ['api', 'techniques'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.techniqueListQuery },
            response: { schema: Schemas.techniquePage }
        },
        handler: (request) => request.services().techniques.list(actorOf(request), request.query)
    }),

    route<{ Payload: TechniqueCreate }>({
        method: 'POST',
        path: '/api/v1/techniques',
        options: {
            description: 'Create a custom (non-MITRE) technique; the server allocates its id under the reserved prefix X (X0001)',
            tags: ['api', 'techniques'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { payload: Schemas.techniqueCreate },
            response: { status: { 201: Schemas.technique } },
            // 409: the id is taken
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().techniques.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { mitre_id: string } }>({
        method: 'GET',
        path: '/api/v1/techniques/{mitre_id}',
        options: {
            description: 'A technique with its tactics, platforms, data components, mitigations, sub-techniques or parent, threat actors, coverage, score and latest validated tests',
            tags: ['api', 'techniques'],
            auth: { access: { scope: [...Access.any] } },
            validate: { params: Schemas.mitreParams },
            response: { schema: Schemas.technique },
            plugins: answers(404)
        },
        handler: (request) => request.services().techniques.get(actorOf(request), request.params.mitre_id)
    }),

    route<{ Params: { mitre_id: string }; Payload: TechniqueUpdate }>({
        method: 'PATCH',
        path: '/api/v1/techniques/{mitre_id}',
        options: {
            description: 'Update a technique: every field of a custom one; only the organisation\'s fields (impact, notes) of a MITRE one (409 otherwise)',
            tags: ['api', 'techniques'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: Schemas.mitreParams, payload: Schemas.techniqueUpdate },
            response: { schema: Schemas.technique },
            // 409: a field the ATT&CK sync owns
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().techniques.update(actorOf(request), request.params.mitre_id, request.payload)
    }),

    route<{ Params: { mitre_id: string }; Payload: TechniqueReview }>({
        method: 'PATCH',
        path: '/api/v1/techniques/{mitre_id}/review',
        options: {
            description: 'Mark a technique as needing review, with a reason, or clear the mark',
            tags: ['api', 'techniques'],
            auth: { access: { scope: [...Access.leads] } },
            validate: { params: Schemas.mitreParams, payload: Schemas.techniqueReview },
            response: { schema: Schemas.technique },
            plugins: answers(404)
        },
        handler: (request) => request.services().techniques.review(actorOf(request), request.params.mitre_id, request.payload)
    }),

    route<{ Params: { mitre_id: string } }>({
        method: 'GET',
        path: '/api/v1/techniques/{mitre_id}/d3fend',
        options: {
            description: 'D3FEND countermeasures mapped to the technique (and, for a parent, to its sub-techniques), grouped by D3FEND tactic',
            tags: ['api', 'techniques'],
            auth: { access: { scope: [...Access.any] } },
            validate: { params: Schemas.mitreParams },
            response: { schema: Schemas.techniqueD3fend },
            plugins: answers(404)
        },
        handler: (request) => request.services().techniques.d3fend(actorOf(request), request.params.mitre_id)
    })
];
