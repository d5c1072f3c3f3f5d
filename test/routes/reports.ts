import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import { stringify } from 'csv-stringify/sync';

import type { Test } from '../../server/models';
import type { Role } from '../../server/policy';
import { csvOptions, neutralise } from '../../server/services/csv';
import { coverageSummary, remediationPage, testResultsPage } from '../../server/schemas/reports';

import { json, testRow } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    letters: (n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + Crypto.randomInt(0, 26))).join(''),

    // RFC 4180 as a reader parses it: quoted fields, doubled quotes, CRLF between records
    parseCsv: (text: string): string[][] => {

        const rows: string[][] = [];
        let row: string[] = [];
        let field = '';
        let quoted = false;
        for (let i = 0; i < text.length; ++i) {
            const char = text[i]!;
            if (quoted) {
                if (char === '"' && text[i + 1] === '"') {
                    field += '"';
                    ++i;
                }
                else if (char === '"') {
                    quoted = false;
                }
                else {
                    field += char;
                }
            }
            else if (char === '"') {
                quoted = true;
            }
            else if (char === ',') {
                row.push(field);
                field = '';
            }
            else if (char === '\r' && text[i + 1] === '\n') {
                row.push(field);
                rows.push(row);
                row = [];
                field = '';
                ++i;
            }
            else {
                field += char;
            }
        }

        return rows;
    }
};


