import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { Test } from '../../server/models';
import { testAccess, type Actor, type Role } from '../../server/policy';
import { visibleTestCounts } from '../../server/services/test-counts';

import { testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Test counters (test_counts)', () => {

    let context: TestContext;

    // What the counters must say, counted from the tests themselves
    const exact = async (techniques: string[]) => {

        const rows: { technique_id: string; data_classification: string; state: string; detection_outcome: string; n: string }[] = await context.knex('tests')
            .whereIn('technique_id', techniques).select('technique_id', 'data_classification', 'state', context.knex.raw('coalesce(detection_outcome, \'\') as detection_outcome')).count('* as n')
            .groupBy('technique_id', 'data_classification', 'state', 'detection_outcome');
        return rows.map((row) => `${row.technique_id}|${row.data_classification}|${row.state}|${row.detection_outcome}|${row.n}`).sort();
    };

    const counted = async (techniques: string[]) => {

        const rows: { technique_id: string; data_classification: string; state: string; detection_outcome: string; count: string }[] = await context.knex('test_counts')
            .whereIn('technique_id', techniques).where('count', '>', 0).select('technique_id', 'data_classification', 'state', 'detection_outcome', 'count');
        return rows.map((row) => `${row.technique_id}|${row.data_classification}|${row.state}|${row.detection_outcome}|${row.count}`).sort();
    };

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('follows every insert, update and delete of tests, single rows and whole statements, and a rollback', async () => {

        const a = await uniqueTechnique(context.knex);
        const b = await uniqueTechnique(context.knex);
        const ids: string[] = [];
        for (const [technique, state, classification] of [[a, 'draft', 'public'], [a, 'draft', 'internal'], [a, 'validated', 'internal'], [b, 'in_review', 'restricted'], [b, 'validated', 'confidential']] as const) {
            ids.push((await testRow(context.knex, { technique_id: technique, state, data_classification: classification })).id);
        }

        expect(await counted([a, b])).to.equal(await exact([a, b]));
        expect(await counted([a])).to.equal([`${a}|internal|draft||1`, `${a}|internal|validated|alerted|1`, `${a}|public|draft||1`]);

        // One statement over several rows, moving some between keys and leaving others where they are
        await context.knex('tests').whereIn('id', ids).update({ data_classification: 'public', title: 'moved' });
        expect(await counted([a, b])).to.equal(await exact([a, b]));

        // A move from one technique to another, an outcome changed, then deletes
        await context.knex('tests').where('id', ids[0]).update({ technique_id: b });
        await context.knex('tests').where('id', ids[2]).update({ detection_outcome: 'not_detected' });
        expect(await counted([a, b])).to.equal(await exact([a, b]));
        await context.knex('tests').whereIn('id', ids.slice(0, 2)).del();
        expect(await counted([a, b])).to.equal(await exact([a, b]));

        // A bulk insert of generated rows in one statement
        await context.knex.raw(`insert into tests (title, technique_id, data_classification) select 'bulk ' || g, ?, case when g % 2 = 0 then 'internal' else 'restricted' end from generate_series(1, 7) g`, [a]);
        expect(await counted([a, b])).to.equal(await exact([a, b]));
        expect(await counted([a])).to.include([`${a}|internal|draft||3`, `${a}|restricted|draft||4`]);

        // What a rolled-back transaction wrote is not counted
        const kept = await counted([a, b]);
        await expect(context.knex.transaction(async (trx) => {

            await trx('tests').where('technique_id', a).del();
            throw new Error('roll back');
        })).to.reject('roll back');
        expect(await counted([a, b])).to.equal(kept);
    });

    it('answers the total of GET /tests filtered by state and technique from the counters, as counting the tests would', async () => {

        const technique = await uniqueTechnique(context.knex);
        const tech = await context.createUser('red_tech');
        for (const [state, classification, assignee] of [['draft', 'public', null], ['draft', 'restricted', null], ['validated', 'internal', null], ['validated', 'restricted', tech.id], ['in_review', 'confidential', null], ['rejected', 'internal', null]] as const) {
            await testRow(context.knex, { technique_id: technique, state, data_classification: classification, red_assignee_id: assignee });
        }

        const total = async (actor: Actor, query: string) => {

            const auth = actor.id === tech.id ? { strategy: 'jwt-bearer', credentials: { user: tech, scope: [actor.role], app: {} } } : context.as(actor.role as Role);
            const res = await context.server.inject({ method: 'GET', url: `/api/v1/tests?${query}`, auth });
            expect(res.statusCode, res.payload).to.equal(200);
            return (JSON.parse(res.payload) as { total: number }).total;
        };

        const queries: [string, string[]][] = [['draft'], ['validated', 'in_review'], []].map((states) => [[`technique_id=${technique}`, ...states.map((state) => `state=${state}`)].join('&'), states]);
        for (const actor of [context.actor('admin'), context.actor('viewer'), context.actor('blue_tech'), { id: tech.id, role: 'red_tech' as const }]) {
            for (const [query, states] of queries) {
                const exactly = await Test.query(context.knex).modify('visibleTo', actor).where('technique_id', technique).modify((q) => (states.length ? q.whereIn('state', states) : q)).resultSize();
                expect(await total(actor, query), `${actor.role} ${query}`).to.equal(exactly);
            }
        }

        expect(await total(context.actor('admin'), `technique_id=${technique}&state=validated`)).to.equal(2);
        expect(await total({ id: tech.id, role: 'red_tech' }, `technique_id=${technique}&state=validated`)).to.equal(2);
        expect(await total(context.actor('viewer'), `technique_id=${technique}&state=validated`)).to.equal(1);

        // It is the counters that answer: a counter moved by hand moves that total, while a filter they do not hold
        // (priority) still counts the tests
        const counter = { technique_id: technique, data_classification: 'internal', state: 'validated' };
        await context.knex('test_counts').where(counter).increment('count', 40);
        try {
            expect(await total(context.actor('admin'), `technique_id=${technique}&state=validated`)).to.equal(42);
            const priority = (await context.knex('tests').where({ technique_id: technique, state: 'validated', data_classification: 'internal' }).first('priority')).priority;
            expect(await total(context.actor('admin'), `technique_id=${technique}&state=validated&priority=${priority}`)).to.be.at.most(2);
        }
        finally {
            await context.knex('test_counts').where(counter).decrement('count', 40);
        }
    });

    it('counts for each reader only the tests the visibility rule shows them', async () => {

        const technique = await uniqueTechnique(context.knex);
        const tech = await context.createUser('red_tech');
        for (const [classification, assignee] of [['public', null], ['internal', null], ['confidential', null], ['restricted', null], ['restricted', tech.id], ['restricted', tech.id]] as const) {
            await testRow(context.knex, { technique_id: technique, data_classification: classification, red_assignee_id: assignee });
        }

        // Assigned on both sides: counted once
        await testRow(context.knex, { technique_id: technique, data_classification: 'restricted', red_assignee_id: tech.id, blue_assignee_id: tech.id });

        const visible = async (actor: Actor) => (await visibleTestCounts(context.knex, actor)).filter((row) => row.technique_id === technique).reduce((sum, row) => sum + row.count, 0);
        const expected = async (actor: Actor) => Number((await Test.query(context.knex).modify('visibleTo', actor).where('technique_id', technique).resultSize()));

        for (const actor of [context.actor('admin'), context.actor('red_lead'), context.actor('viewer'), context.actor('blue_tech'), { id: tech.id, role: 'red_tech' as const }]) {
            expect(await visible(actor), actor.role).to.equal(await expected(actor));
        }

        expect(testAccess(context.actor('viewer'))).to.exist();
        expect(await visible(context.actor('admin'))).to.equal(7);
        expect(await visible(context.actor('viewer'))).to.equal(2);
        expect(await visible(context.actor('blue_tech'))).to.equal(3);
        expect(await visible({ id: tech.id, role: 'red_tech' })).to.equal(6);

        // Reassigned, unassigned, declassified, deleted: each reader's count follows
        const other = await context.createUser('blue_tech');
        const assigned = await context.knex('tests').where({ technique_id: technique, red_assignee_id: tech.id, data_classification: 'restricted' }).orderBy('id').pluck('id');
        await context.knex('tests').where('id', assigned[0]).update({ red_assignee_id: other.id });
        await context.knex('tests').where('id', assigned[1]).update({ red_assignee_id: null, blue_assignee_id: other.id });
        await context.knex('tests').where('id', assigned[2]).update({ data_classification: 'internal' });
        await context.knex('tests').where({ technique_id: technique, data_classification: 'public' }).del();
        for (const actor of [context.actor('admin'), context.actor('viewer'), { id: tech.id, role: 'red_tech' as const }, { id: other.id, role: 'blue_tech' as const }]) {
            expect(await visible(actor), actor.role).to.equal(await expected(actor));
        }

        expect(await visible({ id: other.id, role: 'blue_tech' })).to.equal(5);           // 2 internal (one declassified), 1 confidential, the 2 restricted now theirs
    });
});
