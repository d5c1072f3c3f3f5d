import SwaggerParser from '@apidevtools/swagger-parser';
import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { init, type TestContext } from './helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('OpenAPI', () => {

    let context: TestContext;

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('serves a valid OpenAPI 3 document that lists every API route', async () => {

        const res = await context.server.inject({ method: 'GET', url: '/api/v1/openapi.json' });
        expect(res.statusCode).to.equal(200);
        const document = JSON.parse(res.payload);
        expect(document.openapi.startsWith('3.0')).to.be.true();
        await SwaggerParser.validate(structuredClone(document));

        const documented = new Set(Object.entries(document.paths as Record<string, object>).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`)));
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

    it('serves the browsable documentation at /docs', async () => {

        const res = await context.server.inject({ method: 'GET', url: '/docs' });
        expect(res.statusCode).to.equal(200);
        expect(res.payload).to.include('swagger');
    });
});