describe('Data reports', () => {

    let context: TestContext;
    const get = (role: Role, url: string) => context.server.inject({ method: 'GET', url: `/api/v1/reports${url}`, auth: context.as(role) });

    // One tactic and platform of this run's own: four parent techniques (one per coverage status) and a sub-technique
    const platform = `plat-${internals.letters(8)}`;
    const tactic = `tac-${internals.letters(8)}`;
    const hidden = `HIDDEN${Crypto.randomBytes(4).toString('hex')}`;
    const techniques: string[] = [];
    let other = '';
    let tacticId = '';
    const tests: Record<string, Test> = {};

    const technique = async (status: string, score: number | null, parent?: string) => {

        // Ids of ATT&CK's own form (other modules' answers and the Navigator parser check it), free in the shared database
        let id: string;
        do {
            id = parent ? `${parent}.${String(Crypto.randomInt(100, 1000))}` : `T7${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}`;
        } while (await context.knex('techniques').where('mitre_id', id).first());

        await context.knex('techniques').insert({ mitre_id: id, domain: 'enterprise-attack', name: `Report technique ${id}`, platforms: [platform], coverage_status: status, score, is_subtechnique: Boolean(parent), parent_id: parent ?? null });
        return id;
    };

    before(async () => {

        context = await init({ redis: false });
        const [tacticRow] = await context.knex('tactics').insert({ stix_id: `x-mitre-tactic--${Crypto.randomUUID()}`, mitre_id: `TA9${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}`, domain: 'enterprise-attack', name: `Tactic ${tactic}`, shortname: tactic, matrix_order: 99 }).returning('id');
        techniques.push(await technique('covered', 90), await technique('partial', 40), await technique('not_covered', 0), await technique('untested', null));
        techniques.push(await technique('covered', 100, techniques[0]));
        tacticId = tacticRow.id;
        await context.knex('technique_tactics').insert(techniques.map((id) => ({ technique_id: id, tactic_id: tacticRow.id })));
        other = await technique('untested', null);
        await context.knex('techniques').where('mitre_id', other).update({ platforms: [] });

        const day = (iso: string) => new Date(iso);
        tests.t1 = await testRow(context.knex, { technique_id: techniques[0], title: '=HYPERLINK("http://evil.example","x")', data_classification: 'internal', state: 'validated', detection_outcome: 'alerted', executed_at: day('2026-11-20T10:00:00Z'), detected_at: day('2026-11-20T10:02:00Z'), priority: 'high' });
        tests.t2 = await testRow(context.knex, { technique_id: techniques[0], title: `${hidden} confidential`, data_classification: 'confidential', state: 'blue_evaluating', detection_outcome: 'not_detected', executed_at: day('2026-11-25T23:30:00Z'), detected_at: null, remediation_status: 'open', remediation_due: '2020-01-01', remediation_owner_id: context.users.blue_lead.id });
        tests.t3 = await testRow(context.knex, { technique_id: techniques[1], title: `${hidden} restricted`, data_classification: 'restricted', red_assignee_id: context.users.red_tech.id, state: 'in_review', detection_outcome: 'logged', executed_at: day('2026-11-30T08:00:00Z'), detected_at: day('2026-11-30T09:00:00Z'), remediation_status: 'in_progress', remediation_due: '2099-01-01', jira_issue_key: 'SEC-12' });
        tests.t4 = await testRow(context.knex, { technique_id: techniques[4], title: '+cmd|calc', data_classification: 'public', state: 'draft', remediation_status: 'resolved' });
        tests.t5 = await testRow(context.knex, { technique_id: other, title: 'Autre tactique — détection 検出 ✓', state: 'validated', detection_outcome: 'prevented', executed_at: day('2026-12-01T00:00:00Z') });
    });

    after(async () => {

        // The tactic of this run's own goes: it would sort after Impact in every later script's matrix
        await context.knex('technique_tactics').where('tactic_id', tacticId).delete();
        await context.knex('tactics').where('id', tacticId).delete();
        await context.stop();
    });

    it('summarises coverage per status and tactic, with hand-computed percentages, and counts only the tests the reader may see', async () => {

        const res = await get('admin', `/coverage-summary?platform=${platform}`);
        expect(res.statusCode, res.payload).to.equal(200);
        const body = json(res);
        // Parents only (the sub-technique is rolled up into its parent): 1 covered, 1 partial, 1 not covered, 1 untested
        // → 100 × (1 + 1/2) / 4 = 37.5; the average of the scores 90, 40, 0 = 43.3
        const counts = { techniques: 4, untested: 1, not_covered: 1, partial: 1, covered: 1, coverage_percent: 37.5 };
        expect(body).to.equal({
            generated_at: body.generated_at,
            domain: 'enterprise-attack',
            totals: { ...counts, average_score: 43.3 },
            by_tactic: [{ tactic_id: body.by_tactic[0].tactic_id, shortname: tactic, name: `Tactic ${tactic}`, ...counts }],
            tests: { total: 4, validated: 1 }
        });

        expect(json(await get('viewer', `/coverage-summary?platform=${platform}`)).tests).to.equal({ total: 2, validated: 1 });
        expect(json(await get('red_tech', `/coverage-summary?platform=${platform}`)).tests).to.equal({ total: 4, validated: 1 });
        expect(json(await get('blue_tech', `/coverage-summary?platform=${platform}`)).tests).to.equal({ total: 3, validated: 1 });
        expect(json(await get('viewer', `/coverage-summary?platform=none-${platform}`)).totals).to.equal({ techniques: 0, untested: 0, not_covered: 0, partial: 0, covered: 0, coverage_percent: 0, average_score: null });
        expect((await get('viewer', '/coverage-summary?domain=pre-attack')).statusCode).to.equal(400);
    });

    it('answers coverage as a CSV download, one quoted row per technique and sub-technique', async () => {

        const res = await get('viewer', `/coverage-csv?platform=${platform}`);
        expect(res.statusCode).to.equal(200);
        expect(res.headers['content-type']).to.equal('text/csv; charset=utf-8; header=present');
        expect(res.headers['content-disposition']).to.match(/^attachment; filename="aegis-coverage-\d{4}-\d{2}-\d{2}\.csv"$/);
        const rows = internals.parseCsv(res.payload);
        expect(rows[0]).to.equal(['technique_id', 'name', 'is_subtechnique', 'parent_id', 'tactics', 'platforms', 'coverage_status', 'score', 'own_coverage_status', 'own_score', 'needs_review', 'latest_validated_at', 'tests_total', 'tests_validated']);
        const sorted = [...techniques].sort();
        expect(rows.slice(1).map((row) => row[0])).to.equal(sorted);
        const parent = rows.find((row) => row[0] === techniques[0])!;
        expect(parent).to.equal([techniques[0], `Report technique ${techniques[0]}`, 'false', '', tactic, platform, 'covered', '90', 'untested', '', 'false', '', '1', '1']);       // the viewer sees t1, not t2
        expect(rows.find((row) => row[0] === techniques[4])).to.equal([techniques[4], `Report technique ${techniques[4]}`, 'true', techniques[0], tactic, platform, 'covered', '100', 'untested', '', 'false', '', '1', '0']);
        expect(internals.parseCsv((await get('admin', `/coverage-csv?platform=${platform}`)).payload).find((row) => row[0] === techniques[0])!.slice(12)).to.equal(['2', '1']);
        expect(res.payload.startsWith('"technique_id","name",')).to.be.true();
    });

    it('lists test results with every filter, a summary over all matching rows, and only the tests the reader may see', async () => {

        const ids = async (role: Role, query: string) => {

            const res = await get(role, `/test-results?${query}`);
            expect(res.statusCode, res.payload).to.equal(200);
            const body = json(res);
            expect(testResultsPage.validate(body).error).to.not.exist();
            return body.items.map((item: { id: string }) => item.id);
        };

        const all = json(await get('admin', `/test-results?tactic=${tactic}`));
        expect(testResultsPage.validate(all).error).to.not.exist();
        expect(all.total).to.equal(4);
        expect(all.items.map((item: { id: string }) => item.id)).to.equal([tests.t3!.id, tests.t2!.id, tests.t1!.id, tests.t4!.id]);      // executed, newest first; never executed last
        expect(all.summary).to.equal({ by_state: { validated: 1, blue_evaluating: 1, in_review: 1, draft: 1 }, by_outcome: { alerted: 1, not_detected: 1, logged: 1, none: 1 } });
        const t1 = all.items[2];
        expect(t1).to.equal({
            id: tests.t1!.id, title: tests.t1!.title, technique_id: techniques[0], technique_name: `Report technique ${techniques[0]}`, tactics: tactic, state: 'validated', priority: 'high',
            data_classification: 'internal', platform: null, attack_result: 'succeeded', detection_outcome: 'alerted', executed_at: '2026-11-20T10:00:00.000Z', detected_at: '2026-11-20T10:02:00.000Z',
            time_to_detect_seconds: 120, validated_at: t1.validated_at, red_assignee_id: null, blue_assignee_id: null, remediation_status: 'none', created_at: t1.created_at
        });

        expect(await ids('viewer', `tactic=${tactic}`)).to.equal([tests.t1!.id, tests.t4!.id]);
        expect(await ids('blue_tech', `tactic=${tactic}`)).to.equal([tests.t2!.id, tests.t1!.id, tests.t4!.id]);
        expect(await ids('red_tech', `tactic=${tactic}`)).to.equal([tests.t3!.id, tests.t2!.id, tests.t1!.id, tests.t4!.id]);
        expect(json(await get('viewer', `/test-results?tactic=${tactic}`)).summary).to.equal({ by_state: { validated: 1, draft: 1 }, by_outcome: { alerted: 1, none: 1 } });

        expect(await ids('admin', `tactic=${tactic}&outcome=alerted`)).to.equal([tests.t1!.id]);
        expect(await ids('admin', `tactic=${tactic}&state=draft`)).to.equal([tests.t4!.id]);
        expect(await ids('admin', `tactic=${tactic}&date_from=2026-11-21&date_to=2026-11-25`)).to.equal([tests.t2!.id]);          // the 25th until its last second, UTC
        expect(await ids('admin', `tactic=${tactic}&date_to=2026-11-24`)).to.equal([tests.t1!.id]);
        expect(await ids('admin', `technique_id=${other}`)).to.equal([tests.t5!.id]);
        expect(await ids('admin', `tactic=${tactic}&sort=executed_at&order=asc&limit=2`)).to.equal([tests.t1!.id, tests.t2!.id]);
        expect(await ids('admin', `tactic=${tactic}&limit=2&offset=3`)).to.equal([tests.t4!.id]);
        expect(json(await get('admin', `/test-results?tactic=${tactic}&limit=2&offset=10`))).to.include({ total: 4, items: [] });

        // campaign_id: the members of a campaign (campaign_tests), still only those the reader may see
        const lead = (url: string, payload: object) => context.server.inject({ method: 'POST', url: `/api/v1${url}`, auth: context.as('red_lead'), payload });
        const campaign = JSON.parse((await lead('/campaigns', { name: `Report campaign ${internals.letters(8)}` })).payload);
        for (const test of [tests.t1!, tests.t2!, tests.t3!]) {
            expect((await lead(`/campaigns/${campaign.id}/tests`, { test_id: test.id })).statusCode).to.equal(201);
        }

        expect(await ids('admin', `campaign_id=${campaign.id}`)).to.equal([tests.t3!.id, tests.t2!.id, tests.t1!.id]);
        expect(await ids('blue_tech', `campaign_id=${campaign.id}`)).to.equal([tests.t2!.id, tests.t1!.id]);
        expect(await ids('viewer', `campaign_id=${campaign.id}`)).to.equal([tests.t1!.id]);
        expect(await ids('admin', `campaign_id=${campaign.id}&outcome=not_detected&tactic=${tactic}`)).to.equal([tests.t2!.id]);
        expect(json(await get('viewer', `/test-results?campaign_id=${campaign.id}`)).summary).to.equal({ by_state: { validated: 1 }, by_outcome: { alerted: 1 } });
        expect(internals.parseCsv((await get('blue_tech', `/test-results?campaign_id=${campaign.id}&format=csv`)).payload).slice(1).map((row) => row[0])).to.equal([tests.t2!.id, tests.t1!.id]);
        expect(await ids('admin', `campaign_id=${Crypto.randomUUID()}`)).to.equal([]);

        for (const query of ['format=xml', 'outcome=missed', 'state=done', 'date_from=2026-13-45x', 'tactic=Robert%27);DROP', 'sort=title', 'limit=0', 'tactic=TA1', 'extra=1', 'campaign_id=x']) {
            const res = await get('viewer', `/test-results?${query}`);
            expect(res.statusCode, query).to.equal(400);
        }
    });

    it('streams test results as RFC 4180 CSV with formulas neutralised, and only the rows the reader may see', async () => {

        const res = await get('admin', `/test-results?tactic=${tactic}&format=csv`);
        expect(res.statusCode).to.equal(200);
        expect(res.headers['content-type']).to.equal('text/csv; charset=utf-8; header=present');
        expect(res.headers['content-disposition']).to.match(/^attachment; filename="aegis-test-results-\d{4}-\d{2}-\d{2}\.csv"$/);
        expect(res.payload.endsWith('\r\n')).to.be.true();
        expect(res.payload).to.include('"\'=HYPERLINK(""http://evil.example"",""x"")"');
        const rows = internals.parseCsv(res.payload);
        expect(rows[0]).to.equal(['id', 'title', 'technique_id', 'technique_name', 'tactics', 'state', 'priority', 'data_classification', 'platform', 'attack_result', 'detection_outcome', 'executed_at', 'detected_at', 'time_to_detect_seconds', 'validated_at', 'red_assignee_id', 'blue_assignee_id', 'remediation_status', 'created_at']);
        expect(rows.slice(1).map((row) => row[0])).to.equal([tests.t3!.id, tests.t2!.id, tests.t1!.id, tests.t4!.id]);
        const t1 = rows[3]!;
        expect(t1.slice(0, 14)).to.equal([tests.t1!.id, '\'=HYPERLINK("http://evil.example","x")', techniques[0]!, `Report technique ${techniques[0]}`, tactic, 'validated', 'high', 'internal', '', 'succeeded', 'alerted', '2026-11-20T10:00:00.000Z', '2026-11-20T10:02:00.000Z', '120']);
        expect(rows[4]![1]).to.equal('\'+cmd|calc');

        const viewer = await get('viewer', `/test-results?tactic=${tactic}&format=csv&limit=1`);         // the page window does not apply to CSV
        expect(viewer.payload).to.not.include(hidden);
        expect(internals.parseCsv(viewer.payload).slice(1).map((row) => row[0])).to.equal([tests.t1!.id, tests.t4!.id]);
        expect(internals.parseCsv((await get('red_tech', `/test-results?tactic=${tactic}&format=csv&outcome=logged`)).payload).slice(1).map((row) => row[0])).to.equal([tests.t3!.id]);

        // UTF-8 without a byte-order mark: the bytes of a title in three scripts, as written
        const utf8 = await get('viewer', `/test-results?technique_id=${other}&format=csv`);
        expect(utf8.rawPayload.subarray(0, 3)).to.equal(Buffer.from('"id'));
        expect(utf8.rawPayload.includes(Buffer.from('"Autre tactique — détection 検出 ✓"', 'utf8'))).to.be.true();
        expect(internals.parseCsv(utf8.payload)[1]![1]).to.equal(tests.t5!.title);
    });

    it('neutralises every cell a spreadsheet would run: = + - @, tab, CR, LF and NUL, and quotes every field', () => {

        for (const start of ['=', '+', '-', '@', '\t', '\r', '\n', '\0']) {
            expect(neutralise(`${start}1+1`)).to.equal(`'${start}1+1`);
        }

        expect(neutralise('1+1')).to.equal('1+1');
        expect(neutralise('')).to.equal('');
        const text = stringify([{ a: '-2', b: 'say "hi"', c: null, d: true, e: new Date('2026-01-02T03:04:05Z'), f: 7, g: { x: '=1' } }], csvOptions(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((key) => ({ key, header: key }))));
        expect(text).to.equal('"a","b","c","d","e","f","g"\r\n"\'-2","say ""hi""","","true","2026-01-02T03:04:05.000Z","7","{""x"":""=1""}"\r\n');
    });

    it('tracks remediation with overdue items, filters, a summary, CSV, and the visibility rule', async () => {

        const page = async (role: Role, query: string) => {

            const res = await get(role, `/remediation-status?${query}`);
            expect(res.statusCode, res.payload).to.equal(200);
            const body = json(res);
            expect(remediationPage.validate(body).error).to.not.exist();
            return body;
        };

        const all = await page('admin', `tactic=${tactic}`);
        expect(all.items.map((item: { id: string }) => item.id)).to.equal([tests.t2!.id, tests.t3!.id, tests.t4!.id]);                // due first, none last
        expect(all.summary).to.equal({ by_status: { open: 1, in_progress: 1, resolved: 1 }, overdue: 1 });
        expect(all.items[0]).to.equal({
            id: tests.t2!.id, title: tests.t2!.title, technique_id: techniques[0], technique_name: `Report technique ${techniques[0]}`, state: 'blue_evaluating', detection_outcome: 'not_detected',
            remediation_status: 'open', remediation_owner_id: context.users.blue_lead.id, remediation_due: '2020-01-01', overdue: true, jira_issue_key: null, validated_at: null, updated_at: all.items[0].updated_at
        });
        expect(all.items[1]).to.include({ remediation_due: '2099-01-01', overdue: false, jira_issue_key: 'SEC-12' });

        expect((await page('viewer', `tactic=${tactic}`)).items.map((item: { id: string }) => item.id)).to.equal([tests.t4!.id]);
        expect((await page('viewer', `tactic=${tactic}`)).summary).to.equal({ by_status: { resolved: 1 }, overdue: 0 });
        expect((await page('admin', `tactic=${tactic}&overdue=true`)).items.map((item: { id: string }) => item.id)).to.equal([tests.t2!.id]);
        expect((await page('admin', `tactic=${tactic}&overdue=false`)).items.map((item: { id: string }) => item.id)).to.equal([tests.t3!.id, tests.t4!.id]);
        expect((await page('admin', `tactic=${tactic}&remediation_status=none`)).items.map((item: { id: string }) => item.id)).to.equal([tests.t1!.id]);
        expect((await page('admin', `tactic=${tactic}&owner_id=${context.users.blue_lead.id}`)).items.map((item: { id: string }) => item.id)).to.equal([tests.t2!.id]);

        const csv = await get('blue_tech', `/remediation-status?tactic=${tactic}&format=csv`);
        expect(csv.headers['content-disposition']).to.match(/aegis-remediation-/);
        const rows = internals.parseCsv(csv.payload);
        expect(rows[0]).to.equal(['id', 'title', 'technique_id', 'technique_name', 'state', 'detection_outcome', 'remediation_status', 'remediation_owner_id', 'remediation_due', 'overdue', 'jira_issue_key', 'validated_at', 'updated_at']);
        expect(rows.slice(1).map((row) => [row[0], row[8], row[9]])).to.equal([[tests.t2!.id, '2020-01-01', 'true'], [tests.t4!.id, '', 'false']]);
        expect(csv.payload).to.not.include('restricted');

        for (const query of ['remediation_status=closed', 'owner_id=me', 'overdue=maybe', 'sort=title']) {
            expect((await get('viewer', `/remediation-status?${query}`)).statusCode, query).to.equal(400);
        }
    });

    it('streams a large CSV through a cursor and gives the connection back, also when the reader goes away', async () => {

        const big = await technique('untested', null);
        await context.knex.raw(`insert into tests (title, technique_id, state, data_classification)
            select 'Bulk ' || g, ?, 'draft', 'internal' from generate_series(1, 3000) g`, [big]);

        const pool = (context.knex.client as { pool: { numUsed: () => number } }).pool;
        const released = async () => {

            for (let i = 0; i < 500 && pool.numUsed() > 0; ++i) {
                await new Promise((resolve) => setTimeout(resolve, 10));
            }

            return pool.numUsed();
        };

        const res = await get('viewer', `/test-results?technique_id=${big}&format=csv`);
        expect(internals.parseCsv(res.payload)).to.have.length(3001);
        expect(await released()).to.equal(0);

        const stream = await context.services.reports.testResultsCsv(context.actor('viewer'), { technique_id: big });
        const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
        expect(first.toString()).to.startWith('"id","title"');
        stream.destroy();
        expect(await released()).to.equal(0);
        expect((await get('viewer', `/test-results?technique_id=${big}&limit=1`)).statusCode).to.equal(200);     // the pool still serves
        await context.knex('tests').where('technique_id', big).delete();
    });

    it('validates the coverage summary against its declared schema', async () => {

        expect(coverageSummary.validate(json(await get('blue_tech', '/coverage-summary'))).error).to.not.exist();
    });
});
