import * as Fs from 'fs';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';
import * as Zlib from 'zlib';

import { parser } from 'stream-json/Parser';
import { pick } from 'stream-json/filters/Pick';
import { streamArray } from 'stream-json/streamers/StreamArray';

import type {
    AttackAnalytic, AttackBundle, AttackCampaign, AttackCollection, AttackCounts, AttackDataComponent, AttackDataSource, AttackDetectionStrategy,
    AttackDomain, AttackGroup, AttackLogSource, AttackLogSourceReference, AttackMatrix, AttackMitigation, AttackObjectRecord, AttackRecord,
    AttackRelationship, AttackRelationshipType, AttackRevocation, AttackSoftware, AttackTactic, AttackTechnique, BundleInput, ParseAttackOptions
} from './stix-types';


type StixObject = Readonly<Record<string, unknown>>;


const internals = {
    domains: ['enterprise-attack', 'mobile-attack', 'ics-attack'] as readonly AttackDomain[],
    // The source_name of the external reference that holds the ATT&CK id, and the kill_chain_name of the phases.
    attackSources: new Set(['mitre-attack', 'mitre-mobile-attack', 'mitre-ics-attack']),
    relationshipTypes: ['uses', 'mitigates', 'subtechnique-of', 'detects', 'attributed-to', 'revoked-by'] as readonly AttackRelationshipType[],
    progressInterval: 1000,
    stixTypes: ['attack-pattern', 'campaign', 'course-of-action', 'intrusion-set', 'malware', 'tool', 'x-mitre-analytic', 'x-mitre-asset',
        'x-mitre-collection', 'x-mitre-data-component', 'x-mitre-data-source', 'x-mitre-detection-strategy', 'x-mitre-matrix', 'x-mitre-tactic'],

    // The domain is settled in finish(), once the whole bundle has been read. Every record carries the property
    // from the start, so that setting it does not reshape tens of thousands of objects.
    unsettled: 'enterprise-attack' as AttackDomain,

    // stream-json hands out slices of its chunk buffers: a kept slice pins the whole chunk, and the records of the
    // enterprise bundle then pin more than the JSON text itself (69 MB). A round trip through a Buffer gives each
    // kept string characters of its own, with no parent string behind it.
    own(value: string): string {

        return Buffer.from(value, 'utf8').toString('utf8');
    },

    text(value: unknown): string | null {

        return typeof value === 'string' && value !== '' ? internals.own(value) : null;
    },

    texts(value: unknown): string[] {

        if (!Array.isArray(value)) {
            return [];
        }

        return value.filter((item): item is string => typeof item === 'string').map(internals.own);
    },

    objects(value: unknown): StixObject[] {

        if (!Array.isArray(value)) {
            return [];
        }

        return value.filter((item): item is StixObject => typeof item === 'object' && item !== null && !Array.isArray(item));
    },

    isDomain(value: unknown): value is AttackDomain {

        return typeof value === 'string' && (internals.domains as readonly string[]).includes(value);
    },

    // The shared constants, in a fixed order, rather than one copy of "enterprise-attack" per record.
    domainsOf(value: unknown): AttackDomain[] {

        return Array.isArray(value) ? internals.domains.filter((domain) => value.includes(domain)) : [];
    },

    prefix(stixId: string): string {

        const type = stixId.slice(0, stixId.indexOf('--'));
        return internals.stixTypes.find((known) => known === type) ?? internals.own(type);
    },

    mitreReference(object: StixObject): StixObject | undefined {

        return internals.objects(object.external_references).find((reference) => internals.attackSources.has(reference.source_name as string));
    },

    base(object: StixObject, stixId: string): AttackRecord {

        return {
            stix_id: stixId,
            domain: internals.unsettled,
            domains: internals.domainsOf(object.x_mitre_domains),
            created: internals.text(object.created),
            modified: internals.text(object.modified) ?? internals.text(object.created) ?? '',
            revoked: object.revoked === true,                   // often absent: absent means false
            deprecated: object.x_mitre_deprecated === true
        };
    },

    named(object: StixObject, stixId: string): AttackObjectRecord {

        const reference = internals.mitreReference(object);
        return {
            ...internals.base(object, stixId),
            mitre_id: reference ? internals.text(reference.external_id) : null,
            name: internals.text(object.name) ?? '',
            description: internals.text(object.description),
            url: reference ? internals.text(reference.url) : null,
            version: internals.text(object.x_mitre_version)
        };
    },

    logSource(entry: StixObject): AttackLogSource {

        return { name: internals.text(entry.name) ?? '', channel: internals.text(entry.channel) };
    },

    // Records built by spreading a base record keep spare property slots: a shallow copy fits them tightly, and
    // saves about 8 MB over the enterprise bundle.
    compact<T extends object>(record: T): T {

        return { ...record };
    },

    increment(counts: Record<string, number>, key: string): void {

        counts[key] = (counts[key] ?? 0) + 1;
    },

    // Opens the input and puts a gunzip in front of it when the first two bytes are the gzip magic number: the
    // name of a file or the headers of a response are not to be trusted for that.
    async open(input: BundleInput): Promise<Readable> {

        const raw = typeof input === 'string' ? Fs.createReadStream(input) : input;
        const iterator: AsyncIterator<unknown> = raw[Symbol.asyncIterator]();
        const head: Buffer[] = [];
        let length = 0;
        let ended = false;
        while (length < 2) {
            const next = await iterator.next();
            if (next.done) {
                ended = true;
                break;
            }

            const chunk = internals.toBuffer(next.value);
            head.push(chunk);
            length += chunk.length;
        }

        const first = Buffer.concat(head);
        const replay = async function* (): AsyncGenerator<Buffer> {

            yield first;
            while (!ended) {
                const next = await iterator.next();
                if (next.done) {
                    return;
                }

                yield internals.toBuffer(next.value);
            }
        };

        const body = Readable.from(replay(), { objectMode: false });
        if (first[0] !== 0x1f || first[1] !== 0x8b) {
            return body;
        }

        const gunzip = Zlib.createGunzip();
        body.once('error', (err) => gunzip.destroy(err));
        gunzip.once('close', () => body.destroy());
        return body.pipe(gunzip);
    },

    toBuffer(chunk: unknown): Buffer {

        if (Buffer.isBuffer(chunk)) {
            return chunk;
        }

        if (typeof chunk === 'string' || chunk instanceof Uint8Array) {
            return Buffer.from(chunk);
        }

        throw new Error('The bundle stream must yield bytes or strings');
    }
};


