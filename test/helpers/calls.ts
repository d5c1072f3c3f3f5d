import { expect } from '@hapi/code';
import type { Knex } from 'knex';

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


// What a refusal must leave as it was, scoped to the rows this script's users wrote (the database is shared by the
// whole run, so a count of a whole table would depend on the other scripts): per table, the column naming the user
// who wrote the row (or a filter to that effect), plus their successful audit rows (a 403 writes an `access.denied`
// one, on purpose, outside the change). `written(context, { campaigns: 'created_by' })` answers `{ campaigns, audit }`.
export const written = async <T extends string>(context: TestContext, tables: Record<T, string | ((query: Knex.QueryBuilder, users: string[]) => unknown)>): Promise<Record<T | 'audit', number>> => {

    const users = Object.values(context.users).map((user) => user.id);
    const counts = {} as Record<T | 'audit', number>;
    for (const [table, by] of Object.entries(tables) as [T, string | ((query: Knex.QueryBuilder, users: string[]) => unknown)][]) {
        const query = context.knex(table);
        if (typeof by === 'string') {
            query.whereIn(by, users);
        }
        else {
            by(query, users);
        }

        counts[table] = Number((await query.count('* as n').first())!.n);
    }

    counts.audit = Number((await context.knex('audit_logs').whereIn('actor_id', users).where('outcome', 'success').count('* as n').first())!.n);
    return counts;
};
