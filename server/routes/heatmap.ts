import Joi from 'joi';

import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, text, uuid } from '../schemas/common';
import * as Schemas from '../schemas/heatmap';
import { domain, platform } from '../schemas/techniques';
import type { HeatmapFilters, LayerImport } from '../services/heatmap';

import { route } from './route';


const filters = Joi.object({
    domain,
    platform,
    threat_actor_id: uuid,
    include_subtechniques: Joi.boolean()
});


export const heatmapRoutes = [
    route<{ Query: HeatmapFilters }>({
        method: 'GET',
        path: '/api/v1/heatmap',
        options: {
            description: 'The coverage matrix: tactics in ATT&CK order, each cell a technique with coverage, score, test counts and its sub-technique roll-up',
            tags: ['api', 'heatmap'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: filters },
            response: { schema: Schemas.heatmap },
            // 404: an unknown threat_actor_id
            plugins: answers(404)
        },
        handler: (request) => request.services().heatmap.matrix(actorOf(request), request.query)
    }),

    route<{ Query: HeatmapFilters }>({
        method: 'GET',
        path: '/api/v1/heatmap/layer',
        options: {
            description: 'The coverage as an ATT&CK Navigator layer (format 4.5)',
            tags: ['api', 'heatmap'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: filters.keys({ include_subtechniques: Joi.forbidden() }) },
            response: { schema: Schemas.navigatorLayer },
            plugins: answers(404)
        },
        handler: async (request, h) => h.response(await request.services().heatmap.layer(actorOf(request), request.query))
            .header('content-disposition', 'attachment; filename="aegis-coverage-layer.json"')
    }),

    route<{ Payload: LayerImport | Record<string, unknown>; Query: { reason?: string } }>({
        method: 'POST',
        path: '/api/v1/heatmap/layer',
        options: {
            description: 'Import an ATT&CK Navigator layer (the file as the Navigator exports it, or `{ layer, reason }`): its enabled techniques are marked for review',
            tags: ['api', 'heatmap'],
            // Issue 8: it changes state (review flags), so it takes the roles of PATCH /techniques/{id}/review
            auth: { access: { scope: [...Access.leads] } },
            payload: { maxBytes: Schemas.layerMaxBytes },
            validate: { payload: Schemas.layerImportPayload, query: Joi.object({ reason: text(1000).min(1) }) },
            response: { schema: Schemas.layerImport }
        },
        handler: (request) => request.services().heatmap.importLayer(actorOf(request), request.payload, { reason: request.query.reason })
    })
];
