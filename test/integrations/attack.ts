import * as Fs from 'fs';
import * as Path from 'path';
import { Readable } from 'stream';
import * as V8 from 'v8';
import * as Vm from 'vm';
import * as Zlib from 'zlib';

import { expect } from '@hapi/code';
import * as Lab from '@hapi/lab';

import {
    countermeasuresByTactic,
    describeFailure,
    detectionLinks,
    displaySource,
    openBundleStream,
    openSource,
    parseAttackBundle,
    parseD3fendOntology,
    revokedInto,
    SourceError,
    successorOf,
    toSourceError,
    type AttackBundle,
    type D3fendData
} from '../../integrations/attack';
import { OutboundError, OutboundHttp } from '../../integrations/http';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


type Raw = Record<string, any>;


const internals = {
    data: Path.join(__dirname, '..', '..', '..', 'shared', 'data'),

    attack(file: string): string {

        return Path.join(internals.data, 'attack', file);
    },

    d3fend(file: string): string {

        return Path.join(internals.data, 'd3fend', file);
    },

    readBundle(file: string): Raw[] {

        const bytes = Fs.readFileSync(internals.attack(file));
        const text = file.endsWith('.gz') ? Zlib.gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
        return JSON.parse(text).objects;
    },

    // Independent of the module: the ATT&CK id is the external_id of the mitre-*attack reference.
    mitreId(object: Raw): string | undefined {

        return (object.external_references ?? []).find((reference: Raw) => /^mitre-(mobile-|ics-)?attack$/.test(reference.source_name))?.external_id;
    },

    tally(values: string[]): Record<string, number> {

        const counts: Record<string, number> = {};
        for (const value of values) {
            counts[value] = (counts[value] ?? 0) + 1;
        }

        return counts;
    },

    ofType(objects: Raw[], ...types: string[]): Raw[] {

        return objects.filter((object) => types.includes(object.type));
    },

    // A Readable that hands the bytes over in small, uneven pieces, the way a network response may.
    trickle(bytes: Buffer, sizes = [1, 7, 4096]): Readable {

        return Readable.from((function* () {

            let offset = 0;
            let at = 0;
            while (offset < bytes.length) {
                const size = sizes[Math.min(at++, sizes.length - 1)] ?? 4096;
                yield bytes.subarray(offset, offset + size);
                offset += size;
            }
        })());
    },

    bundleOf(objects: Raw[]): Readable {

        return Readable.from([Buffer.from(JSON.stringify({ type: 'bundle', id: 'bundle--test', objects }))]);
    },

    // A full collection on demand makes the heap samples measure what the parser keeps, not when V8 felt like
    // collecting. lab runs without --expose-gc, so the flag is switched on for this one lookup.
    gc(): () => void {

        V8.setFlagsFromString('--expose-gc');
        const gc = Vm.runInNewContext('gc') as () => void;
        V8.setFlagsFromString('--no-expose-gc');
        return gc;
    },

    // The mutable parts of the summary of a bundle, for comparing two parses of the same bytes.
    summary(bundle: AttackBundle): unknown {

        return {
            counts: bundle.counts,
            techniques: bundle.techniques.map((technique) => [technique.stix_id, technique.parent_mitre_id, technique.description]),
            relationships: bundle.relationships.length
        };
    }
};