class Collector {

    counts: AttackCounts = { objects: 0, by_type: {}, relationships_by_type: {}, ignored_types: {}, ignored_relationship_types: {} };
    domainVotes: Record<string, number> = {};
    collection: AttackCollection | null = null;
    matrices: AttackMatrix[] = [];
    tactics: AttackTactic[] = [];
    techniques: AttackTechnique[] = [];
    mitigations: AttackMitigation[] = [];
    groups: AttackGroup[] = [];
    campaigns: AttackCampaign[] = [];
    software: AttackSoftware[] = [];
    dataSources: AttackDataSource[] = [];
    dataComponents: AttackDataComponent[] = [];
    detectionStrategies: AttackDetectionStrategy[] = [];
    analytics: AttackAnalytic[] = [];
    relationships: AttackRelationship[] = [];
    warnings: string[] = [];
    ids = new Map<string, string>();

    add(value: unknown): void {

        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
            throw new Error(`objects[${this.counts.objects}] is not a STIX object`);
        }

        const object = value as StixObject;
        const type = object.type;
        const stixId = object.id;
        if (typeof type !== 'string' || typeof stixId !== 'string') {
            throw new Error(`objects[${this.counts.objects}] has no STIX type or id`);
        }

        // Relationships and references then point at the one copy of an object's id.
        const id = this.ref(stixId);
        if (type !== 'relationship') {
            this.ids.set(id, id);
        }

        ++this.counts.objects;
        internals.increment(this.counts.by_type, type);
        for (const domain of internals.domainsOf(object.x_mitre_domains)) {
            internals.increment(this.domainVotes, domain);
        }

