import * as Fs from 'fs';
import * as Http from 'http';
import * as Net from 'net';
import * as Os from 'os';
import * as Path from 'path';
import * as Zlib from 'zlib';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { openSource, SourceError } from '../../integrations/attack';
import { OutboundHttp } from '../../integrations/http';
import { systemActor } from '../../server/policy';
import { AttackImportService, type AttackImportResult, type ImportProgress } from '../../server/services/attack-import';

import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// A loopback port nothing listens on: it was free a moment ago
const closedPort = () => new Promise<number>((resolve) => {

    const server = Net.createServer().listen(0, '127.0.0.1', () => {

        const { port } = server.address() as Net.AddressInfo;
        server.close(() => resolve(port));
    });
});


const internals = {
    attack: Path.join(sharedDir, 'data', 'attack'),
    d3fend: Path.join(sharedDir, 'data', 'd3fend'),

    // Counts read from the bundle itself, independently of the parser
    bundleCounts: (file: string) => {

        const raw = Fs.readFileSync(file);
        const bundle = JSON.parse((file.endsWith('.gz') ? Zlib.gunzipSync(raw) : raw).toString('utf8'));
        const objects = bundle.objects as Record<string, any>[];
        const ofType = (type: string) => objects.filter((object) => object.type === type);
        const patterns = ofType('attack-pattern');
        return {
            stixIds: (type: string) => ofType(type).map((object) => object.id as string),
            techniques: patterns.filter((object) => !object.x_mitre_is_subtechnique).length,
            subtechniques: patterns.filter((object) => object.x_mitre_is_subtechnique).length,
            groups: ofType('intrusion-set').length,
            relationships: ofType('relationship').length,
            usesGroupTechnique: ofType('relationship').filter((object) => object.relationship_type === 'uses' && object.source_ref.startsWith('intrusion-set--') && object.target_ref.startsWith('attack-pattern--') && !object.revoked && !object.x_mitre_deprecated)
        };
    },

    countIn: async (context: TestContext, table: string, stixIds: string[]) => Number((await context.knex(table).whereIn('stix_id', stixIds).count('* as count'))[0]!.count),

    mirrorRemedy: 'a mirror on the local network must be added to OUTBOUND_ALLOW_HOSTS, and an http:// URL needs OUTBOUND_ALLOW_HTTP=true',

    // The test servers listen on loopback, which the outbound rules refuse unless the operator allows it
    loopback: () => new OutboundHttp({ allow: ['127.0.0.1'], allowHttp: true }),

    service: (context: TestContext, outbound: OutboundHttp) => new AttackImportService({ knex: context.knex, audit: context.services.audit, coverage: context.services.coverage, queue: context.queue, outbound })
};