describe('parseAttackBundle()', () => {

    describe('on the mini enterprise bundle', () => {

        let raw: Raw[];
        let bundle: AttackBundle;

        before(async () => {

            raw = internals.readBundle('attack-enterprise-mini.json');
            bundle = await parseAttackBundle(internals.attack('attack-enterprise-mini.json'));
        });

        it('counts every object and relationship the way JSON.parse sees them', () => {

            const patterns = internals.ofType(raw, 'attack-pattern');
            const relationships = internals.ofType(raw, 'relationship');

            expect(bundle.domain).to.equal('enterprise-attack');
            expect(bundle.collection).to.be.null();                 // the mini bundle leaves the collection out
            expect(bundle.attack_version).to.be.null();
            expect(bundle.counts.objects).to.equal(raw.length);
            expect(bundle.counts.by_type).to.equal(internals.tally(raw.map((object) => object.type)));
            expect(bundle.counts.relationships_by_type).to.equal(internals.tally(relationships.map((relationship) => relationship.relationship_type)));
            expect(bundle.counts.ignored_types).to.equal({ identity: 1, 'marking-definition': 1 });

            expect(bundle.techniques.filter((technique) => !technique.is_subtechnique).length).to.equal(patterns.filter((pattern) => !pattern.x_mitre_is_subtechnique).length);
            expect(bundle.techniques.filter((technique) => technique.is_subtechnique).length).to.equal(patterns.filter((pattern) => pattern.x_mitre_is_subtechnique).length);
            expect([bundle.techniques.length - 45, 45]).to.equal([30, 45]);                  // T1002 and T1026 among the 30
            expect(bundle.tactics.length).to.equal(internals.ofType(raw, 'x-mitre-tactic').length);
            expect(bundle.groups.length).to.equal(internals.ofType(raw, 'intrusion-set').length);
            expect(bundle.groups.length).to.equal(10);
            expect(bundle.campaigns.length).to.equal(internals.ofType(raw, 'campaign').length);
            expect(bundle.software.length).to.equal(internals.ofType(raw, 'malware', 'tool').length);
            expect(bundle.mitigations.length).to.equal(internals.ofType(raw, 'course-of-action').length);
            expect(bundle.data_sources.length).to.equal(internals.ofType(raw, 'x-mitre-data-source').length);
            expect(bundle.data_components.length).to.equal(internals.ofType(raw, 'x-mitre-data-component').length);
            expect(bundle.detection_strategies.length).to.equal(internals.ofType(raw, 'x-mitre-detection-strategy').length);
            expect(bundle.analytics.length).to.equal(internals.ofType(raw, 'x-mitre-analytic').length);
            expect(bundle.matrices.length).to.equal(1);

            expect(internals.tally(bundle.relationships.map((relationship) => relationship.type))).to.equal(internals.tally(relationships.map((relationship) => relationship.relationship_type)));
            expect(internals.tally(bundle.relationships.map((relationship) => `${relationship.source_type} ${relationship.type} ${relationship.target_type}`))).to.equal(
                internals.tally(relationships.map((relationship) => `${relationship.source_ref.split('--')[0]} ${relationship.relationship_type} ${relationship.target_ref.split('--')[0]}`)));

            expect(bundle.warnings).to.equal([]);
        });

        it('stamps every record with its STIX id, domain and flags', () => {

            const records = [bundle.matrices, bundle.tactics, bundle.techniques, bundle.mitigations, bundle.groups, bundle.campaigns, bundle.software,
                bundle.data_sources, bundle.data_components, bundle.detection_strategies, bundle.analytics, bundle.relationships].flat();

            const byId = new Map(raw.map((object) => [object.id, object]));
            expect(records.length).to.equal(raw.length - 2);
            for (const record of records) {
                const object = byId.get(record.stix_id)!;
                expect(record.domain).to.equal('enterprise-attack');
                expect(record.modified).to.equal(object.modified);
                expect(record.revoked).to.equal(object.revoked === true);
                expect(record.deprecated).to.equal(object.x_mitre_deprecated === true);
            }
        });

        it('keeps the fields of techniques, groups, software and campaigns', () => {

            const rawTechnique = raw.find((object) => internals.mitreId(object) === 'T1003.001')!;
            const technique = bundle.techniques.find((record) => record.mitre_id === 'T1003.001')!;
            expect(technique).to.equal({
                stix_id: rawTechnique.id,
                domain: 'enterprise-attack',
                domains: ['enterprise-attack'],
                created: rawTechnique.created,
                modified: rawTechnique.modified,
                revoked: false,
                deprecated: false,
                mitre_id: 'T1003.001',
                name: 'LSASS Memory',
                description: rawTechnique.description,
                url: 'https://attack.mitre.org/techniques/T1003/001',
                version: rawTechnique.x_mitre_version,
                is_subtechnique: true,
                parent_stix_id: raw.find((object) => internals.mitreId(object) === 'T1003')!.id,
                parent_mitre_id: 'T1003',
                tactics: ['credential-access'],
                platforms: ['Windows'],
                detection: null,                                    // v18 empties x_mitre_detection
                data_sources: []
            });

            const apt28 = bundle.groups.find((group) => group.mitre_id === 'G0007')!;
            expect(apt28.name).to.equal('APT28');
            expect(apt28.aliases).to.include(['APT28', 'Fancy Bear']);
            expect(apt28.url).to.equal('https://attack.mitre.org/groups/G0007');

            const mimikatz = bundle.software.find((software) => software.mitre_id === 'S0002')!;
            expect(mimikatz).to.include({ name: 'Mimikatz', type: 'tool' });
            expect(mimikatz.aliases).to.include('Mimikatz');
            expect(bundle.software.find((software) => software.mitre_id === 'S0154')!.type).to.equal('malware');

            for (const campaign of bundle.campaigns) {
                expect(campaign.mitre_id).to.match(/^C\d{4}$/);
                expect(campaign.first_seen).to.exist();
            }

            for (const mitigation of bundle.mitigations) {
                expect(mitigation.mitre_id).to.match(/^M\d{4}$/);
            }
        });

        it('resolves every sub-technique to its parent through subtechnique-of, matching the id shape', () => {

            const parentOf = new Map(internals.ofType(raw, 'relationship')
                .filter((relationship) => relationship.relationship_type === 'subtechnique-of')
                .map((relationship) => [relationship.source_ref, relationship.target_ref]));

            const subtechniques = bundle.techniques.filter((technique) => technique.is_subtechnique);
            expect(subtechniques.length).to.equal(45);
            for (const technique of subtechniques) {
                expect(technique.parent_stix_id).to.equal(parentOf.get(technique.stix_id) ?? null);
                expect(technique.parent_mitre_id).to.equal(technique.mitre_id!.split('.')[0] ?? null);
            }

            for (const technique of bundle.techniques.filter((record) => !record.is_subtechnique)) {
                expect(technique.parent_stix_id).to.be.null();
                expect(technique.mitre_id).to.match(/^T\d{4}$/);
            }
        });

        it('orders the tactics as the matrix lists them', () => {

            const matrix = internals.ofType(raw, 'x-mitre-matrix')[0]!;
            const byId = new Map(raw.map((object) => [object.id, object]));
            const expected = matrix.tactic_refs.map((ref: string) => internals.mitreId(byId.get(ref)!));

            expect(bundle.tactics.map((tactic) => tactic.mitre_id)).to.equal(expected);
            expect(bundle.tactics.map((tactic) => tactic.order)).to.equal([...expected.keys()]);
            expect(bundle.tactics[0]).to.include({ mitre_id: 'TA0043', name: 'Reconnaissance', shortname: 'reconnaissance', order: 0 });
            expect(bundle.tactics[13]).to.include({ mitre_id: 'TA0040', name: 'Impact', shortname: 'impact', order: 13 });
            expect(bundle.matrices[0]!.mitre_id).to.equal('enterprise-attack');
        });

        it('flags revoked and deprecated techniques and follows revoked-by to the successor', () => {

            const patterns = internals.ofType(raw, 'attack-pattern');
            const revoked = patterns.filter((pattern) => pattern.revoked === true).map(internals.mitreId);
            const deprecated = patterns.filter((pattern) => pattern.x_mitre_deprecated === true).map(internals.mitreId);

            expect(revoked).to.equal(['T1002']);
            expect(deprecated).to.equal(['T1026']);
            expect(bundle.techniques.filter((technique) => technique.revoked).map((technique) => technique.mitre_id)).to.equal(revoked);
            expect(bundle.techniques.filter((technique) => technique.deprecated).map((technique) => technique.mitre_id)).to.equal(deprecated);

            const successor = successorOf(bundle, 'T1002')!;
            expect(successor).to.include({ mitre_id: 'T1002', object_type: 'attack-pattern', successor_mitre_id: 'T1560', final_mitre_id: 'T1560' });
            expect(successorOf(bundle, successor.stix_id)).to.equal(successor);
            expect(successorOf(bundle, 'T1560')).to.be.null();
            expect(successorOf(bundle, 'T1026')).to.be.null();          // deprecated, not revoked: no successor
            expect(revokedInto(bundle, 'T1560')).to.equal([successor]);
        });

        it('follows the v18 detection chain from data components to techniques', () => {

            const byId = new Map(raw.map((object) => [object.id, object]));
            const analytic = bundle.analytics.find((record) => record.log_source_references.length > 1)!;
            const rawAnalytic = byId.get(analytic.stix_id)!;
            expect(analytic.mitre_id).to.match(/^AN\d{4}$/);
            expect(analytic.log_source_references).to.equal(rawAnalytic.x_mitre_log_source_references.map((reference: Raw) => ({
                name: reference.name,
                channel: reference.channel,
                data_component_stix_id: reference.x_mitre_data_component_ref
            })));

            const component = bundle.data_components.find((record) => record.log_sources.length > 0)!;
            expect(component.mitre_id).to.match(/^DC\d{4}$/);
            expect(component.data_source_stix_id).to.be.null();         // "" throughout v18
            expect(component.log_sources).to.equal(byId.get(component.stix_id)!.x_mitre_log_sources);

            const strategy = bundle.detection_strategies[0]!;
            expect(strategy.mitre_id).to.match(/^DET\d{4}$/);
            expect(strategy.analytic_stix_ids).to.equal(byId.get(strategy.stix_id)!.x_mitre_analytic_refs);

            // Independently: technique ← detects ← strategy → analytics → log source references → component.
            const active = (object: Raw | undefined) => object !== undefined && object.revoked !== true && object.x_mitre_deprecated !== true;
            const expected = new Set<string>();
            for (const relationship of internals.ofType(raw, 'relationship')) {
                const source = byId.get(relationship.source_ref);
                if (relationship.relationship_type !== 'detects' || !active(relationship) || !active(source) || !active(byId.get(relationship.target_ref))) {
                    continue;
                }

                for (const analyticId of source!.x_mitre_analytic_refs) {
                    const rawOne = byId.get(analyticId);
                    for (const reference of active(rawOne) ? rawOne!.x_mitre_log_source_references ?? [] : []) {
                        if (active(byId.get(reference.x_mitre_data_component_ref))) {
                            expected.add(`${relationship.target_ref} ${relationship.source_ref} ${analyticId} ${reference.x_mitre_data_component_ref}`);
                        }
                    }
                }
            }

            const links = detectionLinks(bundle);
            expect(links.length).to.be.above(100);
            expect(new Set(links.map((link) => `${link.technique_stix_id} ${link.detection_strategy_stix_id} ${link.analytic_stix_id} ${link.data_component_stix_id}`))).to.equal(expected);
            expect(detectionLinks(bundle, { includeInactive: true }).length).to.be.at.least(links.length);
        });

        it('reads the same records from a Readable, gzipped or not, whatever the chunk size', async () => {

            const bytes = Fs.readFileSync(internals.attack('attack-enterprise-mini.json'));
            const reference = internals.summary(bundle);

            expect(internals.summary(await parseAttackBundle(internals.trickle(bytes)))).to.equal(reference);
            expect(internals.summary(await parseAttackBundle(internals.trickle(Zlib.gzipSync(bytes))))).to.equal(reference);

            const text = Fs.createReadStream(internals.attack('attack-enterprise-mini.json'), { encoding: 'utf8' });
            expect(internals.summary(await parseAttackBundle(text))).to.equal(reference);
        });

        it('reports progress every N objects and once at the end', async () => {

            const seen: number[] = [];
            await parseAttackBundle(internals.attack('attack-enterprise-mini.json'), { progressInterval: 500, onProgress: ({ objects }) => seen.push(objects) });
            expect(seen).to.equal([500, 1000, raw.length]);
        });
    });

    describe('on the full enterprise bundle, streamed from gzip', () => {

        const file = internals.attack('enterprise-attack.json.gz');
        const samples: number[] = [];
        let jsonBytes: number;
        let bundle: AttackBundle;
        let elapsed: number;
        let raw: Raw[] | null;
        let wholeHeap: number;

        before(async () => {

            const gc = internals.gc();
            jsonBytes = Zlib.gunzipSync(Fs.readFileSync(file)).length;

            gc();
            const baseline = process.memoryUsage().heapUsed;
            const started = Date.now();
            bundle = await parseAttackBundle(file, {
                progressInterval: 2000,
                onProgress: () => {

                    gc();
                    samples.push(process.memoryUsage().heapUsed - baseline);
                }
            });

            elapsed = Date.now() - started;

            // What loading it whole would cost, for comparison, and the independent counts.
            gc();
            const start = process.memoryUsage().heapUsed;
            const text = Zlib.gunzipSync(Fs.readFileSync(file)).toString('utf8');
            raw = JSON.parse(text).objects;
            gc();
            wholeHeap = process.memoryUsage().heapUsed - start;
            expect(text.length).to.be.above(0);                         // keeps the text alive up to the measure
        });

        after(() => {

            raw = null;
        });

        it('keeps the heap well below the size of the JSON while streaming', () => {

            expect(jsonBytes).to.be.above(35_000_000);
            expect(samples.length).to.be.at.least(12);
            const peak = Math.max(...samples);

            // The records keep about a third of the text (descriptions, ids, dates): 22 MB at the end. Loading it
            // whole holds the text (a 73 MB two-byte string) and the parsed objects (46 MB) at the same time.
            expect(peak).to.be.below(jsonBytes * 0.75);
            expect(peak).to.be.below(wholeHeap / 4);
            expect(elapsed).to.be.below(30_000);
        });

        it('finds the counts of the data README', () => {

            const techniques = bundle.techniques.filter((technique) => !technique.is_subtechnique);
            const subtechniques = bundle.techniques.filter((technique) => technique.is_subtechnique);
            const active = <T extends { revoked: boolean; deprecated: boolean }>(records: T[]) => records.filter((record) => !record.revoked && !record.deprecated);

            expect(bundle.domain).to.equal('enterprise-attack');
            expect(bundle.attack_version).to.equal('18.1');
            expect(bundle.collection).to.include({ name: 'Enterprise ATT&CK', version: '18.1', modified: '2025-11-13T14:00:00.188Z', domain: 'enterprise-attack' });
            expect(bundle.counts.objects).to.equal(24_772);
            expect([techniques.length, subtechniques.length]).to.equal([356, 479]);
            expect([active(techniques).length, active(subtechniques).length]).to.equal([216, 475]);
            expect(bundle.tactics.length).to.equal(14);
            expect(bundle.groups.length).to.equal(187);
            expect([bundle.groups.filter((group) => group.revoked).length, bundle.groups.filter((group) => group.deprecated).length]).to.equal([6, 9]);
            expect(bundle.software.filter((software) => software.type === 'malware').length).to.equal(696);
            expect(bundle.software.filter((software) => software.type === 'tool').length).to.equal(91);
            expect(bundle.mitigations.length).to.equal(268);
            expect(active(bundle.mitigations).length).to.equal(44);
            expect(bundle.campaigns.length).to.equal(52);
            expect(bundle.data_sources.length).to.equal(38);
            expect(active(bundle.data_sources).length).to.equal(0);
            expect(bundle.data_components.length).to.equal(109);
            expect(bundle.detection_strategies.length).to.equal(691);
            expect(bundle.analytics.length).to.equal(1_739);
            expect(bundle.relationships.length).to.equal(20_048);

            const triples = internals.tally(bundle.relationships.map((relationship) => `${relationship.source_type} ${relationship.type} ${relationship.target_type}`));
            expect(triples).to.include({
                'malware uses attack-pattern': 9_836,
                'intrusion-set uses attack-pattern': 4_362,
                'course-of-action mitigates attack-pattern': 1_445,
                'x-mitre-detection-strategy detects attack-pattern': 691,
                'attack-pattern subtechnique-of attack-pattern': 477,
                'attack-pattern revoked-by attack-pattern': 132,
                'campaign attributed-to intrusion-set': 25
            });
        });

        it('matches an independent count of the whole bundle', () => {

            const objects = raw!;
            const patterns = internals.ofType(objects, 'attack-pattern');
            expect(bundle.counts.by_type).to.equal(internals.tally(objects.map((object) => object.type)));
            expect(bundle.counts.relationships_by_type).to.equal(internals.tally(internals.ofType(objects, 'relationship').map((relationship) => relationship.relationship_type)));
            expect(bundle.techniques.filter((technique) => technique.is_subtechnique).length).to.equal(patterns.filter((pattern) => pattern.x_mitre_is_subtechnique).length);
            expect(bundle.techniques.filter((technique) => technique.revoked).length).to.equal(patterns.filter((pattern) => pattern.revoked === true).length);
            expect(bundle.techniques.filter((technique) => technique.deprecated).length).to.equal(patterns.filter((pattern) => pattern.x_mitre_deprecated === true).length);
            expect(bundle.techniques.map((technique) => technique.mitre_id)).to.equal(patterns.map(internals.mitreId));
            expect(bundle.analytics.flatMap((analytic) => analytic.log_source_references).length).to.equal(
                internals.ofType(objects, 'x-mitre-analytic').flatMap((analytic) => analytic.x_mitre_log_source_references ?? []).length);
        });

        it('orders the tactics from Reconnaissance to Impact', () => {

            expect(bundle.tactics.map((tactic) => tactic.mitre_id)).to.equal([
                'TA0043', 'TA0042', 'TA0001', 'TA0002', 'TA0003', 'TA0004', 'TA0005',
                'TA0006', 'TA0007', 'TA0008', 'TA0009', 'TA0011', 'TA0010', 'TA0040'
            ]);
            expect(bundle.tactics[0]!.name).to.equal('Reconnaissance');
            expect(bundle.tactics[13]!.name).to.equal('Impact');
        });

        it('gives every sub-technique a parent, falling back on the id where the relationship is gone', () => {

            for (const technique of bundle.techniques.filter((record) => record.is_subtechnique)) {
                expect(technique.parent_mitre_id).to.equal(technique.mitre_id!.split('.')[0] ?? null);
            }

            expect(bundle.warnings).to.equal([
                'T1053.001 has no subtechnique-of relationship: parent T1053 taken from its id',
                'T1547.011 has no subtechnique-of relationship: parent T1547 taken from its id'
            ]);
        });

        it('follows chains of revoked-by to the current technique', () => {

            expect(bundle.revocations.length).to.equal(140);
            expect(successorOf(bundle, 'T1150')).to.include({ successor_mitre_id: 'T1547.011', final_mitre_id: 'T1647' });
            expect(successorOf(bundle, 'T1073')).to.include({ successor_mitre_id: 'T1574.002', final_mitre_id: 'T1574.001' });
            expect(revokedInto(bundle, 'T1647').map((revocation) => revocation.mitre_id).sort()).to.equal(['T1150', 'T1162', 'T1547.011']);

            const current = new Set(bundle.techniques.filter((technique) => !technique.revoked).map((technique) => technique.stix_id));
            for (const revocation of bundle.revocations.filter((record) => record.object_type === 'attack-pattern')) {
                expect(current.has(revocation.final_stix_id)).to.be.true();
            }
        });

        it('links the data components to the techniques they can reveal', () => {

            const links = detectionLinks(bundle);
            const techniques = new Set(links.map((link) => link.technique_stix_id));
            const components = new Set(links.map((link) => link.data_component_stix_id));
            expect(techniques.size).to.be.above(600);
            expect(components.size).to.be.above(90);
        });
    });

    describe('on the Mobile and ICS bundles', () => {

        it('tags Mobile records with mobile-attack and puts the deprecated matrix last', async () => {

            const bundle = await parseAttackBundle(Fs.createReadStream(internals.attack('mobile-attack.json.gz')));
            expect(bundle.domain).to.equal('mobile-attack');
            expect(bundle.attack_version).to.equal('18.1');
            expect(bundle.counts.objects).to.equal(2_536);
            expect(bundle.techniques.filter((technique) => !technique.is_subtechnique).length).to.equal(143);
            expect(bundle.techniques.filter((technique) => technique.is_subtechnique).length).to.equal(47);
            expect(bundle.tactics.length).to.equal(14);
            expect(bundle.tactics.slice(12).map((tactic) => [tactic.shortname, tactic.deprecated])).to.equal([['network-effects', true], ['remote-service-effects', true]]);
            expect(bundle.tactics[0]).to.include({ mitre_id: 'TA0027', order: 0 });
            expect(bundle.relationships.length).to.equal(1_811);

            // Some revoked Mobile techniques only carry a mitre-mobile-attack reference.
            expect(bundle.techniques.find((technique) => technique.mitre_id === 'T1425')).to.include({ revoked: true });
            expect(bundle.techniques.every((technique) => technique.mitre_id !== null && technique.domain === 'mobile-attack')).to.be.true();
            expect(bundle.techniques.find((technique) => technique.mitre_id === 'T1404')!.tactics).to.equal(['privilege-escalation']);
            expect(bundle.warnings).to.equal([]);
        });

        it('tags ICS records with ics-attack and counts what it does not model', async () => {

            const bundle = await parseAttackBundle(internals.attack('ics-attack.json.gz'));
            expect(bundle.domain).to.equal('ics-attack');
            expect(bundle.collection).to.include({ name: 'ICS ATT&CK', version: '18.1' });
            expect(bundle.techniques.length).to.equal(95);
            expect(bundle.techniques.filter((technique) => technique.is_subtechnique).length).to.equal(0);
            expect(bundle.tactics.map((tactic) => tactic.mitre_id)).to.equal([
                'TA0108', 'TA0104', 'TA0110', 'TA0111', 'TA0103', 'TA0102', 'TA0109', 'TA0100', 'TA0101', 'TA0107', 'TA0106', 'TA0105'
            ]);
            expect(bundle.groups.length).to.equal(16);
            expect(bundle.relationships.length).to.equal(1_373 - 685);
            expect(bundle.counts.ignored_types).to.equal({ 'x-mitre-asset': 18, identity: 1, 'marking-definition': 1 });
            expect(bundle.counts.ignored_relationship_types).to.equal({ targets: 685 });
            expect(bundle.software.find((software) => software.mitre_id === 'S1008')).to.include({ name: 'Stuxnet', deprecated: true });
            expect(bundle.techniques.find((technique) => technique.mitre_id === 'T0875')).to.include({ deprecated: true, revoked: false });

            // A group present in several domains is tagged with the bundle it was read from; domains keeps them all.
            const multi = bundle.groups.find((group) => group.domains.length > 1)!;
            expect(multi.domain).to.equal('ics-attack');
            expect(multi.domains).to.include(['enterprise-attack', 'ics-attack']);
        });
    });

    describe('on other input', () => {

        it('takes the domain from x_mitre_domains when there is no matrix', async () => {

            const objects = internals.readBundle('attack-enterprise-mini.json').filter((object) => object.type !== 'x-mitre-matrix');
            const bundle = await parseAttackBundle(internals.bundleOf(objects));
            expect(bundle.domain).to.equal('enterprise-attack');
            expect(bundle.tactics.every((tactic) => tactic.order === null)).to.be.true();
            expect(bundle.tactics.map((tactic) => tactic.mitre_id)).to.equal([...bundle.tactics.map((tactic) => tactic.mitre_id)].sort());
        });

        it('warns about references to objects that are not in the bundle', async () => {

            const objects = internals.readBundle('attack-enterprise-mini.json');
            const t1003 = objects.find((object) => internals.mitreId(object) === 'T1003')!;
            const tactic = objects.find((object) => object.type === 'x-mitre-tactic')!;
            const kept = objects.filter((object) => object !== t1003 && object !== tactic);
            kept.push({ type: 'relationship', id: 'relationship--00000000-0000-4000-8000-000000000000', relationship_type: 'uses', source_ref: t1003.id });

            const bundle = await parseAttackBundle(internals.bundleOf(kept));
            expect(bundle.warnings).to.include([
                `matrix enterprise-attack refers to tactic ${tactic.id}, which is not in the bundle`,
                'relationship relationship--00000000-0000-4000-8000-000000000000 has no source_ref or target_ref: skipped'
            ]);
            expect(bundle.warnings.filter((warning) => /^subtechnique-of .* not in the bundle$/.test(warning)).length).to.equal(2);
            expect(bundle.warnings.filter((warning) => /^T1003\.\d{3} has no subtechnique-of relationship: parent unknown$/.test(warning)).length).to.equal(2);
        });

        it('accepts an explicit domain and refuses a bundle whose domain it cannot tell', async () => {

            const objects = [{ type: 'identity', id: 'identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5', name: 'The MITRE Corporation' }];
            await expect(parseAttackBundle(internals.bundleOf(objects))).to.reject(/Cannot tell the ATT&CK domain/);
            expect((await parseAttackBundle(internals.bundleOf(objects), { domain: 'ics-attack' })).domain).to.equal('ics-attack');
        });

        it('rejects what is not a STIX bundle', async () => {

            await expect(parseAttackBundle(internals.attack('missing.json'))).to.reject(/ENOENT/);
            await expect(parseAttackBundle(Readable.from([Buffer.from('{"objects": [')]))).to.reject();
            await expect(parseAttackBundle(Readable.from([Buffer.from('not json')]))).to.reject();
            await expect(parseAttackBundle(internals.bundleOf([42 as any]))).to.reject('objects[0] is not a STIX object');
            await expect(parseAttackBundle(internals.bundleOf([{ type: 'attack-pattern' }]))).to.reject('objects[0] has no STIX type or id');
            await expect(parseAttackBundle(Readable.from([42]))).to.reject('The bundle stream must yield bytes or strings');
            await expect(parseAttackBundle(Readable.from([]))).to.reject();
            await expect(parseAttackBundle(Readable.from(['{"type": "bundle", "objects": []}']))).to.reject('it has no STIX objects (a bundle is {"type": "bundle", "objects": [...]})');
            await expect(parseAttackBundle(Readable.from(['<html>Sign in</html>']))).to.reject(/^Parser cannot parse input/);
        });

        it('opens a gzipped stream by its magic bytes, not its name', async () => {

            const bytes = Zlib.gzipSync(Buffer.from('{"type":"bundle"}'));
            const chunks: Buffer[] = [];
            for await (const chunk of await openBundleStream(internals.trickle(bytes))) {
                chunks.push(chunk);
            }

            expect(Buffer.concat(chunks).toString()).to.equal('{"type":"bundle"}');
        });
    });
});


