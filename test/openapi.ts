import SwaggerParser from '@apidevtools/swagger-parser';
import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import type * as Redocly from '@redocly/openapi-core';
import Joi from 'joi';
import type * as OpenapiTS from 'openapi-typescript';
import Pino from 'pino';
import type * as Ts from 'typescript';
import { Worker } from 'worker_threads';

import { errorEnvelope } from '../server/schemas/common';
import { createServer } from '../server/server';

import { loadReference, normalisePath } from './helpers/reference';
import { init, type TestContext } from './helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


type Operation = { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>; security?: unknown[]; parameters?: { name: string }[]; requestBody?: unknown };


const internals = {

    // The redocly lint problems of the document, under the recommended rules; the rule set ships inside the library
    // (nothing is fetched, and the document has no external reference)
    lint: async (source: string, core: typeof Redocly) => {

        const config = await core.createConfig({ extends: ['recommended'] });
        const problems = await core.lintFromString({ source, absoluteRef: 'openapi.json', config });
        return problems.map((problem) => `${problem.severity} ${problem.ruleId} ${problem.location[0]?.pointer}: ${problem.message}`);
    },

    // The client openapi-typescript generates, and its types as a compiler sees them: for every operation and status,
    // the type of each response body (a response without one is `content?: never`)
    client: async (document: string, generator: typeof OpenapiTS, ts: typeof Ts) => {

        const source = generator.astToString(await generator.default(JSON.parse(document), { silent: true }));
        const fileName = '/aegis-client/api.ts';
        const options: Ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts'], types: [] };
        const host = ts.createCompilerHost(options);
        const { getSourceFile, fileExists, readFile } = host;
        host.getSourceFile = (name, ...rest) => (name === fileName ? ts.createSourceFile(name, source, ts.ScriptTarget.ES2022) : getSourceFile.call(host, name, ...rest));
        host.fileExists = (name) => name === fileName || fileExists.call(host, name);
        host.readFile = (name) => (name === fileName ? source : readFile.call(host, name));
        const program = ts.createProgram([fileName], options, host);
        const diagnostics = ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));

        const checker = program.getTypeChecker();
        const file = program.getSourceFile(fileName)!;
        const typeOf = (symbol: Ts.Symbol) => checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(symbol, file));
        const paths = checker.getExportsOfModule(checker.getSymbolAtLocation(file)!).find((symbol) => symbol.name === 'paths')!;
        const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

        const bodies = [];
        for (const path of checker.getDeclaredTypeOfSymbol(paths).getProperties()) {
            for (const method of typeOf(path).getProperties().filter((symbol) => methods.includes(symbol.name))) {
                const operation = typeOf(method);
                if (operation.flags & ts.TypeFlags.Never) {
                    continue;
                }

                for (const status of typeOf(operation.getProperty('responses')!).getProperties()) {
                    const name = `${method.name} ${path.name} ${status.name}`;
                    const content = typeOf(typeOf(status).getProperty('content')!);
                    if (content.flags & ts.TypeFlags.Never) {
                        bodies.push({ operation: name, media: null, untyped: false, text: checker.typeToString(content) });
                        continue;
                    }

                    for (const media of content.getProperties()) {
                        const body = typeOf(media);
                        bodies.push({ operation: name, media: media.name, untyped: Boolean(body.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown | ts.TypeFlags.Never)), text: checker.typeToString(body) });
                    }
                }
            }
        }

        return { source, diagnostics, bodies };
    },

    // Linting, generating and type-checking block for seconds, and hapi answers 503 to a server whose event loop lags
    // 2 s: they run in a worker thread. `fn` is self-contained and receives the modules it names.
    inWorker: <T>(fn: (input: string, ...modules: any[]) => Promise<T>, input: string, modules: string[]): Promise<T> => {

        const code = `const { parentPort, workerData } = require('worker_threads');
            (${fn.toString()})(workerData, ...${JSON.stringify(modules)}.map((name) => require(name))).then((result) => parentPort.postMessage(result));`;
        const worker = new Worker(code, { eval: true, workerData: input });
        return new Promise((resolve, reject) => {

            worker.once('message', resolve);
            worker.once('error', reject);
        });
    }
};


