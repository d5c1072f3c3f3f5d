import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { roles } from '../server/policy';

import { allowedFor, loadReference, type Allowed } from './helpers/reference';
import { init, type TestContext } from './helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    // Public by design and not part of the reference: the OpenAPI document and its browsable UI
    documentation: (path: string) => path === '/api/v1/openapi.json' || path === '/docs' || path.startsWith('/swaggerui'),

    fill: (path: string) => path.replace(/\{([^}]+)\}/g, (match, name: string) => (name.startsWith('mitre') ? 'T1059.001' : name.endsWith('*') ? 'x' : Crypto.randomUUID())),

    scopeOf: (route: any): string[] | 'public' => {

        const auth = route.settings.auth;
        if (auth === false) {
            return 'public';
        }

        return [...auth.access[0].scope.selection].sort();
    },

    sorted: (allowed: Allowed) => (allowed === 'public' ? 'public' : [...allowed].sort())
};


describe('Access control', () => {

    let context: TestContext;
    const reference = loadReference();

    before(async () => {

        context = await init();
    });

    after(async () => {

        await context.stop();
    });

    it('reads the reference: the words of every "Other Modules" row are the ones this test interprets', () => {

        for (const [prefix, rule] of Object.entries(reference.modules)) {
            expect(reference.moduleRows.get(prefix), prefix).to.equal(rule.auth);
        }

        expect(reference.routes.length).to.be.above(150);
    });

    it('declares, on every route, exactly the roles of the API reference', () => {

        const table = context.server.table();
        expect(table.length).to.be.above(20);
        for (const route of table) {
            const scope = internals.scopeOf(route);
            if (internals.documentation(route.path)) {
                expect(scope, route.path).to.equal('public');
                continue;
            }

            const allowed = allowedFor(reference, route.method.toUpperCase(), route.path);
            expect(allowed, `${route.method} ${route.path} is not in the API reference`).to.exist();
            expect(scope, `${route.method} ${route.path}`).to.equal(internals.sorted(allowed!));
        }
    });

    it('answers 401 to an anonymous caller and 403 to every forbidden role, on every route', async () => {

        let checked = 0;
        for (const route of context.server.table()) {
            const allowed = allowedFor(reference, route.method.toUpperCase(), route.path);
            if (!allowed || allowed === 'public' || internals.documentation(route.path)) {
                continue;
            }

            const url = internals.fill(route.path);
            const anonymous = await context.server.inject({ method: route.method, url });
            expect(anonymous.statusCode, `anonymous ${route.method} ${route.path}`).to.equal(401);

            for (const role of roles.filter((item) => !allowed.includes(item))) {
                const res = await context.server.inject({ method: route.method, url, auth: context.as(role) });
                expect(res.statusCode, `${role} ${route.method} ${route.path}`).to.equal(403);
                checked++;
            }
        }

        expect(checked).to.be.above(10);
    });
});
