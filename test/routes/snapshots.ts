import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import type { Test } from '../../server/models';
import { systemActor, type Role } from '../../server/policy';
import { dailySnapshot } from '../../worker/jobs/snapshots';

import { json, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Snapshot routes', () => {

    let context: TestContext;
    const request = async (role: Role, method: string, url: string, payload?: object) => await context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });
    const count = async () => Number((await context.knex('posture_snapshots').count('* as n').first())!.n);

    const validate = async (techniqueId: string, outcome: string) => {

        const test = await testRow(context.knex, { technique_id: techniqueId, state: 'in_review', detections: [{ tool: 'EDR', outcome, detected_at: new Date().toISOString() }], detection_outcome: outcome } as Partial<Test>);
        expect((await request('red_lead', 'POST', `/tests/${test.id}/validate-red`, { approved: true })).statusCode).to.equal(200);
        expect(json(await request('blue_lead', 'POST', `/tests/${test.id}/validate-blue`, { approved: true }))).to.include({ state: 'validated' });
    };

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('compares two snapshots across a real change of coverage: improved, regressed and unchanged with their states', async () => {

        const up = await uniqueTechnique(context.knex);
        const down = await uniqueTechnique(context.knex);
        const same = await uniqueTechnique(context.knex);
        await validate(down, 'alerted');
        await validate(same, 'logged');

        const a = json(await request('red_lead', 'POST', '/snapshots', { note: 'before the exercise' }));
        expect(a).to.include({ kind: 'manual', note: 'before the exercise', created_by: context.users.red_lead.id });

        await validate(up, 'prevented');
        await validate(down, 'not_detected');                  // the latest validated test decides: covered -> not_covered
        const b = json(await request('admin', 'POST', '/dashboard/posture-snapshot', {}));

        const diff = json(await request('viewer', 'GET', `/snapshots/compare?a=${a.id}&b=${b.id}`));
        expect(diff.a).to.equal({ id: a.id, taken_at: a.taken_at });
        expect(diff.b).to.equal({ id: b.id, taken_at: b.taken_at });
        const find = (list: Record<string, any>[], id: string) => list.find((item) => item.technique_id === id);
        expect(find(diff.improved, up)).to.equal({ technique_id: up, name: `Technique ${up}`, is_subtechnique: false, from: { coverage_status: 'untested', score: null }, to: { coverage_status: 'covered', score: 100 } });
        expect(find(diff.regressed, down)).to.equal({ technique_id: down, name: `Technique ${down}`, is_subtechnique: false, from: { coverage_status: 'covered', score: 90 }, to: { coverage_status: 'not_covered', score: 0 } });
        expect(find(diff.unchanged, same)).to.equal({ technique_id: same, name: `Technique ${same}`, is_subtechnique: false, from: { coverage_status: 'partial', score: 40 }, to: { coverage_status: 'partial', score: 40 } });
        expect(diff.counts).to.equal({ improved: diff.improved.length, regressed: diff.regressed.length, unchanged: diff.unchanged.length, added: diff.added.length, removed: diff.removed.length });
        expect(find(diff.added, up)).to.not.exist();

        // The other way round, the improvement is a regression
        const back = json(await request('viewer', 'GET', `/snapshots/compare?a=${b.id}&b=${a.id}`));
        expect(find(back.regressed, up)!).to.include({ from: { coverage_status: 'covered', score: 100 }, to: { coverage_status: 'untested', score: null } });
        expect(find(back.improved, down)).to.exist();

        // A technique that appeared between them (an import) is added
        const fresh = await uniqueTechnique(context.knex);
        const c = json(await request('admin', 'POST', '/snapshots'));
        expect(find(json(await request('viewer', 'GET', `/snapshots/compare?a=${b.id}&b=${c.id}`)).added, fresh)).to.equal({ technique_id: fresh, name: `Technique ${fresh}`, is_subtechnique: false, from: null, to: { coverage_status: 'untested', score: null } });

        // The detail holds every technique's state; the summary agrees with the rows
        const detail = json(await request('viewer', 'GET', `/snapshots/${b.id}`));
        expect(detail.techniques.find((row: { technique_id: string }) => row.technique_id === up)).to.include({ coverage_status: 'covered', score: 100, own_coverage_status: 'covered', needs_review: false, domain: 'enterprise-attack' });
        const top = detail.techniques.filter((row: { domain: string; is_subtechnique: boolean }) => row.domain === 'enterprise-attack' && !row.is_subtechnique);
        expect(detail.summary['enterprise-attack'].techniques).to.equal(top.length);
        expect(detail.summary['enterprise-attack'].by_status.covered).to.equal(top.filter((row: { coverage_status: string }) => row.coverage_status === 'covered').length);
        const mobile = json(await request('viewer', 'GET', `/snapshots/${b.id}?domain=mobile-attack`));
        expect(mobile.techniques.every((row: { domain: string }) => row.domain === 'mobile-attack')).to.be.true();

        // Evolution: oldest first, the three snapshots in order, with their summaries
        const evolution = json(await request('viewer', 'GET', `/snapshots/evolution?from=${encodeURIComponent(a.taken_at)}`));
        expect(evolution.points.map((point: { snapshot_id: string }) => point.snapshot_id).filter((id: string) => [a.id, b.id, c.id].includes(id))).to.equal([a.id, b.id, c.id]);
        const point = evolution.points.find((item: { snapshot_id: string }) => item.snapshot_id === b.id);
        expect(point).to.equal({ snapshot_id: b.id, taken_at: b.taken_at, kind: 'manual', ...b.summary['enterprise-attack'] });
        const until = json(await request('viewer', 'GET', `/snapshots/evolution?from=${encodeURIComponent(a.taken_at)}&to=${encodeURIComponent(b.taken_at)}`));
        expect(until.points.map((item: { snapshot_id: string }) => item.snapshot_id)).to.not.include([b.id, c.id]);

        // The list, newest first, filtered
        const list = json(await request('viewer', 'GET', `/snapshots?from=${encodeURIComponent(a.taken_at)}&kind=manual&limit=500`));
        expect(list.items.map((item: { id: string }) => item.id).filter((id: string) => [a.id, b.id, c.id].includes(id))).to.equal([c.id, b.id, a.id]);
        expect(list.total).to.equal(list.items.length);
        expect(json(await request('viewer', 'GET', `/snapshots?from=${encodeURIComponent(a.taken_at)}&kind=scheduled`)).items.map((item: { id: string }) => item.id)).to.not.include(a.id);
    });

    it('answers 404 for unknown snapshots and 400 for bad ids and queries, writing nothing', async () => {

        const a = json(await request('admin', 'POST', '/snapshots'));
        const unknown = Crypto.randomUUID();
        const rows = await count();
        for (const url of [`/snapshots/${unknown}`, `/snapshots/compare?a=${a.id}&b=${unknown}`, `/snapshots/compare?a=${unknown}&b=${a.id}`]) {
            const res = await request('viewer', 'GET', url);
            expect(res.statusCode, url).to.equal(404);
            expect(json(res).message).to.contain('Snapshot');
        }

        for (const [url, field] of [['/snapshots/not-an-id', 'id'], [`/snapshots/compare?a=${a.id}`, 'b'], [`/snapshots/compare?a=x&b=${a.id}`, 'a'], ['/snapshots?kind=daily', 'kind'], ['/snapshots?sort=note', 'sort'], ['/snapshots/evolution?from=yesterday', 'from'], ['/snapshots/evolution?domain=x', 'domain']]) {
            const res = await request('viewer', 'GET', url!);
            expect(res.statusCode, url).to.equal(400);
            expect(res.payload, url).to.contain(field!);
        }

        expect((await request('admin', 'DELETE', `/snapshots/${unknown}`)).statusCode).to.equal(404);
        expect((await request('red_lead', 'DELETE', `/snapshots/${a.id}`)).statusCode).to.equal(403);
        const bad = await request('admin', 'POST', '/snapshots', { note: 'x'.repeat(501) });
        expect(bad.statusCode).to.equal(400);
        expect((await request('admin', 'POST', '/snapshots', { kind: 'scheduled' })).statusCode).to.equal(400);
        expect(await count()).to.equal(rows);
    });

    it('lets an admin delete a snapshot, with its rows, and audits it', async () => {

        const snapshot = json(await request('admin', 'POST', '/snapshots'));
        expect(Number((await context.knex('posture_snapshot_techniques').where('snapshot_id', snapshot.id).count('* as n').first())!.n)).to.be.above(0);
        expect((await request('admin', 'DELETE', `/snapshots/${snapshot.id}`)).statusCode).to.equal(204);
        expect((await request('viewer', 'GET', `/snapshots/${snapshot.id}`)).statusCode).to.equal(404);
        expect(Number((await context.knex('posture_snapshot_techniques').where('snapshot_id', snapshot.id).count('* as n').first())!.n)).to.equal(0);
        expect(await context.knex('audit_logs').where({ entity_id: snapshot.id, action: 'snapshot.delete' }).first()).to.exist();
        expect(await context.knex('audit_logs').where({ entity_id: snapshot.id, action: 'snapshot.create' }).first()).to.exist();
    });

    it('takes the daily snapshot from the worker and deletes scheduled snapshots past the retention period, keeping manual ones', async () => {

        const retention = context.config.snapshots.retentionDays;
        const old = await context.services.snapshots.create(systemActor, {}, 'scheduled');
        const recent = await context.services.snapshots.create(systemActor, {}, 'scheduled');
        const manual = await context.services.snapshots.create(systemActor, { note: 'kept' });
        await context.knex('posture_snapshots').whereIn('id', [old.id, manual.id]).update({ taken_at: new Date(Date.now() - (retention + 1) * 86_400_000) });
        await context.knex('posture_snapshots').where('id', recent.id).update({ taken_at: new Date(Date.now() - (retention - 1) * 86_400_000) });

        const result = await dailySnapshot(context.services);
        expect(result.pruned).to.be.above(0);
        const kept = await context.knex('posture_snapshots').whereIn('id', [old.id, recent.id, manual.id, result.snapshot_id]).pluck('id');
        expect(kept.sort()).to.equal([recent.id, manual.id, result.snapshot_id].sort());
        expect(await context.knex('posture_snapshots').where('id', result.snapshot_id).first('kind', 'created_by')).to.equal({ kind: 'scheduled', created_by: null });
        expect(await context.knex('audit_logs').where({ action: 'snapshot.prune' }).orderBy('created_at', 'desc').first()).to.exist();
    });
});