describe('OpenAPI', () => {

    let context: TestContext;
    let document: { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown>; securitySchemes: unknown }; security: unknown };

    const apiRoutes = () => context.server.table().filter((route) => route.settings.tags?.includes('api'));
    const operationOf = (route: { method: string; path: string }) => document.paths[route.path]![route.method]!;

    before(async () => {

        context = await init({ redis: false });
        const res = await context.server.inject({ method: 'GET', url: '/api/v1/openapi.json' });
        expect(res.statusCode).to.equal(200);
        document = JSON.parse(res.payload);
    });

    after(async () => {

        await context.stop();
    });

    it('serves a valid OpenAPI 3 document that lists every API route', async () => {

        expect((document as unknown as { openapi: string }).openapi.startsWith('3.0')).to.be.true();
        await SwaggerParser.validate(structuredClone(document) as never);

        const documented = new Set(Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`)));
        for (const route of context.server.table().filter((item) => item.path.startsWith('/api/v1/') && item.path !== '/api/v1/openapi.json')) {
            expect(documented.has(`${route.method} ${route.path}`), `${route.method} ${route.path}`).to.be.true();
        }
    });

    it('gives every API route a description and the api tag', () => {

        for (const route of context.server.table().filter((item) => item.path.startsWith('/api/v1/') && item.path !== '/api/v1/openapi.json')) {
            expect(route.settings.description, route.path).to.be.a.string();
            expect(route.settings.tags, route.path).to.include('api');
        }
    });

    it('passes redocly lint under its recommended rules without an error or a warning', async () => {

        // The reference itself fixes paths an OpenAPI reader finds ambiguous: /campaigns/from-threat-actor/{actor_id}
        // beside /campaigns/{id}/<action>, /alerts/rules/{id} beside /alerts/{id}/acknowledge; hapi routes a literal segment before a parameter, so neither shadows the other
        const reference = new Set(loadReference().routes.map((route) => route.path));
        const fixed = (problem: string) => {

            const paths = [...problem.matchAll(/`([^`]+)`/g)].map((match) => normalisePath(match[1]!));
            return problem.includes('no-ambiguous-paths') && paths.length === 2 && paths.every((path) => reference.has(path));
        };

        // sso (issue 15): a browser sign-in route's success is a redirect (302 to the provider, 303 back home), which
        // redocly's operation-2xx-response does not count
        const redirects = (problem: string) => {

            const match = /operation-2xx-response #\/paths\/([^/]+)\/(\w+)\/responses/.exec(problem);
            const responses = match ? document.paths[match[1]!.replace(/~1/g, '/').replace(/~0/g, '~')]?.[match[2]!]?.responses : undefined;
            return Boolean(responses && ['302', '303'].some((status) => responses[status] && !responses[status]!.content));
        };

        expect((await internals.inWorker(internals.lint, JSON.stringify(document), ['@redocly/openapi-core'])).filter((problem) => !fixed(problem) && !redirects(problem))).to.equal([]);
    });

    it('generates a TypeScript client (openapi-typescript) that types every response body', async () => {

        const { source, diagnostics, bodies } = await internals.inWorker(internals.client, JSON.stringify(document), ['openapi-typescript', 'typescript']);
        expect(diagnostics).to.equal([]);
        expect(bodies.length).to.be.above(apiRoutes().length * 3);

        for (const body of bodies) {
            // sso (issue 15): a redirect without a body (the sign-in routes' 302 and 303) is typed as no content, as a 204
            if (body.operation.endsWith(' 204') || (/ 30[23]$/.test(body.operation) && body.media === null)) {
                expect(body.media, body.operation).to.be.null();
                continue;
            }

            expect(body.media, body.operation).to.be.a.string();
            expect(body.untyped, `${body.operation}: ${body.text}`).to.be.false();
        }

        // An object documented without properties would be typed as always empty
        expect(source.split('\n').filter((line) => line.includes('Record<string, never>') && !/^export type (webhooks|\$defs) =/.test(line))).to.equal([]);
    });

    it('documents the success body and the error answers of every API route', () => {

        const errorRef = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
        for (const route of apiRoutes()) {
            const name = `${route.method} ${route.path}`;
            const { responses } = operationOf(route);
            const statuses = Object.keys(responses);

            // A success: a validated response schema, a documented 204, or a body hapi cannot validate (a stream)
            // sso (issue 15): or a redirect without a body (a browser sign-in: 302 to the provider, 303 back home)
            const successes = statuses.filter((status) => status.startsWith('2') || (['302', '303'].includes(status) && !responses[status]!.content));
            expect(successes, name).to.not.be.empty();
            for (const status of successes) {
                if (status === '204' || status.startsWith('3')) {
                    expect(responses[status]!.content, name).to.not.exist();
                    continue;
                }

                expect(Object.values(responses[status]!.content ?? {}).every((media) => media.schema), name).to.be.true();
                // reports: a JSON answer with a streamed alternative (?format=csv) is validated by its route's tests
                const validated = route.settings.response?.schema || route.settings.response?.status?.[Number(status)] || route.settings.plugins?.['aegis/formats'];
                expect(Boolean(validated) || !responses[status]!.content!['application/json'], `${name} ${status} has no response schema`).to.be.true();
            }

            // Every error answer is the one envelope; the statuses the declaration implies are all there
            const errors = statuses.filter((status) => status.startsWith('4'));
            for (const status of errors) {
                expect(responses[status]!.content, `${name} ${status}`).to.equal(errorRef);
            }

            expect(errors, name).to.include('400');
            if (route.settings.auth) {
                expect(errors, name).to.include('401');
            }

            if (route.path.includes('{')) {
                expect(errors, name).to.include('404');
            }

            if (!['get', 'head', 'options'].includes(route.method)) {
                expect(errors, name).to.include(['413', '415']);
            }
        }
    });

    it('derives the shared error statuses and the security from each route declaration', () => {

        const statusesOf = (method: string, path: string) => Object.keys(operationOf({ method, path }).responses);

        // Public: no credentials, so neither 401 nor 403
        expect(statusesOf('get', '/api/v1/system/health')).to.equal(['200', '400', '503']);
        expect(operationOf({ method: 'get', path: '/api/v1/system/health' }).security).to.equal([]);
        expect(statusesOf('post', '/api/v1/auth/login')).to.equal(['200', '400', '401', '403', '413', '415', '429']);
        expect(operationOf({ method: 'post', path: '/api/v1/auth/login' }).security).to.equal([]);

        // Every role, a temporary password and a read-only key may read it: no 403
        expect(statusesOf('get', '/api/v1/auth/me')).to.equal(['200', '400', '401']);
        expect(operationOf({ method: 'get', path: '/api/v1/auth/me' }).security).to.not.exist();
        expect(statusesOf('post', '/api/v1/auth/logout')).to.equal(['204', '400', '401', '403', '413', '415']);
        expect(statusesOf('delete', '/api/v1/evidence/{id}')).to.equal(['204', '400', '401', '403', '404', '409', '413', '415']);

        expect(document.security).to.equal([{ bearer: [] }, { cookie: [] }]);
        expect(document.components.securitySchemes).to.equal({
            bearer: { type: 'http', scheme: 'bearer', description: 'A JWT from /auth/login, or an API key `aegis_<hex>`' },
            cookie: { type: 'apiKey', in: 'cookie', name: 'aegis_token', description: 'The session cookie set by /auth/login; a change must come from an allowed Origin' }
        });
    });

    it('documents no query parameter and no request body a route does not take', () => {

        for (const route of apiRoutes()) {
            const operation = operationOf(route);
            expect((operation.parameters ?? []).map((parameter) => parameter.name), route.path).to.not.include('Hidden Model');
            if (!route.settings.validate?.payload && !route.settings.plugins?.['hapi-swagger']?.validate?.payload) {
                expect(operation.requestBody, `${route.method} ${route.path}`).to.not.exist();
            }
        }

        const upload = operationOf({ method: 'post', path: '/api/v1/tests/{id}/evidence' }).requestBody as { content: Record<string, { schema: unknown }> };
        expect(Object.keys(upload.content)).to.equal(['multipart/form-data']);
    });

    it('documents the error envelope the server really answers', async () => {

        const envelope = errorEnvelope.options({ allowUnknown: false, presence: 'optional' });
        const answers = await Promise.all([
            context.server.inject({ method: 'GET', url: '/api/v1/users' }),
            context.server.inject({ method: 'GET', url: '/api/v1/users?bogus=1', auth: context.as('admin') }),
            context.server.inject({ method: 'GET', url: `/api/v1/users/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, auth: context.as('admin') }),
            context.server.inject({ method: 'GET', url: '/api/v1/users', auth: context.as('viewer') })
        ]);

        expect(answers.map((res) => res.statusCode)).to.equal([401, 400, 404, 403]);
        for (const res of answers) {
            const body = JSON.parse(res.payload);
            expect(Joi.attempt(body, envelope)).to.equal(body);
            expect(body.request_id).to.be.a.string();
        }

        expect(JSON.parse(answers[1]!.payload)).to.include({ statusCode: 400, code: 'validation_failed', fields: ['bogus'] });
        expect(JSON.parse(answers[2]!.payload)).to.include({ statusCode: 404, code: 'not_found' });

        const documented = document.components.schemas.Error as { required: string[]; properties: Record<string, unknown> };
        expect(documented.required).to.equal(['statusCode', 'error', 'message', 'request_id']);
        expect(Object.keys(documented.properties)).to.equal(['statusCode', 'error', 'message', 'code', 'fields', 'request_id']);
    });

    it('serves the browsable documentation at /docs', async () => {

        const res = await context.server.inject({ method: 'GET', url: '/docs' });
        expect(res.statusCode).to.equal(200);
        expect(res.payload).to.include('swagger');
    });

    it('serves swagger-ui\'s files without loading its browser bundle into the process', async () => {

        // The page names the files, and they are served from the package's folder
        const page = await context.server.inject({ method: 'GET', url: '/docs' });
        const files = [...new Set(page.payload.match(/swaggerui\/[\w.-]+\.(?:js|css)/g))];
        expect(files).to.include(['swaggerui/swagger-ui-bundle.js', 'swaggerui/swagger-ui.css']);
        for (const file of files) {
            const res = await context.server.inject({ method: 'GET', url: `/${file}` });
            expect(res.statusCode, file).to.equal(200);
            expect(res.rawPayload.length, file).to.be.above(0);
            expect(res.headers['content-type'], file).to.match(/^(?:text\/javascript|application\/javascript|text\/css)/);
        }

        // hapi-swagger has what it uses of the package (server/plugins/swagger-ui-dist.ts), not the bundle's 23 MB
        const loaded = Object.keys(require.cache);
        expect(loaded.some((file) => file.includes('hapi-swagger'))).to.be.true();
        expect(loaded.filter((file) => /swagger-ui-(?:bundle|standalone-preset)\.js$/.test(file))).to.equal([]);
    });

    // Last: building a second server's document blocks the event loop, which context.server's load check would see
    it('builds the document once, while the server initialises, and never takes the server address from a request', async () => {

        const server = await createServer({ config: context.config, services: context.services, logger: Pino({ level: 'silent' }), version: 'test-once' });
        const method = server.methods.getSwaggerJSON as unknown as { cache: { stats: { generates: number; gets: number } } };
        expect(method.cache.stats).to.include({ generates: 1, gets: 1 });

        const res = await server.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', referer: 'https://evil.example/' } });
        expect(res.headers['content-type']).to.equal('application/json; charset=utf-8');
        const served = JSON.parse(res.payload);
        expect(served.info.version).to.equal('test-once');            // options of its own: built, not reused
        expect({ ...served, info: (document as unknown as { info: unknown }).info }).to.equal(document);
        expect(JSON.parse(res.payload).servers).to.equal([{ url: `http://127.0.0.1:${context.config.port}` }]);
        expect(method.cache.stats).to.include({ generates: 1, gets: 1 });
        await server.stop();

        // A server of the same routes and options reuses the document the process built: it builds nothing
        const again = await createServer({ config: context.config, services: context.services, logger: Pino({ level: 'silent' }), version: 'test-once' });
        expect((again.methods.getSwaggerJSON as unknown as { cache: { stats: { generates: number } } }).cache.stats).to.include({ generates: 0 });
        expect(JSON.parse((await again.inject({ method: 'GET', url: '/api/v1/openapi.json' })).payload)).to.equal(JSON.parse(res.payload));
        await again.stop();
    });
});
