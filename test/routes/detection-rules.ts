import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { parseSigmaRule } from '../../server/services/detection-rules';

import { callsAs } from '../helpers/calls';
import { testRow, uniqueTechnique } from '../helpers/factories';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    sigma: Path.join(sharedDir, 'data', 'sigma'),
    index: () => JSON.parse(Fs.readFileSync(Path.join(internals.sigma, 'index.json'), 'utf8')) as { rules: { path: string; id: string; title: string; status: string; level: string; author: string | null; attack_techniques: string[]; simulation: { atomic_guid: string }[] | null }[] }
};


describe('Detection rule routes', () => {

    let context: TestContext;
    const { request, ok } = callsAs(() => context);

    const unique = (prefix: string) => `${prefix} ${Crypto.randomBytes(4).toString('hex')}`;
    const count = async (table: string) => Number((await context.knex(table).count('* as n').first())!.n);

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('creates, reads, lists, updates and deletes a rule', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const [asset] = await context.knex('detection_assets').insert({ name: unique('Sentinel'), type: 'siem' }).returning('id');
        const name = unique('Encoded PowerShell');
        const created = await ok('blue_lead', 'POST', '/detection-rules', {
            name, language: 'kql', query: 'DeviceProcessEvents | where ProcessCommandLine has "-enc"', technique_ids: [techniqueId], platforms: ['Windows'],
            asset_id: asset.id, status: 'stable', severity: 'high', author: 'Blue team', license: 'internal'
        }, 201);
        expect(created).to.equal({
            id: created.id, name, language: 'kql', query: 'DeviceProcessEvents | where ProcessCommandLine has "-enc"', description: null, technique_ids: [techniqueId], platforms: ['Windows'],
            asset_id: asset.id, status: 'stable', severity: 'high', author: 'Blue team', license: 'internal', source: 'manual', source_ref: null, source_path: null, atomic_refs: [],
            created_by: context.users.blue_lead.id, created_at: created.created_at, updated_at: created.updated_at, expected_templates: [], evaluations: []
        });

        expect(await ok('viewer', 'GET', `/detection-rules/${created.id}`)).to.equal(created);
        const listed = await ok('red_tech', 'GET', `/detection-rules?technique_id=${techniqueId}&language=kql&severity=high`);
        expect(listed.items.map((item: { id: string }) => item.id)).to.equal([created.id]);
        expect((await ok('red_tech', 'GET', `/detection-rules?technique_id=${techniqueId}&language=spl`)).total).to.equal(0);

        const updated = await ok('admin', 'PATCH', `/detection-rules/${created.id}`, { status: 'deprecated', severity: 'low', asset_id: null });
        expect(updated).to.include({ status: 'deprecated', severity: 'low', asset_id: null, name });
        await ok('blue_lead', 'DELETE', `/detection-rules/${created.id}`, undefined, 204);
        expect((await request('viewer', 'GET', `/detection-rules/${created.id}`)).statusCode).to.equal(404);
    });

    it('refuses bad input and unknown ids, writing nothing', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const [rule] = await context.knex('detection_rules').insert({ name: unique('Rule'), language: 'spl', query: 'index=main' }).returning('id');
        const counted = await count('detection_rules');
        const refusals: [string, string, object | undefined, number, string][] = [
            ['POST', '/detection-rules', { name: 'x', language: 'lucene', query: 'q' }, 400, 'language'],
            ['POST', '/detection-rules', { name: 'x', language: 'kql' }, 400, 'query'],
            ['POST', '/detection-rules', { name: 'x', language: 'kql', query: 'q', severity: 'urgent' }, 400, 'severity'],
            ['POST', '/detection-rules', { name: 'x', language: 'kql', query: 'q', status: 'live' }, 400, 'status'],
            ['POST', '/detection-rules', { name: 'x', language: 'kql', query: 'q', technique_ids: ['T0000.996'] }, 400, 'technique_ids'],
            ['POST', '/detection-rules', { name: 'x', language: 'kql', query: 'q', technique_ids: ['bad'] }, 400, 'technique_ids'],
            ['POST', '/detection-rules', { name: 'x', language: 'kql', query: 'q', asset_id: Crypto.randomUUID() }, 400, 'asset_id'],
            ['PATCH', `/detection-rules/${rule.id}`, { technique_ids: [techniqueId, 'T0000.995'] }, 400, 'technique_ids'],
            ['PATCH', `/detection-rules/${Crypto.randomUUID()}`, { name: 'y' }, 404, 'not found'],
            ['DELETE', `/detection-rules/${Crypto.randomUUID()}`, undefined, 404, 'not found'],
            ['GET', '/detection-rules?sort=query', undefined, 400, 'sort'],
            ['GET', `/detection-rules?expected_for_test=${Crypto.randomUUID()}`, undefined, 404, 'not found'],
            ['GET', `/detection-rules/${Crypto.randomUUID()}`, undefined, 404, 'not found'],
            ['GET', '/detection-rules/not-a-uuid', undefined, 400, 'id'],
            ['PATCH', `/detection-rules/${rule.id}`, {}, 400, 'value'],
            ['PATCH', `/detection-rules/${rule.id}`, { asset_id: Crypto.randomUUID() }, 400, 'asset_id'],
            ['POST', '/detection-rules/evaluate', { rule_id: 'x', test_id: Crypto.randomUUID(), fired: true }, 400, 'rule_id']
        ];

        for (const [method, url, payload, status, text] of refusals) {
            const res = await request('admin', method, url, payload);
            expect(res.statusCode, `${method} ${url}: ${res.payload}`).to.equal(status);
            expect(res.payload).to.contain(text);
        }

        expect(await count('detection_rules')).to.equal(counted);
        expect(await context.knex('detection_rules').where('id', rule.id).first('name', 'technique_ids', 'asset_id')).to.include({ technique_ids: [], asset_id: null });
    });

    it('records whether a rule fired for a test, and while blue evaluates puts a fired rule into the test\'s detections', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const [asset] = await context.knex('detection_assets').insert({ name: unique('Defender'), type: 'edr' }).returning('id');
        const rule = await ok('blue_lead', 'POST', '/detection-rules', { name: unique('Rule'), language: 'kql', query: 'q', technique_ids: [techniqueId], asset_id: asset.id }, 201);
        const other = await ok('blue_lead', 'POST', '/detection-rules', { name: unique('Rule'), language: 'spl', query: 'q', technique_ids: [techniqueId] }, 201);
        const test = await testRow(context.knex, { technique_id: techniqueId, state: 'blue_evaluating', detections: [], detection_outcome: null, detected_at: null });

        const fired = await ok('blue_tech', 'POST', '/detection-rules/evaluate', { rule_id: rule.id, test_id: test.id, fired: true, notes: 'alert 42' });
        expect(fired.detections_updated).to.be.true();
        expect(fired.evaluation).to.include({ rule_id: rule.id, test_id: test.id, fired: true, notes: 'alert 42', created_by: context.users.blue_tech.id });
        let detail = await ok('admin', 'GET', `/tests/${test.id}`);
        expect(detail.detections.map((item: Record<string, unknown>) => [item.asset_id, item.outcome, item.rule_ids])).to.equal([[asset.id, 'alerted', [rule.id]]]);
        expect(detail.detection_outcome).to.equal('alerted');

        // Again: one evaluation per rule and test, the latest answer kept; the detection already names the rule
        const again = await ok('blue_lead', 'POST', '/detection-rules/evaluate', { rule_id: rule.id, test_id: test.id, fired: true });
        expect(again.detections_updated).to.be.false();
        expect(again.evaluation.id).to.equal(fired.evaluation.id);

        // A rule without an asset, or one that did not fire, is recorded only
        expect((await ok('admin', 'POST', '/detection-rules/evaluate', { rule_id: other.id, test_id: test.id, fired: true })).detections_updated).to.be.false();
        const missed = await ok('admin', 'POST', '/detection-rules/evaluate', { rule_id: rule.id, test_id: test.id, fired: false });
        expect(missed.evaluation).to.include({ id: fired.evaluation.id, fired: false, notes: null });
        detail = await ok('admin', 'GET', `/tests/${test.id}`);
        expect(detail.detections.length).to.equal(1);
        expect((await ok('viewer', 'GET', `/detection-rules/${rule.id}`)).evaluations.map((item: { fired: boolean }) => item.fired)).to.equal([false]);

        // Unknown rule or test: 404, nothing written; bad payload: 400
        const counted = await count('detection_rule_evaluations');
        expect((await request('admin', 'POST', '/detection-rules/evaluate', { rule_id: Crypto.randomUUID(), test_id: test.id, fired: true })).statusCode).to.equal(404);
        expect((await request('admin', 'POST', '/detection-rules/evaluate', { rule_id: rule.id, test_id: Crypto.randomUUID(), fired: true })).statusCode).to.equal(404);
        const bad = await request('admin', 'POST', '/detection-rules/evaluate', { rule_id: rule.id, test_id: test.id });
        expect(bad.statusCode).to.equal(400);
        expect(bad.payload).to.contain('fired');
        expect(await count('detection_rule_evaluations')).to.equal(counted);
    });

    it('imports the 500 real Sigma rules, with counts checked against the files, idempotently', { timeout: 120_000 }, async () => {

        const index = internals.index();
        const result = await context.services.detectionRules.importSigma({ id: null, role: 'system' }, Path.join(internals.sigma, 'rules'));
        expect(result).to.include({ files: 500, imported: 500, skipped: [], techniques: new Set(index.rules.flatMap((rule) => rule.attack_techniques)).size });
        expect(result.created + result.updated).to.equal(500);

        const again = await context.services.detectionRules.importSigma({ id: null, role: 'system' }, Path.join(internals.sigma, 'rules'));
        expect(again).to.include({ imported: 500, created: 0, updated: 500 });

        const rows = await context.knex('detection_rules').where('source', 'sigma').whereIn('source_ref', index.rules.map((rule) => rule.id));
        expect(rows.length).to.equal(500);
        const byRef = new Map(rows.map((row) => [row.source_ref, row]));
        for (const rule of index.rules) {
            const row = byRef.get(rule.id)!;
            expect([row.name, row.status, row.severity, row.author, row.technique_ids, row.source_path, row.atomic_refs], rule.path).to.equal([
                rule.title, rule.status, rule.level, rule.author, [...rule.attack_techniques].sort(), rule.path.replace(/^rules\//, ''), (rule.simulation ?? []).map((item) => item.atomic_guid)
            ]);
            expect(row.license).to.contain('DRL-1.1');
            expect(row.language).to.equal('sigma');
        }

        expect(rows.filter((row) => row.atomic_refs.length).length).to.equal(index.rules.filter((rule) => rule.simulation).length);
        expect(rows.filter((row) => row.platforms.includes('Windows')).length).to.equal(index.rules.filter((rule) => (rule as unknown as { logsource: { product?: string } }).logsource.product === 'windows').length);
    });

    it('reports malformed rules by file and skips them whole', async () => {

        const dir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'sigma-'));
        try {
            const good = internals.index().rules[0]!;
            await Fs.promises.mkdir(Path.join(dir, 'nested'));
            await Fs.promises.copyFile(Path.join(internals.sigma, good.path), Path.join(dir, 'nested', 'good.yml'));
            await Fs.promises.writeFile(Path.join(dir, 'broken.yml'), 'title: [unclosed\n');
            await Fs.promises.writeFile(Path.join(dir, 'no-id.yml'), 'title: No id\nlogsource: { product: windows }\ndetection: { condition: x }\n');
            await Fs.promises.writeFile(Path.join(dir, 'bad-level.yml'), `title: Bad level\nid: ${Crypto.randomUUID()}\nlevel: extreme\nlogsource: { product: windows }\ndetection: { condition: x }\n`);
            await Fs.promises.writeFile(Path.join(dir, 'code.yml'), `title: Code\nid: ${Crypto.randomUUID()}\nx: !!js/function 'function () {}'\nlogsource: {}\ndetection: {}\n`);
            await Fs.promises.writeFile(Path.join(dir, 'notes.txt'), 'not a rule');
            const nulId = Crypto.randomUUID();
            await Fs.promises.writeFile(Path.join(dir, 'nul.yml'), `title: Nul\nid: ${nulId}\ndescription: "bad \\0 char"\nlogsource: { product: windows }\ndetection: { condition: x }\n`);
            const skippedIds = (await Promise.all(['bad-level.yml', 'code.yml'].map((file) => Fs.promises.readFile(Path.join(dir, file), 'utf8')))).map((text) => /id: (\S+)/.exec(text)![1]!);

            const result = await context.services.detectionRules.importSigma({ id: null, role: 'system' }, dir);
            expect(result).to.include({ files: 6, imported: 1 });
            expect(result.skipped.map((item) => item.file)).to.equal(['bad-level.yml', 'broken.yml', 'code.yml', 'no-id.yml', 'nul.yml']);
            expect(result.skipped[0]!.error).to.contain('level extreme');
            expect(result.skipped[3]!.error).to.contain('id');
            expect(result.skipped[4]!.error).to.contain('NUL');
            // Nothing of a skipped rule is written
            expect(Number((await context.knex('detection_rules').where('source', 'sigma').whereIn('source_ref', [...skippedIds, nulId]).count('* as n').first())!.n)).to.equal(0);
        }
        finally {
            await Fs.promises.rm(dir, { recursive: true, force: true });
        }
    });

    it('reports by file a rule the database refuses and imports the rest of its batch', async () => {

        const dir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'sigma-'));
        const marker = `Refused ${Crypto.randomBytes(4).toString('hex')}`;
        const constraint = `detection_rules_test_${Crypto.randomBytes(4).toString('hex')}`;
        const ids = [Crypto.randomUUID(), Crypto.randomUUID(), Crypto.randomUUID()];
        const titles = [unique('Kept'), marker, unique('Kept')];
        try {
            for (const [n, id] of ids.entries()) {
                await Fs.promises.writeFile(Path.join(dir, `rule-${n}.yml`), `title: ${titles[n]}\nid: ${id}\nlogsource: { product: linux }\ndetection: { sel: { a: 1 }, condition: sel }\n`);
            }

            // A refusal that no parse can foresee, made by the test: the database refuses this one title
            await context.knex.raw(`alter table detection_rules add constraint ${constraint} check (name <> '${marker}') not valid`);
            const result = await context.services.detectionRules.importSigma({ id: null, role: 'system' }, dir);
            expect(result).to.include({ files: 3, imported: 2, created: 2 });
            expect(result.skipped.map((item) => item.file)).to.equal(['rule-1.yml']);
            expect(result.skipped[0]!.error).to.contain('refused by the database').and.to.contain(constraint);
            const rows = await context.knex('detection_rules').where('source', 'sigma').whereIn('source_ref', ids).orderBy('source_path').select('source_ref', 'name');
            expect(rows).to.equal([{ source_ref: ids[0], name: titles[0] }, { source_ref: ids[2], name: titles[2] }]);
        }
        finally {
            await context.knex.raw(`alter table detection_rules drop constraint if exists ${constraint}`);
            await Fs.promises.rm(dir, { recursive: true, force: true });
        }
    });

    it('maps tags, level and product to techniques, severity and platform', () => {

        const rule = parseSigmaRule(`title: T\nid: 11111111-2222-4333-8444-555555555555\nstatus: stable\nlevel: critical\nauthor: Jane\ntags:\n  - attack.execution\n  - attack.t1059.001\n  - attack.T1003\n  - cve.2021-1\nlogsource:\n  product: macos\ndetection:\n  sel: { a: 1 }\n  condition: sel\nsimulation:\n  - type: atomic-red-team\n    atomic_guid: AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\n`);
        expect(rule).to.include({ source_ref: '11111111-2222-4333-8444-555555555555', name: 'T', technique_ids: ['T1003', 'T1059.001'], platforms: ['macOS'], status: 'stable', severity: 'critical', author: 'Jane', atomic_refs: ['aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'] });
        expect(rule).to.include({ license: 'DRL-1.1 (Detection Rule License 1.1, https://github.com/SigmaHQ/Detection-Rule-License)' });
        expect(parseSigmaRule('title: x\nid: 11111111-2222-4333-8444-555555555555\nlicense: MIT\nlogsource: {}\ndetection: { condition: x }\n')).to.include({ license: 'MIT' });
        expect((parseSigmaRule('- a\n- b\n') as Error).message).to.contain('mapping');
        expect((parseSigmaRule('title: x\nid: 11111111-2222-4333-8444-555555555555\nlogsource: {}\n') as Error).message).to.contain('detection');
        expect((parseSigmaRule('id: 11111111-2222-4333-8444-555555555555\n') as Error).message).to.contain('title');
        expect((parseSigmaRule('title: x\nid: 11111111-2222-4333-8444-555555555555\ndetection: {}\n') as Error).message).to.contain('logsource');
        expect((parseSigmaRule('title: x\nid: 11111111-2222-4333-8444-555555555555\nstatus: live\nlogsource: {}\ndetection: {}\n') as Error).message).to.contain('status live');
        expect((parseSigmaRule('a: 1\n---\nb: 2\n') as Error).message).to.contain('invalid YAML');
    });

    it('pairs a rule with the templates that should make it fire, and a test from such a template with its rules ("run this, expect that")', async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const guid = Crypto.randomUUID();
        const [simulated] = await context.knex('test_templates').insert({ name: unique('Atomic'), technique_ids: [techniqueId], platforms: ['Linux'], source: 'atomic', source_ref: guid }).returning('id');
        const [samePlatform] = await context.knex('test_templates').insert({ name: unique('Same platform'), technique_ids: [techniqueId], platforms: ['Windows', 'Linux'] }).returning('id');
        await context.knex('test_templates').insert({ name: unique('Other platform'), technique_ids: [techniqueId], platforms: ['macOS'] });

        const [rule] = await context.knex('detection_rules').insert({ name: unique('Sigma'), language: 'sigma', query: 'title: x', technique_ids: [techniqueId], platforms: ['Linux'], source: 'sigma', source_ref: Crypto.randomUUID(), atomic_refs: [guid] }).returning('id');
        const [unrelated] = await context.knex('detection_rules').insert({ name: unique('Other'), language: 'sigma', query: 'title: y', technique_ids: [techniqueId], platforms: ['macOS'] }).returning('id');

        const detail = await ok('viewer', 'GET', `/detection-rules/${rule.id}`);
        expect(detail.expected_templates.map((item: Record<string, unknown>) => [item.id, item.simulated, item.atomic_guid]).sort()).to.equal([[samePlatform.id, false, null], [simulated.id, true, guid]].sort());

        const created = await ok('red_lead', 'POST', '/tests/from-template', { template_ids: [simulated.id] }, 201);
        const testId = created.items[0].id;
        const expected = await ok('blue_tech', 'GET', `/detection-rules?expected_for_test=${testId}`);
        expect(expected.items.map((item: { id: string }) => item.id)).to.equal([rule.id]);
        expect(expected.items.map((item: { id: string }) => item.id)).to.not.include(unrelated.id);
        expect(expected.items[0].test_evaluation).to.be.null();                // nobody said yet whether it fired

        // A second expected rule (same technique and platform); the test records that one fired and the other did not
        const [second] = await context.knex('detection_rules').insert({ name: unique('Sigma'), language: 'sigma', query: 'title: z', technique_ids: [techniqueId], platforms: ['Linux'], source: 'sigma', source_ref: Crypto.randomUUID() }).returning('id');
        await ok('blue_tech', 'POST', '/detection-rules/evaluate', { rule_id: rule.id, test_id: testId, fired: true });
        await ok('blue_lead', 'POST', '/detection-rules/evaluate', { rule_id: second.id, test_id: testId, fired: false, notes: 'no alert in the SIEM' });
        const recorded = await ok('viewer', 'GET', `/detection-rules?expected_for_test=${testId}`);
        const firedBy = Object.fromEntries(recorded.items.map((item: { id: string; test_evaluation: { fired: boolean; test_id: string } | null }) => [item.id, [item.test_evaluation!.test_id, item.test_evaluation!.fired]]));
        expect(firedBy).to.equal({ [rule.id]: [testId, true], [second.id]: [testId, false] });
        // Without expected_for_test the list carries no evaluation
        expect((await ok('viewer', 'GET', `/detection-rules?technique_id=${techniqueId}`)).items.every((item: object) => !('test_evaluation' in item))).to.be.true();
    });
});
