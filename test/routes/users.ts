import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import * as NotificationPreferences from '../../migrations/20261206000200_notification_preferences';
import { AuditLog, User } from '../../server/models';
import { usersList } from '../../server/services/users';

import { init, login, password, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Users', () => {

    let context: TestContext;

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    describe('GET /users', () => {

        it('lists users with the list envelope, filtered, searched and sorted', async () => {

            const tag = Crypto.randomBytes(3).toString('hex');
            await context.createUser('blue_lead', { username: `zed-${tag}` });
            await context.createUser('blue_lead', { username: `amy-${tag}` });

            const res = await context.server.inject({ method: 'GET', url: `/api/v1/users?search=${tag}&role=blue_lead&sort=username&order=desc&limit=1`, auth: context.as('admin') });
            expect(res.statusCode).to.equal(200);
            const body = JSON.parse(res.payload);
            expect(body.total).to.equal(2);
            expect(body.limit).to.equal(1);
            expect(body.offset).to.equal(0);
            expect(body.items.map((user: User) => user.username)).to.equal([`zed-${tag}`]);
            expect(body.items[0].password_hash).to.not.exist();

            const next = await context.server.inject({ method: 'GET', url: `/api/v1/users?search=${tag}&sort=username&order=desc&offset=1&limit=1`, auth: context.as('admin') });
            expect(JSON.parse(next.payload).items[0].username).to.equal(`amy-${tag}`);
            expect(JSON.parse(next.payload).total).to.equal(2);

            const active = await context.server.inject({ method: 'GET', url: `/api/v1/users?search=${tag}&is_active=true&sort=created_at`, auth: context.as('admin') });
            expect(JSON.parse(active.payload).total).to.equal(2);
            const inactive = await context.server.inject({ method: 'GET', url: `/api/v1/users?search=${tag}&is_active=false`, auth: context.as('admin') });
            expect(JSON.parse(inactive.payload)).to.equal({ items: [], total: 0, limit: 50, offset: 0 });
        });

        it('builds its SQL from the sort allowlist only, even when called without the route\'s validation', () => {

            expect(() => usersList({ sort: 'password_hash' })).to.throw('Cannot sort by password_hash');
            expect(usersList({ sort: 'role', order: 'desc', limit: 5, offset: 10 }).page).to.include({ values: [5, 10] });
        });

        it('answers the total beside an empty page past the end, and never leaks the helper column', async () => {

            const tag = Crypto.randomBytes(3).toString('hex');
            await context.createUser('viewer', { username: `pat-${tag}` });
            await context.createUser('viewer', { username: `sam-${tag}` });

            const past = await context.server.inject({ method: 'GET', url: `/api/v1/users?search=${tag}&offset=5`, auth: context.as('admin') });
            expect(JSON.parse(past.payload)).to.equal({ items: [], total: 2, limit: 50, offset: 5 });

            const all = JSON.parse((await context.server.inject({ method: 'GET', url: `/api/v1/users?search=${tag}`, auth: context.as('admin') })).payload);
            expect(all.total).to.equal(2);
            expect(Object.keys(all.items[0])).to.not.include('__total');

            // A list of model instances (the audit log) drops it too
            const audit = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/audit-logs?limit=2', auth: context.as('admin') })).payload);
            expect(audit.items.length).to.equal(2);
            expect(audit.total > 1).to.be.true();
            expect(Object.keys(audit.items[0])).to.not.include('__total');
        });

        it('treats LIKE wildcards in search as literal characters', async () => {

            const res = await context.server.inject({ method: 'GET', url: '/api/v1/users?search=%25', auth: context.as('admin') });
            expect(res.statusCode).to.equal(200);
            expect(JSON.parse(res.payload).total).to.equal(0);
        });

        it('answers 400 to a bad sort field (even a real hidden column), limit, offset or unknown filter', async () => {

            for (const query of ['sort=password_hash', 'limit=0', 'limit=501', 'offset=-1', 'limit=abc', 'role=root', 'color=red', 'order=sideways', 'is_active=maybe']) {
                const res = await context.server.inject({ method: 'GET', url: `/api/v1/users?${query}`, auth: context.as('admin') });
                expect(res.statusCode, query).to.equal(400);
                expect(JSON.parse(res.payload).fields).to.be.an.array();
            }
        });
    });

    describe('POST /users', () => {

        it('creates a user who must change the password, and audits it without the password', async () => {

            const username = `new-${Crypto.randomBytes(3).toString('hex')}`;
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/users', auth: context.as('admin'), payload: { username, password, role: 'red_tech', email: `${username}@example.com`, display_name: 'New Tech' } });
            expect(res.statusCode).to.equal(201);
            const body = JSON.parse(res.payload);
            expect(body).to.include({ username, role: 'red_tech', is_active: true, must_change_password: true, display_name: 'New Tech', created_by: context.users.admin.id });
            expect(body.password_hash).to.not.exist();

            const audit = await AuditLog.query(context.knex).where({ action: 'user.create', entity_id: body.id });
            expect(audit).to.have.length(1);
            expect(JSON.stringify(audit)).to.not.include(password);

            // The first login lands in the temporary-password state
            const session = await login(context.server, username);
            const keys = await context.server.inject({ method: 'GET', url: '/api/v1/api-keys', headers: { authorization: session.authorization } });
            expect(keys.statusCode).to.equal(403);
        });

        it('answers 409 to a username taken in another case, and changes nothing', async () => {

            const count = await User.query(context.knex).resultSize();
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/users', auth: context.as('admin'), payload: { username: context.users.viewer.username.toUpperCase(), password, role: 'viewer' } });
            expect(res.statusCode).to.equal(409);
            expect(await User.query(context.knex).resultSize()).to.equal(count);
        });

        it('answers 400 to a weak password, a bad role, a bad username or a privileged field', async () => {

            const cases = [
                { username: 'weakling', password: 'password', role: 'viewer' },
                { username: 'badrole', password, role: 'root' },
                { username: 'x', password, role: 'viewer' },
                { username: 'has space', password, role: 'viewer' },
                { username: 'sneaky', password, role: 'viewer', is_active: false },
                { username: 'sneaky2', password, role: 'viewer', password_hash: 'x' },
                { username: 'sneaky3', password, role: 'viewer', must_change_password: false }
            ];

            for (const payload of cases) {
                const res = await context.server.inject({ method: 'POST', url: '/api/v1/users', auth: context.as('admin'), payload });
                expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
            }
        });
    });

    describe('GET, PATCH and DELETE /users/{id}', () => {

        it('gets a user, and 404 for an unknown id, 400 for a malformed one', async () => {

            const res = await context.server.inject({ method: 'GET', url: `/api/v1/users/${context.users.viewer.id}`, auth: context.as('admin') });
            expect(res.statusCode).to.equal(200);
            expect(JSON.parse(res.payload).username).to.equal(context.users.viewer.username);

            expect((await context.server.inject({ method: 'GET', url: `/api/v1/users/${Crypto.randomUUID()}`, auth: context.as('admin') })).statusCode).to.equal(404);
            expect((await context.server.inject({ method: 'GET', url: '/api/v1/users/not-a-uuid', auth: context.as('admin') })).statusCode).to.equal(400);
        });

        it('updates role, display name and flags, and audits the change', async () => {

            const user = await context.createUser('viewer');
            const res = await context.server.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, auth: context.as('admin'), payload: { role: 'blue_tech', display_name: 'Blue', must_change_password: true } });
            expect(res.statusCode).to.equal(200);
            expect(JSON.parse(res.payload)).to.include({ role: 'blue_tech', display_name: 'Blue', must_change_password: true });
            expect(await AuditLog.query(context.knex).where({ action: 'user.update', entity_id: user.id }).resultSize()).to.equal(1);
        });

        it('answers 400 to an empty patch or a field that is not editable here', async () => {

            const user = await context.createUser('viewer');
            for (const payload of [{}, { username: 'renamed' }, { password: 'Another-password-99' }, { password_hash: 'x' }, { id: Crypto.randomUUID() }]) {
                const res = await context.server.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, auth: context.as('admin'), payload });
                expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
            }
        });

        it('refuses to demote or deactivate the last active admin, and to deactivate oneself', async () => {

            const admins = await User.query(context.knex).where({ role: 'admin', is_active: true });
            const keep = context.users.admin;
            for (const other of admins.filter((admin) => admin.id !== keep.id)) {
                await other.$query(context.knex).patch({ is_active: false });
            }

            const demote = await context.server.inject({ method: 'PATCH', url: `/api/v1/users/${keep.id}`, auth: context.as('admin'), payload: { role: 'viewer' } });
            expect(demote.statusCode).to.equal(409);
            expect(JSON.parse(demote.payload).code).to.equal('last_admin');

            const own = await context.server.inject({ method: 'DELETE', url: `/api/v1/users/${keep.id}`, auth: context.as('admin') });
            expect(own.statusCode).to.equal(409);
            expect(JSON.parse(own.payload).code).to.equal('cannot_deactivate_self');

            const second = await context.createUser('admin');
            const deactivate = await context.server.inject({ method: 'DELETE', url: `/api/v1/users/${second.id}`, auth: context.as('admin') });
            expect(deactivate.statusCode).to.equal(200);
            expect(JSON.parse(deactivate.payload).is_active).to.be.false();
            expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/users/${Crypto.randomUUID()}`, auth: context.as('admin') })).statusCode).to.equal(404);
        });

        it('never leaves no active admin when two admins remove each other at once', async () => {

            const active = await User.query(context.knex).where({ role: 'admin', is_active: true });
            await User.query(context.knex).whereIn('id', active.map((admin) => admin.id)).patch({ is_active: false });
            try {
                const as = (user: User) => ({ strategy: 'jwt-bearer', credentials: { user, scope: ['admin'], app: {} } });
                for (let i = 0; i < 6; ++i) {
                    const a = await context.createUser('admin');
                    const b = await context.createUser('admin');

                    // Deactivation against deactivation, then deactivation against demotion
                    const results = await Promise.all([
                        context.server.inject({ method: 'DELETE', url: `/api/v1/users/${b.id}`, auth: as(a) }),
                        i % 2 ?
                            context.server.inject({ method: 'PATCH', url: `/api/v1/users/${a.id}`, auth: as(b), payload: { role: 'viewer' } }) :
                            context.server.inject({ method: 'DELETE', url: `/api/v1/users/${a.id}`, auth: as(b) })
                    ]);

                    expect(results.map((res) => res.statusCode).sort(), `round ${i}`).to.equal([200, 409]);
                    expect(JSON.parse(results.find((res) => res.statusCode === 409)!.payload).code).to.equal('last_admin');
                    expect(await User.query(context.knex).where({ role: 'admin', is_active: true }).resultSize(), `round ${i}`).to.equal(1);
                    await User.query(context.knex).whereIn('id', [a.id, b.id]).patch({ is_active: false });
                }
            }
            finally {
                await User.query(context.knex).whereIn('id', active.map((admin) => admin.id)).patch({ is_active: true });
            }
        });
    });

    describe('GET /users/me and PATCH /users/me/preferences', () => {

        it('answers the own profile to every role', async () => {

            for (const role of ['viewer', 'red_tech', 'blue_lead'] as const) {
                const res = await context.server.inject({ method: 'GET', url: '/api/v1/users/me', auth: context.as(role) });
                expect(res.statusCode).to.equal(200);
                expect(JSON.parse(res.payload).id).to.equal(context.users[role].id);
            }
        });

        it('merges validated preferences', async () => {

            const first = await context.server.inject({ method: 'PATCH', url: '/api/v1/users/me/preferences', auth: context.as('red_tech'), payload: { theme: 'dark', notifications: { email: false } } });
            expect(first.statusCode).to.equal(200);
            const second = await context.server.inject({ method: 'PATCH', url: '/api/v1/users/me/preferences', auth: context.as('red_tech'), payload: { page_size: 100, notifications: { events: { 'test.review': { in_app: false }, 'test.assigned': { email: false } } } } });
            expect(JSON.parse(second.payload).preferences).to.equal({ theme: 'dark', page_size: 100, notifications: { email: false, events: { 'test.review': { in_app: false }, 'test.assigned': { email: false } } } });

            // One event's setting changes alone
            const third = await context.server.inject({ method: 'PATCH', url: '/api/v1/users/me/preferences', auth: context.as('red_tech'), payload: { notifications: { in_app: true, events: { 'test.assigned': { in_app: false } } } } });
            expect(JSON.parse(third.payload).preferences.notifications).to.equal({ email: false, in_app: true, events: { 'test.review': { in_app: false }, 'test.assigned': { email: false, in_app: false } } });
        });

        it('reads the old list of wanted events as the new per-event settings (migration 20261206000200)', async () => {

            const user = await context.createUser('blue_tech');
            await context.knex('users').where('id', user.id).update({ preferences: { theme: 'dark', notifications: { email: true, events: ['test.assigned', 'test.validated'] } } });
            await NotificationPreferences.up(context.knex);
            const [row] = await context.knex('users').where('id', user.id).pluck('preferences');
            expect(row).to.equal({
                theme: 'dark',
                notifications: { email: true, events: { 'test.review': { in_app: false }, 'test.rejected': { in_app: false }, 'alert.fired': { in_app: false }, 'campaign.completed': { in_app: false }, 'report.ready': { in_app: false } } }
            });
        });

        it('answers 400 to free-form or invalid preferences', async () => {

            for (const payload of [{}, { theme: 'neon' }, { anything: 1 }, { page_size: 100000 }, { notifications: { events: ['nope'] } }, { notifications: { events: ['test.review'] } }, { notifications: { events: { nope: { in_app: false } } } },
                { notifications: { events: { 'test.review': {} } } }, { notifications: { events: { 'test.review': { in_app: 'off' } } } }, { notifications: { events: { 'test.review': { push: true } } } }, { constructor: { prototype: { admin: true } } }]) {
                const res = await context.server.inject({ method: 'PATCH', url: '/api/v1/users/me/preferences', auth: context.as('viewer'), payload });
                expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
            }
        });
    });
});
