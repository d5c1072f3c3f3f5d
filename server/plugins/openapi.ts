import './swagger-ui-dist';

import type * as Hapi from '@hapi/hapi';
import * as Inert from '@hapi/inert';
import * as Vision from '@hapi/vision';
import * as HapiSwagger from 'hapi-swagger';


const internals = {
    jsonPath: '/api/v1/openapi.json',

    // The documents this process has built, by what they are built from (the options and the route table): building
    // one blocks the event loop for about two seconds at today's size, and a process that builds several servers
    // (the tests) would otherwise pay it each time, and stall the servers already running meanwhile
    built: new Map<string, string>(),

    // An object a route leaves open (`Joi.object().unknown()`, such as an audit row's details) has no properties, and
    // hapi-swagger writes it as a bare `type: object`, which client generators read as an object that is always empty
    freeForm: (node: unknown): void => {

        if (node && typeof node === 'object') {
            const schema = node as Record<string, unknown>;
            if (schema.type === 'object' && !schema.properties && schema.additionalProperties === undefined) {
                schema.additionalProperties = true;
            }

            Object.values(schema).forEach(internals.freeForm);
        }
    },

    // hapi-swagger writes every response of a route in the route's one list of media types; a response that is not
    // JSON (a download) names its own in `x-content`
    ownContent: (document: { paths: Record<string, Record<string, { responses: Record<string, Record<string, unknown>> }>> }): void => {

        for (const operation of Object.values(document.paths).flatMap((methods) => Object.values(methods))) {
            for (const response of Object.values(operation.responses).filter((item) => item['x-content'])) {
                response.content = response['x-content'];
                delete response['x-content'];
            }
        }
    }
};


// The OpenAPI document is generated from the route declarations themselves (tags, description, joi schemas,
// documented answers: routes/route.ts).
export const openapiPlugin: Hapi.Plugin<{ version: string; cookieName: string; serverUrl: string }> = {
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
                    jsonPath: internals.jsonPath,
                    documentationPath: '/docs',
                    swaggerUIPath: '/swaggerui/',
                    info: {
                        title: 'Aegis API',
                        version: options.version,
                        description: 'The purple-team operations platform. Every route lives under /api/v1. Every 4xx answer is the `Error` envelope.',
                        // Proprietary (package.json); the url says what UNLICENSED means, as client tools want one
                        license: { name: 'UNLICENSED', url: 'https://docs.npmjs.com/cli/v10/configuring-npm/package-json#license' }
                    },
                    // Fixed: hapi-swagger would take the server's address from the Host, X-Forwarded-Host or Referer of the
                    // request that happens to build the cached document, and show it to every client for a day
                    servers: [{ url: options.serverUrl }],
                    // hapi-swagger copies these into components.securitySchemes as they are: OpenAPI 3 objects
                    securityDefinitions: {
                        bearer: { type: 'http', scheme: 'bearer', description: 'A JWT from /auth/login, or an API key `aegis_<hex>`' },
                        cookie: { type: 'apiKey', in: 'cookie', name: options.cookieName, description: 'The session cookie set by /auth/login; a change must come from an allowed Origin' }
                    },
                    // Either one (a public route says `security: []`, routes/route.ts); hapi-swagger types a list of one
                    security: [{ bearer: [] }, { cookie: [] }] as unknown as [HapiSwagger.SecurityRequirementsType],
                    grouping: 'tags',
                    sortEndpoints: 'ordered',
                    documentationRouteTags: ['docs'],
                    // With a cache, the route's handler answers h.response(document), which onPreStart below captures
                    cache: { expiresIn: 24 * 3600 * 1000 },
                    jsonRoutePath: internals.jsonPath
                } satisfies HapiSwagger.RegisterOptions
            }
        ]);

        // Built once, before the server takes requests, and served from memory: building it blocks the event loop for
        // about a second of CPU (on a first reader's request, hapi's load check then answered 503 to the requests that
        // followed), and hapi-swagger's own cache parses it again on every read. Its route handler builds it; called
        // directly, since inject() needs hapi's load sampler, which starts after onPreStart.
        let json: string | undefined;
        server.ext('onPreStart', async () => {

            const key = JSON.stringify([options, server.table().map((route) => `${route.method} ${route.path} ${route.settings.description ?? ''}`)]);
            json = internals.built.get(key);
            if (json) {
                return;
            }

            const handler = server.match('GET', internals.jsonPath)!.settings.handler as (request: Hapi.Request, h: Hapi.ResponseToolkit) => Promise<unknown>;
            let document = { paths: {} } as Parameters<typeof internals.ownContent>[0];
            const toolkit = {
                response: (value: typeof document) => {

                    document = value;
                    return { header: () => undefined };
                }
            };

            await handler({ server, path: internals.jsonPath, query: {} } as unknown as Hapi.Request, toolkit as unknown as Hapi.ResponseToolkit);
            internals.ownContent(document);
            internals.freeForm(document);
            json = JSON.stringify(document);
            internals.built.set(key, json);
        });

        server.ext('onPreHandler', (request, h) => (request.route.path === internals.jsonPath ? h.response(json).type('application/json').takeover() : h.continue));
    }
};
