import { expect } from '@hapi/code';

import type { Role } from '../../server/policy';

import { json } from './factories';
import type { TestContext } from './server';


// Route calls as a role, for route tests: `ok` expects the status and answers the body, `refused` expects the status
// and, when given, the error's `code` and the `fields` it names. `context` is read at each call (set in `before`).
export const callsAs = (context: () => TestContext) => {

    const request = (role: Role, method: string, url: string, payload?: object) => context().server.inject({ method, url: `/api/v1${url}`, auth: context().as(role), ...(payload ? { payload } : {}) });

    const ok = async (role: Role, method: string, url: string, payload?: object, status = 200) => {

        const res = await request(role, method, url, payload);
        expect(res.statusCode, `${role} ${method} ${url}: ${res.payload}`).to.equal(status);
        return res.payload ? json(res) : {};
    };

    const refused = async (role: Role, method: string, url: string, payload: object | undefined, status: number, extra: { code?: string; fields?: string[] } = {}) => {

        const res = await request(role, method, url, payload);
        expect(res.statusCode, `${role} ${method} ${url}: ${res.payload}`).to.equal(status);
        const body = json(res);
        if (extra.code) {
            expect(body.code).to.equal(extra.code);
        }

        if (extra.fields) {
            expect(body.fields).to.equal(extra.fields);
        }

        return body;
    };

    return { request, ok, refused };
};
