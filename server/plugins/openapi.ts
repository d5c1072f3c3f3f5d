import type * as Hapi from '@hapi/hapi';
import * as Inert from '@hapi/inert';
import * as Vision from '@hapi/vision';
import * as HapiSwagger from 'hapi-swagger';


// The OpenAPI document is generated from the route declarations themselves (tags, description, joi schemas).
export const openapiPlugin: Hapi.Plugin<{ version: string }> = {
    name: 'aegis/openapi',
    register: async (server, options) => {

        await server.register([
            Inert,
            Vision,
            {
                plugin: HapiSwagger,
                options: {
                    OAS: 'v3.0',
                    routeTag: 'api',
                    jsonPath: '/api/v1/openapi.json',
                    documentationPath: '/docs',
                    swaggerUIPath: '/swaggerui/',
                    info: { title: 'Aegis API', version: options.version, description: 'The purple-team operations platform. Every route lives under /api/v1.' },
                    securityDefinitions: {
                        bearer: { type: 'apiKey', name: 'Authorization', in: 'header', description: 'Bearer <jwt> or Bearer aegis_<hex>' }
                    },
                    security: [{ bearer: [] }],
                    grouping: 'tags',
                    sortEndpoints: 'ordered',
                    documentationRouteTags: ['docs'],
                    // The routes never change while the server runs: build the document once, not per request
                    cache: { expiresIn: 24 * 3600 * 1000 },
                    jsonRoutePath: '/api/v1/openapi.json'
                } satisfies HapiSwagger.RegisterOptions
            }
        ]);
    }
};
