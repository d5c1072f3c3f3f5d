import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { Test } from '../../server/models';
import type { Role } from '../../server/policy';
import { documentData } from '../../server/schemas/documents';
import { columns, lines, stackedBars } from '../../server/services/document-charts';
import { duration } from '../../server/services/document-templates';
import { periodOf, timeToDetect } from '../../server/services/documents';
import { bandOf, riskOf } from '../../server/services/scoring';

import { pdfText, startDocumentWorker } from '../helpers/documents';
import { json, testRow, uniqueTechnique } from '../helpers/factories';
import { testDatabaseUrl } from '../helpers/db';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// Issue 13: documents. The fixtures live in January 2031 (the period) and December 2030 (the previous period), where no
// other script writes, and on a technique of their own, so every figure below is computed by hand from them alone.
const internals = {
    marker: `RESTRICTED${Crypto.randomBytes(5).toString('hex')}`,
    suffix: Crypto.randomBytes(4).toString('hex'),
    sha: Crypto.createHash('sha256').update('capture').digest('hex'),
    at: (day: string, time = '10:00:00') => new Date(`${day}T${time}Z`)
};


describe('Report documents', () => {

    let context: TestContext;
    let worker: Awaited<ReturnType<typeof startDocumentWorker>> | undefined;
    let techniqueId: string;
    const titles: Record<string, string> = {};
    const ids: Record<string, string> = {};
    const request = (role: Role, url: string) => context.server.inject({ method: 'GET', url: `/api/v1${url}`, auth: context.as(role) });

    // A PDF: asked for, then its render polled while the worker prints it (this process's queue does not notify the
    // worker, which finds the job at its next poll)
    const pdfOf = async (role: Role, url: string) => {

        let res = await request(role, url);
        for (let i = 0; i < 200 && (res.statusCode === 202 || res.statusCode === 303); ++i) {
            expect(res.headers.location).to.match(/^\/api\/v1\/reports\/renders\/[0-9a-f-]{36}$/);
            if (res.statusCode === 202) {
                await new Promise((resolve) => setTimeout(resolve, 100));
            }

            res = await context.server.inject({ method: 'GET', url: res.headers.location as string, auth: context.as(role) });
        }

        expect(res.statusCode, res.payload).to.equal(200);
        return res;
    };

    before(async () => {

        context = await init({ redis: false, env: { REPORT_WAIT_MS: '1500' } });
        techniqueId = await uniqueTechnique(context.knex);

        const fixture = async (name: string, classification: Test['data_classification'], created: string, run: { executed?: string; detectAfter?: number; validated?: string; outcome?: Test['detection_outcome'] } & Partial<Test>) => {

            const { executed, detectAfter, validated, outcome, ...rest } = run;
            const executedAt = executed ? internals.at(executed) : null;
            titles[name] = name === 'A' ? `Alpha <script>x</script> ${internals.suffix}` : `${name === 'R' ? internals.marker : name} test ${internals.suffix}`;
            const test = await testRow(context.knex, {
                technique_id: techniqueId, title: titles[name], data_classification: classification, state: validated ? 'validated' : 'draft',
                created_at: internals.at(created), executed_at: executedAt, attack_result: executed ? 'succeeded' : null,
                detection_outcome: outcome ?? null, detections: outcome ? [{ outcome }] : [],
                detected_at: executedAt && detectAfter !== undefined ? new Date(executedAt.getTime() + detectAfter * 1000) : null,
                ...(validated ? { validated_at: internals.at(validated, '12:00:00'), red_validated_at: internals.at(validated, '11:00:00'), blue_validated_at: internals.at(validated, '11:30:00') } : {}),
                ...rest
            } as Partial<Test>);
            ids[name] = test.id;
            return test.id;
        };

        const a = await fixture('A', 'internal', '2031-01-04', { executed: '2031-01-05', detectAfter: 120, validated: '2031-01-06', outcome: 'prevented' });
        await fixture('B', 'public', '2031-01-11', { executed: '2031-01-12', detectAfter: 600, validated: '2031-01-13', outcome: 'alerted' });
        await fixture('C', 'internal', '2031-01-18', { executed: '2031-01-19', detectAfter: 3600, validated: '2031-01-20', outcome: 'logged', remediation_status: 'in_progress', remediation_due: '2020-01-01' });
        await fixture('D', 'internal', '2031-01-19', { executed: '2031-01-20', validated: '2031-01-21', outcome: 'not_detected', remediation_status: 'open', remediation_due: '2999-02-01' });
        await fixture('E', 'internal', '2031-01-15', {});
        const r = await fixture('R', 'restricted', '2031-01-07', { executed: '2031-01-08', detectAfter: 60, validated: '2031-01-09', outcome: 'alerted' });
        await fixture('F', 'confidential', '2031-01-08', { executed: '2031-01-09', detectAfter: 30, validated: '2031-01-10', outcome: 'prevented' });
        await fixture('P', 'internal', '2030-12-09', { executed: '2030-12-10', detectAfter: 300, validated: '2030-12-11', outcome: 'alerted' });

        for (const [testId, name] of [[a, 'a-capture.pcap'], [r, `${internals.marker}.txt`]] as const) {
            await context.knex('evidence').insert({ test_id: testId, team: 'red', storage_key: `evidence/${Crypto.randomUUID()}`, original_name: name, content_type: 'text/plain', size: 7, sha256: internals.sha });
        }
    });

    after(async () => {

        await worker?.stop();
        await context.stop();
    });

    it('computes the figures by hand: time to detect and periods', () => {

        // [30, 60, 120, 600, 3600]: median the middle one, mean 4410 / 5, 90th percentile the 5th of 5 (nearest rank)
        expect(timeToDetect([600, 30, 3600, 120, 60])).to.equal({
            count: 5, median_seconds: 120, mean_seconds: 882, p90_seconds: 3600,
            buckets: [{ label: '< 5 min', count: 3 }, { label: '5-60 min', count: 1 }, { label: '1-4 h', count: 1 }, { label: '4-24 h', count: 0 }, { label: '> 24 h', count: 0 }]
        });
        // An even count: the mean of the two middle values
        expect(timeToDetect([120, 300, 600, 3600])).to.include({ median_seconds: 450, mean_seconds: 1155, p90_seconds: 3600 });
        expect(timeToDetect([])).to.include({ count: 0, median_seconds: null, mean_seconds: null, p90_seconds: null });

        const now = new Date('2026-05-15T08:00:00Z');
        expect(periodOf('quarterly-summary', {}, now)).to.equal({ from: '2026-04-01', to: '2026-06-30', previous_from: '2026-01-01', previous_to: '2026-03-31' });
        expect(periodOf('quarterly-summary', { quarter: '2026-Q1' }, now)).to.equal({ from: '2026-01-01', to: '2026-03-31', previous_from: '2025-10-01', previous_to: '2025-12-31' });
        expect(periodOf('executive-summary', {}, now)).to.equal({ from: '2026-04-16', to: '2026-05-15', previous_from: '2026-03-17', previous_to: '2026-04-15' });
        expect(periodOf('coverage-summary', {}, now)).to.be.null();
    });

    it('draws the charts as SVG in proportion, labels escaped', () => {

        // 410 px of bar: 1 covered, 1 partial, 2 untested of 4 → 102.5, 102.5 and 205; the covered share written after it
        const bars = stackedBars([{ label: 'Execution <x>', parts: { covered: 1, partial: 1, not_covered: 0, untested: 2 } }, { label: 'Empty', parts: {} }], ['covered', 'partial', 'not_covered', 'untested'], { title: 'By "tactic"' });
        expect(bars).to.contain('<title>By &#34;tactic&#34;</title>').and.to.contain('Execution &#60;x&#62;');
        expect(bars.match(/<rect x="[\d.]+" y="\d+" width="([\d.]+)"/g)!.map((rect) => /width="([\d.]+)"/.exec(rect)![1]).slice(0, 3)).to.equal(['102.5', '102.5', '205']);
        expect(bars).to.contain('>25%<').and.to.contain('>0%<');

        // The tallest column fills the 130 px plot; the others in proportion
        const cols = columns([{ label: 'a', value: 4 }, { label: 'b', value: 1 }, { label: 'c', value: 0 }], { title: 'Outcomes', unit: 'x' });
        expect(cols).to.contain('height="130"').and.to.contain('height="32.5"').and.to.contain('>4x<');

        // 594 px of plot width over two steps of 297; 128 px of height, the maximum (2) at its top
        expect(lines(['01-06'], [{ name: 'validated', values: [3] }], { title: 'Trend' })).to.contain('points="36,26"');
        expect(lines(['a', 'b', 'c'], [{ name: 's', values: [0, 2, 1] }], { title: 'Trend' })).to.contain('points="36,154 333,26 630,90"');

        expect([duration(null), duration(59), duration(450), duration(5400)]).to.equal(['-', '59 s', '8 min', '1.5 h']);
    });

    it('answers an executive summary\'s data with the viewer\'s visibility, against the previous period', async () => {

        const url = '/reports/generate/executive-summary?from=2031-01-01&to=2031-01-31';
        const viewer = json(await request('viewer', url));
        expect(documentData.validate(viewer).error).to.not.exist();
        expect(viewer.period).to.equal({ from: '2031-01-01', to: '2031-01-31', previous_from: '2030-12-01', previous_to: '2030-12-31' });
        expect(viewer.activity).to.equal({ current: { tests_created: 5, tests_executed: 4, tests_validated: 4, detected: 3 }, previous: { tests_created: 1, tests_executed: 1, tests_validated: 1, detected: 1 } });
        expect(viewer.outcomes).to.equal({ prevented: 1, alerted: 1, logged: 1, not_detected: 1, not_applicable: 0 });
        expect(viewer.time_to_detect).to.include({ count: 3, median_seconds: 600, mean_seconds: 1440, p90_seconds: 3600, previous: { count: 1, median_seconds: 300 } });
        expect(viewer.trend).to.equal([
            { week: '2030-12-30', validated: 0, detected: 0 }, { week: '2031-01-06', validated: 1, detected: 1 }, { week: '2031-01-13', validated: 1, detected: 1 },
            { week: '2031-01-20', validated: 2, detected: 1 }, { week: '2031-01-27', validated: 0, detected: 0 }
        ]);
        expect(JSON.stringify(viewer)).to.not.contain(internals.marker);

        // A lead sees the restricted and the confidential tests too
        const admin = json(await request('admin', url));
        expect(admin.activity.current).to.equal({ tests_created: 7, tests_executed: 6, tests_validated: 6, detected: 5 });
        expect(admin.outcomes).to.equal({ prevented: 2, alerted: 2, logged: 1, not_detected: 1, not_applicable: 0 });
        expect(admin.time_to_detect).to.include({ count: 5, median_seconds: 120, mean_seconds: 882, p90_seconds: 3600 });
        expect(admin.trend[1]).to.equal({ week: '2031-01-06', validated: 3, detected: 3 });
    });

    it('answers a technique report with its visible tests, outcomes, remediation and evidence names with their SHA-256', async () => {

        const viewer = json(await request('viewer', `/reports/generate/technique/${techniqueId}`));
        expect(documentData.validate(viewer).error).to.not.exist();
        expect(viewer.technique).to.include({ mitre_id: techniqueId, coverage_status: 'untested' });
        expect(viewer.scope.tests).to.equal(6);
        expect(viewer.tests.map((test: { title: string }) => test.title)).to.equal(['D', 'C', 'E', 'B', 'A', 'P'].map((name) => titles[name]));
        expect(viewer.tests[4]).to.include({ detection_outcome: 'prevented', time_to_detect_seconds: 120, evidence: [{ name: 'a-capture.pcap', sha256: internals.sha }] });
        expect(viewer.outcomes).to.equal({ prevented: 1, alerted: 2, logged: 1, not_detected: 1, not_applicable: 0 });
        expect(viewer.time_to_detect).to.include({ count: 4, median_seconds: 450, mean_seconds: 1155 });
        expect(viewer.remediation).to.equal({ by_status: { open: 1, in_progress: 1, awaiting_retest: 0, resolved: 0, accepted_risk: 0 }, overdue: 1 });
        expect(JSON.stringify(viewer)).to.not.contain(internals.marker);

        const admin = json(await request('red_lead', `/reports/generate/technique/${techniqueId}`));
        expect(admin.scope.tests).to.equal(8);
        expect(JSON.stringify(admin)).to.contain(internals.marker);
    });

    it('renders the same data as an HTML document that escapes what users typed and loads nothing', async () => {

        const res = await request('viewer', `/reports/generate/technique/${techniqueId}?format=html`);
        expect(res.statusCode).to.equal(200);
        expect(res.headers['content-type']).to.equal('text/html; charset=utf-8');
        expect(res.headers['content-security-policy']).to.contain('default-src \'none\'');
        expect(res.payload).to.contain('&lt;script&gt;x&lt;/script&gt;');
        expect(res.payload).to.not.contain('<script');
        expect(res.payload).to.contain(internals.sha).and.to.contain('a-capture.pcap').and.to.contain('<svg');
        expect(res.payload).to.not.contain(internals.marker);
        // Nothing that would make a request: no external reference of any kind
        expect(res.payload).to.not.match(/(src|href)=|url\(|@import/);
    });

    it('answers 202 with a render to poll while no worker prints, shares it between identical requests, then streams the PDF', async () => {

        const url = `/reports/generate/technique/${techniqueId}?format=pdf`;
        const first = await request('viewer', url);
        expect(first.statusCode, first.payload).to.equal(202);
        const render = json(first);
        expect(render).to.include({ status: 'queued', kind: 'technique' });
        expect(first.headers.location).to.equal(`/api/v1/reports/renders/${render.id}`);

        // The same document asked again by another viewer joins the render; a viewer who never asked cannot read it
        const other = await context.createUser('viewer');
        const stranger = await context.createUser('viewer');
        const second = await context.server.inject({ method: 'GET', url: `/api/v1${url}`, auth: { strategy: 'jwt-bearer', credentials: { user: other, scope: ['viewer'], app: {} } } });
        expect(json(second).id).to.equal(render.id);
        expect((await context.knex('report_renders').where('id', render.id).first()).readers.sort()).to.equal([context.users.viewer.id, other.id].sort());
        const refused = await context.server.inject({ method: 'GET', url: `/api/v1/reports/renders/${render.id}`, auth: { strategy: 'jwt-bearer', credentials: { user: stranger, scope: ['viewer'], app: {} } } });
        expect(refused.statusCode).to.equal(404);

        worker = await startDocumentWorker(await testDatabaseUrl(), context.services, { chromiumPath: process.env.CHROMIUM_PATH });
        const done = await pdfOf('viewer', `/reports/renders/${render.id}`);
        expect(done.statusCode, done.payload).to.equal(200);
        expect(done.headers['content-type']).to.equal('application/pdf');
        expect(done.headers['content-disposition']).to.contain(`technique-${techniqueId}`);
        const pdf = done.rawPayload;
        expect(pdf.subarray(0, 5).toString()).to.equal('%PDF-');

        // The PDF's text carries the JSON's figures, and nothing the viewer may not open
        const data = json(await request('viewer', `/reports/generate/technique/${techniqueId}`));
        const text = await pdfText(pdf);
        const flat = text.replace(/\s+/g, '');
        for (const test of data.tests as { title: string }[]) {
            expect(flat).to.contain(test.title.replace(/\s+/g, ''));
        }

        expect(flat).to.contain(internals.sha);
        expect(text).to.contain('a-capture.pcap');
        expect(text).to.contain('8 min');                     // median 450 s
        expect(text).to.contain('19 min');                    // mean 1155 s
        expect(text).to.contain(`Techniques tested`);
        expect(text).to.not.contain(internals.marker);

        // The lead's executive summary: their figures, printed by the same browser
        const direct = await pdfOf('admin', `/reports/generate/executive-summary?from=2031-01-01&to=2031-01-31&format=pdf`);
        const executive = await pdfText(direct.rawPayload);
        expect(executive).to.contain('Executive summary').and.to.contain('2031-01-01').and.to.contain('2 min');      // the lead's median, 120 s

        // Its figures are the JSON's: activity against the previous period, outcomes, remediation, scope
        const figures = json(await request('admin', '/reports/generate/executive-summary?from=2031-01-01&to=2031-01-31'));
        expect(executive).to.contain(`tests validated ${figures.activity.current.tests_validated} ${figures.activity.previous.tests_validated} +500%`);
        expect(executive).to.contain(`tests created ${figures.activity.current.tests_created} ${figures.activity.previous.tests_created} +600%`);
        for (const [outcome, count] of Object.entries(figures.outcomes as Record<string, number>)) {
            expect(executive).to.contain(`${outcome.replace('_', ' ')} ${count}`);
        }

        expect(executive).to.contain(`Techniques in scope ${figures.scope.techniques}`).and.to.contain(`Tests ${figures.scope.tests}`);
        expect(executive).to.contain(`overdue (open or in progress past due) ${figures.remediation.overdue}`);
    });

    it('refuses bad input naming the field, and unknown techniques with 404, writing no render', async () => {

        const rendersBefore = Number((await context.knex('report_renders').count('* as n').first())!.n);
        const cases: [string, number, string | undefined][] = [
            ['/reports/generate/coverage-summary?format=docx', 400, 'format'],
            ['/reports/generate/quarterly-summary?quarter=2026-Q5&format=pdf', 400, 'quarter'],
            ['/reports/generate/executive-summary?from=2031-02-01&to=2031-01-01&format=pdf', 400, 'from'],
            ['/reports/generate/executive-summary?from=2031-02-30&format=pdf', 400, 'from'],
            ['/reports/generate/technique/not-a-technique', 400, 'id'],
            ['/reports/generate/technique/T0000.999?format=pdf', 404, undefined],
            ['/reports/generate/purple-campaign/not-a-campaign', 400, 'id'],
            [`/reports/generate/purple-campaign/${Crypto.randomUUID()}?format=pdf`, 404, undefined]
        ];
        for (const [url, status, field] of cases) {
            const res = await request('blue_lead', url);
            expect(res.statusCode, url).to.equal(status);
            if (field) {
                expect(json(res).fields ?? json(res).validation?.keys, url).to.include(field);
            }
        }

        expect(Number((await context.knex('report_renders').count('* as n').first())!.n)).to.equal(rendersBefore);
        expect((await request('viewer', `/reports/renders/${Crypto.randomUUID()}`)).statusCode).to.equal(404);
    });

    it('ranks gaps by the stored risk (hand-computed) and shows it in the HTML', async () => {

        // Three gaps of our own, used by more tracked actors than any real technique (ties on risk go to more actors):
        // untested, 5 × 5 × (1 − 0/100) = 25 and 100,000 actors; not covered, score 0: 25 and 99,999 actors, so second;
        // partial, 5 × 5 × (1 − 20/100) = 20 with 100,001 actors: a lower risk ranks below whatever its actors
        const [top, second, third] = [await uniqueTechnique(context.knex), await uniqueTechnique(context.knex), await uniqueTechnique(context.knex)];
        await context.knex('techniques').where('mitre_id', second).update({ coverage_status: 'not_covered', score: 0 });
        await context.knex('techniques').where('mitre_id', third).update({ coverage_status: 'partial', score: 20 });
        const profile = (id: string, facts: { coverage_status: string; score: number | null; likelihood: number; impact: number; actor_count: number }) => {

            const risk = riskOf(facts.likelihood, facts.impact, facts.score);
            return { technique_id: id, domain: 'enterprise-attack', is_subtechnique: false, own_score: facts.score, impact_source: 'technique', risk, band: bandOf(risk), reason: 'documents test', computed_at: new Date(), ...facts };
        };

        await context.knex('risk_profiles').insert([
            profile(top, { coverage_status: 'untested', score: null, likelihood: 5, impact: 5, actor_count: 100_000 }),
            profile(second, { coverage_status: 'not_covered', score: 0, likelihood: 5, impact: 5, actor_count: 99_999 }),
            profile(third, { coverage_status: 'partial', score: 20, likelihood: 5, impact: 5, actor_count: 100_001 })
        ]);
        try {
            const coverage = json(await request('viewer', '/reports/generate/coverage-summary'));
            expect(coverage.gaps[0]).to.include({ technique_id: top, risk: 25, likelihood: 5, impact: 5, band: 'critical', actors: 100_000, score: null });
            expect(coverage.gaps[1]).to.include({ technique_id: second, risk: 25, actors: 99_999, score: 0 });
            const ranked = coverage.gaps.map((gap: { technique_id: string }) => gap.technique_id);
            const at = ranked.indexOf(third);
            expect(at === -1 || coverage.gaps.slice(0, at).every((gap: { risk: number }) => gap.risk >= 20)).to.be.true();
            expect(riskOf(5, 5, 20)).to.equal(20);

            const html = await request('viewer', '/reports/generate/coverage-summary?format=html');
            expect(html.payload).to.contain(top).and.to.contain('likelihood × impact × (1 − score/100)');
        }
        finally {
            await context.knex('risk_profiles').whereIn('technique_id', [top, second, third]).delete();
        }
    });

    it('answers coverage and quarterly documents as data and HTML', async () => {

        const coverage = json(await request('viewer', '/reports/generate/coverage-summary'));
        expect(documentData.validate(coverage).error).to.not.exist();
        expect(coverage.period).to.be.null();
        expect(coverage.trend).to.have.length(13);
        const total = Object.values(coverage.coverage.by_status as Record<string, number>).reduce((sum, value) => sum + value, 0);
        expect(coverage.scope.techniques).to.equal(total);
        // Gaps carry the stored risk of their profile, highest first
        const profiles = await context.knex('risk_profiles').whereIn('technique_id', coverage.gaps.map((gap: { technique_id: string }) => gap.technique_id)).select('technique_id', 'risk', 'likelihood', 'impact', 'band');
        const profileOf = new Map(profiles.map((row) => [row.technique_id, row]));
        for (const gap of coverage.gaps) {
            const profile = profileOf.get(gap.technique_id);
            expect(gap).to.include(profile ? { risk: profile.risk, likelihood: profile.likelihood, impact: profile.impact, band: profile.band } : { risk: null, likelihood: null, band: null });
        }

        const risks = coverage.gaps.map((gap: { risk: number | null }) => gap.risk ?? -1);
        expect(risks).to.equal([...risks].sort((a: number, b: number) => b - a));

        const quarterly = json(await request('admin', '/reports/generate/quarterly-summary?quarter=2031-Q1'));
        expect(quarterly.period).to.equal({ from: '2031-01-01', to: '2031-03-31', previous_from: '2030-10-01', previous_to: '2030-12-31' });
        expect(quarterly.activity.current.tests_validated).to.equal(6);
        expect(quarterly.activity.previous.tests_validated).to.equal(1);
        const html = await request('admin', '/reports/generate/quarterly-summary?quarter=2031-Q1&format=html');
        expect(html.payload).to.contain('Quarterly review').and.to.contain('Quarter 2031-Q1');
    });

    it('answers a purple-campaign report: scope, progress, the tests the reader may open with outcomes, evidence SHA-256 and time to detect, the PDF saying what the JSON says', async () => {

        const lead = (url: string, payload: object) => context.server.inject({ method: 'POST', url: `/api/v1${url}`, auth: context.as('red_lead'), payload });
        const name = `Q1 <b>purple</b> ${internals.suffix}`;
        const campaign = json(await lead('/campaigns', { name, description: 'Quarterly exercise', start_date: '2031-01-01', end_date: '2031-01-31' }));
        for (const test of ['A', 'B', 'D', 'R']) {
            expect((await lead(`/campaigns/${campaign.id}/tests`, { test_id: ids[test] })).statusCode).to.equal(201);
        }

        // The campaign's one technique is untested: a gap of its scope, ranked by its stored risk, 4 × 5 × (1 − 0) = 20
        const risk = riskOf(4, 5, null);
        await context.knex('risk_profiles').insert({ technique_id: techniqueId, domain: 'enterprise-attack', is_subtechnique: false, own_score: null, impact_source: 'technique', risk, band: bandOf(risk), reason: 'documents test', computed_at: new Date(), coverage_status: 'untested', score: null, likelihood: 4, impact: 5, actor_count: 3 });

        // The viewer: A, B and D (R is restricted). Time to detect over A (120 s) and B (600 s): median and mean 360 s
        const url = `/reports/generate/purple-campaign/${campaign.id}`;
        const viewer = json(await request('viewer', url));
        expect(documentData.validate(viewer).error).to.not.exist();
        expect(viewer).to.include({ kind: 'purple-campaign', title: `Purple-team campaign report: ${name}`, subtitle: 'Campaign draft, 2031-01-01 to 2031-01-31' });
        expect(viewer.campaign).to.equal({
            id: campaign.id, name, type: 'purple_team', status: 'draft', description: 'Quarterly exercise', start_date: '2031-01-01', end_date: '2031-01-31', threat_actor: null,
            techniques: [techniqueId], progress: { total: 3, validated: 3, percent: 100, by_state: { validated: 3 } }
        });
        expect(viewer.scope).to.equal({ techniques: 1, tested: viewer.scope.tested, tests: 3 });
        expect(viewer.outcomes).to.equal({ prevented: 1, alerted: 1, logged: 0, not_detected: 1, not_applicable: 0 });
        expect(viewer.time_to_detect).to.include({ count: 2, median_seconds: 360, mean_seconds: 360 });
        expect(viewer.tests.map((test: { id: string }) => test.id)).to.equal([ids.D, ids.B, ids.A]);
        expect(viewer.tests[2]).to.include({ technique_id: techniqueId, detection_outcome: 'prevented', time_to_detect_seconds: 120, evidence: [{ name: 'a-capture.pcap', sha256: internals.sha }] });
        expect(viewer.gaps).to.equal([{ technique_id: techniqueId, name: `Technique ${techniqueId}`, coverage_status: 'untested', score: null, impact: 5, likelihood: 4, actors: 3, risk: 20, band: bandOf(20) }]);
        expect(JSON.stringify(viewer)).to.not.contain(internals.marker);

        // A lead opens R too: 4 tests, 3 of them timed (60 s more)
        const admin = json(await request('admin', url));
        expect(admin.campaign.progress).to.equal({ total: 4, validated: 4, percent: 100, by_state: { validated: 4 } });
        expect(admin.time_to_detect).to.include({ count: 3, median_seconds: 120 });
        expect(admin.tests.map((test: { id: string }) => test.id)).to.include(ids.R);

        // HTML: the name escaped, nothing hidden
        const html = await request('viewer', `${url}?format=html`);
        expect(html.payload).to.contain('Q1 &lt;b&gt;purple&lt;/b&gt;').and.to.not.contain('<b>purple</b>').and.to.not.contain(internals.marker);

        // The PDF's text carries the JSON's figures
        worker ??= await startDocumentWorker(await testDatabaseUrl(), context.services, { chromiumPath: process.env.CHROMIUM_PATH });
        const pdf = await pdfOf('viewer', `${url}?format=pdf`);
        expect(pdf.headers['content-disposition']).to.contain(`purple-campaign-${campaign.id}`);
        const text = await pdfText(pdf.rawPayload);
        const flat = text.replace(/\s+/g, '');
        for (const test of viewer.tests as { title: string }[]) {
            expect(flat).to.contain(test.title.replace(/\s+/g, ''));
        }

        expect(flat).to.contain(name.replace(/\s+/g, ''));
        expect(flat).to.contain(internals.sha);
        expect(text).to.contain('a-capture.pcap');
        expect(text).to.contain(`${viewer.campaign.progress.validated} of ${viewer.campaign.progress.total} tests validated (${viewer.campaign.progress.percent}%)`);
        expect(text).to.contain('6 min');                     // median 360 s
        expect(text).to.contain('Gaps ranked by risk').and.to.contain(`1 ${techniqueId} Technique ${techniqueId} untested - 4 5 3 20`);
        expect(text).to.not.contain(internals.marker);
        await context.knex('risk_profiles').where('technique_id', techniqueId).delete();
    });
});