describe('ATT&CK import', () => {

    let context: TestContext;
    let mini: AttackImportResult;

    before(async () => {

        context = await init({ redis: false });
        mini = await context.services.attackImport.importAttack(systemActor, Path.join(internals.attack, 'attack-enterprise-mini.json'));
    });

    after(async () => {

        await context.stop();
    });

    it('imports the mini bundle: every object, tactics in matrix order, parents, revoked-by, links and the detection chain', async () => {

        const file = Path.join(internals.attack, 'attack-enterprise-mini.json');
        const counts = internals.bundleCounts(file);
        expect(mini.domain).to.equal('enterprise-attack');
        expect(mini.bundle.techniques).to.equal(counts.techniques);
        expect(mini.bundle.subtechniques).to.equal(counts.subtechniques);
        expect(mini.bundle.groups).to.equal(10);
        expect(mini.bundle.relationships).to.equal(counts.relationships);

        expect(await internals.countIn(context, 'techniques', counts.stixIds('attack-pattern'))).to.equal(counts.techniques + counts.subtechniques);
        expect(await internals.countIn(context, 'threat_actors', counts.stixIds('intrusion-set'))).to.equal(10);
        expect(await internals.countIn(context, 'tactics', counts.stixIds('x-mitre-tactic'))).to.equal(14);
        expect(await internals.countIn(context, 'data_components', counts.stixIds('x-mitre-data-component'))).to.equal(52);
        expect(await internals.countIn(context, 'analytics', counts.stixIds('x-mitre-analytic'))).to.equal(235);
        expect(await internals.countIn(context, 'detection_strategies', counts.stixIds('x-mitre-detection-strategy'))).to.equal(73);
        expect(await internals.countIn(context, 'mitigations', counts.stixIds('course-of-action'))).to.equal(34);
        expect(await internals.countIn(context, 'attack_campaigns', counts.stixIds('campaign'))).to.equal(11);

        const tactics = await context.knex('tactics').whereIn('stix_id', counts.stixIds('x-mitre-tactic')).orderBy('matrix_order').pluck('mitre_id');
        expect(tactics[0]).to.equal('TA0043');
        expect(tactics[13]).to.equal('TA0040');

        const sub = await context.knex('techniques').where('mitre_id', 'T1059.001').first();
        expect(sub).to.include({ parent_id: 'T1059', is_subtechnique: true, is_custom: false, revoked: false, domain: 'enterprise-attack' });
        expect(sub.platforms).to.include('Windows');

        const revoked = await context.knex('techniques').where('mitre_id', 'T1002').first();
        expect(revoked).to.include({ revoked: true, revoked_by_id: 'T1560' });
        const deprecated = await context.knex('techniques').where('mitre_id', 'T1026').first();
        expect(deprecated.deprecated).to.be.true();

        const apt28 = await context.knex('threat_actors').where('mitre_id', 'G0007').first();
        expect(apt28).to.include({ source: 'mitre', name: 'APT28' });
        const uses = counts.usesGroupTechnique.filter((object) => object.source_ref === apt28.stix_id).length;
        // Links to the mini bundle's techniques only: another script may have imported the full bundle into the shared database
        const linked = await context.knex('threat_actor_techniques as tat').join('techniques as t', 't.mitre_id', 'tat.technique_id')
            .where({ 'tat.threat_actor_id': apt28.id, 'tat.source': 'mitre' }).whereIn('t.stix_id', counts.stixIds('attack-pattern')).count('* as c');
        expect(Number(linked[0]!.c)).to.equal(uses);

        const phases = await context.knex('technique_tactics as tt').join('tactics as ta', 'ta.id', 'tt.tactic_id').where('tt.technique_id', 'T1059').pluck('ta.mitre_id');
        expect(phases).to.equal(['TA0002']);

        const detection = await context.knex('technique_data_components').where('technique_id', 'T1059.001').count('* as c');
        expect(Number(detection[0]!.c)).to.be.above(0);

        const record = await context.knex('attack_imports').where('id', mini.import_id).first();
        expect(record).to.include({ kind: 'attack', status: 'succeeded', domain: 'enterprise-attack' });
        expect(record.finished_at).to.be.a.date();
    });

    it('writes nothing on a second import of the same bundle, and never touches the organisation\'s columns', async () => {

        await context.knex('techniques').where('mitre_id', 'T1059').update({ impact: 4, notes: 'ours', needs_review: true, review_reason: 'check', review_requested_at: new Date() });
        await context.knex('data_components').where('mitre_id', 'DC0021').update({ collected: true, quality: { timeliness: 4 } });
        const rowsBefore = await context.knex('techniques').whereNotNull('stix_id').select('mitre_id', context.knex.raw('xmin::text as xmin'), 'updated_at').orderBy('mitre_id');

        const progress: ImportProgress[] = [];
        const again = await context.services.attackImport.importAttack(systemActor, Path.join(internals.attack, 'attack-enterprise-mini.json'), { onProgress: (item) => progress.push(item) });
        expect(again.changed).to.equal(0);
        for (const counts of Object.values(again.written)) {
            expect(counts).to.equal({ inserted: 0, updated: 0, deleted: 0 });
        }

        const rowsAfter = await context.knex('techniques').whereNotNull('stix_id').select('mitre_id', context.knex.raw('xmin::text as xmin'), 'updated_at').orderBy('mitre_id');
        expect(rowsAfter).to.equal(rowsBefore);
        expect(await context.knex('techniques').where('mitre_id', 'T1059').first('impact', 'notes', 'needs_review')).to.equal({ impact: 4, notes: 'ours', needs_review: true });
        expect((await context.knex('data_components').where('mitre_id', 'DC0021').first('collected')).collected).to.be.true();

        expect(progress[0]!.phase).to.equal('fetch');
        expect(progress.at(-1)).to.include({ phase: 'done', percent: 100 });
        expect(progress.some((item) => item.phase === 'write' && item.step === 'techniques')).to.be.true();
    });

    it('updates what changed, adopts placeholder rows, never touches custom techniques, and removes links the bundle no longer has', async () => {

        await context.knex('techniques').where('mitre_id', 'T1059.003').update({ name: 'Edited', modified: new Date('2000-01-01') });
        const apt29 = await context.knex('threat_actors').where('mitre_id', 'G0016').first('id');
        const link = await context.knex('threat_actor_techniques').where({ threat_actor_id: apt29.id, source: 'mitre' }).first('technique_id');
        await context.knex('threat_actor_techniques').where({ threat_actor_id: apt29.id, technique_id: link.technique_id }).delete();
        const apt28 = await context.knex('threat_actors').where('mitre_id', 'G0007').first('id');
        const miniTechniques = internals.bundleCounts(Path.join(internals.attack, 'attack-enterprise-mini.json')).stixIds('attack-pattern');
        // Any technique of the bundle but T1026, the manual link below: a stray T1026 would take its place (CI drew it)
        const stray = await context.knex('techniques').whereIn('stix_id', miniTechniques).whereNot('mitre_id', 'T1026').whereNotIn('mitre_id', context.knex('threat_actor_techniques').where('threat_actor_id', apt28.id).select('technique_id')).first('mitre_id');
        await context.knex('threat_actor_techniques').insert({ threat_actor_id: apt28.id, technique_id: stray.mitre_id, source: 'mitre' });
        await context.knex('threat_actor_techniques').insert({ threat_actor_id: apt28.id, technique_id: 'T1026', source: 'manual' }).onConflict(['threat_actor_id', 'technique_id']).ignore();
        await context.knex('techniques').insert({ mitre_id: 'X9001', domain: 'enterprise-attack', name: 'Ours', is_custom: true }).onConflict('mitre_id').ignore();

        const result = await context.services.attackImport.importAttack(systemActor, Path.join(internals.attack, 'attack-enterprise-mini.json'));
        expect(result.written.techniques).to.equal({ inserted: 0, updated: 1, deleted: 0 });
        expect(result.written.threat_actor_techniques!.inserted).to.equal(1);
        expect(result.written.threat_actor_techniques!.deleted).to.be.at.least(1);
        expect((await context.knex('techniques').where('mitre_id', 'T1059.003').first('name')).name).to.equal('Windows Command Shell');
        expect(await context.knex('threat_actor_techniques').where({ threat_actor_id: apt28.id, technique_id: stray.mitre_id }).first()).to.not.exist();
        expect(await context.knex('threat_actor_techniques').where({ threat_actor_id: apt28.id, technique_id: 'T1026', source: 'manual' }).first()).to.exist();
        expect((await context.knex('techniques').where('mitre_id', 'X9001').first('name')).name).to.equal('Ours');
    });

    it('imports the full Enterprise bundle (gzipped), checked against the bundle, and re-imports it with no change', { timeout: 120_000 }, async () => {

        const file = Path.join(internals.attack, 'enterprise-attack.json.gz');
        const counts = internals.bundleCounts(file);
        const first = await context.services.attackImport.importAttack(systemActor, file);
        expect(first.attack_version).to.equal('18.1');
        expect(first.bundle.techniques).to.equal(counts.techniques);
        expect(first.bundle.subtechniques).to.equal(counts.subtechniques);
        expect(first.bundle.groups).to.equal(counts.groups);
        expect(first.bundle.relationships).to.equal(counts.relationships);
        expect(await internals.countIn(context, 'techniques', counts.stixIds('attack-pattern'))).to.equal(counts.techniques + counts.subtechniques);
        expect(await internals.countIn(context, 'threat_actors', counts.stixIds('intrusion-set'))).to.equal(counts.groups);

        const groupIds = counts.stixIds('intrusion-set');
        const links = await context.knex('threat_actor_techniques as tat').join('threat_actors as a', 'a.id', 'tat.threat_actor_id').whereIn('a.stix_id', groupIds).where('tat.source', 'mitre').count('* as c');
        expect(Number(links[0]!.c)).to.equal(new Set(counts.usesGroupTechnique.map((object) => `${object.source_ref} ${object.target_ref}`)).size);

        const second = await context.services.attackImport.importAttack(systemActor, file);
        expect(second.changed).to.equal(0);
        expect(second.duration_ms).to.be.below(30_000);
    });

    it('imports Mobile and ICS through the same code, merging the domains of shared objects', { timeout: 60_000 }, async () => {

        const mobile = await context.services.attackImport.importAttack(systemActor, Path.join(internals.attack, 'mobile-attack.json.gz'));
        const ics = await context.services.attackImport.importAttack(systemActor, Path.join(internals.attack, 'ics-attack.json.gz'));
        expect(mobile.domain).to.equal('mobile-attack');
        expect(ics.domain).to.equal('ics-attack');
        expect(ics.bundle.techniques).to.equal(95);

        const mobileCounts = internals.bundleCounts(Path.join(internals.attack, 'mobile-attack.json.gz'));
        expect(await internals.countIn(context, 'techniques', mobileCounts.stixIds('attack-pattern'))).to.equal(mobileCounts.techniques + mobileCounts.subtechniques);
        expect(await context.knex('techniques').where('domain', 'ics-attack').where('mitre_id', 'T0800').first('mitre_id')).to.exist();

        const shared = await context.knex('software').whereRaw('domains @> ?::text[]', [['enterprise-attack', 'mobile-attack']]).count('* as c');
        expect(Number(shared[0]!.c)).to.be.above(0);
        expect((await context.services.attackImport.importAttack(systemActor, Path.join(internals.attack, 'mobile-attack.json.gz'))).changed).to.equal(0);
    });

    it('imports D3FEND from the published ontology (Turtle), with the counts of the data README, idempotently', async () => {

        const ontology = Path.join(internals.d3fend, 'd3fend-protege.ttl.gz');
        const first = await context.services.attackImport.importD3fend(systemActor, ontology);
        expect(first).to.include({ source: ontology, d3fend_version: null, countermeasures: 249, mappings: 3009 });

        expect(Number((await context.knex('d3fend_countermeasures').count('* as c'))[0]!.c)).to.equal(249);
        expect(Number((await context.knex('d3fend_mappings').count('* as c'))[0]!.c)).to.equal(3009);
        expect(Number((await context.knex('d3fend_mappings').countDistinct('technique_id as c'))[0]!.c)).to.equal(307);
        expect(Number((await context.knex('d3fend_mappings').countDistinct('d3fend_id as c'))[0]!.c)).to.equal(140);
        const byTactic = await context.knex('d3fend_mappings as m').join('d3fend_countermeasures as c', 'c.d3fend_id', 'm.d3fend_id').groupBy('c.tactic').select('c.tactic').count('* as c');
        expect(Object.fromEntries(byTactic.map((row: any) => [row.tactic, Number(row.c)]))).to.equal({
            Detect: 1_069, Isolate: 893, Harden: 293, Restore: 242, Evict: 220, Model: 168, Deceive: 124
        });

        const paths = await context.knex('d3fend_mappings').sum({ n: context.knex.raw('jsonb_array_length(inferences)') });
        expect(Number(paths[0]!.n)).to.equal(3313);

        // The folder that holds the ontology reads the same file: nothing changes
        const again = await context.services.attackImport.importD3fend(systemActor, internals.d3fend);
        expect(again).to.include({ source: internals.d3fend, countermeasures: 249, mappings: 3009, changed: 0 });
    });

    it('reads the D3FEND ontology from a URL, and explains a source that is not the ontology', async () => {

        const bytes = Fs.readFileSync(Path.join(internals.d3fend, 'd3fend-protege.ttl.gz'));
        const server = Http.createServer((request, response) => {

            if (request.url === '/ontologies/d3fend.ttl') {
                response.writeHead(200, { 'content-type': 'text/turtle' }).end(Zlib.gunzipSync(bytes));
            }
            else {
                response.writeHead(200, { 'content-type': 'application/json' }).end('{"@graph": []}');
            }
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const base = `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`;
        try {
            const service = internals.service(context, internals.loopback());
            const result = await service.importD3fend(systemActor, `${base}/ontologies/d3fend.ttl`);
            expect(result).to.include({ countermeasures: 249, mappings: 3009, changed: 0 });

            await expect(service.importD3fend(systemActor, `${base}/d3fend-full-mappings.json`))
                .to.reject(`${base}/d3fend-full-mappings.json: is not the D3FEND ontology in Turtle (Unexpected graph on line 1.)`);
        }
        finally {
            server.close();
        }

        await expect(context.services.attackImport.importD3fend(systemActor, Path.join(sharedDir, 'data', 'attack')))
            .to.reject(`${Path.join(sharedDir, 'data', 'attack')}: is a folder without the D3FEND ontology (d3fend.ttl, d3fend.ttl.gz, d3fend-protege.ttl, d3fend-protege.ttl.gz)`);
        const failed = await context.knex('attack_imports').where({ kind: 'd3fend', status: 'failed', source: `${base}/d3fend-full-mappings.json` }).first('error');
        expect(failed.error).to.equal(`${base}/d3fend-full-mappings.json: is not the D3FEND ontology in Turtle (Unexpected graph on line 1.)`);
    });

    it('serialises concurrent imports: the second finds nothing to change', async () => {

        const file = Path.join(internals.attack, 'attack-enterprise-mini.json');
        await context.knex('techniques').where('mitre_id', 'T1059.003').update({ description: 'edited' });
        const results = await Promise.all([context.services.attackImport.importAttack(systemActor, file), context.services.attackImport.importAttack(systemActor, file)]);
        expect(results.map((result) => result.changed).sort()).to.equal([0, 1]);
    });

    it('records a failed import and rolls back, saying why: a missing file, a bad bundle, a closed port, a folder', async () => {

        await expect(context.services.attackImport.importAttack(systemActor, '/nonexistent/bundle.json')).to.reject(SourceError, '/nonexistent/bundle.json: file not found');
        const bad = Path.join(Os.tmpdir(), `bad-bundle-${process.pid}.json`);
        Fs.writeFileSync(bad, '{"type": "bundle", "objects": [{"type": "attack-pattern", "id": ');
        await expect(context.services.attackImport.importAttack(systemActor, bad)).to.reject(SourceError, new RegExp(`^${bad}: is not a STIX 2\\.1 bundle \\(.+\\)$`));
        Fs.writeFileSync(bad, '{"type": "bundle", "objects": []}');
        await expect(context.services.attackImport.importAttack(systemActor, bad)).to.reject(`${bad}: is not a STIX 2.1 bundle (it has no STIX objects (a bundle is {"type": "bundle", "objects": [...]}))`);
        Fs.unlinkSync(bad);
        await expect(context.services.attackImport.importAttack(systemActor, internals.attack)).to.reject(`${internals.attack}: is a folder, not a file`);

        // Credentials and the query string never reach the message, the import row or the log
        const port = await closedPort();
        const loopback = internals.service(context, internals.loopback());
        const refused = await expect(loopback.importAttack(systemActor, `http://aegis:s3cret@127.0.0.1:${port}/enterprise-attack.json?token=abc`)).to.reject(SourceError);
        expect(refused.message).to.equal(`http://127.0.0.1:${port}/enterprise-attack.json: could not be reached: connection refused by 127.0.0.1:${port} (ECONNREFUSED)`);
        expect(refused).to.include({ source: `http://127.0.0.1:${port}/enterprise-attack.json`, reason: `could not be reached: connection refused by 127.0.0.1:${port} (ECONNREFUSED)` });
        await expect(loopback.importD3fend(systemActor, `http://127.0.0.1:${port}/ontologies/d3fend.ttl`))
            .to.reject(`http://127.0.0.1:${port}/ontologies/d3fend.ttl: could not be reached: connection refused by 127.0.0.1:${port} (ECONNREFUSED)`);

        const failed = (await context.services.attackImport.recent(6)).map(({ kind, source, status, error }) => ({ kind, source, error, status }));
        expect(failed.every((row) => row.status === 'failed')).to.be.true();
        expect(failed.reverse().map(({ status, ...row }) => row)).to.equal([
            { kind: 'attack', source: '/nonexistent/bundle.json', error: '/nonexistent/bundle.json: file not found' },
            { kind: 'attack', source: bad, error: failed[1]!.error },
            { kind: 'attack', source: bad, error: `${bad}: is not a STIX 2.1 bundle (it has no STIX objects (a bundle is {"type": "bundle", "objects": [...]}))` },
            { kind: 'attack', source: internals.attack, error: `${internals.attack}: is a folder, not a file` },
            { kind: 'attack', source: `http://127.0.0.1:${port}/enterprise-attack.json`, error: refused.message },
            { kind: 'd3fend', source: `http://127.0.0.1:${port}/ontologies/d3fend.ttl`, error: `http://127.0.0.1:${port}/ontologies/d3fend.ttl: could not be reached: connection refused by 127.0.0.1:${port} (ECONNREFUSED)` }
        ]);
        expect(await context.services.attackImport.isEmpty()).to.be.false();
    });

    it('fetches a URL source through the outbound client: streamed, gzipped or not, redirects re-checked, a size cap, loopback only when allowed', async () => {

        const hits: string[] = [];
        const bytes = Fs.readFileSync(Path.join(internals.attack, 'attack-enterprise-mini.json'));
        const server = Http.createServer((request, response) => {

            hits.push(request.url!);
            if (request.url === '/bundle.json.gz') {
                response.writeHead(200, { 'content-type': 'application/gzip' }).end(Zlib.gzipSync(bytes));
            }
            else if (request.url === '/moved') {
                response.writeHead(302, { location: '/bundle.json.gz' }).end();
            }
            else if (request.url === '/metadata') {
                response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
            }
            else if (request.url === '/huge') {
                response.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) }).end();
            }
            else if (request.url === '/private.json.gz?signature=abc') {
                const expected = `Basic ${Buffer.from('aegis:s3cr@t').toString('base64')}`;
                response.writeHead(request.headers.authorization === expected ? 200 : 401).end(request.headers.authorization === expected ? Zlib.gzipSync(bytes) : undefined);
            }
            else if (request.url === '/stall') {
                response.writeHead(200);
                response.write('{"type": "bundle"');
            }
            else if (request.url === '/silent') {
                return;
            }
            else if (request.url === '/chunked') {
                response.writeHead(200);
                response.end(bytes);
            }
            else {
                response.writeHead(404).end();
            }
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const base = `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`;
        try {
            // The default configuration refuses plain http, and loopback unless the operator allows it, before any
            // connection, and says what to do
            await expect(context.services.attackImport.importAttack(systemActor, `${base}/bundle.json.gz`))
                .to.reject(SourceError, `${base}/bundle.json.gz: is not allowed by the outbound rules (The scheme http is not allowed (https only)); ${internals.mirrorRemedy}`);
            await expect(internals.service(context, new OutboundHttp({ allowHttp: true })).importAttack(systemActor, `${base}/bundle.json.gz`))
                .to.reject(SourceError, `${base}/bundle.json.gz: is not allowed by the outbound rules (127.0.0.1 is or resolves to a private, loopback, link-local, multicast or metadata address); ${internals.mirrorRemedy}`);
            expect(hits).to.equal([]);

            const outbound = internals.loopback();
            const service = internals.service(context, outbound);
            const result = await service.importAttack(systemActor, `${base}/bundle.json.gz`);
            expect(result.source).to.equal(`${base}/bundle.json.gz`);
            expect(result.changed).to.equal(0);
            expect(result.bundle.groups).to.equal(10);

            // A private mirror: the credentials go in an Authorization header, and are never recorded or shown
            const mirrored = await service.importAttack(systemActor, `${base.replace('//', '//aegis:s3cr%40t@')}/private.json.gz?signature=abc`);
            expect(mirrored).to.include({ source: `${base}/private.json.gz`, changed: 0 });
            await expect(service.importAttack(systemActor, `${base.replace('//', '//aegis:wrong@')}/private.json.gz?signature=abc`)).to.reject(SourceError, `${base}/private.json.gz: answered HTTP 401 Unauthorized`);

            // Redirects are followed, each hop checked again: a redirect to the metadata address is refused
            expect((await service.importAttack(systemActor, `${base}/moved`)).bundle.groups).to.equal(10);
            await expect(service.importAttack(systemActor, `${base}/metadata`)).to.reject(SourceError, `${base}/metadata: is not allowed by the outbound rules (169.254.169.254 is or resolves to a private, loopback, link-local, multicast or metadata address); ${internals.mirrorRemedy}`);
            await expect(service.importAttack(systemActor, `${base}/missing.json`)).to.reject(SourceError, `${base}/missing.json: answered HTTP 404 Not Found`);
            await expect(openSource(`${base}/huge`, outbound)).to.reject(SourceError, `${base}/huge: is larger than 268435456 bytes`);
            await expect(openSource(`${base}/silent`, outbound, { timeoutMs: 200 })).to.reject(SourceError, `${base}/silent: no complete answer within 200 ms (timeout)`);
            const stalled = await openSource(`${base}/stall`, outbound, { timeoutMs: 300 });
            await expect((async () => {

                for await (const chunk of stalled) {
                    expect(chunk).to.exist();
                }
            })()).to.reject(SourceError, `${base}/stall: no complete answer within 300 ms (timeout)`);

            const capped = await openSource(`${base}/chunked`, outbound, { maxBytes: 1000 });
            await expect((async () => {

                for await (const chunk of capped) {
                    expect(chunk).to.exist();
                }
            })()).to.reject(SourceError, `${base}/chunked: is larger than 1000 bytes`);
        }
        finally {
            server.close();
            server.closeAllConnections();
        }
    });

    it('links techniques to data components by the legacy x_mitre_data_sources names of older bundles', async () => {

        const ref = (type: string, id: string) => [{ source_name: 'mitre-attack', external_id: id, url: `https://attack.mitre.org/${type}/${id}` }];
        const common = { spec_version: '2.1', created: '2020-01-01T00:00:00.000Z', modified: '2020-01-01T00:00:00.000Z', x_mitre_domains: ['enterprise-attack'] };
        const bundle = {
            type: 'bundle',
            id: 'bundle--00000000-0000-4000-8000-000000000001',
            objects: [
                { ...common, type: 'x-mitre-data-source', id: 'x-mitre-data-source--00000000-0000-4000-8000-0000000000a1', name: 'Legacy Process', external_references: ref('datasources', 'DS9901') },
                { ...common, type: 'x-mitre-data-component', id: 'x-mitre-data-component--00000000-0000-4000-8000-0000000000b1', name: 'Legacy Creation', x_mitre_data_source_ref: 'x-mitre-data-source--00000000-0000-4000-8000-0000000000a1', external_references: ref('datacomponents', 'DC9901') },
                { ...common, type: 'attack-pattern', id: 'attack-pattern--00000000-0000-4000-8000-0000000000c1', name: 'Legacy Technique', x_mitre_is_subtechnique: false, x_mitre_platforms: ['Windows'], x_mitre_data_sources: ['Legacy Process: Legacy Creation'], external_references: ref('techniques', 'T8901') }
            ]
        };

        const file = Path.join(Os.tmpdir(), `legacy-bundle-${process.pid}.json`);
        Fs.writeFileSync(file, JSON.stringify(bundle));
        try {
            const result = await context.services.attackImport.importAttack(systemActor, file);
            expect(result.attack_version).to.be.null();
            const rows = await context.knex('technique_data_components as tdc').join('data_components as dc', 'dc.id', 'tdc.data_component_id').where('tdc.technique_id', 'T8901').select('dc.mitre_id', 'tdc.source', 'tdc.analytic_id');
            expect(rows).to.equal([{ mitre_id: 'DC9901', source: 'legacy', analytic_id: null }]);
            const component = await context.knex('data_components as dc').join('data_sources as ds', 'ds.id', 'dc.data_source_id').where('dc.mitre_id', 'DC9901').first('ds.mitre_id');
            expect(component.mitre_id).to.equal('DS9901');
            expect((await context.services.attackImport.importAttack(systemActor, file)).changed).to.equal(0);
        }
        finally {
            Fs.unlinkSync(file);
        }
    });
});
