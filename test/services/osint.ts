import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { likelihoodOf, osintPrevalence } from '../../server/services/scoring';
import { FeedFormatError, mispGroupId, parseMispGalaxy, parseStixBundle } from '../../server/services/osint-mapping';
import { prevalenceOf, recencyWeight } from '../../server/services/osint-prevalence';
import { confinedPath } from '../../server/services/osint-sources';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


const day = 86_400_000;
const now = new Date('2026-12-07T00:00:00Z');
const ago = (days: number) => new Date(now.getTime() - days * day);
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;


describe('OSINT prevalence (hand-computed)', () => {

    it('weighs each actor by its latest report, half a weight a year on, and saturates at ten actors', () => {

        expect(recencyWeight(now, now)).to.equal(1);
        expect(recencyWeight(ago(365), now)).to.equal(0.5);
        expect(recencyWeight(ago(730), now)).to.equal(0.25);
        expect(recencyWeight(new Date(now.getTime() + day), now)).to.equal(1);           // a date in the future counts as today

        const rows = prevalenceOf([
            // T1: actor a today and a year ago (the latest counts: 1), actor b a year ago (0.5), one feed:
            // weighted 1.5, prevalence 1.5 / 10 = 0.15
            { technique_id: 'T1', threat_actor_id: 'a', feed_id: 'f1', last_seen: now },
            { technique_id: 'T1', threat_actor_id: 'a', feed_id: 'f1', last_seen: ago(365) },
            { technique_id: 'T1', threat_actor_id: 'b', feed_id: 'f1', last_seen: ago(365) },
            // T2: actors a (two years: 0.25) and c (today: 1) in two feeds: 1.25 x (1 + 0.25) / 10 = 0.15625 -> 0.1563
            { technique_id: 'T2', threat_actor_id: 'a', feed_id: 'f1', last_seen: ago(730) },
            { technique_id: 'T2', threat_actor_id: 'c', feed_id: 'f2', last_seen: now },
            // T3: twelve actors today in three feeds: 12 x 1.5 / 10 = 1.8, capped at 1
            ...Array.from({ length: 12 }, (_, i) => ({ technique_id: 'T3', threat_actor_id: `x${i}`, feed_id: `f${i % 3}`, last_seen: now }))
        ], now);

        expect(rows).to.equal([
            { technique_id: 'T1', actors: 2, feeds: 1, weighted_actors: 1.5, prevalence: 0.15, last_reported_at: now },
            { technique_id: 'T2', actors: 2, feeds: 2, weighted_actors: 1.25, prevalence: 0.1563, last_reported_at: now },
            { technique_id: 'T3', actors: 12, feeds: 3, weighted_actors: 12, prevalence: 1, last_reported_at: now }
        ]);
        expect(prevalenceOf([], now)).to.equal([]);
    });

    it('feeds the risk likelihood: max(from actors, 1 + 4 x prevalence)', () => {

        const map = new Map([['T1', 0.15], ['T3', 1]]);
        expect(osintPrevalence(map, 'T1')).to.equal(0.15);
        expect(osintPrevalence(map, 'T9')).to.be.null();
        expect(likelihoodOf(0, 10, osintPrevalence(map, 'T1'))).to.equal(1.6);          // 1 + 4 x 0.15
        expect(likelihoodOf(0, 10, osintPrevalence(map, 'T3'))).to.equal(5);
        expect(likelihoodOf(10, 10, osintPrevalence(map, 'T1'))).to.equal(5);           // the actors win
        expect(likelihoodOf(0, 10, osintPrevalence(map, 'T9'))).to.equal(1);
    });
});