describe('D3FEND', () => {

    // The ontology is the published source; the JSON and CSV files beside it were derived from it with the rule of the
    // data README, independently of this parser, and are the expected values.
    let data: D3fendData;
    let raw: Raw;
    let rawMappings: Raw;
    let csv: string[][];
    let parse: { ms: number; heap: number };

    before(async () => {

        const gc = internals.gc();
        gc();
        const baseline = process.memoryUsage().heapUsed;
        const started = process.hrtime.bigint();
        data = await parseD3fendOntology(internals.d3fend('d3fend-protege.ttl.gz'));
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        gc();
        parse = { ms, heap: process.memoryUsage().heapUsed - baseline };

        raw = JSON.parse(Fs.readFileSync(internals.d3fend('d3fend-techniques.json'), 'utf8'));
        rawMappings = JSON.parse(Fs.readFileSync(internals.d3fend('d3fend-attack-mappings.json'), 'utf8'));

        // No field of this CSV is quoted or holds a comma (checked when the file was made): a split is enough.
        csv = Fs.readFileSync(internals.d3fend('d3fend-attack-mappings.csv'), 'utf8').trim().split(/\r?\n/).slice(1).map((line) => line.split(','));
    });

    it('reads every countermeasure and tactic of the ontology, as the derived techniques file has them', () => {

        expect(data.d3fend_version).to.be.null();                  // the protege source has no version header; MITRE's build has one
        expect(data.warnings).to.equal([]);
        expect(data.triples).to.equal(32_090);
        expect(data.tactics).to.equal(raw.tactics);
        expect(data.tactics.map((tactic) => tactic.id)).to.equal(['Model', 'Harden', 'Detect', 'Isolate', 'Deceive', 'Evict', 'Restore']);

        expect(data.countermeasures.length).to.equal(249);
        expect(data.countermeasures).to.equal(raw.techniques.map((technique: Raw) => ({
            d3fend_id: technique.id,
            name: technique.name,
            iri_local: technique.iri_local,
            tactic: technique.tactic,
            parent_d3fend_id: technique.parent_id,
            level: technique.level,
            definition: technique.definition,
            synonyms: [...technique.synonyms].sort(),
            artifact_relations: technique.artifact_relations
        })));

        const psa = data.countermeasures.find((countermeasure) => countermeasure.d3fend_id === 'D3-PSA')!;
        expect(psa).to.equal({
            d3fend_id: 'D3-PSA',
            name: 'Process Spawn Analysis',
            iri_local: 'ProcessSpawnAnalysis',
            tactic: 'Detect',
            parent_d3fend_id: 'D3-PA',
            level: 1,
            definition: 'Analyzing spawn arguments or attributes of a process to detect processes that are unauthorized.',
            synonyms: [],
            artifact_relations: [
                { relation: 'analyzes', artifact: 'CreateProcess', artifact_label: 'Create Process' },
                { relation: 'analyzes', artifact: 'Process', artifact_label: 'Process' }
            ]
        });
    });

    it('groups countermeasures by tactic in display order', () => {

        const groups = countermeasuresByTactic(data);
        expect([...groups.keys()]).to.equal(['Model', 'Harden', 'Detect', 'Isolate', 'Deceive', 'Evict', 'Restore']);
        expect(Object.fromEntries([...groups].map(([tactic, list]) => [tactic, list.length]))).to.equal({
            Model: 27, Harden: 48, Detect: 79, Isolate: 53, Deceive: 11, Evict: 19, Restore: 12
        });
    });

    it('maps D3FEND techniques to ATT&CK ids by the inference rule, with every path of the CSV', () => {

        expect(data.mappings.length).to.equal(3_009);
        expect(new Set(data.mappings.map((mapping) => mapping.attack_id)).size).to.equal(307);
        expect(new Set(data.mappings.map((mapping) => mapping.d3fend_id)).size).to.equal(140);

        const paths = data.mappings.flatMap((mapping) => mapping.inferences.map((inference) => [
            mapping.attack_id, mapping.d3fend_id, mapping.d3fend_tactic,
            inference.defensive_relation, inference.defensive_artifact, inference.offensive_artifact, inference.offensive_relation
        ].join(',')));

        expect(paths.length).to.equal(csv.length);
        expect(paths.length).to.equal(3_313);
        expect(new Set(paths)).to.equal(new Set(csv.map(([attackId, , d3fendId, , tactic, ...rest]) => [attackId, d3fendId, tactic, ...rest].join(','))));

        expect(internals.tally(data.mappings.map((mapping) => mapping.d3fend_tactic))).to.equal({
            Detect: 1_069, Isolate: 893, Harden: 293, Restore: 242, Evict: 220, Model: 168, Deceive: 124
        });

        // The same records, in the same order, as the derived mappings file
        expect(data.mappings.map((mapping) => ({ attack_id: mapping.attack_id, attack_name: mapping.attack_name, id: mapping.d3fend_id, name: mapping.d3fend_name, tactic: mapping.d3fend_tactic, via: mapping.inferences.map((inference) => inference.via) })))
            .to.equal(rawMappings.mappings.flatMap((entry: Raw) => entry.d3fend.map((defense: Raw) => ({ attack_id: entry.attack_id, attack_name: entry.attack_name, ...defense }))));
    });

    it('knows that Process Spawn Analysis detects LSASS Memory access', () => {

        const mapping = data.mappings.find((record) => record.attack_id === 'T1003.001' && record.d3fend_id === 'D3-PSA');
        expect(mapping).to.equal({
            d3fend_id: 'D3-PSA',
            d3fend_name: 'Process Spawn Analysis',
            d3fend_tactic: 'Detect',
            attack_id: 'T1003.001',
            attack_name: 'LSASS Memory',
            inferences: [
                {
                    via: 'analyzes Process <- accesses AuthenticationService',
                    defensive_relation: 'analyzes',
                    defensive_artifact: 'Process',
                    offensive_relation: 'accesses',
                    offensive_artifact: 'AuthenticationService'
                },
                {
                    via: 'analyzes Process <- accesses Process',
                    defensive_relation: 'analyzes',
                    defensive_artifact: 'Process',
                    offensive_relation: 'accesses',
                    offensive_artifact: 'Process'
                }
            ]
        });
    });

    it('joins on ATT&CK v18.1 ids: 303 active, 3 revoked and 1 deprecated (the ontology imported ATT&CK 17.0)', async () => {

        const bundle = await parseAttackBundle(internals.attack('enterprise-attack.json.gz'));
        const techniques = new Map(bundle.techniques.map((technique) => [technique.mitre_id ?? '', technique]));
        const claimed = new Map<string, string>(rawMappings.mappings.map((entry: Raw) => [entry.attack_id, entry.attack_status_in_attack_18_1]));
        const statuses = [...new Set(data.mappings.map((mapping) => mapping.attack_id))].map((attackId) => {

            const technique = techniques.get(attackId)!;
            expect(technique, attackId).to.exist();
            const status = technique.revoked ? 'revoked' : technique.deprecated ? 'deprecated' : 'active';
            expect(claimed.get(attackId)).to.equal(status);
            return status;
        });

        expect(internals.tally(statuses)).to.equal({ active: 303, revoked: 3, deprecated: 1 });
    });

    it('parses the 2.5 MB ontology in well under the time and memory of the ATT&CK bundle', () => {

        // Measured on the development machine (2 shared cores): 0.3-0.7 s warm, and 12.6 MB of heap for the records and the file
        expect(parse.ms).to.be.below(5_000);
        expect(parse.heap).to.be.below(40 * 1024 * 1024);
    });

    it('reads the ontology from a trickled Readable, gzipped or not', async () => {

        const gzipped = Fs.readFileSync(internals.d3fend('d3fend-protege.ttl.gz'));
        const fromTrickle = await parseD3fendOntology(internals.trickle(gzipped, [1, 7, 65_536]));
        expect(fromTrickle).to.equal(data);

        const plain = await parseD3fendOntology(Readable.from([Zlib.gunzipSync(gzipped)]));
        expect(plain.mappings).to.equal(data.mappings);
    });

    it('derives the rule on a small ontology: subclasses, the DigitalArtifact filter, the deepest parent, the version', async () => {

        const ttl = `@prefix : <http://d3fend.mitre.org/ontologies/d3fend.owl#> .
            @prefix owl: <http://www.w3.org/2002/07/owl#> .
            @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
            <http://d3fend.mitre.org/ontologies/d3fend.owl> a owl:Ontology ; owl:versionInfo "9.9.9" .
            :Detect a :DefensiveTactic ; rdfs:label "Detect" ; :display-order 1 .
            :DefensiveTechnique rdfs:subClassOf [ a owl:Restriction ; owl:onProperty :enables ; owl:someValuesFrom :DefensiveTactic ] .
            :DigitalArtifact a owl:Class .
            :File rdfs:subClassOf :DigitalArtifact ; rdfs:label "File" .
            :Script rdfs:subClassOf :File ; rdfs:label "Script" .
            :Door rdfs:label "Door" .
            :FileAnalysis rdfs:subClassOf :DefensiveTechnique, [ a owl:Restriction ; owl:onProperty :enables ; owl:someValuesFrom :Detect ],
                [ a owl:Restriction ; owl:onProperty :analyzes ; owl:someValuesFrom :File ] ; :d3fend-id "D3-FA" ; rdfs:label "File Analysis" .
            :ScriptAnalysis rdfs:subClassOf :FileAnalysis, :DefensiveTechnique, [ a owl:Restriction ; owl:onProperty :inspects ; owl:someValuesFrom :Door ] ;
                :d3fend-id "D3-SA" ; rdfs:label "Script Analysis" ; :synonym "b", "A" .
            :Lost rdfs:subClassOf :DefensiveTechnique ; :d3fend-id "D3-L" .
            :T9001 rdfs:subClassOf [ a owl:Restriction ; owl:onProperty :executes ; owl:someValuesFrom :Script ], [ a owl:Restriction ; owl:onProperty :opens ; owl:someValuesFrom :Door ] ;
                :attack-id "T9001" ; rdfs:label "Run Script" .`;

        const small = await parseD3fendOntology(Readable.from([ttl]));
        expect(small.d3fend_version).to.equal('9.9.9');
        expect(small.tactics).to.equal([{ id: 'Detect', name: 'Detect', definition: null, display_order: 1 }]);
        expect(small.warnings).to.equal(['D3-L (Lost) enables no tactic: left out']);
        expect(small.countermeasures.map((countermeasure) => [countermeasure.d3fend_id, countermeasure.tactic, countermeasure.parent_d3fend_id, countermeasure.level, countermeasure.synonyms])).to.equal([
            ['D3-FA', 'Detect', null, 0, []],
            ['D3-SA', 'Detect', 'D3-FA', 1, ['A', 'b']]
        ]);

        // D3-FA analyzes File, T9001 executes a Script (a File); D3-SA's Door is no DigitalArtifact, so it maps nothing
        expect(small.mappings).to.equal([{
            d3fend_id: 'D3-FA', d3fend_name: 'File Analysis', d3fend_tactic: 'Detect', attack_id: 'T9001', attack_name: 'Run Script',
            inferences: [{ via: 'analyzes File <- executes Script', defensive_relation: 'analyzes', defensive_artifact: 'File', offensive_relation: 'executes', offensive_artifact: 'Script' }]
        }]);
    });

    it('reads the version from owl:versionIRI when there is no owl:versionInfo, as MITRE\'s builds name it', async () => {

        const ttl = `@prefix : <http://d3fend.mitre.org/ontologies/d3fend.owl#> .
            @prefix owl: <http://www.w3.org/2002/07/owl#> .
            @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
            <http://d3fend.mitre.org/ontologies/d3fend.owl> a owl:Ontology ; owl:versionIRI <http://d3fend.mitre.org/ontologies/d3fend/1.3.0/d3fend.owl> .
            <http://example.com/other#Isolate> a :DefensiveTactic .
            :NetworkIsolation rdfs:subClassOf :DefensiveTechnique ; :enables <http://example.com/other#Isolate> ; :d3fend-id "D3-NI" .`;

        const small = await parseD3fendOntology(Readable.from([ttl]));
        expect(small.d3fend_version).to.equal('1.3.0');
        expect(small.tactics).to.equal([{ id: 'Isolate', name: 'Isolate', definition: null, display_order: 0 }]);
        expect(small.countermeasures).to.equal([{
            d3fend_id: 'D3-NI', name: 'NetworkIsolation', iri_local: 'NetworkIsolation', tactic: 'Isolate', parent_d3fend_id: null, level: 0,
            definition: null, synonyms: [], artifact_relations: []
        }]);
        expect(small.mappings).to.equal([]);
    });

    it('rejects what is not the ontology', async () => {

        await expect(parseD3fendOntology(Readable.from([Buffer.from(JSON.stringify({ mappings: [] }))]))).to.reject(/^Unexpected graph on line 1/);
        await expect(parseD3fendOntology(Readable.from(['<http://example.com/a> <http://example.com/b> "c" .']))).to.reject('it has no D3FEND technique (1 triples, none a class under d3f:DefensiveTechnique with a d3f:d3fend-id)');
    });
});


