import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import type { Test } from '../../server/models';
import type { Role } from '../../server/policy';

import { json, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// Figures by hand over a week of 2003 that no other script writes to: four tests the viewer sees detected after 60,
// 120, 300 and 600 seconds, one restricted test (3,600 s) only the admin sees, one validated without a detection.
describe('Analytics routes', () => {

    let context: TestContext;
    let technique: string;
    let tacticId: string;
    const tool = `tool-${Crypto.randomBytes(4).toString('hex')}`;
    const tactic = `TA${Crypto.randomInt(1000, 9999)}`;
    const period = 'from=2003-03-03T00:00:00Z&to=2003-03-17T00:00:00Z';
    const ids: Record<string, string> = {};
    const request = async (role: Role, url: string) => await context.server.inject({ method: 'GET', url: `/api/v1${url}`, auth: context.as(role) });
    const get = async (role: Role, url: string) => {

        const res = await request(role, url);
        expect(res.statusCode, res.payload).to.equal(200);
        return json(res);
    };

    const validated = async (name: string, executed: string, seconds: number | null, validatedAt: string, overrides: Partial<Test> = {}) => {

        const executedAt = new Date(executed);
        const test = await testRow(context.knex, {
            technique_id: technique, state: 'validated', tool, executed_at: executedAt,
            detected_at: seconds === null ? null : new Date(executedAt.getTime() + seconds * 1000),
            detection_outcome: seconds === null ? 'not_detected' : 'alerted',
            detections: [{ tool: 'EDR', outcome: seconds === null ? 'not_detected' : 'alerted', detected_at: null }],
            validated_at: new Date(validatedAt), red_seconds: 600, blue_seconds: 1200, ...overrides
        } as Partial<Test>);
        ids[name] = test.id;
        return test;
    };

    before(async () => {

        context = await init({ redis: false });
        technique = await uniqueTechnique(context.knex);
        const [row] = await context.knex('tactics').insert({ stix_id: `x-mitre-tactic--${Crypto.randomUUID()}`, mitre_id: tactic, domain: 'mobile-attack', name: `Tactic ${tactic}`, shortname: `tactic-${tactic}`, matrix_order: 901 }).returning('id');
        tacticId = (row as { id: string }).id;
        await context.knex('technique_tactics').insert({ technique_id: technique, tactic_id: tacticId });

        await validated('a', '2003-03-04T10:00:00Z', 60, '2003-03-04T12:00:00Z');
        await validated('b', '2003-03-05T10:00:00Z', 120, '2003-03-05T12:00:00Z', { detection_outcome: 'logged' } as Partial<Test>);
        await validated('c', '2003-03-10T10:00:00Z', 300, '2003-03-11T12:00:00Z', { detection_outcome: 'prevented' } as Partial<Test>);
        await validated('d', '2003-03-11T10:00:00Z', 600, '2003-03-12T12:00:00Z');
        await validated('hidden', '2003-03-11T10:00:00Z', 3600, '2003-03-12T13:00:00Z', { data_classification: 'restricted', tool: `${tool} RESTRICTED` } as Partial<Test>);
        await validated('undetected', '2003-03-06T10:00:00Z', null, '2003-03-06T12:00:00Z');
    });

    after(async () => {

        await context.knex('tactics').where('id', tacticId).del();
        await context.stop();
    });

    describe('GET /analytics/time-to-detect', () => {

        it('answers mean, median and p90 by hand-computed cases, overall and per week, tool, technique and tactic', async () => {

            // 60, 120, 300, 600: mean 270; median (120 + 300) / 2 = 210; p90 at rank 0.9 x 3 = 2.7: 300 + 0.7 x 300 = 510
            const viewer = await get('viewer', `/analytics/time-to-detect?${period}&group_by=tool`);
            expect(viewer).to.include({ from: '2003-03-03T00:00:00.000Z', to: '2003-03-17T00:00:00.000Z', group_by: 'tool' });
            expect(viewer.items.filter((item: { key: string }) => item.key.startsWith(tool))).to.equal([{ key: tool, label: tool, tests: 4, mean_seconds: 270, median_seconds: 210, p90_seconds: 510 }]);

            // The admin also sees the restricted test: 60, 120, 300, 600, 3600: mean 936; median 300; p90 at 3.6: 600 + 0.6 x 3000 = 2400
            const admin = await get('admin', `/analytics/time-to-detect?${period}&group_by=technique`);
            expect(admin.items.find((item: { key: string }) => item.key === technique)).to.equal({ key: technique, label: `Technique ${technique}`, tests: 5, mean_seconds: 936, median_seconds: 300, p90_seconds: 2400 });
            expect((await get('viewer', `/analytics/time-to-detect?${period}&group_by=technique`)).items.find((item: { key: string }) => item.key === technique).tests).to.equal(4);

            // Per week (Monday): [60, 120]: mean 90, median 90, p90 60 + 0.9 x 60 = 114; [300, 600]: 450, 450, 300 + 0.9 x 300 = 570
            const weeks = await get('viewer', `/analytics/time-to-detect?${period}&group_by=week`);
            expect(weeks.items.filter((item: { key: string }) => ['2003-03-03', '2003-03-10'].includes(item.key))).to.equal([
                { key: '2003-03-03', label: '2003-03-03', tests: 2, mean_seconds: 90, median_seconds: 90, p90_seconds: 114 },
                { key: '2003-03-10', label: '2003-03-10', tests: 2, mean_seconds: 450, median_seconds: 450, p90_seconds: 570 }
            ]);

            const tactics = await get('viewer', `/analytics/time-to-detect?${period}&group_by=tactic`);
            expect(tactics.items.find((item: { key: string }) => item.key === tactic)).to.equal({ key: tactic, label: `Tactic ${tactic}`, tests: 4, mean_seconds: 270, median_seconds: 210, p90_seconds: 510 });

            // Overall (no group) over a period holding only these tests
            expect((await get('viewer', '/analytics/time-to-detect?from=2003-03-04T00:00:00Z&to=2003-03-06T00:00:00Z')).items).to.equal([{ key: 'all', label: 'All tests', tests: 2, mean_seconds: 90, median_seconds: 90, p90_seconds: 114 }]);
            expect((await get('viewer', '/analytics/time-to-detect?from=2003-01-01T00:00:00Z&to=2003-01-02T00:00:00Z')).items).to.equal([]);
        });

        it('answers time to detect per detection asset, each asset\'s first detection of the test (hand-computed)', async () => {

            const [edr, siem] = await context.knex('detection_assets').insert([{ name: `Analytics EDR ${tool}`, type: 'edr' }, { name: `Analytics SIEM ${tool}`, type: 'siem' }]).returning(['id', 'name']);
            const at = async (test: string, position: number, assetId: string | null, executed: string, seconds: number, outcome = 'alerted') => await context.knex('test_detections').insert({
                test_id: ids[test], position, asset_id: assetId, tool: 'asset', outcome, detected_at: new Date(new Date(executed).getTime() + seconds * 1000)
            });

            // EDR: a at 90 s (and again at 200 s: the first counts), c at 300 s, the restricted test at 3,600 s
            await at('a', 10, edr.id, '2003-03-04T10:00:00Z', 90);
            await at('a', 11, edr.id, '2003-03-04T10:00:00Z', 200);
            await at('c', 10, edr.id, '2003-03-10T10:00:00Z', 300);
            await at('hidden', 10, edr.id, '2003-03-11T10:00:00Z', 3600);
            // SIEM: d at 900 s; a not_detected row and a row without an asset do not count
            await at('d', 10, siem.id, '2003-03-11T10:00:00Z', 900);
            await at('b', 10, siem.id, '2003-03-05T10:00:00Z', 30, 'not_detected');
            await at('b', 11, null, '2003-03-05T10:00:00Z', 45);
            try {
                // viewer, EDR: 90, 300: mean 195, median 195, p90 at rank 0.9: 90 + 0.9 x 210 = 279
                const viewer = await get('viewer', `/analytics/time-to-detect?${period}&group_by=asset`);
                expect(viewer.group_by).to.equal('asset');
                const mine = (items: Record<string, unknown>[]) => items.filter((item) => [edr.id, siem.id].includes(item.key as string));
                expect(mine(viewer.items)).to.equal([
                    { key: edr.id, label: edr.name, tests: 2, mean_seconds: 195, median_seconds: 195, p90_seconds: 279 },
                    { key: siem.id, label: siem.name, tests: 1, mean_seconds: 900, median_seconds: 900, p90_seconds: 900 }
                ].sort((x, y) => x.key.localeCompare(y.key)));
                // admin, EDR: 90, 300, 3600: mean 1330, median 300, p90 at rank 1.8: 300 + 0.8 x 3300 = 2940
                const admin = await get('admin', `/analytics/time-to-detect?${period}&group_by=asset`);
                expect(mine(admin.items).find((item) => item.key === edr.id)).to.equal({ key: edr.id, label: edr.name, tests: 3, mean_seconds: 1330, median_seconds: 300, p90_seconds: 2940 });
            }
            finally {
                await context.knex('test_detections').whereIn('test_id', Object.values(ids)).where('position', '>=', 10).delete();
                await context.knex('detection_assets').whereIn('id', [edr.id, siem.id]).delete();
            }
        });

        it('never shows a hidden test\'s tool, nor counts it', async () => {

            const res = await request('viewer', `/analytics/time-to-detect?${period}&group_by=tool`);
            expect(res.payload).to.not.contain('RESTRICTED');
            expect((await request('viewer', `/analytics/outcomes?${period}&group_by=tool`)).payload).to.not.contain('RESTRICTED');
            expect((await request('admin', `/analytics/outcomes?${period}&group_by=tool`)).payload).to.contain('RESTRICTED');
        });

        it('refuses bad periods and groups with 400 naming the field', async () => {

            for (const [url, field] of [
                ['/analytics/time-to-detect?group_by=team', 'group_by'],
                ['/analytics/time-to-detect?from=soon', 'from'],
                ['/analytics/time-to-detect?from=2003-03-10T00:00:00Z&to=2003-03-01T00:00:00Z', 'from'],
                ['/analytics/time-to-detect?from=2001-01-01T00:00:00Z&to=2003-01-01T00:00:00Z', 'from'],
                ['/analytics/outcomes?group_by=week', 'group_by'],
                ['/analytics/validation-rate?group_by=tool', 'group_by'],
                ['/analytics/tests-per-week?to=x', 'to'],
                ['/analytics/throughput?limit=5', 'limit']
            ]) {
                const res = await request('viewer', url!);
                expect(res.statusCode, url).to.equal(400);
                expect(res.payload, url).to.contain(field!);
            }
        });
    });

    describe('GET /analytics/outcomes', () => {

        it('distributes the validated tests by outcome, per tool and tactic', async () => {

            const viewer = await get('viewer', `/analytics/outcomes?${period}&group_by=tool`);
            expect(viewer.items.find((item: { key: string }) => item.key === tool)).to.equal({ key: tool, label: tool, tests: 5, outcomes: { prevented: 1, alerted: 2, logged: 1, not_detected: 1, not_applicable: 0, none: 0 } });
            const tactics = await get('admin', `/analytics/outcomes?${period}&group_by=tactic`);
            expect(tactics.items.find((item: { key: string }) => item.key === tactic).outcomes).to.include({ alerted: 3, not_detected: 1 });
        });
    });

    describe('GET /analytics/tests-per-week, /analytics/validation-rate and /analytics/throughput', () => {

        it('count verdicts and hand-overs from the timeline, per week and team', async () => {

            const entry = (test: string, action: string, from: string, to: string, at: string) => ({ test_id: ids[test], action, from_state: from, to_state: to, created_at: new Date(at), changes: {} });
            await context.knex('test_timeline').insert([
                entry('a', 'submit-red', 'red_executing', 'blue_evaluating', '2003-03-04T10:30:00Z'),
                entry('a', 'submit-blue', 'blue_evaluating', 'in_review', '2003-03-04T11:00:00Z'),
                entry('a', 'validate-blue', 'in_review', 'validated', '2003-03-04T12:00:00Z'),
                entry('b', 'submit-red', 'red_executing', 'blue_evaluating', '2003-03-05T10:30:00Z'),
                entry('b', 'validate-red', 'in_review', 'rejected', '2003-03-05T11:00:00Z'),
                entry('b', 'validate-blue', 'in_review', 'validated', '2003-03-05T12:00:00Z'),
                entry('c', 'validate-blue', 'in_review', 'validated', '2003-03-11T12:00:00Z'),
                entry('hidden', 'validate-blue', 'in_review', 'rejected', '2003-03-12T12:00:00Z')
            ]);
            await context.knex('tests').where('id', ids.b).update({ red_seconds: 1800 });

            // Verdicts: week 1 validated 2, rejected 1 (2/3 = 0.667); week 2 validated 1 (and the hidden rejection for the admin)
            const rate = await get('viewer', `/analytics/validation-rate?${period}&group_by=week`);
            expect(rate.items).to.equal([{ key: '2003-03-03', validated: 2, rejected: 1, rate: 0.667 }, { key: '2003-03-10', validated: 1, rejected: 0, rate: 1 }]);
            expect((await get('viewer', `/analytics/validation-rate?${period}`)).items).to.equal([{ key: 'all', validated: 3, rejected: 1, rate: 0.75 }]);
            expect((await get('admin', `/analytics/validation-rate?${period}`)).items).to.equal([{ key: 'all', validated: 3, rejected: 2, rate: 0.6 }]);
            expect((await get('viewer', '/analytics/validation-rate?from=2003-01-01T00:00:00Z&to=2003-01-02T00:00:00Z')).items).to.equal([{ key: 'all', validated: 0, rejected: 0, rate: null }]);

            // Tests created in the period: none (they were created now); the verdicts per week
            const weeks = await get('viewer', `/analytics/tests-per-week?${period}`);
            expect(weeks.items).to.equal([{ week: '2003-03-03', created: 0, validated: 2, rejected: 1 }, { week: '2003-03-10', created: 0, validated: 1, rejected: 0 }]);
            const now = await get('viewer', '/analytics/tests-per-week');
            const thisWeek = now.items.at(-1);
            expect(thisWeek.created >= 5, JSON.stringify(thisWeek)).to.be.true();

            // Red hand-overs: a (600 s) and b (1,800 s): mean 1,200; blue: a (1,200 s)
            const throughput = await get('viewer', `/analytics/throughput?${period}`);
            expect(throughput.items).to.equal([{ week: '2003-03-03', team: 'blue', tests: 1, mean_working_seconds: 1200 }, { week: '2003-03-03', team: 'red', tests: 2, mean_working_seconds: 1200 }]);
        });
    });
});