describe('OSINT feed mapping', () => {

    it('reads a MISP galaxy: names, synonyms, the ATT&CK group, country; rejects malformed clusters by item', () => {

        const content = parseMispGalaxy({
            values: [
                { uuid: uuid(1), value: 'APT28', description: ' Sofacy ', meta: { synonyms: ['Sofacy', 'apt28', 'Fancy Bear', 'Sofacy', 7], refs: ['https://attack.mitre.org/groups/G0007/'], country: 'ru' } },
                { uuid: uuid(2), value: 'Group B', meta: { 'name-attribution': ['Other:x', 'G0016:abc'] }, related: [{ 'dest-uuid': uuid(9), type: 'uses' }, { 'dest-uuid': uuid(8), type: 'similar' }] },
                { value: 'no uuid' },
                { uuid: uuid(1), value: 'twice' },
                { uuid: uuid(3), value: '  ' },
                { uuid: uuid(4), value: 'bad synonyms', meta: { synonyms: 'x' } },
                'not an object'
            ]
        });

        expect(content.actors).to.equal([
            { item_id: uuid(1), name: 'APT28', aliases: ['Sofacy', 'Fancy Bear'], mitre_id: 'G0007', stix_id: null, country: 'RU', description: 'Sofacy', last_seen: null },
            { item_id: uuid(2), name: 'Group B', aliases: [], mitre_id: 'G0016', stix_id: null, country: null, description: null, last_seen: null }
        ]);
        expect(content.usages).to.equal([{ item_id: `${uuid(2)}/uses/${uuid(9)}`, actor_item_id: uuid(2), technique: { mitre_id: null, stix_id: `attack-pattern--${uuid(9)}` }, description: null, last_seen: null, strict: false }]);
        expect(content.rejections).to.equal([
            { item: 'values[2]', reason: 'has no "uuid" (a UUID): the cluster cannot be followed from one import to the next' },
            { item: uuid(1), reason: 'appears twice in the galaxy: the first one is kept' },
            { item: uuid(3), reason: 'has no "value" (the actor\'s name)' },
            { item: uuid(4), reason: '"meta.synonyms" is not a list of names' },
            { item: 'values[6]', reason: 'is not an object' }
        ]);
        expect(content).to.include({ rejected: 5, items: 7 });
        expect(mispGroupId({ refs: ['https://example.com'], 'name-attribution': ['G00x:1'] })).to.be.null();
        expect(() => parseMispGalaxy({ type: 'bundle' })).to.throw(FeedFormatError, 'is not a MISP galaxy: the document has no "values" list of clusters');
        expect(() => parseMispGalaxy([])).to.throw(FeedFormatError);
    });

    it('reads STIX 2.1: actors, attack-patterns by ATT&CK id, `uses` relationships; rejects by item', () => {

        const set = `intrusion-set--${uuid(1)}`;
        const pattern = `attack-pattern--${uuid(2)}`;
        const content = parseStixBundle({
            type: 'bundle', id: `bundle--${uuid(99)}`, objects: [
                { type: 'intrusion-set', id: set, name: 'Set A', aliases: ['Set A', 'A team'], modified: '2026-01-01T00:00:00.000Z', external_references: [{ source_name: 'mitre-attack', external_id: 'G0099' }] },
                { type: 'attack-pattern', id: pattern, name: 'P', external_references: [{ source_name: 'mitre-attack', external_id: 'T1059.001' }] },
                { type: 'relationship', id: `relationship--${uuid(3)}`, relationship_type: 'uses', source_ref: set, target_ref: pattern, modified: '2026-02-01T00:00:00.000Z' },
                { type: 'relationship', id: `relationship--${uuid(4)}`, relationship_type: 'uses', source_ref: `intrusion-set--${uuid(50)}`, target_ref: pattern },
                { type: 'relationship', id: `relationship--${uuid(5)}`, relationship_type: 'uses', source_ref: set, target_ref: `attack-pattern--${uuid(51)}` },
                { type: 'relationship', id: `relationship--${uuid(6)}`, relationship_type: 'uses', source_ref: `malware--${uuid(52)}`, target_ref: pattern },
                { type: 'threat-actor', id: `threat-actor--${uuid(7)}`, aliases: ['nameless'] },
                { type: 'indicator', id: `indicator--${uuid(8)}`, pattern: '[x]' },
                { type: 'intrusion-set', id: 'intrusion-set--not-a-uuid', name: 'bad id' },
                { type: 'intrusion-set', id: set, name: 'twice' },
                { type: 'intrusion-set', id: `intrusion-set--${uuid(9)}`, name: 'revoked', revoked: true }
            ]
        });

        expect(content.actors).to.equal([{ item_id: set, name: 'Set A', aliases: ['A team'], mitre_id: 'G0099', stix_id: set, country: null, description: null, last_seen: new Date('2026-01-01T00:00:00.000Z') }]);
        expect(content.usages).to.equal([
            { item_id: `relationship--${uuid(3)}`, actor_item_id: set, technique: { mitre_id: 'T1059.001', stix_id: pattern }, description: null, last_seen: new Date('2026-02-01T00:00:00.000Z'), strict: true },
            { item_id: `relationship--${uuid(5)}`, actor_item_id: set, technique: { mitre_id: null, stix_id: `attack-pattern--${uuid(51)}` }, description: null, last_seen: null, strict: true }
        ]);
        expect(content.rejections).to.equal([
            { item: 'intrusion-set--not-a-uuid', reason: 'has no valid STIX "type" and "id" (<type>--<UUID>)' },
            { item: set, reason: 'appears twice: the first one is kept' },
            { item: `threat-actor--${uuid(7)}`, reason: 'has no "name"' },
            { item: `relationship--${uuid(4)}`, reason: `"source_ref" intrusion-set--${uuid(50)} is not an actor of this feed (missing or rejected)` }
        ]);
        expect(() => parseStixBundle({ values: [] })).to.throw(FeedFormatError, 'is not a STIX 2.1 bundle: the document has no "type": "bundle" with an "objects" list');
    });

    it('confines feed files to the feed directory', () => {

        const root = Path.resolve('/srv/feeds');
        expect(confinedPath(root, 'misp/threat-actor.json')).to.equal(Path.join(root, 'misp', 'threat-actor.json'));
        expect(confinedPath(root, '/srv/feeds/a.json')).to.equal(Path.join(root, 'a.json'));
        for (const bad of ['../etc/passwd', '/etc/passwd', 'a/../../b', '.', '', 'a\0b', '/srv/feeds-other/x']) {
            expect(confinedPath(root, bad), bad).to.be.null();
        }
    });
});
