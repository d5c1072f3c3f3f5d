import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { systemActor } from '../../server/policy';

import { testRow } from '../helpers/factories';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Techniques', () => {

    let context: TestContext;
    const get = (url: string, role: Parameters<TestContext['as']>[0] = 'viewer') => context.server.inject({ method: 'GET', url, auth: context.as(role) });

    before(async () => {

        context = await init({ redis: false });
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
        await context.services.attackImport.importD3fend(systemActor, Path.join(sharedDir, 'data', 'd3fend'));
    });

    after(async () => {

        await context.stop();
    });

    describe('GET /techniques', () => {

        it('lists active techniques with the list envelope, tactics, coverage and score', async () => {

            const res = await get('/api/v1/techniques?limit=5&tactic_id=TA0002&platform=Windows');
            expect(res.statusCode).to.equal(200);
            const body = JSON.parse(res.payload);
            expect(body).to.include({ limit: 5, offset: 0 });
            expect(Number(body.total)).to.be.at.least(2);
            for (const item of body.items) {
                expect(item.tactics.map((tactic: { id: string }) => tactic.id)).to.include('TA0002');
                expect(item.platforms).to.include('Windows');
                expect(item.revoked).to.be.false();
                expect(item).to.include(['coverage_status', 'score', 'needs_review', 'is_subtechnique']);
            }
        });

        it('pages through the shared list path: pages add up to the whole list, and a page past the end still knows the total', async () => {

            const whole = JSON.parse((await get('/api/v1/techniques?parent_id=T1059&limit=500')).payload);
            expect(whole.total).to.equal(whole.items.length);
            const first = JSON.parse((await get('/api/v1/techniques?parent_id=T1059&limit=2')).payload);
            const rest = JSON.parse((await get('/api/v1/techniques?parent_id=T1059&limit=500&offset=2')).payload);
            expect([...first.items, ...rest.items]).to.equal(whole.items);
            expect(first).to.include({ total: whole.total, limit: 2, offset: 0 });

            const past = JSON.parse((await get(`/api/v1/techniques?parent_id=T1059&offset=${whole.total + 5}`)).payload);
            expect(past).to.equal({ items: [], total: whole.total, limit: 50, offset: whole.total + 5 });
        });

        it('hides revoked and deprecated techniques unless asked, and filters sub-techniques and coverage', async () => {

            const hidden = JSON.parse((await get('/api/v1/techniques?search=T1002')).payload);
            expect(hidden.items.map((item: { mitre_id: string }) => item.mitre_id)).to.not.include('T1002');
            const shown = JSON.parse((await get('/api/v1/techniques?search=T1002&include_deprecated=true')).payload);
            expect(shown.items[0]).to.include({ mitre_id: 'T1002', revoked: true, revoked_by_id: 'T1560' });

            const parents = JSON.parse((await get('/api/v1/techniques?include_subtechniques=false&limit=500')).payload);
            expect(parents.items.every((item: { is_subtechnique: boolean }) => !item.is_subtechnique)).to.be.true();
            const subs = JSON.parse((await get('/api/v1/techniques?parent_id=T1059')).payload);
            expect(subs.items.every((item: { parent_id: string }) => item.parent_id === 'T1059')).to.be.true();
            expect(Number(subs.total)).to.be.at.least(2);

            const untested = JSON.parse((await get('/api/v1/techniques?coverage_status=untested&limit=3')).payload);
            expect(untested.items.every((item: { coverage_status: string }) => item.coverage_status === 'untested')).to.be.true();
        });

        it('ranks search results: id match first, then name, then description; wildcards are literal', async () => {

            const byId = JSON.parse((await get('/api/v1/techniques?search=T1059')).payload);
            expect(byId.items[0].mitre_id).to.equal('T1059');
            expect(byId.items.slice(1, 3).every((item: { mitre_id: string }) => item.mitre_id.startsWith('T1059.'))).to.be.true();

            const byName = JSON.parse((await get('/api/v1/techniques?search=powershell&limit=100')).payload);
            expect(byName.items[0]).to.include({ mitre_id: 'T1059.001', name: 'PowerShell' });
            expect(Number(byName.total)).to.be.above(1);

            const wildcard = JSON.parse((await get('/api/v1/techniques?search=%25%25%25_')).payload);
            expect(wildcard.total).to.equal(0);

            const sorted = JSON.parse((await get('/api/v1/techniques?search=command&sort=name&order=desc')).payload);
            const names = sorted.items.map((item: { name: string }) => item.name);
            expect(names).to.equal([...names].sort().reverse());
        });

        it('answers 400 to bad filters, sort fields, limits and over-long searches', async () => {

            for (const query of ['sort=description', 'sort=review_reason', 'limit=0', 'limit=501', 'tactic_id=TA2', 'coverage_status=great', `search=${'a'.repeat(201)}`, 'domain=pre-attack', 'parent_id=T1', 'color=red']) {
                const res = await get(`/api/v1/techniques?${query}`);
                expect(res.statusCode, query).to.equal(400);
            }
        });
    });

    describe('GET /techniques/{mitre_id}', () => {

        it('answers a technique with its tactics, sub-techniques, mitigations, data components, threat actors and latest tests', async () => {

            const res = await get('/api/v1/techniques/T1059');
            expect(res.statusCode).to.equal(200);
            const body = JSON.parse(res.payload);
            expect(body).to.include({ mitre_id: 'T1059', name: 'Command and Scripting Interpreter', is_subtechnique: false, parent: null, revoked_by: null });
            expect(body.tactics).to.equal([{ id: 'TA0002', shortname: 'execution', name: 'Execution' }]);
            expect(body.subtechniques.map((sub: { mitre_id: string }) => sub.mitre_id)).to.include('T1059.001');
            expect(body.threat_actors.map((actor: { mitre_id: string }) => actor.mitre_id)).to.include(['G0046', 'G0049']);
            expect(Number(body.mitigations.length)).to.be.above(0);
            expect(body.latest_validated_tests).to.be.an.array();

            const sub = JSON.parse((await get('/api/v1/techniques/T1059.001')).payload);
            expect(sub.parent).to.equal({ mitre_id: 'T1059', name: 'Command and Scripting Interpreter' });
            expect(Number(sub.data_components.length)).to.be.above(0);
        });

        it('answers a revoked technique with its successor, and 404 / 400 for unknown and malformed ids', async () => {

            const revoked = JSON.parse((await get('/api/v1/techniques/T1002')).payload);
            expect(revoked).to.include({ revoked: true, revoked_by_id: 'T1560' });
            expect(revoked.revoked_by).to.equal({ mitre_id: 'T1560', name: 'Archive Collected Data' });
            expect((await get('/api/v1/techniques/T9999.999')).statusCode).to.equal(404);
            expect((await get('/api/v1/techniques/DROP%20TABLE')).statusCode).to.equal(400);
        });
    });

    describe('GET /techniques/{mitre_id}/d3fend', () => {

        it('groups countermeasures by D3FEND tactic in display order, rolling sub-technique mappings up to a parent', async () => {

            const res = await get('/api/v1/techniques/T1003.001/d3fend');
            expect(res.statusCode).to.equal(200);
            const body = JSON.parse(res.payload);
            expect(body.technique_id).to.equal('T1003.001');
            expect(Number(body.total)).to.be.above(0);
            const order = ['Model', 'Harden', 'Detect', 'Isolate', 'Deceive', 'Evict', 'Restore'];
            const tactics = body.tactics.map((group: { tactic: string }) => group.tactic);
            expect(tactics).to.equal(order.filter((tactic) => tactics.includes(tactic)));
            const psa = body.tactics.flatMap((group: { countermeasures: { d3fend_id: string }[] }) => group.countermeasures).find((item: { d3fend_id: string }) => item.d3fend_id === 'D3-PSA');
            expect(psa.technique_ids).to.equal(['T1003.001']);
            expect(psa.inferences[0].via).to.be.a.string();

            const parent = JSON.parse((await get('/api/v1/techniques/T1003/d3fend')).payload);
            expect(Number(parent.total)).to.be.at.least(body.total);
            expect((await get('/api/v1/techniques/T9999/d3fend')).statusCode).to.equal(404);
        });
    });

    describe('POST, PATCH /techniques', () => {

        it('creates custom techniques with server-allocated X ids, and updates every field of them', async () => {

            const res = await context.server.inject({ method: 'POST', url: '/api/v1/techniques', auth: context.as('admin'), payload: { name: 'Abuse of our ERP', platforms: ['Windows'], tactic_ids: ['TA0002'], impact: 4 } });
            expect(res.statusCode).to.equal(201);
            const created = JSON.parse(res.payload);
            expect(created.mitre_id).to.match(/^X\d{4,}$/);
            expect(created).to.include({ is_custom: true, name: 'Abuse of our ERP', impact: 4, coverage_status: 'untested', created_by: context.users.admin.id });
            expect(created.tactics.map((tactic: { id: string }) => tactic.id)).to.equal(['TA0002']);

            const second = JSON.parse((await context.server.inject({ method: 'POST', url: '/api/v1/techniques', auth: context.as('admin'), payload: { name: 'Second', parent_id: created.mitre_id } })).payload);
            expect(Number(second.mitre_id.slice(1))).to.be.above(Number(created.mitre_id.slice(1)));
            expect(second).to.include({ is_subtechnique: true, parent_id: created.mitre_id });

            const patched = await context.server.inject({ method: 'PATCH', url: `/api/v1/techniques/${created.mitre_id}`, auth: context.as('admin'), payload: { name: 'Renamed', description: 'd', tactic_ids: ['TA0003', 'TA0004'], notes: 'n' } });
            expect(patched.statusCode).to.equal(200);
            expect(JSON.parse(patched.payload)).to.include({ name: 'Renamed', description: 'd', notes: 'n' });
            expect(JSON.parse(patched.payload).tactics.map((tactic: { id: string }) => tactic.id)).to.equal(['TA0003', 'TA0004']);

            const audit = await context.knex('audit_logs').where({ action: 'technique.create', entity_id: created.mitre_id });
            expect(audit).to.have.length(1);
        });

        it('updates only the organisation\'s fields of a MITRE technique (409 otherwise)', async () => {

            const ok = await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T1059.003', auth: context.as('admin'), payload: { impact: 5, notes: 'crown jewels' } });
            expect(ok.statusCode).to.equal(200);
            expect(JSON.parse(ok.payload)).to.include({ impact: 5, notes: 'crown jewels', name: 'Windows Command Shell' });

            const refused = await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T1059.003', auth: context.as('admin'), payload: { name: 'Mine now' } });
            expect(refused.statusCode).to.equal(409);
            expect(JSON.parse(refused.payload).code).to.equal('mitre_managed');
        });

        it('answers 400 to bad payloads, unknown tactics or parents, and 403 to non-admins', async () => {

            for (const payload of [{}, { name: '' }, { name: 'x', impact: 9 }, { name: 'x', tactic_ids: ['nope'] }, { name: 'x', mitre_id: 'T1000' }, { name: 'x', tactic_ids: ['TA9999'] }, { name: 'x', parent_id: 'T9998' }, { name: 'x', parent_id: 'T1059.001' }]) {
                const res = await context.server.inject({ method: 'POST', url: '/api/v1/techniques', auth: context.as('admin'), payload });
                expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
            }

            expect((await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T9999', auth: context.as('admin'), payload: { notes: 'x' } })).statusCode).to.equal(404);
            expect((await context.server.inject({ method: 'POST', url: '/api/v1/techniques', auth: context.as('red_lead'), payload: { name: 'x' } })).statusCode).to.equal(403);
        });
    });

    describe('PATCH /techniques/{mitre_id}/review', () => {

        it('marks a technique for review with a reason, and clears it; leads only', async () => {

            const res = await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T1059.001/review', auth: context.as('blue_lead'), payload: { needs_review: true, reason: 'new EDR policy' } });
            expect(res.statusCode).to.equal(200);
            expect(JSON.parse(res.payload)).to.include({ needs_review: true, review_reason: 'new EDR policy' });
            const listed = JSON.parse((await get('/api/v1/techniques?needs_review=true&search=T1059.001')).payload);
            expect(listed.items.map((item: { mitre_id: string }) => item.mitre_id)).to.include('T1059.001');

            const cleared = await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T1059.001/review', auth: context.as('red_lead'), payload: { needs_review: false } });
            expect(JSON.parse(cleared.payload)).to.include({ needs_review: false, review_reason: null });

            expect((await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T1059.001/review', auth: context.as('admin'), payload: { needs_review: true } })).statusCode).to.equal(400);
            expect((await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T1059.001/review', auth: context.as('red_tech'), payload: { needs_review: false } })).statusCode).to.equal(403);
            expect((await context.server.inject({ method: 'PATCH', url: '/api/v1/techniques/T9999/review', auth: context.as('admin'), payload: { needs_review: false } })).statusCode).to.equal(404);
        });
    });

    describe('Coverage', () => {

        it('follows the latest validated test, clears needs_review, emits coverage.changed, and shows the score', async () => {

            const created = JSON.parse((await context.server.inject({ method: 'POST', url: '/api/v1/techniques', auth: context.as('admin'), payload: { name: 'Coverage probe', tactic_ids: ['TA0002'] } })).payload);
            const id = created.mitre_id;
            await context.server.inject({ method: 'PATCH', url: `/api/v1/techniques/${id}/review`, auth: context.as('admin'), payload: { needs_review: true, reason: 'stale' } });

            const recompute = () => context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [id]));
            await testRow(context.knex, { technique_id: id, state: 'validated', detection_outcome: 'logged', validated_at: new Date() } as never);
            await recompute();
            let body = JSON.parse((await get(`/api/v1/techniques/${id}`)).payload);
            expect(body).to.include({ coverage_status: 'partial', score: 40, needs_review: false });

            await testRow(context.knex, { technique_id: id, state: 'validated', detection_outcome: 'prevented', validated_at: new Date(Date.now() + 1000) } as never);
            await testRow(context.knex, { technique_id: id, state: 'in_review', detection_outcome: 'not_detected' } as never);
            await recompute();
            body = JSON.parse((await get(`/api/v1/techniques/${id}`)).payload);
            expect(body).to.include({ coverage_status: 'covered', score: 100 });
            expect(body.latest_validated_tests.map((test: { detection_outcome: string }) => test.detection_outcome)).to.equal(['prevented', 'logged']);

            const events = await context.knex('domain_events').where({ type: 'coverage.changed', entity_id: id }).orderBy('created_at');
            expect(events.map((event: { payload: { from: string; to: string } }) => [event.payload.from, event.payload.to])).to.equal([['untested', 'partial'], ['partial', 'covered']]);

            await recompute();
            expect(await context.knex('domain_events').where({ type: 'coverage.changed', entity_id: id })).to.have.length(2);
        });
    });
});
