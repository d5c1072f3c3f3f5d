import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { systemActor, type Role } from '../../server/policy';

import { json, technique, testRow } from '../helpers/factories';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Test template routes', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    before(async () => {

        context = await init({ redis: false });
        await technique(context.knex);
    });

    after(async () => {

        await context.stop();
    });

    it('creates, reads, updates and deletes a template from scratch (RL, BL, A), readable by anyone', async () => {

        const payload = { name: 'Credential dump', description: 'd', objective: 'o', procedure: 'p', expected_outcome: 'e', expected_detection: 'EDR', technique_ids: ['T1059.001', 'T1003'], platforms: ['Windows'], tags: ['creds'], priority: 'high', tool: 'procdump', command: 'procdump -ma lsass.exe', cleanup_command: 'del *.dmp' };
        const res = await request('blue_lead', 'POST', '/test-templates', payload);
        expect(res.statusCode, res.payload).to.equal(201);
        const template = json(res);
        expect(template).to.equal({ ...payload, id: template.id, executor: null, input_arguments: {}, source: 'manual', source_ref: null, source_test_id: null, created_by: context.users.blue_lead.id, created_at: template.created_at, updated_at: template.updated_at });

        expect(json(await request('viewer', 'GET', `/test-templates/${template.id}`))).to.equal(template);
        expect(json(await request('red_lead', 'PATCH', `/test-templates/${template.id}`, { name: 'Renamed', platforms: ['Windows', 'Linux'] }))).to.include({ name: 'Renamed', platforms: ['Windows', 'Linux'] });
        for (const role of ['red_tech', 'blue_tech', 'viewer'] as const) {
            expect((await request(role, 'PATCH', `/test-templates/${template.id}`, { name: 'x' })).statusCode).to.equal(403);
            expect((await request(role, 'POST', '/test-templates', payload)).statusCode).to.equal(403);
            expect((await request(role, 'DELETE', `/test-templates/${template.id}`)).statusCode).to.equal(403);
        }

        expect((await request('admin', 'DELETE', `/test-templates/${template.id}`)).statusCode).to.equal(204);
        expect((await request('admin', 'DELETE', `/test-templates/${template.id}`)).statusCode).to.equal(404);
        expect((await request('viewer', 'GET', `/test-templates/${template.id}`)).statusCode).to.equal(404);
    });

    it('creates a template from an existing test, with overrides', async () => {

        const test = await testRow(context.knex, { state: 'validated', title: 'Kerberoast', platform: 'Windows', tool: 'Rubeus', command: 'Rubeus kerberoast', tags: ['ad'] });
        const template = json(await request('red_lead', 'POST', '/test-templates', { source_test_id: test.id, priority: 'critical' }));
        expect(template).to.include({ name: 'Kerberoast', technique_ids: [test.technique_id], platforms: ['Windows'], tool: 'Rubeus', command: 'Rubeus kerberoast', tags: ['ad'], priority: 'critical', source: 'test', source_test_id: test.id });
        expect((await request('red_lead', 'POST', '/test-templates', { source_test_id: Crypto.randomUUID() })).statusCode).to.equal(400);

    });

    it('copies no confidential or restricted test into a template, and hides a template whose source was classified since', async () => {

        // Issue 8: every role reads templates; a lead's copy of a restricted test handed its command to viewers
        for (const classification of ['confidential', 'restricted'] as const) {
            const classified = await testRow(context.knex, { data_classification: classification, command: 'secret command' });
            const refused = await request('admin', 'POST', '/test-templates', { source_test_id: classified.id });
            expect(refused.statusCode).to.equal(409);
            expect(json(refused)).to.include({ code: 'classified_source', message: `A template is readable by every role; a ${classification} test cannot be its source` });
        }

        expect(await context.knex('test_templates').where('command', 'secret command')).to.equal([]);

        const test = await testRow(context.knex, { command: 'later classified', red_assignee_id: context.users.red_tech.id });
        const template = json(await request('red_lead', 'POST', '/test-templates', { source_test_id: test.id }));
        await request('admin', 'PATCH', `/tests/${test.id}/classification`, { data_classification: 'restricted' });
        const listed = async (role: Role) => json(await request(role, 'GET', '/test-templates?limit=500')).items.some((item: { id: string }) => item.id === template.id);
        for (const role of ['viewer', 'blue_tech'] as const) {
            expect((await request(role, 'GET', `/test-templates/${template.id}`)).statusCode, role).to.equal(404);
            expect(await listed(role), role).to.be.false();
        }

        for (const role of ['red_tech', 'blue_lead', 'admin'] as const) {
            expect(json(await request(role, 'GET', `/test-templates/${template.id}`)).command, role).to.equal('later classified');
            expect(await listed(role), role).to.be.true();
        }

        // Tests made from it carry the classification with the copied command
        const [created] = json(await request('blue_lead', 'POST', '/tests/from-template', { template_ids: [template.id] })).items;
        expect(created).to.include({ command: 'later classified', data_classification: 'restricted' });
        expect((await request('viewer', 'GET', `/tests/${created.id}`)).statusCode).to.equal(404);
    });

    it('refuses bad input', async () => {

        expect(json(await request('admin', 'POST', '/test-templates', { name: 'x' })).fields).to.equal(['technique_ids']);
        expect(json(await request('admin', 'POST', '/test-templates', { technique_ids: ['T1003'] })).fields).to.equal(['name']);
        expect((await request('admin', 'POST', '/test-templates', { name: 'x', technique_ids: ['nope'] })).statusCode).to.equal(400);
        expect((await request('admin', 'POST', '/test-templates', { name: 'x', technique_ids: ['T1003'], source: 'atomic' })).statusCode).to.equal(400);
        expect((await request('admin', 'PATCH', `/test-templates/${Crypto.randomUUID()}`, { name: 'x' })).statusCode).to.equal(404);
        expect((await request('admin', 'GET', '/test-templates?sort=executor')).statusCode).to.equal(400);
    });

    it('imports Atomic Red Team atomics idempotently on the GUID, and lists them with filters', { timeout: 120_000 }, async () => {

        // A small copy of three technique folders of the real atomics keeps this fast; the whole set goes through the CLI test
        const source = Path.join(sharedDir, 'data', 'atomic-red-team', 'atomics');
        const dir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-atomics-'));
        for (const id of ['T1003.001', 'T1059.001', 'T1070.004']) {
            await Fs.promises.cp(Path.join(source, id), Path.join(dir, id), { recursive: true });
        }

        const first = await context.services.testTemplates.importAtomics(systemActor, dir);
        expect(first.techniques).to.equal(3);
        expect(first.imported).to.be.above(10);
        const count = async () => Number((await context.knex('test_templates').where('source', 'atomic').count('* as n').first())!.n);
        const total = await count();
        expect(total).to.be.at.least(first.imported);

        await context.knex('test_templates').where('source', 'atomic').whereRaw('technique_ids @> ?::text[]', [['T1059.001']]).update({ name: 'edited locally' });
        const second = await context.services.testTemplates.importAtomics(systemActor, dir);
        expect(second).to.equal(first);
        expect(await count()).to.equal(total);
        expect(await context.knex('test_templates').where({ source: 'atomic', name: 'edited locally' }).first()).to.not.exist();

        const list = json(await request('viewer', 'GET', '/test-templates?source=atomic&technique_id=T1059.001&limit=500&sort=name&order=asc'));
        expect(Number(list.total)).to.be.above(5);
        const item = list.items[0];
        expect(item).to.include({ source: 'atomic', technique_ids: ['T1059.001'], tags: ['atomic-red-team'] });
        expect(item.source_ref).to.match(/^[0-9a-f-]{36}$/);
        expect(item.executor.name).to.be.a.string();
        expect(Number(json(await request('viewer', 'GET', '/test-templates?source=atomic&platform=Windows&search=powershell&limit=1')).total)).to.be.above(0);
        expect(Number(json(await request('viewer', 'GET', '/test-templates?tag=atomic-red-team&limit=1')).total)).to.be.above(0);

        // A team can start from them at once
        const created = json(await request('red_lead', 'POST', '/tests/from-template', { template_ids: [item.id] }));
        expect(created.items[0]).to.include({ technique_id: 'T1059.001', template_id: item.id, command: item.command });
        await Fs.promises.rm(dir, { recursive: true, force: true });
    });
});
