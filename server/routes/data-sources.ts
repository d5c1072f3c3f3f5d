import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import * as Schemas from '../schemas/data-sources';
import type { DataSourceCreate, DataSourceFilters, DataSourceUpdate, GapFilters } from '../services/data-sources';

import { route } from './route';


export const dataSourceRoutes = [
    route<{ Query: DataSourceFilters }>({
        method: 'GET',
        path: '/api/v1/data-sources',
        options: {
            description: 'List ATT&CK data components with the organisation\'s view (collected, quality) and how many techniques each can reveal',
            tags: ['api', 'data-sources'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.dataSourceListQuery },
            response: { schema: Schemas.dataComponentPage }
        },
        handler: (request) => request.services().dataSources.list(actorOf(request), request.query)
    }),

    route<{ Query: GapFilters }>({
        method: 'GET',
        path: '/api/v1/data-sources/blind-spots',
        options: {
            description: 'Active techniques that no collected data component can reveal',
            tags: ['api', 'data-sources'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.gapQuery },
            response: { schema: Schemas.blindSpotPage }
        },
        handler: (request) => request.services().dataSources.blindSpots(actorOf(request), request.query)
    }),

    route<{ Query: GapFilters }>({
        method: 'GET',
        path: '/api/v1/data-sources/opportunities',
        options: {
            description: 'Detection-engineering opportunities: techniques with collected telemetry that are not covered, ranked',
            tags: ['api', 'data-sources'],
            auth: { access: { scope: [...Access.any] } },
            validate: { query: Schemas.gapQuery },
            response: { schema: Schemas.opportunityPage }
        },
        handler: (request) => request.services().dataSources.opportunities(actorOf(request), request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/data-sources/{id}',
        options: {
            description: 'A data component with the techniques it can reveal',
            tags: ['api', 'data-sources'],
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { schema: Schemas.dataComponentDetail },
            plugins: answers(404)
        },
        handler: (request) => request.services().dataSources.get(actorOf(request), request.params.id)
    }),

    route<{ Payload: DataSourceCreate }>({
        method: 'POST',
        path: '/api/v1/data-sources',
        options: {
            description: 'Add one of the organisation\'s own data components (telemetry ATT&CK does not name), with the techniques it can reveal; its id is XDC0001, XDC0002, ...',
            tags: ['api', 'data-sources'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { payload: Schemas.dataSourceCreate },
            response: { status: { 201: Schemas.dataComponentDetail } },
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().dataSources.create(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string }; Payload: DataSourceUpdate }>({
        method: 'PATCH',
        path: '/api/v1/data-sources/{id}',
        options: {
            description: 'Record the organisation\'s view of a data component (collected, quality 0-5 per DeTT&CT dimension, notes); a custom component\'s other fields too (409 mitre_managed for an imported one)',
            tags: ['api', 'data-sources'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams, payload: Schemas.dataSourceUpdate },
            response: { schema: Schemas.dataComponentDetail },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().dataSources.update(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/data-sources/{id}',
        options: {
            description: 'Delete a custom data component and its technique links (409 mitre_managed for an imported one)',
            tags: ['api', 'data-sources'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams },
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().dataSources.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    })
];
