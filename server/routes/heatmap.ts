import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers } from '../schemas/common';
import * as Schemas from '../schemas/heatmap';
import type { HeatmapFilters, LayerImport } from '../services/heatmap';

import { route } from './route';


export const heatmapRoutes = [
    route<{ Query: HeatmapFilters }>({
        method: 'GET',
        path: '/api/v1/heatmap',
        options: {
            description: 'The coverage matrix: tactics in ATT&CK order, each cell a technique with coverage, score, test counts and its sub-technique roll-up',
            tags: ['api', 'heatmap'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.heatmapQuery },
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
            validate: { query: Schemas.layerQuery },
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
            validate: { payload: Schemas.layerImportPayload, query: Schemas.layerImportQuery },
            response: { schema: Schemas.layerImport }
        },
        handler: (request) => request.services().heatmap.importLayer(actorOf(request), request.payload, { reason: request.query.reason })
    })
];
