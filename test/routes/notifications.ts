import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { Notification, type User } from '../../server/models';

import { testRow } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Notifications', () => {

    let context: TestContext;

    const seed = async (userId: string, count: number) => {

        await context.services.notifications.notify(context.knex, Array.from({ length: count }, (_, i) => ({ user_id: userId, type: i % 2 ? 'test.review' : 'test.assigned', title: `n${i}`, entity_type: 'test', entity_id: Crypto.randomUUID() })));
    };

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('lists only the own notifications, newest first, with the unread count and filters', async () => {

        const user = await context.createUser('blue_tech');
        const other = await context.createUser('blue_tech');
        await seed(user.id, 3);
        await seed(other.id, 2);
        const auth = { strategy: 'jwt-bearer', credentials: { user, scope: ['blue_tech'], app: {} } };

        const res = await context.server.inject({ method: 'GET', url: '/api/v1/notifications', auth });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body.total).to.equal(3);
        expect(body.unread_count).to.equal(3);
        expect(body.items.every((item: Notification) => item.user_id === user.id)).to.be.true();

        const review = await context.server.inject({ method: 'GET', url: '/api/v1/notifications?type=test.review', auth });
        expect(JSON.parse(review.payload).total).to.equal(1);
    });

    it('marks one read and unread, and all read; another user\'s notification is a 404 and stays unread', async () => {

        const user = await context.createUser('red_tech');
        const other = await context.createUser('red_tech');
        await seed(user.id, 3);
        await seed(other.id, 1);
        const auth = { strategy: 'jwt-bearer', credentials: { user, scope: ['red_tech'], app: {} } };
        const [first] = await Notification.query(context.knex).where('user_id', user.id).orderBy('created_at');
        const [foreign] = await Notification.query(context.knex).where('user_id', other.id);

        const read = await context.server.inject({ method: 'PATCH', url: `/api/v1/notifications/${first!.id}`, auth, payload: { read: true } });
        expect(read.statusCode).to.equal(200);
        expect(JSON.parse(read.payload).read_at).to.exist();

        const unread = await context.server.inject({ method: 'GET', url: '/api/v1/notifications?unread=true', auth });
        expect(JSON.parse(unread.payload).total).to.equal(2);

        const again = await context.server.inject({ method: 'PATCH', url: `/api/v1/notifications/${first!.id}`, auth, payload: { read: false } });
        expect(JSON.parse(again.payload).read_at).to.be.null();

        const stolen = await context.server.inject({ method: 'PATCH', url: `/api/v1/notifications/${foreign!.id}`, auth, payload: { read: true } });
        expect(stolen.statusCode).to.equal(404);
        expect((await Notification.query(context.knex).findById(foreign!.id))!.read_at).to.be.null();

        const all = await context.server.inject({ method: 'PATCH', url: '/api/v1/notifications', auth, payload: { read: true } });
        expect(JSON.parse(all.payload)).to.equal({ updated: 3 });
        expect((await Notification.query(context.knex).findById(foreign!.id))!.read_at).to.be.null();
        const none = await context.server.inject({ method: 'GET', url: '/api/v1/notifications?unread=true', auth });
        expect(JSON.parse(none.payload).unread_count).to.equal(0);
    });

    it('honours each user\'s in-app preferences per event type (issue 8 item 15)', async () => {

        const asUser = (user: User, role: string) => ({ strategy: 'jwt-bearer', credentials: { user, scope: [role], app: {} } });
        const prefer = async (user: User, role: string, notifications: object) => {

            const res = await context.server.inject({ method: 'PATCH', url: '/api/v1/users/me/preferences', auth: asUser(user, role), payload: { notifications } });
            expect(res.statusCode).to.equal(200);
        };

        // Leads are notified on submit-blue (test.review); the assignees when the test is validated (test.validated)
        const noReview = await context.createUser('red_lead');
        const nothing = await context.createUser('blue_lead');
        const everything = await context.createUser('blue_lead');
        await prefer(noReview, 'red_lead', { events: { 'test.review': { in_app: false } } });
        await prefer(nothing, 'blue_lead', { in_app: false });
        await prefer(everything, 'blue_lead', { email: false, events: { 'test.rejected': { in_app: false } } });

        const test = await testRow(context.knex, { state: 'blue_evaluating', red_assignee_id: noReview.id, blue_assignee_id: nothing.id });
        for (const [url, payload] of [['submit-blue', {}], ['validate-red', { approved: true }], ['validate-blue', { approved: true }]] as const) {
            const res = await context.server.inject({ method: 'POST', url: `/api/v1/tests/${test.id}/${url}`, auth: context.as('admin'), payload });
            expect(res.statusCode, url).to.equal(200);
        }

        await context.relay.drain();
        const received = async (user: { id: string }) => (await Notification.query(context.knex).where({ user_id: user.id, entity_id: test.id }).orderBy('created_at')).map((item) => item.type);
        expect(await received(noReview)).to.equal(['test.validated']);
        expect(await received(nothing)).to.equal([]);
        expect(await received(everything)).to.equal(['test.review']);
    });

    it('answers 400 to bad input', async () => {

        for (const request of [
            { method: 'PATCH', url: `/api/v1/notifications/${Crypto.randomUUID()}`, payload: {} },
            { method: 'PATCH', url: `/api/v1/notifications/${Crypto.randomUUID()}`, payload: { read: 'yes please' } },
            { method: 'PATCH', url: '/api/v1/notifications', payload: { read: false } },
            { method: 'PATCH', url: '/api/v1/notifications/123', payload: { read: true } },
            { method: 'GET', url: '/api/v1/notifications?unread=perhaps' }
        ]) {
            const res = await context.server.inject({ ...request, auth: context.as('viewer') });
            expect(res.statusCode, request.url).to.equal(400);
        }
    });
});