        switch (type) {
            case 'x-mitre-collection':
                this.collection = {
                    ...internals.base(object, id),
                    name: internals.text(object.name) ?? '',
                    description: internals.text(object.description),
                    version: internals.text(object.x_mitre_version),
                    attack_spec_version: internals.text(object.x_mitre_attack_spec_version)
                };
                return;

            case 'x-mitre-matrix':
                this.matrices.push(internals.compact({ ...internals.named(object, id), tactic_stix_ids: this.refs(object.tactic_refs) }));
                return;

            case 'x-mitre-tactic':
                this.tactics.push(internals.compact({ ...internals.named(object, id), shortname: internals.text(object.x_mitre_shortname) ?? '', order: null }));
                return;

            case 'attack-pattern':
                this.techniques.push(internals.compact(this.technique(object, id)));
                return;

            case 'course-of-action':
                this.mitigations.push(internals.compact(internals.named(object, id)));
                return;

            case 'intrusion-set':
                this.groups.push(internals.compact({ ...internals.named(object, id), aliases: internals.texts(object.aliases) }));
                return;

            case 'campaign':
                this.campaigns.push(internals.compact({
                    ...internals.named(object, id),
                    aliases: internals.texts(object.aliases),
                    first_seen: internals.text(object.first_seen),
                    last_seen: internals.text(object.last_seen)
                }));
                return;

            case 'malware':
            case 'tool':
                this.software.push(internals.compact({
                    ...internals.named(object, id),
                    type,
                    aliases: internals.texts(object.x_mitre_aliases),
                    platforms: internals.texts(object.x_mitre_platforms)
                }));
                return;

            case 'x-mitre-data-source':
                this.dataSources.push(internals.compact({
                    ...internals.named(object, id),
                    platforms: internals.texts(object.x_mitre_platforms),
                    collection_layers: internals.texts(object.x_mitre_collection_layers)
                }));
                return;

            case 'x-mitre-data-component':
                this.dataComponents.push(internals.compact({
                    ...internals.named(object, id),
                    data_source_stix_id: this.optionalRef(object.x_mitre_data_source_ref),            // "" in v18
                    log_sources: internals.objects(object.x_mitre_log_sources).map(internals.logSource)
                }));
                return;

            case 'x-mitre-detection-strategy':
                this.detectionStrategies.push(internals.compact({ ...internals.named(object, id), analytic_stix_ids: this.refs(object.x_mitre_analytic_refs) }));
                return;

            case 'x-mitre-analytic':
                this.analytics.push(internals.compact(this.analytic(object, id)));
                return;

            case 'relationship':
                this.relationship(object, id);
                return;

            default:
                internals.increment(this.counts.ignored_types, type);
        }
    }

    ref(stixId: string): string {

        return this.ids.get(stixId) ?? internals.own(stixId);
    }

    optionalRef(value: unknown): string | null {

        return typeof value === 'string' && value !== '' ? this.ref(value) : null;
    }

    refs(value: unknown): string[] {

        return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string').map((item) => this.ref(item)) : [];
    }

    technique(object: StixObject, stixId: string): AttackTechnique {

        const named = internals.named(object, stixId);
        const phases = internals.objects(object.kill_chain_phases).filter((phase) => internals.attackSources.has(phase.kill_chain_name as string));
        return {
            ...named,
            is_subtechnique: typeof object.x_mitre_is_subtechnique === 'boolean' ? object.x_mitre_is_subtechnique : Boolean(named.mitre_id?.includes('.')),
            parent_stix_id: null,
            parent_mitre_id: null,
            tactics: internals.texts(phases.map((phase) => phase.phase_name)),
            platforms: internals.texts(object.x_mitre_platforms),
            detection: internals.text(object.x_mitre_detection),
            data_sources: internals.texts(object.x_mitre_data_sources)
        };
    }

    analytic(object: StixObject, stixId: string): AttackAnalytic {

        const references: AttackLogSourceReference[] = [];
        for (const entry of internals.objects(object.x_mitre_log_source_references)) {
            const component = this.optionalRef(entry.x_mitre_data_component_ref);
            if (component) {
                references.push({ ...internals.logSource(entry), data_component_stix_id: component });
            }
        }

        return {
            ...internals.named(object, stixId),
            platforms: internals.texts(object.x_mitre_platforms),
            log_source_references: references,
            data_component_stix_ids: [...new Set(references.map((reference) => reference.data_component_stix_id))],
            mutable_elements: internals.objects(object.x_mitre_mutable_elements).map((element) => ({
                field: internals.text(element.field) ?? '',
                description: internals.text(element.description)
            }))
        };
    }

    relationship(object: StixObject, stixId: string): void {

        const name = internals.text(object.relationship_type) ?? '';
        internals.increment(this.counts.relationships_by_type, name);
        const type = internals.relationshipTypes.find((known) => known === name);
        if (!type) {
            internals.increment(this.counts.ignored_relationship_types, name);
            return;
        }

        const source = this.optionalRef(object.source_ref);
        const target = this.optionalRef(object.target_ref);
        if (!source || !target) {
            this.warnings.push(`relationship ${stixId} has no source_ref or target_ref: skipped`);
            return;
        }

        this.relationships.push(internals.compact({
            ...internals.base(object, stixId),
            type,
            source_stix_id: source,
            source_type: internals.prefix(source),
            target_stix_id: target,
            target_type: internals.prefix(target),
            description: internals.text(object.description)
        }));
    }

    finish(options: ParseAttackOptions): AttackBundle {

        const domain = options.domain ?? this.domain();
        for (const list of [[this.collection ?? []].flat(), this.matrices, this.tactics, this.techniques, this.mitigations, this.groups, this.campaigns,
            this.software, this.dataSources, this.dataComponents, this.detectionStrategies, this.analytics, this.relationships]) {

            for (const record of list) {
                record.domain = domain;
            }
        }

        this.orderTactics();
        this.resolveParents();
        const revocations = this.revocations();

        const byOrder = (a: AttackTactic, b: AttackTactic) => (a.order ?? Infinity) - (b.order ?? Infinity) || (a.mitre_id ?? '').localeCompare(b.mitre_id ?? '');

        return {
            domain,
            attack_version: this.collection?.version ?? null,
            collection: this.collection,
            matrices: this.matrices,
            tactics: this.tactics.sort(byOrder),
            techniques: this.techniques,
            mitigations: this.mitigations,
            groups: this.groups,
            campaigns: this.campaigns,
            software: this.software,
            data_sources: this.dataSources,
            data_components: this.dataComponents,
            detection_strategies: this.detectionStrategies,
            analytics: this.analytics,
            relationships: this.relationships,
            revocations,
            counts: this.counts,
            warnings: this.warnings
        };
    }

    // The matrix names its domain in its external id; otherwise the domain every object shares wins the vote.
    domain(): AttackDomain {

        const fromMatrix = this.matrices.map((matrix) => matrix.mitre_id).find(internals.isDomain);
        if (fromMatrix) {
            return fromMatrix;
        }

        const voted = Object.entries(this.domainVotes).sort((a, b) => b[1] - a[1])[0]?.[0];
        if (internals.isDomain(voted)) {
            return voted;
        }

        throw new Error('Cannot tell the ATT&CK domain of this bundle (no matrix, no x_mitre_domains): pass options.domain');
    }

    // Active matrices first (Mobile also ships the deprecated "Network-Based Effects" one), each in its own order.
    orderTactics(): void {

        const tactics = new Map(this.tactics.map((tactic) => [tactic.stix_id, tactic]));
        const matrices = [...this.matrices].sort((a, b) => Number(a.deprecated || a.revoked) - Number(b.deprecated || b.revoked));
        let order = 0;
        for (const matrix of matrices) {
            for (const ref of matrix.tactic_stix_ids) {
                const tactic = tactics.get(ref);
                if (!tactic) {
                    this.warnings.push(`matrix ${matrix.mitre_id} refers to tactic ${ref}, which is not in the bundle`);
                }
                else if (tactic.order === null) {
                    tactic.order = order++;
                }
            }
        }
    }

    // The subtechnique-of relationship is authoritative; the T1234.001 shape is the cross-check and the fallback
    // (revoked sub-techniques such as T1053.001 have no relationship left).
    resolveParents(): void {

        const byStixId = new Map(this.techniques.map((technique) => [technique.stix_id, technique]));
        const byMitreId = new Map(this.techniques.map((technique) => [technique.mitre_id, technique]));
        const active = (relationship: AttackRelationship) => !relationship.revoked && !relationship.deprecated;
        const parentRelationships = this.relationships
            .filter((relationship) => relationship.type === 'subtechnique-of')
            .sort((a, b) => Number(active(b)) - Number(active(a)));

        for (const relationship of parentRelationships) {
            const child = byStixId.get(relationship.source_stix_id);
            const parent = byStixId.get(relationship.target_stix_id);
            if (!child || !parent) {
                this.warnings.push(`subtechnique-of ${relationship.stix_id} refers to a technique that is not in the bundle`);
                continue;
            }

            if (child.parent_stix_id) {
                continue;
            }

            child.parent_stix_id = parent.stix_id;
            child.parent_mitre_id = parent.mitre_id;
            const shape = child.mitre_id?.split('.')[0];
            if (shape !== parent.mitre_id || !child.is_subtechnique) {
                this.warnings.push(`${child.mitre_id} is subtechnique-of ${parent.mitre_id}, which its id or flag does not say`);
            }
        }

        for (const technique of this.techniques) {
            if (technique.parent_stix_id || !technique.mitre_id?.includes('.')) {
                continue;
            }

            const parent = byMitreId.get(technique.mitre_id.split('.')[0] ?? '');
            if (parent) {
                technique.parent_stix_id = parent.stix_id;
                technique.parent_mitre_id = parent.mitre_id;
            }

            this.warnings.push(`${technique.mitre_id} has no subtechnique-of relationship: parent ${parent ? `${parent.mitre_id} taken from its id` : 'unknown'}`);
        }
    }

    revocations(): AttackRevocation[] {

        const named = new Map<string, { mitre_id: string | null }>();
        for (const list of [this.matrices, this.tactics, this.techniques, this.mitigations, this.groups, this.campaigns, this.software,
            this.dataSources, this.dataComponents, this.detectionStrategies, this.analytics]) {

            for (const record of list) {
                named.set(record.stix_id, record);
            }
        }

        const successors = new Map<string, string>();
        for (const relationship of this.relationships) {
            if (relationship.type === 'revoked-by') {
                successors.set(relationship.source_stix_id, relationship.target_stix_id);
            }
        }

        const revocations: AttackRevocation[] = [];
        for (const [stixId, successor] of successors) {
            let final = successor;
            const seen = new Set([stixId]);
            let next = successors.get(final);
            while (next !== undefined && !seen.has(final)) {           // a cycle would be a data error, not a hang
                seen.add(final);
                final = next;
                next = successors.get(final);
            }

            revocations.push({
                stix_id: stixId,
                mitre_id: named.get(stixId)?.mitre_id ?? null,
                object_type: internals.prefix(stixId),
                successor_stix_id: successor,
                successor_mitre_id: named.get(successor)?.mitre_id ?? null,
                final_stix_id: final,
                final_mitre_id: named.get(final)?.mitre_id ?? null
            });
        }

        return revocations;
    }
}


export const openBundleStream = (input: BundleInput): Promise<Readable> => internals.open(input);


export const parseAttackBundle = async (input: BundleInput, options: ParseAttackOptions = {}): Promise<AttackBundle> => {

    const collector = new Collector();
    const interval = options.progressInterval && options.progressInterval > 0 ? options.progressInterval : internals.progressInterval;

    // Packed values only: the streamed string/number chunks are of no use here and cost a third of the time.
    const objects = streamArray();
    const flowing = pipeline(await internals.open(input), parser({ packValues: true, streamValues: false }), pick({ filter: 'objects' }), objects);

    // A stream error also ends the loop below with that error. An error thrown by the loop is the one to report:
    // the pipeline then only adds a premature close.
    flowing.catch(() => null);

    for await (const { value } of objects as AsyncIterable<{ key: number; value: unknown }>) {
        collector.add(value);
        if (options.onProgress && collector.counts.objects % interval === 0) {
            options.onProgress({ objects: collector.counts.objects });
        }
    }

    await flowing;
    if (!collector.counts.objects) {
        throw new Error('it has no STIX objects (a bundle is {"type": "bundle", "objects": [...]})');
    }

    options.onProgress?.({ objects: collector.counts.objects });
    return collector.finish(options);
};
