import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { lessonCampaignKey } from '../../migrations/20261207110000_lesson_campaign_key';
import type { Role } from '../../server/policy';

import { json, technique, testRow, uniqueTechnique } from '../helpers/factories';
import { callsAs, written } from '../helpers/calls';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Knowledge routes', () => {

    let context: TestContext;
    let t1: string;
    let t2: string;

    const { request, ok, refused } = callsAs(() => context);

    // The rows of this script's users (the database is shared by the whole run)
    const counts = () => written(context, { playbooks: 'created_by', playbook_versions: 'author_id', lessons: 'created_by' });

    // Markdown as a user writes it: leading spaces, trailing new lines, HTML that must never be rendered nor escaped
    const markdown = '  # Initial access\n\n<script>alert(1)</script>\n\n* step **one**\n* `whoami /all`\n\n';

    before(async () => {

        context = await init({ redis: false });
        t1 = await technique(context.knex, 'T1059.001');
        t2 = await uniqueTechnique(context.knex);
    });

    after(async () => {

        await context.stop();
    });

    it('creates a playbook as version 1, writes a whole immutable version on every update, and restores by writing a new one', async () => {

        const tag = `tag-${Crypto.randomBytes(4).toString('hex')}`;
        const created = await ok('red_lead', 'POST', '/knowledge/playbooks', { title: 'Phishing response', type: 'response', technique_ids: [t1], body: markdown, tags: [tag] }, 201);
        expect(created).to.equal({
            id: created.id, title: 'Phishing response', type: 'response', technique_ids: [t1], body: markdown, tags: [tag], version: 1,
            created_by: context.users.red_lead.id, updated_by: context.users.red_lead.id, created_at: created.created_at, updated_at: created.updated_at,
            versions: [{ version: 1, title: 'Phishing response', author_id: context.users.red_lead.id, restored_from: null, created_at: created.versions[0].created_at }]
        });

        const v2 = await ok('blue_lead', 'PATCH', `/knowledge/playbooks/${created.id}`, { body: 'Rewritten', technique_ids: [t1, t2], version: 1 });
        expect(v2).to.include({ version: 2, body: 'Rewritten', technique_ids: [t1, t2], title: 'Phishing response', updated_by: context.users.blue_lead.id });
        const v3 = await ok('admin', 'PATCH', `/knowledge/playbooks/${created.id}`, { title: 'Phishing playbook', type: 'detection' });
        expect(v3.versions.map((item: { version: number }) => item.version)).to.equal([3, 2, 1]);

        const restored = await ok('red_lead', 'POST', `/knowledge/playbooks/${created.id}/restore/1`, { version: 3 });
        expect(restored).to.include({ version: 4, title: 'Phishing response', type: 'response', technique_ids: [t1], body: markdown, tags: [tag] });
        expect(restored.versions[0]).to.include({ version: 4, restored_from: 1, author_id: context.users.red_lead.id });

        const versions = await ok('viewer', 'GET', `/knowledge/playbooks/${created.id}/versions`);
        expect(versions.total).to.equal(4);
        expect(versions.items.map((item: Record<string, unknown>) => [item.version, item.title, item.type, item.body, item.technique_ids, item.restored_from])).to.equal([
            [4, 'Phishing response', 'response', markdown, [t1], 1],
            [3, 'Phishing playbook', 'detection', 'Rewritten', [t1, t2], null],
            [2, 'Phishing response', 'response', 'Rewritten', [t1, t2], null],
            [1, 'Phishing response', 'response', markdown, [t1], null]
        ]);
        expect((await ok('viewer', 'GET', `/knowledge/playbooks/${created.id}/versions?limit=1&offset=3`)).items[0].version).to.equal(1);
        expect(await ok('viewer', 'GET', `/knowledge/playbooks/${created.id}`)).to.equal(restored);

        // History is immutable in the database itself
        const error = await context.knex('playbook_versions').where({ playbook_id: created.id, version: 1 }).update({ body: 'forged' }).catch((err: Error) => err);
        expect(error).to.be.an.error(/immutable/);

        // The Markdown is stored and answered exactly as written, never rendered
        expect((await context.knex('playbooks').where('id', created.id).first()).body).to.equal(markdown);

        const listed = await ok('viewer', 'GET', `/knowledge/playbooks?tag=${tag}&type=response&technique_id=${t1}&search=phishing`);
        expect(listed.items.map((item: { id: string }) => item.id)).to.equal([created.id]);
        expect((await ok('viewer', 'GET', `/knowledge/playbooks?tag=${tag}&type=hunting`)).total).to.equal(0);
        expect((await ok('viewer', 'GET', `/knowledge/playbooks?type=response&search=${encodeURIComponent('whoami /all')}&limit=500`)).items.map((item: { id: string }) => item.id)).to.include(created.id);
        expect((await ok('viewer', 'GET', `/knowledge/playbooks?tag=${tag}&technique_id=${t2}`)).total).to.equal(0);

        for (const role of ['red_tech', 'blue_tech', 'viewer'] as const) {
            await refused(role, 'POST', '/knowledge/playbooks', { title: 'x', type: 'attack' }, 403);
            await refused(role, 'PATCH', `/knowledge/playbooks/${created.id}`, { title: 'x' }, 403);
            await refused(role, 'POST', `/knowledge/playbooks/${created.id}/restore/1`, {}, 403);
            await refused(role, 'DELETE', `/knowledge/playbooks/${created.id}`, undefined, 403);
        }

        expect((await request('blue_lead', 'DELETE', `/knowledge/playbooks/${created.id}`)).statusCode).to.equal(204);
        await refused('viewer', 'GET', `/knowledge/playbooks/${created.id}`, undefined, 404);
        await refused('viewer', 'GET', `/knowledge/playbooks/${created.id}/versions`, undefined, 404);
        expect(await context.knex('playbook_versions').where('playbook_id', created.id)).to.equal([]);
        expect(await context.knex('audit_logs').where('entity_id', created.id).pluck('action')).to.include(['playbook.create', 'playbook.update', 'playbook.restore', 'playbook.delete']);
    });

    it('serialises concurrent updates into consecutive versions, and refuses a stale version with 409 writing nothing', async () => {

        const created = await ok('admin', 'POST', '/knowledge/playbooks', { title: 'Concurrent', type: 'hunting' }, 201);
        expect(created).to.include({ body: '', technique_ids: [], tags: [] });
        const results = await Promise.all(Array.from({ length: 6 }, (_, index) => request(index % 2 ? 'red_lead' : 'blue_lead', 'PATCH', `/knowledge/playbooks/${created.id}`, { body: `edit ${index}` })));
        expect(results.map((res) => res.statusCode)).to.equal(results.map(() => 200));
        const rows = await context.knex('playbook_versions').where('playbook_id', created.id).orderBy('version');
        expect(rows.map((row) => row.version)).to.equal([1, 2, 3, 4, 5, 6, 7]);
        const latest = await ok('viewer', 'GET', `/knowledge/playbooks/${created.id}`);
        expect(latest.version).to.equal(7);
        expect(latest.body).to.equal(rows[6].body);

        // Two clients that both edited version 7: the first wins, the second is told to reload
        const both = await Promise.all([1, 2].map((index) => request('admin', 'PATCH', `/knowledge/playbooks/${created.id}`, { body: `from client ${index}`, version: 7 })));
        expect(both.map((res) => res.statusCode).sort()).to.equal([200, 409]);
        const conflict = json(both.find((res) => res.statusCode === 409)!);
        expect(conflict).to.include({ code: 'stale_version' });
        expect(conflict.message).to.contain('version 8');

        const initial = await counts();
        await refused('admin', 'PATCH', `/knowledge/playbooks/${created.id}`, { body: 'late', version: 3 }, 409, { code: 'stale_version' });
        await refused('admin', 'POST', `/knowledge/playbooks/${created.id}/restore/1`, { version: 2 }, 409, { code: 'stale_version' });
        expect(await counts()).to.equal(initial);
    });

    it('lists the 50 newest versions in a playbook\'s detail, and all of them in /versions', async () => {

        const created = await ok('admin', 'POST', '/knowledge/playbooks', { title: 'Long history', type: 'remediation' }, 201);
        await context.knex('playbook_versions').insert(Array.from({ length: 59 }, (_, index) => ({ playbook_id: created.id, version: index + 2, title: `Long history ${index + 2}`, type: 'remediation', technique_ids: [], body: '', tags: [] })));
        await context.knex('playbooks').where('id', created.id).update({ version: 60 });
        const detail = await ok('viewer', 'GET', `/knowledge/playbooks/${created.id}`);
        expect(detail.versions.length).to.equal(50);
        expect([detail.versions[0].version, detail.versions[49].version]).to.equal([60, 11]);
        const all = await ok('viewer', 'GET', `/knowledge/playbooks/${created.id}/versions?limit=500&sort=version&order=asc`);
        expect(all.items.map((item: { version: number }) => item.version)).to.equal(Array.from({ length: 60 }, (_, index) => index + 1));
        expect(all.total).to.equal(60);
    });

    it('refuses bad playbook input naming the field and unknown ids, writing nothing', async () => {

        const created = await ok('admin', 'POST', '/knowledge/playbooks', { title: 'Bad input', type: 'attack' }, 201);
        const initial = await counts();
        await refused('red_lead', 'POST', '/knowledge/playbooks', { type: 'attack' }, 400, { fields: ['title'] });
        await refused('red_lead', 'POST', '/knowledge/playbooks', { title: 'x', type: 'poem' }, 400, { fields: ['type'] });
        await refused('red_lead', 'POST', '/knowledge/playbooks', { title: 'x', type: 'attack', technique_ids: ['T1'] }, 400, { fields: ['technique_ids.0'] });
        await refused('red_lead', 'POST', '/knowledge/playbooks', { title: 'x', type: 'attack', technique_ids: ['T9999.998'] }, 400, { code: 'unknown_technique', fields: ['technique_ids'] });
        await refused('red_lead', 'POST', '/knowledge/playbooks', { title: 'x', type: 'attack', version: 3 }, 400, { fields: ['version'] });
        await refused('red_lead', 'POST', '/knowledge/playbooks', { title: 'x', type: 'attack', body: 'x'.repeat(200_001) }, 400, { fields: ['body'] });
        await refused('red_lead', 'PATCH', `/knowledge/playbooks/${created.id}`, { version: 1 }, 400, { fields: ['title', 'type', 'technique_ids', 'body', 'tags'] });
        await refused('red_lead', 'PATCH', `/knowledge/playbooks/${created.id}`, { technique_ids: ['T9999.998'] }, 400, { code: 'unknown_technique' });
        await refused('red_lead', 'PATCH', `/knowledge/playbooks/${created.id}`, { created_by: context.users.red_lead.id }, 400, { fields: ['created_by'] });
        await refused('red_lead', 'PATCH', `/knowledge/playbooks/${Crypto.randomUUID()}`, { title: 'x' }, 404);
        await refused('red_lead', 'POST', `/knowledge/playbooks/${created.id}/restore/9`, {}, 404);
        await refused('red_lead', 'POST', `/knowledge/playbooks/${created.id}/restore/0`, {}, 400, { fields: ['version'] });
        await refused('red_lead', 'POST', `/knowledge/playbooks/${Crypto.randomUUID()}/restore/1`, {}, 404);
        await refused('red_lead', 'DELETE', `/knowledge/playbooks/${Crypto.randomUUID()}`, undefined, 404);
        await refused('viewer', 'GET', '/knowledge/playbooks?type=poem', undefined, 400, { fields: ['type'] });
        await refused('viewer', 'GET', '/knowledge/playbooks?sort=body', undefined, 400, { fields: ['sort'] });
        await refused('viewer', 'GET', `/knowledge/playbooks/${created.id}/versions?sort=title`, undefined, 400, { fields: ['sort'] });
        expect(await counts()).to.equal(initial);

        // A restore without a body is a plain restore
        expect((await ok('red_lead', 'POST', `/knowledge/playbooks/${created.id}/restore/1`)).version).to.equal(2);
    });

    it('manages lessons learned with the filters of the reference plus campaign, status and test', async () => {

        const campaignId = (await ok('red_lead', 'POST', '/campaigns', { name: `Lessons campaign ${Crypto.randomBytes(4).toString('hex')}` }, 201)).id;
        const test = await testRow(context.knex, { technique_id: t2 });
        const created = await ok('blue_lead', 'POST', '/knowledge/lessons', { title: 'EDR blind spot', severity: 'high', technique_id: t2, campaign_id: campaignId, test_id: test.id, body: markdown }, 201);
        expect(created).to.equal({
            id: created.id, title: 'EDR blind spot', severity: 'high', status: 'open', technique_id: t2, campaign_id: campaignId, test_id: test.id, body: markdown,
            created_by: context.users.blue_lead.id, created_at: created.created_at, updated_at: created.updated_at
        });
        const other = await ok('red_lead', 'POST', '/knowledge/lessons', { title: 'Slow triage', severity: 'low', campaign_id: campaignId }, 201);
        expect(other).to.include({ technique_id: null, test_id: null, body: '', status: 'open' });

        const ids = async (query: string) => (await ok('viewer', 'GET', `/knowledge/lessons?${query}`)).items.map((item: { id: string }) => item.id);
        expect(await ids(`campaign_id=${campaignId}`)).to.equal([other.id, created.id]);
        expect(await ids(`campaign_id=${campaignId}&sort=title&order=asc`)).to.equal([created.id, other.id]);
        expect(await ids(`campaign_id=${campaignId}&severity=high`)).to.equal([created.id]);
        expect(await ids(`technique_id=${t2}&campaign_id=${campaignId}`)).to.equal([created.id]);
        expect(await ids(`test_id=${test.id}`)).to.equal([created.id]);
        expect(await ids(`campaign_id=${campaignId}&search=triage`)).to.equal([other.id]);
        expect(await ids(`campaign_id=${campaignId}&status=resolved`)).to.equal([]);

        const updated = await ok('admin', 'PATCH', `/knowledge/lessons/${created.id}`, { status: 'resolved', technique_id: null, body: 'Fixed by a new rule' });
        expect(updated).to.include({ status: 'resolved', technique_id: null, body: 'Fixed by a new rule', severity: 'high' });
        expect(await ids(`campaign_id=${campaignId}&status=resolved`)).to.equal([created.id]);
        expect(await ok('red_tech', 'GET', `/knowledge/lessons/${created.id}`)).to.equal(updated);

        for (const role of ['red_tech', 'blue_tech', 'viewer'] as const) {
            await refused(role, 'POST', '/knowledge/lessons', { title: 'x', severity: 'low' }, 403);
            await refused(role, 'PATCH', `/knowledge/lessons/${created.id}`, { title: 'x' }, 403);
            await refused(role, 'DELETE', `/knowledge/lessons/${created.id}`, undefined, 403);
        }

        expect((await request('red_lead', 'DELETE', `/knowledge/lessons/${other.id}`)).statusCode).to.equal(204);
        await refused('viewer', 'GET', `/knowledge/lessons/${other.id}`, undefined, 404);
        expect(await context.knex('audit_logs').where('entity_id', created.id).pluck('action')).to.include(['lesson.create', 'lesson.update']);
    });

    it('refuses bad lesson input naming the field, unknown and invisible ids, writing nothing', async () => {

        const lesson = await ok('admin', 'POST', '/knowledge/lessons', { title: 'Lesson', severity: 'medium' }, 201);
        const restricted = await testRow(context.knex, { technique_id: t1, data_classification: 'restricted' });
        const initial = await counts();
        await refused('red_lead', 'POST', '/knowledge/lessons', { title: 'x' }, 400, { fields: ['severity'] });
        await refused('red_lead', 'POST', '/knowledge/lessons', { title: 'x', severity: 'severe' }, 400, { fields: ['severity'] });
        await refused('red_lead', 'POST', '/knowledge/lessons', { title: 'x', severity: 'low', status: 'done' }, 400, { fields: ['status'] });
        await refused('red_lead', 'POST', '/knowledge/lessons', { title: 'x', severity: 'low', campaign_id: 'c1' }, 400, { fields: ['campaign_id'] });
        await refused('red_lead', 'POST', '/knowledge/lessons', { title: 'x', severity: 'low', technique_id: 'T9999.997' }, 400, { code: 'unknown_technique', fields: ['technique_id'] });
        await refused('red_lead', 'POST', '/knowledge/lessons', { title: 'x', severity: 'low', campaign_id: Crypto.randomUUID() }, 400, { code: 'unknown_campaign', fields: ['campaign_id'] });
        await refused('red_lead', 'PATCH', `/knowledge/lessons/${lesson.id}`, { campaign_id: Crypto.randomUUID() }, 400, { code: 'unknown_campaign', fields: ['campaign_id'] });
        await refused('red_lead', 'POST', '/knowledge/lessons', { title: 'x', severity: 'low', test_id: Crypto.randomUUID() }, 404);
        await refused('red_lead', 'PATCH', `/knowledge/lessons/${lesson.id}`, {}, 400);
        await refused('red_lead', 'PATCH', `/knowledge/lessons/${lesson.id}`, { test_id: Crypto.randomUUID() }, 404);
        await refused('red_lead', 'PATCH', `/knowledge/lessons/${Crypto.randomUUID()}`, { title: 'y' }, 404);
        await refused('red_lead', 'DELETE', `/knowledge/lessons/${Crypto.randomUUID()}`, undefined, 404);
        await refused('viewer', 'GET', '/knowledge/lessons?severity=severe', undefined, 400, { fields: ['severity'] });
        await refused('viewer', 'GET', '/knowledge/lessons?campaign_id=1', undefined, 400, { fields: ['campaign_id'] });
        await refused('viewer', 'GET', `/knowledge/lessons/${Crypto.randomUUID()}`, undefined, 404);
        expect(await counts()).to.equal(initial);

        // A lesson drawn from a restricted test is as hidden as the test
        const hidden = await ok('red_lead', 'POST', '/knowledge/lessons', { title: 'About a restricted test', severity: 'critical', test_id: restricted.id }, 201);
        for (const role of ['viewer', 'red_tech', 'blue_tech'] as const) {
            await refused(role, 'GET', `/knowledge/lessons/${hidden.id}`, undefined, 404);
            expect((await ok(role, 'GET', `/knowledge/lessons?test_id=${restricted.id}`)).total).to.equal(0);
        }

        expect((await ok('blue_lead', 'GET', `/knowledge/lessons?test_id=${restricted.id}`)).items.map((item: { id: string }) => item.id)).to.equal([hidden.id]);
    });

    it('answers stats: playbooks by type, lessons by severity as the caller may see them, techniques without a playbook', async () => {

        const stats = async (role: Role) => await ok(role, 'GET', '/knowledge/stats');
        const lonely = await uniqueTechnique(context.knex);
        const start = await stats('admin');
        expect(Object.keys(start.playbooks_by_type)).to.equal(['attack', 'detection', 'response', 'hunting', 'remediation']);
        expect(Object.keys(start.lessons_by_severity)).to.equal(['low', 'medium', 'high', 'critical']);
        expect(start.techniques_without_playbook.items.length).to.equal(Math.min(100, start.techniques_without_playbook.total));
        const sorted = start.techniques_without_playbook.items.map((item: { mitre_id: string }) => item.mitre_id);
        expect(sorted).to.equal([...sorted].sort());

        await ok('admin', 'POST', '/knowledge/playbooks', { title: 'Hunt', type: 'hunting', technique_ids: [lonely] }, 201);
        await ok('admin', 'POST', '/knowledge/playbooks', { title: 'Detect', type: 'detection', technique_ids: [lonely] }, 201);
        const restricted = await testRow(context.knex, { technique_id: t1, data_classification: 'restricted' });
        await ok('admin', 'POST', '/knowledge/lessons', { title: 'Visible', severity: 'low' }, 201);
        await ok('admin', 'POST', '/knowledge/lessons', { title: 'Hidden', severity: 'critical', test_id: restricted.id }, 201);

        const admin = await stats('admin');
        expect(admin.playbooks_by_type).to.equal({ ...start.playbooks_by_type, hunting: start.playbooks_by_type.hunting + 1, detection: start.playbooks_by_type.detection + 1 });
        expect(admin.lessons_by_severity).to.equal({ ...start.lessons_by_severity, low: start.lessons_by_severity.low + 1, critical: start.lessons_by_severity.critical + 1 });
        expect(admin.techniques_without_playbook.total).to.equal(start.techniques_without_playbook.total - 1);

        // The viewer's critical count leaves out the lesson of the restricted test
        const viewer = await stats('viewer');
        const hidden = await context.knex('lessons').join('tests', 'tests.id', 'lessons.test_id').where('lessons.severity', 'critical').whereIn('tests.data_classification', ['restricted', 'confidential']).count('* as count').first();
        expect(Number(hidden!.count)).to.be.at.least(1);
        expect(viewer.lessons_by_severity.critical).to.equal(admin.lessons_by_severity.critical - Number(hidden!.count));
        await refused('viewer', 'GET', '/knowledge/stats?type=attack', undefined, 400);
    });

    it('the migration sets a lesson\'s campaign id that names nothing to null, with an audit row saying which, then adds the foreign key', async () => {

        const orphan = Crypto.randomUUID();
        await context.knex.transaction(async (trx) => {

            await trx.raw('alter table lessons drop constraint lessons_campaign_id_foreign');
            const [lesson] = await trx('lessons').insert({ title: 'Orphaned lesson', severity: 'low', campaign_id: orphan }).returning('id');
            await lessonCampaignKey(trx);
            expect(await trx('lessons').where('id', lesson.id).first('campaign_id')).to.equal({ campaign_id: null });
            const [audit] = await trx('audit_logs').where({ entity_type: 'lesson', entity_id: lesson.id });
            expect(audit).to.include({ action: 'lesson.campaign_unlinked', actor_role: 'system', actor_id: null, outcome: 'success' });
            expect(audit.details.campaign_id).to.equal(orphan);
            await expect(trx('lessons').where('id', lesson.id).update({ campaign_id: orphan })).to.reject(/lessons_campaign_id_foreign/);
            await trx.rollback();
        }).catch((err: Error) => {

            expect(err).to.be.undefined();      // rollback() rejects with undefined
        });

        expect(await context.knex('lessons').where('campaign_id', orphan).first()).to.not.exist();
    });
});