describe('Sources', () => {

    const mirror = 'https://aegis:pw@mirror.example.com:8443/attack/enterprise-attack.json?signature=abc#top';

    it('shows a URL without its credentials, query string or fragment, and a path as it is', () => {

        expect(displaySource(mirror)).to.equal('https://mirror.example.com:8443/attack/enterprise-attack.json');
        expect(displaySource('http://aegis:pw@[bad/enterprise-attack.json?signature=abc')).to.equal('http://[bad/enterprise-attack.json');
        expect(displaySource('/opt/aegis/enterprise-attack.json.gz')).to.equal('/opt/aegis/enterprise-attack.json.gz');
    });

    it('says why a source failed in words, from the codes Node and fetch give', () => {

        const system = (code: string) => Object.assign(new Error(`${code} from the socket`), { code });
        const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });
        const words = (err: unknown) => describeFailure(err, mirror);

        expect(words(fetchFailed(system('EAI_AGAIN')))).to.equal('could not be reached: DNS lookup of mirror.example.com failed (EAI_AGAIN); this machine may have no internet access');
        expect(words(fetchFailed(Object.assign(new AggregateError([system('ECONNREFUSED'), system('ECONNREFUSED')]))))).to.equal('could not be reached: connection refused by mirror.example.com:8443 (ECONNREFUSED)');
        expect(words(fetchFailed(system('ENETUNREACH')))).to.equal('could not be reached: no route to mirror.example.com:8443 (ENETUNREACH); this machine may have no internet access');
        expect(words(fetchFailed(system('UND_ERR_CONNECT_TIMEOUT')))).to.equal('no complete answer within 300 s (timeout, UND_ERR_CONNECT_TIMEOUT)');
        expect(words(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).to.equal('no complete answer within 300 s (timeout)');
        expect(describeFailure(new DOMException('The operation was aborted due to timeout', 'TimeoutError'), mirror, { timeoutMs: 1500 })).to.equal('no complete answer within 2 s (timeout)');
        expect(words(new TypeError('terminated', { cause: system('UND_ERR_SOCKET') }))).to.equal('the connection to mirror.example.com:8443 broke off (UND_ERR_SOCKET)');
        expect(words(fetchFailed(system('ECONNRESET')))).to.equal('the connection to mirror.example.com:8443 broke off (ECONNRESET)');
        expect(words(fetchFailed(system('UNABLE_TO_VERIFY_LEAF_SIGNATURE')))).to.equal('its TLS certificate could not be verified (UNABLE_TO_VERIFY_LEAF_SIGNATURE); a proxy may be intercepting HTTPS');
        expect(words(fetchFailed(system('CERT_HAS_EXPIRED')))).to.equal('its TLS certificate could not be verified (CERT_HAS_EXPIRED); a proxy may be intercepting HTTPS');
        expect(describeFailure(system('ENOENT'), '/opt/aegis/d3fend.ttl')).to.equal('file not found');
        expect(describeFailure(system('EACCES'), '/opt/aegis/d3fend.ttl')).to.equal('permission denied (EACCES)');
        expect(describeFailure(system('EISDIR'), '/opt/aegis')).to.equal('is a folder, not a file');
        expect(words(new Error('Parser cannot parse input: expected a value'))).to.be.null();
        expect(words(undefined)).to.be.null();
    });

    it('says why the outbound client refused or failed a download, and what to do about a refused mirror', () => {

        const words = (err: unknown) => describeFailure(err, mirror, { timeoutMs: 300_000, maxBytes: 1000 });
        const remedy = 'a mirror on the local network must be added to OUTBOUND_ALLOW_HOSTS';

        expect(words(new OutboundError('blocked', 'mirror.example.com is or resolves to a private, loopback, link-local, multicast or metadata address')))
            .to.equal(`is not allowed by the outbound rules (mirror.example.com is or resolves to a private, loopback, link-local, multicast or metadata address); ${remedy}`);
        expect(describeFailure(new OutboundError('blocked', 'The scheme http is not allowed (https only)'), 'http://mirror.example.com/attack.json'))
            .to.equal(`is not allowed by the outbound rules (The scheme http is not allowed (https only)); ${remedy}, and an http:// URL needs OUTBOUND_ALLOW_HTTP=true`);
        expect(words(new OutboundError('timeout', 'https://mirror.example.com:8443 did not answer in time'))).to.equal('no complete answer within 300 s (timeout)');
        expect(words(new OutboundError('timeout', 'https://mirror.example.com:8443 could not be reached in time', undefined, 'ETIMEDOUT')))
            .to.equal('could not be reached: no connection to mirror.example.com:8443 in time (timeout, ETIMEDOUT); this machine may have no internet access');
        expect(words(new OutboundError('too_large', 'https://mirror.example.com:8443 answered more than 1000 bytes'))).to.equal('is larger than 1000 bytes');
        expect(words(new OutboundError('http_status', 'https://mirror.example.com:8443/attack/enterprise-attack.json answered 503', 503))).to.equal('answered HTTP 503 Service Unavailable');
        expect(words(new OutboundError('http_status', 'https://mirror.example.com:8443 redirected more than 3 times', 302))).to.equal('redirected more than 3 times: use the final URL');
        expect(words(new OutboundError('network', 'mirror.example.com could not be resolved', undefined, 'ENOTFOUND')))
            .to.equal('could not be reached: DNS lookup of mirror.example.com failed (ENOTFOUND); this machine may have no internet access');
        expect(words(new OutboundError('network', 'https://mirror.example.com:8443 could not be reached (ECONNREFUSED)', undefined, 'ECONNREFUSED')))
            .to.equal('could not be reached: connection refused by mirror.example.com:8443 (ECONNREFUSED)');
        expect(words(new OutboundError('network', 'https://mirror.example.com:8443 could not be reached (DEPTH_ZERO_SELF_SIGNED_CERT)', undefined, 'DEPTH_ZERO_SELF_SIGNED_CERT')))
            .to.equal('its TLS certificate could not be verified (DEPTH_ZERO_SELF_SIGNED_CERT); a proxy may be intercepting HTTPS');
        expect(words(new OutboundError('network', 'https://mirror.example.com:8443 sent a body that could not be read', undefined, 'Z_DATA_ERROR'))).to.be.null();
        expect(toSourceError(new OutboundError('network', 'https://mirror.example.com:8443 sent a body that could not be read', undefined, 'Z_DATA_ERROR'), mirror).message)
            .to.equal('https://mirror.example.com:8443/attack/enterprise-attack.json: https://mirror.example.com:8443 sent a body that could not be read');
    });

    it('turns any error into a SourceError that never shows the raw source', () => {

        const known = new SourceError('/opt/aegis/d3fend.ttl', 'file not found');
        expect(toSourceError(known, '/elsewhere')).to.shallow.equal(known);

        const parse = toSourceError(new Error(`Unexpected token in ${mirror}`), mirror, { otherwise: 'is not a STIX 2.1 bundle' });
        expect(parse).to.be.an.instanceof(SourceError);
        expect(parse.message).to.equal('https://mirror.example.com:8443/attack/enterprise-attack.json: is not a STIX 2.1 bundle (Unexpected token in https://mirror.example.com:8443/attack/enterprise-attack.json)');
        expect(toSourceError('a string was thrown', '/opt/aegis/d3fend.ttl').message).to.equal('/opt/aegis/d3fend.ttl: a string was thrown');
    });

    it('names a DNS failure for a host that does not exist', async () => {

        await expect(openSource('http://aegis-test.invalid/enterprise-attack.json', new OutboundHttp({ allowHttp: true }))).to.reject(SourceError, /^http:\/\/aegis-test\.invalid\/enterprise-attack\.json: could not be reached: DNS lookup of aegis-test\.invalid failed \((ENOTFOUND|EAI_AGAIN)\); this machine may have no internet access$/);
    });
});
