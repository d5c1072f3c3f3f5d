import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import type { Role } from '../../server/policy';
import { executionLifecycle } from '../../server/services/attack-paths';

import { json, technique, testRow, uniqueTechnique } from '../helpers/factories';
import { callsAs, written } from '../helpers/calls';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Attack path routes', () => {

    let context: TestContext;
    let t1: string;
    let t2: string;
    let t3: string;

    const { request, ok, refused } = callsAs(() => context);

    const positions = async (pathId: string) => (await context.knex('attack_path_steps').where('path_id', pathId).orderBy('position')).map((row) => ({ id: row.id as string, position: row.position as number, technique_id: row.technique_id as string }));
    const expectDense = (rows: { position: number }[]) => expect(rows.map((row) => row.position)).to.equal(rows.map((_, index) => index + 1));
    const newPath = async (steps: string[] = [], role: Role = 'red_tech') => await ok(role, 'POST', '/attack-paths', { name: `Path ${Crypto.randomBytes(4).toString('hex')}`, steps: steps.map((id, index) => ({ technique_id: id, notes: `step ${index + 1}` })) }, 201);
    // The rows of this script's users (the database is shared by the whole run)
    const counts = async () => {

        const rows = await written(context, {
            attack_paths: 'created_by', attack_path_steps: 'created_by', attack_path_executions: 'created_by',
            attack_path_execution_steps: (query, users) => query.whereIn('recorded_by', users).whereNotNull('outcome')
        });
        return { paths: rows.attack_paths, steps: rows.attack_path_steps, executions: rows.attack_path_executions, recorded: rows.attack_path_execution_steps, audit: rows.audit };
    };

    before(async () => {

        context = await init({ redis: false });
        t1 = await technique(context.knex, 'T1059.001');
        t2 = await uniqueTechnique(context.knex);
        t3 = await uniqueTechnique(context.knex);
    });

    after(async () => {

        await context.stop();
    });

    it('creates, reads, lists, updates and deletes a path, for the roles of the reference', async () => {

        const tag = `tag-${Crypto.randomBytes(4).toString('hex')}`;
        // Its name is ATT&CK's once an import ran in the shared database
        const t1Name = (await context.knex('techniques').where('mitre_id', t1).first()).name;
        const created = await ok('blue_tech', 'POST', '/attack-paths', { name: '  Kill chain  ', description: 'Initial access to exfiltration', tags: [tag], steps: [{ technique_id: t1, notes: 'phish' }, { technique_id: t2 }] }, 201);
        expect(created).to.equal({
            id: created.id, name: 'Kill chain', description: 'Initial access to exfiltration', tags: [tag], step_count: 2, execution_count: 0, created_by: context.users.blue_tech.id,
            created_at: created.created_at, updated_at: created.updated_at,
            steps: [
                { id: created.steps[0].id, position: 1, technique_id: t1, technique_name: t1Name, notes: 'phish', template_id: null, created_at: created.steps[0].created_at, updated_at: created.steps[0].updated_at },
                { id: created.steps[1].id, position: 2, technique_id: t2, technique_name: `Technique ${t2}`, notes: null, template_id: null, created_at: created.steps[1].created_at, updated_at: created.steps[1].updated_at }
            ]
        });

        expect(await ok('viewer', 'GET', `/attack-paths/${created.id}`)).to.equal(created);
        const listed = await ok('viewer', 'GET', `/attack-paths?tag=${tag}`);
        const { steps, ...summary } = created;
        expect(steps.length).to.equal(2);
        expect(listed).to.equal({ items: [summary], total: 1, limit: 50, offset: 0 });
        expect((await ok('viewer', 'GET', `/attack-paths?technique_id=${t2}&search=kill%20CHAIN`)).items.map((item: { id: string }) => item.id)).to.include(created.id);
        expect((await ok('viewer', 'GET', `/attack-paths?technique_id=${t3}&tag=${tag}`)).total).to.equal(0);
        expect((await ok('viewer', 'GET', `/attack-paths?tag=${tag}&search=%25`)).total).to.equal(0);           // a literal %, not a wildcard

        expect(await ok('red_tech', 'POST', '/attack-paths', { name: 'Bare' }, 201)).to.include({ name: 'Bare', description: null, tags: [], steps: [], step_count: 0 });
        const updated = await ok('red_tech', 'PATCH', `/attack-paths/${created.id}`, { description: '', tags: [] });
        expect(updated).to.include({ name: 'Kill chain', description: null, tags: [] });

        await refused('viewer', 'POST', '/attack-paths', { name: 'no' }, 403);
        await refused('red_tech', 'DELETE', `/attack-paths/${created.id}`, undefined, 403);
        await refused('blue_tech', 'DELETE', `/attack-paths/${created.id}`, undefined, 403);
        expect((await request('blue_lead', 'DELETE', `/attack-paths/${created.id}`)).statusCode).to.equal(204);
        await refused('viewer', 'GET', `/attack-paths/${created.id}`, undefined, 404);
        expect(await context.knex('attack_path_steps').where('path_id', created.id)).to.equal([]);
        expect(await context.knex('audit_logs').where({ entity_id: created.id }).orderBy('created_at').pluck('action')).to.include(['attack_path.create', 'attack_path.update', 'attack_path.delete']);
    });

    it('refuses bad input naming the field, unknown ids, and writes nothing on a refusal', async () => {

        const path = await newPath([t1]);
        const initial = await counts();
        await refused('red_lead', 'POST', '/attack-paths', { name: '' }, 400, { fields: ['name'] });
        await refused('red_lead', 'POST', '/attack-paths', { name: 'x', owner: 'me' }, 400, { fields: ['owner'] });
        await refused('red_lead', 'POST', '/attack-paths', { name: 'x', steps: [{ technique_id: 'not-a-technique' }] }, 400, { fields: ['steps.0.technique_id'] });
        await refused('red_lead', 'POST', '/attack-paths', { name: 'x', steps: [{ technique_id: t1, position: 1 }] }, 400, { fields: ['steps.0.position'] });
        await refused('red_lead', 'POST', '/attack-paths', { name: 'x', steps: [{ technique_id: t1 }, { technique_id: 'T9999.999' }] }, 400, { code: 'unknown_technique', fields: ['technique_id'] });
        await refused('red_lead', 'POST', '/attack-paths', { name: 'x', steps: [{ technique_id: t1, template_id: Crypto.randomUUID() }] }, 404);
        await refused('red_lead', 'PATCH', `/attack-paths/${path.id}`, {}, 400);
        await refused('red_lead', 'PATCH', `/attack-paths/${Crypto.randomUUID()}`, { name: 'y' }, 404);
        await refused('red_lead', 'PATCH', '/attack-paths/not-a-uuid', { name: 'y' }, 400, { fields: ['id'] });
        await refused('admin', 'DELETE', `/attack-paths/${Crypto.randomUUID()}`, undefined, 404);
        await refused('red_lead', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t2, position: 3 }, 400, { code: 'invalid_position', fields: ['position'] });
        await refused('red_lead', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t2, position: 0 }, 400, { fields: ['position'] });
        await refused('red_lead', 'POST', `/attack-paths/${path.id}/steps`, { notes: 'no technique' }, 400, { fields: ['technique_id'] });
        await refused('red_lead', 'POST', `/attack-paths/${Crypto.randomUUID()}/steps`, { technique_id: t2 }, 404);
        await refused('red_lead', 'PATCH', `/attack-paths/${path.id}/steps/${path.steps[0].id}`, { position: 2 }, 400, { code: 'invalid_position', fields: ['position'] });
        await refused('red_lead', 'PATCH', `/attack-paths/${path.id}/steps/${Crypto.randomUUID()}`, { notes: 'x' }, 404);
        await refused('red_lead', 'DELETE', `/attack-paths/${path.id}/steps/${Crypto.randomUUID()}`, undefined, 404);
        await refused('red_lead', 'GET', `/attack-paths/${Crypto.randomUUID()}/executions`, undefined, 404);
        await refused('red_lead', 'GET', `/attack-paths/${path.id}/executions?state=done`, undefined, 400, { fields: ['state'] });
        await refused('red_lead', 'GET', '/attack-paths?sort=technique_id', undefined, 400, { fields: ['sort'] });

        // A step of another path is not a step of this one
        const other = await newPath([t2]);
        await refused('red_lead', 'DELETE', `/attack-paths/${path.id}/steps/${other.steps[0].id}`, undefined, 404);
        await refused('red_lead', 'PATCH', `/attack-paths/${path.id}/steps/${other.steps[0].id}`, { position: 1 }, 404);

        const final = await counts();
        expect({ ...final, paths: final.paths - 1, steps: final.steps - 1, audit: final.audit - 1 }).to.equal(initial);       // `other`
    });

    it('adds, inserts, moves and removes steps keeping positions 1..n', async () => {

        const path = await newPath([t1, t2]);
        let view = await ok('red_tech', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t3, notes: 'appended' }, 201);
        expect(view.steps.map((step: { technique_id: string }) => step.technique_id)).to.equal([t1, t2, t3]);

        view = await ok('blue_tech', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t3, position: 1, notes: 'first' }, 201);
        expect(view.steps.map((step: { notes: string }) => step.notes)).to.equal(['first', 'step 1', 'step 2', 'appended']);
        expect(view.step_count).to.equal(4);
        const [first, a, b, c] = view.steps.map((step: { id: string }) => step.id);

        // Down: the steps in between move up one
        view = await ok('red_tech', 'PATCH', `/attack-paths/${path.id}/steps/${first}`, { position: 3 });
        expect(view.steps.map((step: { id: string }) => step.id)).to.equal([a, b, first, c]);

        // Up, with a change of notes and technique
        view = await ok('red_tech', 'PATCH', `/attack-paths/${path.id}/steps/${c}`, { position: 1, notes: '', technique_id: t1 });
        expect(view.steps.map((step: { id: string }) => step.id)).to.equal([c, a, b, first]);
        expect(view.steps[0]).to.include({ position: 1, technique_id: t1, notes: null });

        view = await ok('red_tech', 'PATCH', `/attack-paths/${path.id}/steps/${b}`, { position: 3, notes: 'same place' });
        expect(view.steps.map((step: { id: string }) => step.id)).to.equal([c, a, b, first]);

        view = await ok('red_tech', 'DELETE', `/attack-paths/${path.id}/steps/${a}`);
        expect(view.steps.map((step: { id: string; position: number }) => [step.id, step.position])).to.equal([[c, 1], [b, 2], [first, 3]]);
        await refused('viewer', 'DELETE', `/attack-paths/${path.id}/steps/${b}`, undefined, 403);
        await refused('viewer', 'PATCH', `/attack-paths/${path.id}/steps/${b}`, { position: 1 }, 403);
        expectDense(await positions(path.id));
    });

    it('keeps positions 1..n without gap or duplicate under concurrent adds, removes and moves', async () => {

        const path = await newPath([t1, t2]);

        // Two (and more) parallel adds, half of them inserting at the front
        const added = await Promise.all(Array.from({ length: 8 }, (_, index) => request(index % 2 ? 'red_tech' : 'blue_tech', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t3, notes: `added ${index}`, ...(index % 2 ? { position: 1 } : {}) })));
        expect(added.map((res) => res.statusCode)).to.equal(added.map(() => 201));
        let rows = await positions(path.id);
        expect(rows.length).to.equal(10);
        expectDense(rows);

        // A parallel add and remove, and moves, all at once
        const removed = [rows[0]!.id, rows[5]!.id];
        const results = await Promise.all([
            request('red_tech', 'DELETE', `/attack-paths/${path.id}/steps/${rows[0]!.id}`),
            request('red_tech', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t1, position: 2 }),
            request('blue_tech', 'DELETE', `/attack-paths/${path.id}/steps/${rows[5]!.id}`),
            request('blue_tech', 'PATCH', `/attack-paths/${path.id}/steps/${rows[9]!.id}`, { position: 1 }),
            request('red_lead', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t2 }),
            request('red_lead', 'PATCH', `/attack-paths/${path.id}/steps/${rows[3]!.id}`, { position: 2 })
        ]);
        expect(results.map((res) => res.statusCode)).to.equal([200, 201, 200, 200, 201, 200]);
        rows = await positions(path.id);
        expect(rows.length).to.equal(10);
        expectDense(rows);
        expect(rows.map((row) => row.id)).to.not.include(removed);
        expect(new Set(rows.map((row) => row.id)).size).to.equal(10);
    });

    it('refuses what would break the deferred unique (path, position) in the database itself', async () => {

        const path = await newPath([t1, t2]);
        const error = await context.knex.transaction(async (trx) => {

            await trx('attack_path_steps').where({ path_id: path.id, position: 2 }).update({ position: 1 });
        }).catch((err: Error) => err);
        expect(error).to.be.an.error();
        expect((error as { code?: string }).code).to.equal('23505');
        expectDense(await positions(path.id));
    });

    it('runs an execution pending -> running -> completed on a copy of the steps, recording outcome, notes, time and proving test', async () => {

        const path = await newPath([t1, t2]);
        const initial = await counts();
        const empty = await newPath([]);
        await refused('red_tech', 'POST', `/attack-paths/${empty.id}/executions`, {}, 409, { code: 'path_empty' });
        await refused('viewer', 'POST', `/attack-paths/${path.id}/executions`, {}, 403);
        await refused('red_tech', 'POST', `/attack-paths/${Crypto.randomUUID()}/executions`, {}, 404);
        const refusedAll = await counts();
        expect({ ...refusedAll, paths: refusedAll.paths - 1, audit: refusedAll.audit - 1 }).to.equal(initial);                               // `empty`

        const created = await ok('blue_tech', 'POST', `/attack-paths/${path.id}/executions`, { notes: 'Q4 run' }, 201);
        expect(created).to.include({ path_id: path.id, path_name: path.name, state: 'pending', notes: 'Q4 run', started_at: null, completed_at: null, aborted_at: null, abort_reason: null, created_by: context.users.blue_tech.id });
        expect(created.steps.map((step: Record<string, unknown>) => [step.position, step.technique_id, step.step_notes, step.outcome, step.test_id, step.path_step_id])).to.equal([[1, t1, 'step 1', null, null, path.steps[0].id], [2, t2, 'step 2', null, null, path.steps[1].id]]);
        const [s1, s2] = created.steps.map((step: { id: string }) => step.id);

        // Editing the path afterwards does not rewrite the execution
        await ok('red_tech', 'DELETE', `/attack-paths/${path.id}/steps/${path.steps[0].id}`);
        await ok('red_tech', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t3, position: 1 }, 201);
        await ok('red_tech', 'PATCH', `/attack-paths/${path.id}`, { name: 'Renamed' });
        const unchanged = await ok('viewer', 'GET', `/executions/${created.id}`);
        expect(unchanged).to.equal(created);

        // Not before it started
        await refused('red_tech', 'POST', `/executions/${created.id}/steps/${s1}`, { outcome: 'succeeded' }, 409, { code: 'invalid_state_transition' });
        await refused('red_tech', 'POST', `/executions/${created.id}/complete`, {}, 409, { code: 'invalid_state_transition' });
        await refused('viewer', 'POST', `/executions/${created.id}/start`, {}, 403);

        const started = await ok('red_tech', 'POST', `/executions/${created.id}/start`);
        expect(started).to.include({ state: 'running', started_by: context.users.red_tech.id });
        expect(started.started_at).to.be.a.string();
        await refused('red_tech', 'POST', `/executions/${created.id}/start`, {}, 409, { code: 'invalid_state_transition' });

        const test = await testRow(context.knex, { technique_id: t1, state: 'validated' });
        const executedAt = new Date(Date.now() - 3_600_000).toISOString();
        const recorded = await ok('red_tech', 'POST', `/executions/${created.id}/steps/${s1}`, { outcome: 'detected', notes: 'EDR alerted', executed_at: executedAt, test_id: test.id });
        expect(recorded.steps[0]).to.equal({
            id: s1, path_step_id: path.steps[0].id, position: 1, technique_id: t1, step_notes: 'step 1', template_id: null, outcome: 'detected', notes: 'EDR alerted', executed_at: executedAt,
            test_id: test.id, test: { id: test.id, title: test.title, state: 'validated', technique_id: t1, detection_outcome: 'alerted' }, recorded_by: context.users.red_tech.id, recorded_at: recorded.steps[0].recorded_at
        });

        // Completing with a step unrecorded is refused, and writes nothing
        const beforeComplete = await context.knex('attack_path_executions').where('id', created.id).first();
        const body = await refused('blue_tech', 'POST', `/executions/${created.id}/complete`, {}, 409, { code: 'steps_unrecorded' });
        expect(body.message).to.contain('2');
        expect(await context.knex('attack_path_executions').where('id', created.id).first()).to.equal(beforeComplete);

        const skipped = await ok('blue_tech', 'POST', `/executions/${created.id}/steps/${s2}`, { outcome: 'skipped', notes: 'out of scope' });
        expect(skipped.steps[1]).to.include({ outcome: 'skipped', notes: 'out of scope', test_id: null, test: null, recorded_by: context.users.blue_tech.id });
        expect(skipped.steps[1].executed_at).to.be.a.string();

        const completed = await ok('blue_tech', 'POST', `/executions/${created.id}/complete`, { notes: 'done' });
        expect(completed).to.include({ state: 'completed', notes: 'done' });
        expect(completed.completed_at).to.be.a.string();

        for (const [action, payload] of [['start', {}], ['complete', {}], ['abort', {}], [`steps/${s1}`, { outcome: 'failed' }]] as const) {
            await refused('admin', 'POST', `/executions/${created.id}/${action}`, payload, 409, { code: 'invalid_state_transition' });
        }

        expect((await ok('viewer', 'GET', `/attack-paths/${path.id}/executions?state=completed`)).items.map((item: { id: string }) => item.id)).to.equal([created.id]);
        expect((await ok('viewer', 'GET', `/attack-paths/${path.id}/executions?state=running`)).total).to.equal(0);
        expect(await context.knex('audit_logs').where({ entity_id: created.id }).pluck('action')).to.include(['attack_path.execution_create', 'attack_path.execution_start', 'attack_path.execution_record_step', 'attack_path.execution_complete']);
    });

    it('checks the proving test: visible to the recorder, of the step\'s technique, never shown to who may not see it', async () => {

        const path = await newPath([t1]);
        const execution = await ok('red_lead', 'POST', `/attack-paths/${path.id}/executions`, undefined, 201);
        await ok('red_lead', 'POST', `/executions/${execution.id}/start`);
        const stepId = execution.steps[0].id;
        const marker = `HIDDEN${Crypto.randomBytes(4).toString('hex')}`;
        const restricted = await testRow(context.knex, { technique_id: t1, data_classification: 'restricted', title: marker });
        const otherTechnique = await testRow(context.knex, { technique_id: t2 });
        const subTechnique = await technique(context.knex, `${t2}`.slice(0, 5));

        await refused('red_tech', 'POST', `/executions/${execution.id}/steps/${stepId}`, { outcome: 'succeeded', test_id: restricted.id }, 404);
        await refused('red_tech', 'POST', `/executions/${execution.id}/steps/${stepId}`, { outcome: 'succeeded', test_id: Crypto.randomUUID() }, 404);
        await refused('red_tech', 'POST', `/executions/${execution.id}/steps/${stepId}`, { outcome: 'succeeded', test_id: otherTechnique.id }, 400, { code: 'technique_mismatch', fields: ['test_id'] });
        await refused('red_tech', 'POST', `/executions/${execution.id}/steps/${Crypto.randomUUID()}`, { outcome: 'succeeded' }, 404);
        await refused('red_tech', 'POST', `/executions/${execution.id}/steps/${stepId}`, { outcome: 'won' }, 400, { fields: ['outcome'] });
        await refused('red_tech', 'POST', `/executions/${execution.id}/steps/${stepId}`, { outcome: 'failed', executed_at: new Date(Date.now() + 3_600_000).toISOString() }, 400, { fields: ['executed_at'] });
        await refused('red_tech', 'POST', `/executions/${Crypto.randomUUID()}/steps/${stepId}`, { outcome: 'failed' }, 404);
        expect(await context.knex('attack_path_execution_steps').where('id', stepId).first()).to.include({ outcome: null, test_id: null });

        // A lead may prove the step with the restricted test; a technician or a viewer then sees neither its fields nor its id
        await ok('red_lead', 'POST', `/executions/${execution.id}/steps/${stepId}`, { outcome: 'succeeded', test_id: restricted.id });
        expect((await ok('blue_lead', 'GET', `/executions/${execution.id}`)).steps[0].test).to.include({ id: restricted.id, title: marker });
        for (const role of ['viewer', 'red_tech', 'blue_tech'] as const) {
            const res = await request(role, 'GET', `/executions/${execution.id}`);
            expect(res.statusCode).to.equal(200);
            expect(res.payload).to.not.contain(marker);
            expect(res.payload).to.not.contain(restricted.id);
            expect(json(res).steps[0]).to.include({ outcome: 'succeeded', test_id: null, test: null });
        }

        // A sub-technique's test proves its parent's step
        const parentPath = await newPath([subTechnique]);
        const sub = await technique(context.knex, `${subTechnique}.001`);
        const subTest = await testRow(context.knex, { technique_id: sub });
        const run = await ok('red_lead', 'POST', `/attack-paths/${parentPath.id}/executions`, {}, 201);
        await ok('red_lead', 'POST', `/executions/${run.id}/start`);
        expect((await ok('red_tech', 'POST', `/executions/${run.id}/steps/${run.steps[0].id}`, { outcome: 'blocked', test_id: subTest.id })).steps[0].test_id).to.equal(subTest.id);
    });

    it('shows a step\'s template only to who may see it, and adds only templates the caller may see', async () => {

        const restricted = await testRow(context.knex, { technique_id: t1, data_classification: 'restricted' });
        const [copy] = await context.knex('test_templates').insert({ name: `Copy ${Crypto.randomBytes(3).toString('hex')}`, technique_ids: [t1], source: 'test', source_test_id: restricted.id }).returning('id');
        const [manual] = await context.knex('test_templates').insert({ name: `Manual ${Crypto.randomBytes(3).toString('hex')}`, technique_ids: [t2] }).returning('id');

        const path = await ok('red_lead', 'POST', '/attack-paths', { name: 'Templated', steps: [{ technique_id: t1, template_id: copy.id }, { technique_id: t2, template_id: manual.id }] }, 201);
        expect(path.steps.map((step: { template_id: string }) => step.template_id)).to.equal([copy.id, manual.id]);
        await refused('red_tech', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t1, template_id: copy.id }, 404);
        await refused('red_tech', 'PATCH', `/attack-paths/${path.id}/steps/${path.steps[1].id}`, { template_id: copy.id }, 404);
        expect((await ok('red_tech', 'PATCH', `/attack-paths/${path.id}/steps/${path.steps[1].id}`, { template_id: null })).steps[1].template_id).to.be.null();
        expect((await ok('red_tech', 'POST', `/attack-paths/${path.id}/steps`, { technique_id: t2, template_id: manual.id }, 201)).steps[2].template_id).to.equal(manual.id);
        expect((await ok('red_tech', 'DELETE', `/attack-paths/${path.id}/steps/${path.steps[1].id}`)).steps.map((step: { template_id: string }) => step.template_id)).to.equal([null, manual.id]);
        await ok('red_tech', 'PATCH', `/attack-paths/${path.id}/steps/${path.steps[0].id}`, { notes: 'kept' });

        const seen = await ok('viewer', 'GET', `/attack-paths/${path.id}`);
        expect(seen.steps.map((step: { template_id: string | null }) => step.template_id)).to.equal([null, manual.id]);
        const execution = await ok('red_lead', 'POST', `/attack-paths/${path.id}/executions`, {}, 201);
        expect(execution.steps[0].template_id).to.equal(copy.id);
        expect((await ok('blue_tech', 'GET', `/executions/${execution.id}`)).steps[0].template_id).to.be.null();

        // Started, recorded and completed without a body
        await ok('red_lead', 'POST', `/executions/${execution.id}/start`);
        for (const step of execution.steps) {
            await ok('red_lead', 'POST', `/executions/${execution.id}/steps/${step.id}`, { outcome: 'failed' });
        }

        expect(await ok('red_lead', 'POST', `/executions/${execution.id}/complete`)).to.include({ state: 'completed', notes: null });
    });

    it('aborts from pending or running for the leads only, and keeps executions readable when their path is deleted', async () => {

        const path = await newPath([t1, t2]);
        const pending = await ok('red_tech', 'POST', `/attack-paths/${path.id}/executions`, {}, 201);
        const running = await ok('red_tech', 'POST', `/attack-paths/${path.id}/executions`, {}, 201);
        await ok('red_tech', 'POST', `/executions/${running.id}/start`, {});

        for (const role of ['red_tech', 'blue_tech', 'viewer'] as const) {
            await refused(role, 'POST', `/executions/${pending.id}/abort`, {}, 403);
        }

        expect(await ok('blue_lead', 'POST', `/executions/${pending.id}/abort`, { reason: 'lab down' })).to.include({ state: 'aborted', abort_reason: 'lab down', started_at: null });
        expect(await ok('red_lead', 'POST', `/executions/${running.id}/abort`)).to.include({ state: 'aborted', abort_reason: null });
        await refused('admin', 'POST', `/executions/${running.id}/abort`, {}, 409, { code: 'invalid_state_transition' });
        await refused('admin', 'POST', `/executions/${Crypto.randomUUID()}/abort`, {}, 404);
        await refused('admin', 'POST', `/executions/${running.id}/abort`, { reason: 'x'.repeat(2001) }, 400, { fields: ['reason'] });

        expect((await ok('viewer', 'GET', `/attack-paths/${path.id}`)).execution_count).to.equal(2);
        expect((await ok('viewer', 'GET', `/attack-paths/${path.id}/executions?sort=state&order=asc`)).items.map((item: { id: string }) => item.id).sort()).to.equal([pending.id, running.id].sort());
        expect((await request('admin', 'DELETE', `/attack-paths/${path.id}`)).statusCode).to.equal(204);
        const kept = await ok('viewer', 'GET', `/executions/${running.id}`);
        expect(kept).to.include({ id: running.id, path_id: null, path_name: path.name, state: 'aborted' });
        expect(kept.steps.map((step: { technique_id: string }) => step.technique_id)).to.equal([t1, t2]);
        await refused('viewer', 'GET', `/attack-paths/${path.id}/executions`, undefined, 404);
        await refused('viewer', 'GET', `/executions/${Crypto.randomUUID()}`, undefined, 404);
    });

    it('applies the table in every state: each action succeeds exactly from the states it lists, else 409 writing nothing', async () => {

        const path = await newPath([t1]);
        const stored = async (id: string) => ({ execution: await context.knex('attack_path_executions').where('id', id).first(), steps: await context.knex('attack_path_execution_steps').where('execution_id', id) });
        const inState = async (state: string) => {

            const execution = await ok('admin', 'POST', `/attack-paths/${path.id}/executions`, {}, 201);
            if (state === 'aborted') {
                await ok('admin', 'POST', `/executions/${execution.id}/abort`, {});
            }
            else if (state !== 'pending') {
                await ok('admin', 'POST', `/executions/${execution.id}/start`, {});
                if (state === 'completed') {
                    await ok('admin', 'POST', `/executions/${execution.id}/steps/${execution.steps[0].id}`, { outcome: 'succeeded' });
                    await ok('admin', 'POST', `/executions/${execution.id}/complete`, {});
                }
            }

            return execution;
        };

        for (const state of ['pending', 'running', 'completed', 'aborted']) {
            for (const [action, rule] of Object.entries(executionLifecycle)) {
                const execution = await inState(state);
                if (action === 'complete' && state === 'running') {
                    await ok('admin', 'POST', `/executions/${execution.id}/steps/${execution.steps[0].id}`, { outcome: 'skipped' });
                }

                const url = action === 'record-step' ? `/executions/${execution.id}/steps/${execution.steps[0].id}` : `/executions/${execution.id}/${action}`;
                const previous = await stored(execution.id);
                const res = await request('admin', 'POST', url, action === 'record-step' ? { outcome: 'failed' } : {});
                if ((rule.from as readonly string[]).includes(state)) {
                    expect(res.statusCode, `${action} from ${state}`).to.equal(200);
                    expect(json(res).state).to.equal(rule.to === 'same' ? state : rule.to);
                }
                else {
                    expect(res.statusCode, `${action} from ${state}`).to.equal(409);
                    expect(json(res).code).to.equal('invalid_state_transition');
                    expect(await stored(execution.id)).to.equal(previous);
                }
            }
        }
    });

    it('declares the execution state machine as a table the routes read their roles from', () => {

        expect(Object.fromEntries(Object.entries(executionLifecycle).map(([action, rule]) => [action, [rule.from, rule.to]]))).to.equal({
            'start': [['pending'], 'running'],
            'record-step': [['running'], 'same'],
            'complete': [['running'], 'completed'],
            'abort': [['pending', 'running'], 'aborted']
        });

        // docs/attack-paths.md shows the same table
        const page = Fs.readFileSync(Path.join(__dirname, '..', '..', 'docs', 'attack-paths.md'), 'utf8');
        const short: Record<string, string> = { admin: 'A', red_lead: 'RL', blue_lead: 'BL', red_tech: 'RT', blue_tech: 'BT', viewer: 'V' };
        const roles = (set: readonly string[]) => (set.length === 5 && !set.includes('viewer') ? 'All except V' : set.map((role) => short[role]).join(', '));
        for (const [action, rule] of Object.entries(executionLifecycle)) {
            const to = rule.to === 'same' ? '(unchanged)' : `\`${rule.to}\``;
            expect(page).to.match(new RegExp(`\\| \`${action}\` \\| [^|]+ \\| ${rule.from.map((state) => `\`${state}\``).join(', ')} \\| ${to.replace(/[()]/g, '\\$&')} \\| ${roles(rule.roles)} \\|`));
        }

        const route = context.server.table().find((item) => item.method === 'post' && item.path === '/api/v1/executions/{id}/abort')!;
        expect([...(route.settings.auth as { access: { scope: { selection: string[] } }[] }).access[0]!.scope.selection].sort()).to.equal([...executionLifecycle.abort.roles].sort());
    });
});
