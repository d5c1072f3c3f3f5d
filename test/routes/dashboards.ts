import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { Test } from '../../server/models';
import type { Role } from '../../server/policy';

import { json, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('Dashboard routes', () => {

    let context: TestContext;
    const request = async (role: Role, method: string, url: string, payload?: object) => await context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    // A test on the technique, validated through the API by both leads (coverage recomputed by the real path)
    const validate = async (techniqueId: string, outcome: string, overrides: Partial<Test> = {}) => {

        const test = await testRow(context.knex, { technique_id: techniqueId, state: 'in_review', detections: [{ tool: 'EDR', outcome, detected_at: new Date().toISOString() }], detection_outcome: outcome, ...overrides } as Partial<Test>);
        expect((await request('red_lead', 'POST', `/tests/${test.id}/validate-red`, { approved: true })).statusCode).to.equal(200);
        expect(json(await request('blue_lead', 'POST', `/tests/${test.id}/validate-blue`, { approved: true }))).to.include({ state: 'validated' });
        return test.id;
    };

    // The posture as a plain query over the techniques: what the KPIs must answer
    const expectedPosture = async (domain = 'enterprise-attack') => {

        const rows: { coverage_status: string; n: string }[] = await context.knex('techniques').where({ domain, revoked: false, deprecated: false, is_subtechnique: false }).select('coverage_status').count('* as n').groupBy('coverage_status');
        const by = Object.fromEntries(rows.map((row) => [row.coverage_status, Number(row.n)]));
        const techniques = rows.reduce((sum, row) => sum + Number(row.n), 0);
        return { techniques, covered: by.covered ?? 0, covered_percent: techniques ? Math.round((by.covered ?? 0) / techniques * 1000) / 10 : 0 };
    };

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    describe('GET /dashboard/kpis', () => {

        it('answers the coverage of the techniques and the tests each role may see, and follows a validation', async () => {

            const technique = await uniqueTechnique(context.knex);
            await testRow(context.knex, { technique_id: technique, data_classification: 'restricted' });
            await testRow(context.knex, { technique_id: technique, data_classification: 'public', state: 'rejected' });

            const admin = json(await request('admin', 'GET', '/dashboard/kpis'));
            const expected = await expectedPosture();
            expect(admin.domain).to.equal('enterprise-attack');
            expect(admin.techniques).to.include({ techniques: expected.techniques, covered_percent: expected.covered_percent });
            expect(admin.techniques.by_status.covered).to.equal(expected.covered);
            expect(admin.tests.total).to.equal(await Test.query(context.knex).resultSize());
            for (const role of ['viewer', 'blue_tech', 'red_lead'] as const) {
                const kpis = json(await request(role, 'GET', '/dashboard/kpis'));
                expect(kpis.tests.total, role).to.equal(await Test.query(context.knex).modify('visibleTo', context.actor(role)).resultSize());
                expect(Object.values(kpis.tests.by_state as Record<string, number>).reduce((sum, n) => sum + n, 0)).to.equal(kpis.tests.total);
            }

            // A validation moves one technique to covered and one test to validated (alerted)
            await validate(technique, 'alerted');
            const later = json(await request('admin', 'GET', '/dashboard/kpis'));
            expect(later.techniques.techniques).to.equal(admin.techniques.techniques);
            expect(later.techniques.by_status.covered).to.equal(admin.techniques.by_status.covered + 1);
            expect(later.techniques.by_status.untested).to.equal(admin.techniques.by_status.untested - 1);
            expect(later.tests.total).to.equal(admin.tests.total + 1);
            expect(later.tests.by_state.validated).to.equal(admin.tests.by_state.validated + 1);
            expect(later.tests.validated_outcomes.alerted).to.equal(admin.tests.validated_outcomes.alerted + 1);
            const verdicts = later.tests.by_state.validated + later.tests.by_state.rejected;
            expect(later.tests.validation_rate).to.equal(Math.round(later.tests.by_state.validated / verdicts * 1000) / 1000);
        });

        it('counts the campaigns by status and the overdue ones, the same for every role', async () => {

            // A campaign in a status, with one member test; `endDaysAgo` sets its end date that many days back (UTC)
            const campaign = async (status: 'draft' | 'active' | 'completed', endDaysAgo?: number): Promise<void> => {

                const created = json(await request('red_lead', 'POST', '/campaigns', { name: `Dashboard campaign ${Crypto.randomBytes(4).toString('hex')}` }));
                const test = await testRow(context.knex);
                expect((await request('red_lead', 'POST', `/campaigns/${created.id}/tests`, { test_id: test.id })).statusCode).to.equal(201);
                for (const action of status === 'draft' ? [] : status === 'active' ? ['activate'] : ['activate', 'complete']) {
                    expect((await request('admin', 'POST', `/campaigns/${created.id}/${action}`)).statusCode).to.equal(200);
                }

                if (endDaysAgo !== undefined) {
                    await context.knex('campaigns').where('id', created.id).update({ end_date: new Date(Date.now() - endDaysAgo * 86_400_000).toISOString().slice(0, 10) });
                }
            };

            const earlier = json(await request('viewer', 'GET', '/dashboard/kpis')).campaigns;
            await campaign('draft', 3);                 // a draft past its end date is not overdue
            await campaign('active', 3);                // overdue
            await campaign('active', 0);                // ends today: not yet overdue
            await campaign('completed', 3);             // over
            const now = json(await request('viewer', 'GET', '/dashboard/kpis')).campaigns;
            expect({ total: now.total - earlier.total, draft: now.draft - earlier.draft, active: now.active - earlier.active, completed: now.completed - earlier.completed, overdue: now.overdue - earlier.overdue })
                .to.equal({ total: 4, draft: 1, active: 2, completed: 1, overdue: 1 });
            expect(now.draft + now.active + now.completed).to.equal(now.total);
            for (const role of ['admin', 'red_tech', 'blue_tech'] as const) {
                expect(json(await request(role, 'GET', '/dashboard/kpis')).campaigns, role).to.equal(now);
            }
        });

        it('refuses an unknown domain with 400 naming it', async () => {

            const res = await request('viewer', 'GET', '/dashboard/kpis?domain=moon-attack');
            expect(res.statusCode).to.equal(400);
            expect(res.payload).to.contain('domain');
        });
    });

    describe('GET /dashboard/coverage-by-tactic', () => {

        it('counts each tactic\'s techniques per status and the visible tests, sub-techniques under their parent', async () => {

            const suffix = String(Crypto.randomInt(1000, 9999));
            const tactic = await context.knex('tactics').insert({ stix_id: `x-mitre-tactic--${Crypto.randomUUID()}`, mitre_id: `TA${suffix}`, domain: 'mobile-attack', name: `Tactic ${suffix}`, shortname: `tactic-${suffix}`, matrix_order: 900 }).returning('id');
            const tacticId = (tactic[0] as { id: string }).id;
            try {
                const parent = `T8${suffix.slice(1)}`;
                const other = `T7${suffix.slice(1)}`;
                await context.knex('techniques').insert([
                    { mitre_id: parent, domain: 'mobile-attack', name: 'Parent' },
                    { mitre_id: other, domain: 'mobile-attack', name: 'Other' },
                    { mitre_id: `${parent}.001`, domain: 'mobile-attack', name: 'Child', is_subtechnique: true, parent_id: parent }
                ]);
                await context.knex('technique_tactics').insert([{ technique_id: parent, tactic_id: tacticId }, { technique_id: other, tactic_id: tacticId }]);
                await validate(parent, 'prevented');
                await testRow(context.knex, { technique_id: `${parent}.001` });
                await testRow(context.knex, { technique_id: other, data_classification: 'confidential' });

                const row = async (role: Role) => json(await request(role, 'GET', '/dashboard/coverage-by-tactic?domain=mobile-attack')).tactics.find((item: { tactic_id: string }) => item.tactic_id === `TA${suffix}`);
                expect(await row('admin')).to.equal({
                    tactic_id: `TA${suffix}`, shortname: `tactic-${suffix}`, name: `Tactic ${suffix}`, techniques: 2,
                    by_status: { untested: 1, not_covered: 0, partial: 0, covered: 1 }, covered_percent: 50, tests: { total: 3, validated: 1 }
                });
                expect((await row('viewer')).tests).to.equal({ total: 2, validated: 1 });            // the confidential test is not counted
            }
            finally {
                await context.knex('tactics').where('id', tacticId).del();
            }
        });
    });

    describe('GET /dashboard/activity', () => {

        it('lists creations, state changes and validations of the visible tests, newest first, paginated', async () => {

            const technique = await uniqueTechnique(context.knex);
            const created = json(await request('red_lead', 'POST', '/tests', { title: `Activity ${technique}`, technique_id: technique }));
            await request('admin', 'POST', `/tests/${created.id}/start-execution`, {});
            await request('admin', 'PATCH', `/tests/${created.id}`, { title: `Activity ${technique} renamed` });
            const hidden = json(await request('red_lead', 'POST', '/tests', { title: `Hidden ${technique}`, technique_id: technique }));
            await request('admin', 'PATCH', `/tests/${hidden.id}/classification`, { data_classification: 'restricted' });
            const validated = await validate(technique, 'logged');

            const mine = (page: Record<string, any>): any[] => page.items.filter((item: any) => item.test?.technique_id === technique);
            const all = json(await request('red_lead', 'GET', '/dashboard/activity?limit=500'));
            const items = mine(all);
            expect(items.map((item: any) => [item.test.id === created.id ? 'created' : item.test.id === hidden.id ? 'hidden' : 'validated', item.type, item.action])).to.equal([
                ['validated', 'validation', 'validate-blue'],
                ['hidden', 'test', 'create'],
                ['created', 'test', 'start-execution'],
                ['created', 'test', 'create']
            ]);
            expect(items[0]).to.include({ from_state: 'in_review', to_state: 'validated', actor_id: context.users.blue_lead.id });
            expect(items[0].test).to.equal({ id: validated, title: items[0].test.title, technique_id: technique, state: 'validated' });

            // The viewer does not see the restricted test's entries; type filters; the page envelope
            expect(mine(json(await request('viewer', 'GET', '/dashboard/activity?limit=500'))).map((item: any) => item.test.id)).to.not.include(hidden.id);
            const validations = json(await request('viewer', 'GET', '/dashboard/activity?type=validation&limit=500'));
            expect(validations.items.every((item: { type: string }) => item.type === 'validation')).to.be.true();
            expect(mine(validations).length).to.equal(1);
            const first = json(await request('red_lead', 'GET', '/dashboard/activity?limit=2'));
            expect(first).to.include({ limit: 2, offset: 0, total: all.total });
            expect(first.items.length).to.equal(2);
            const second = json(await request('red_lead', 'GET', '/dashboard/activity?limit=2&offset=2'));
            expect(second.items[0].id).to.not.equal(first.items[0].id);
        });

        it('lists campaign creations and status moves, to every role, beside the tests or alone (type=campaign)', async () => {

            const name = `Activity campaign ${Crypto.randomBytes(4).toString('hex')}`;
            const created = json(await request('red_lead', 'POST', '/campaigns', { name }));
            const test = await testRow(context.knex, { data_classification: 'restricted' });
            expect((await request('red_lead', 'POST', `/campaigns/${created.id}/tests`, { test_id: test.id })).statusCode).to.equal(201);
            expect((await request('red_lead', 'PATCH', `/campaigns/${created.id}`, { description: 'not a status move' })).statusCode).to.equal(200);
            expect((await request('admin', 'POST', `/campaigns/${created.id}/activate`)).statusCode).to.equal(200);
            expect((await request('admin', 'POST', `/campaigns/${created.id}/complete`)).statusCode).to.equal(200);

            const ours = (page: Record<string, any>): any[] => page.items.filter((item: any) => item.campaign?.id === created.id);
            const campaignOnly = json(await request('viewer', 'GET', '/dashboard/activity?type=campaign&limit=500'));
            expect(campaignOnly.items.every((item: { type: string; test: unknown }) => item.type === 'campaign' && item.test === null)).to.be.true();
            const entries = ours(campaignOnly);
            expect(entries.map((item: any) => [item.action, item.from_state, item.to_state])).to.equal([['complete', 'active', 'completed'], ['activate', 'draft', 'active'], ['create', null, 'draft']]);
            expect(entries[0]).to.include({ type: 'campaign', actor_id: context.users.admin.id, test: null, campaign: { id: created.id, name, status: 'completed' } });
            expect(entries[2].actor_id).to.equal(context.users.red_lead.id);

            // Beside the tests in the default feed; never in the test or validation feeds
            expect(ours(json(await request('blue_tech', 'GET', '/dashboard/activity?limit=500'))).map((item: any) => item.id)).to.equal(entries.map((item: any) => item.id));
            for (const type of ['test', 'validation']) {
                expect(ours(json(await request('admin', 'GET', `/dashboard/activity?type=${type}&limit=500`)))).to.equal([]);
            }
        });

        it('refuses bad paging, days and type with 400 naming the field', async () => {

            for (const [query, field] of [['days=0', 'days'], ['days=400', 'days'], ['type=campaign-x', 'type'], ['limit=0', 'limit'], ['sort=title', 'sort']]) {
                const res = await request('viewer', 'GET', `/dashboard/activity?${query}`);
                expect(res.statusCode, query).to.equal(400);
                expect(res.payload, query).to.contain(field!);
            }
        });
    });

    describe('POST /dashboard/posture-snapshot and GET /dashboard/posture-history', () => {

        it('takes a snapshot now and answers one point per day then the live figure', async () => {

            const res = await request('blue_lead', 'POST', '/dashboard/posture-snapshot');
            expect(res.statusCode, res.payload).to.equal(201);
            const snapshot = json(res);
            expect(snapshot).to.include({ kind: 'manual', note: null, created_by: context.users.blue_lead.id });
            const expected = await expectedPosture();
            expect(snapshot.summary['enterprise-attack']).to.include({ techniques: expected.techniques, covered_percent: expected.covered_percent });

            const history = json(await request('viewer', 'GET', '/dashboard/posture-history?days=7'));
            const days = history.points.filter((point: { kind: string }) => point.kind !== 'live').map((point: { taken_at: string }) => point.taken_at.slice(0, 10));
            expect(new Set(days).size).to.equal(days.length);
            const live = history.points.at(-1);
            expect(live).to.include({ kind: 'live', snapshot_id: null, techniques: expected.techniques, covered_percent: expected.covered_percent });
            expect(history.points.at(-2).snapshot_id).to.equal(snapshot.id);                   // today's last snapshot

            const bad = await request('viewer', 'GET', '/dashboard/posture-history?days=366');
            expect(bad.statusCode).to.equal(400);
            expect(bad.payload).to.contain('days');
        });

        it('refuses a bad note and writes nothing', async () => {

            const count = await context.knex('posture_snapshots').count('* as n').first();
            const res = await request('admin', 'POST', '/dashboard/posture-snapshot', { note: 'x'.repeat(501) });
            expect(res.statusCode).to.equal(400);
            expect(res.payload).to.contain('note');
            expect(await context.knex('posture_snapshots').count('* as n').first()).to.equal(count);
        });
    });

    describe('GET /dashboard/executive', () => {

        it('states figures that agree with the KPIs and the period\'s validations, compared with the period before', async () => {

            // A baseline snapshot 31 days back, then a technique validated since
            const technique = await uniqueTechnique(context.knex);
            const baseline = json(await request('admin', 'POST', '/snapshots', { note: 'executive baseline' }));
            await context.knex('posture_snapshots').where('id', baseline.id).update({ taken_at: new Date(Date.now() - 31 * 86_400_000) });
            await validate(technique, 'not_detected');
            const old = await testRow(context.knex, { technique_id: technique, state: 'validated' });
            await context.knex('tests').where('id', old.id).update({ validated_at: new Date(Date.now() - 40 * 86_400_000) });

            const res = await request('viewer', 'GET', '/dashboard/executive?days=30');
            expect(res.statusCode, res.payload).to.equal(200);
            const summary = json(res);
            const kpis = json(await request('viewer', 'GET', '/dashboard/kpis'));
            expect(summary.figures).to.include({ covered_percent: kpis.techniques.covered_percent, techniques: kpis.techniques.techniques, needs_review: kpis.techniques.needs_review, tests: kpis.tests.total });

            const period = new Date(summary.period.from);
            expect(new Date(summary.period.to).getTime() - period.getTime()).to.equal(30 * 86_400_000);
            expect(summary.previous.to).to.equal(summary.period.from);
            const validatedIn = (from: Date, to: Date) => Test.query(context.knex).modify('visibleTo', context.actor('viewer')).where('state', 'validated').where('validated_at', '>=', from).where('validated_at', '<', to).resultSize();
            expect(summary.figures.validated).to.equal(await validatedIn(period, new Date(summary.period.to)));
            expect(summary.figures.validated_previous).to.equal(await validatedIn(new Date(summary.previous.from), period));
            expect(summary.figures.validated_previous > 0).to.be.true();

            // The baseline is the latest snapshot on or before the start; the technique validated since moved up
            const start = await context.knex('posture_snapshots').where('taken_at', '<=', period).orderBy([{ column: 'taken_at', order: 'desc' }, { column: 'id', order: 'desc' }]).first();
            expect(summary.figures.covered_percent_then).to.equal(start.summary['enterprise-attack'].covered_percent);
            if (start.id === baseline.id) {
                expect(summary.figures.improved > 0).to.be.true();
            }

            // Every sentence states its figures, and its text carries each of them
            const keys = summary.sentences.map((sentence: { key: string }) => sentence.key);
            expect(keys).to.include(['coverage.now', 'coverage.change', 'coverage.moves', 'tests.validated', 'tests.not_detected', 'review.pending']);
            // (durations are stated in words: their seconds are checked against the analytics in test/routes/analytics.ts)
            for (const sentence of summary.sentences as { text: string; figures: Record<string, number | null>; dates: Record<string, string> }[]) {
                for (const [name, value] of Object.entries(sentence.figures)) {
                    if (value !== null && !name.endsWith('_seconds') && !name.endsWith('_seconds_previous')) {
                        expect(sentence.text, `${name} in ${sentence.text}`).to.contain(String(Math.abs(value)));
                    }
                }

                for (const value of Object.values(sentence.dates)) {
                    expect(sentence.text).to.contain(value);
                }
            }

            const now = summary.sentences.find((sentence: { key: string }) => sentence.key === 'coverage.now');
            expect(now.text).to.contain(`${kpis.techniques.covered_percent}% of the ${kpis.techniques.techniques} techniques are covered`);
            const notDetected = summary.sentences.find((sentence: { key: string }) => sentence.key === 'tests.not_detected');
            expect(notDetected.figures.not_detected).to.equal(await Test.query(context.knex).modify('visibleTo', context.actor('viewer')).where('state', 'validated').where('detection_outcome', 'not_detected').where('validated_at', '>=', period).where('validated_at', '<', new Date(summary.period.to)).resultSize());
        });

        it('says when there is no baseline, and refuses bad days', async () => {

            const summary = json(await request('admin', 'GET', '/dashboard/executive?days=1'));
            const first = await context.knex('posture_snapshots').where('taken_at', '<=', new Date(summary.period.from)).first('id');
            expect(summary.sentences.map((sentence: { key: string }) => sentence.key)).to.include(first ? 'coverage.change' : 'coverage.no_baseline');

            for (const days of ['0', '184', 'x']) {
                const res = await request('admin', 'GET', `/dashboard/executive?days=${days}`);
                expect(res.statusCode).to.equal(400);
                expect(res.payload).to.contain('days');
            }
        });
    });
});
