import type { OsintRejection } from '../models';

import { isUuid } from './sql';


// Pure mapping of a feed's documents to the facts an import writes (docs/osint.md): a MISP galaxy of threat actors or
// STIX 2.1 objects (a bundle, or the objects of a TAXII 2.1 collection). Malformed items are rejected one by one with
// the reason; the others go on. A document that is not a feed of its kind at all is a FeedFormatError.

export interface FeedActor {
    item_id: string;                    // the feed's own id: a MISP cluster's uuid, a STIX object's id
    name: string;
    aliases: string[];
    mitre_id: string | null;            // the ATT&CK group (G0007) the feed says it is
    stix_id: string | null;             // the STIX id, which an ATT&CK group may share
    country: string | null;
    description: string | null;
    last_seen: Date | null;             // the feed's own date for the item, when it gives one
}

export interface TechniqueRef {
    mitre_id: string | null;
    stix_id: string | null;
}

export interface FeedUsage {
    item_id: string;                    // a STIX relationship's id; `<cluster uuid>/uses/<attack-pattern uuid>` in a galaxy
    actor_item_id: string;
    technique: TechniqueRef;
    description: string | null;
    last_seen: Date | null;
    strict: boolean;                    // an unknown technique is rejected (STIX); a galaxy's `uses` of software is not a technique
}

export interface FeedContent {
    actors: FeedActor[];
    usages: FeedUsage[];
    rejections: OsintRejection[];       // the first rejectionCap of them
    rejected: number;                   // all of them
    items: number;                      // the items read, rejected ones included
}


export class FeedFormatError extends Error {

    constructor(message: string) {

        super(message);
        this.name = 'FeedFormatError';
    }
}


const internals = {
    stixId: /^[a-z][a-z0-9-]*--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
    groupUrl: /attack\.mitre\.org\/groups\/(G\d{4})\b/i,
    groupId: /^G\d{4}$/,
    techniqueId: /^T\d{4}(\.\d{3})?$/,
    country: /^[A-Z]{2}$/,
    maxName: 500,
    maxAliases: 200,
    maxDescription: 20_000,
    maxRejections: 1000,

    isObject: (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value),

    text: (value: unknown, max: number): string | null => (typeof value === 'string' && value.trim() ? value.trim().slice(0, max) : null),

    date: (value: unknown): Date | null => {

        if (typeof value !== 'string') {
            return null;
        }

        const date = new Date(value);
        return Number.isNaN(date.getTime()) ? null : date;
    },

    // Names besides the actor's own, trimmed, without duplicates (case-insensitive) or the name itself
    aliases: (name: string, values: unknown[]): string[] => {

        const seen = new Set([name.toLowerCase()]);
        const result: string[] = [];
        for (const value of values) {
            const alias = internals.text(value, internals.maxName);
            if (alias && !seen.has(alias.toLowerCase()) && result.length < internals.maxAliases) {
                seen.add(alias.toLowerCase());
                result.push(alias);
            }
        }

        return result;
    },

    externalId: (object: Record<string, unknown>, pattern: RegExp): string | null => {

        const references = Array.isArray(object.external_references) ? object.external_references : [];
        for (const reference of references) {
            if (internals.isObject(reference) && typeof reference.external_id === 'string' && pattern.test(reference.external_id) &&
                (reference.source_name === 'mitre-attack' || reference.source_name === 'mitre-mobile-attack' || reference.source_name === 'mitre-ics-attack')) {
                return reference.external_id;
            }
        }

        return null;
    }
};


class Rejections {

    readonly list: OsintRejection[] = [];
    count = 0;

    add(item: string, reason: string) {

        ++this.count;
        if (this.list.length < internals.maxRejections) {
            this.list.push({ item: item.slice(0, 200), reason });
        }
    }
}


// The ATT&CK group a MISP cluster says it is: an attack.mitre.org/groups URL in its refs, or a `G0007:<uuid>` name
// attribution (the galaxy's way of naming MITRE's group)
export const mispGroupId = (meta: Record<string, unknown>): string | null => {

    for (const ref of Array.isArray(meta.refs) ? meta.refs : []) {
        const match = typeof ref === 'string' ? internals.groupUrl.exec(ref) : null;
        if (match) {
            return match[1]!.toUpperCase();
        }
    }

    for (const attribution of Array.isArray(meta['name-attribution']) ? meta['name-attribution'] : []) {
        const id = typeof attribution === 'string' ? attribution.split(':')[0]!.trim() : '';
        if (internals.groupId.test(id)) {
            return id;
        }
    }

    return null;
};


// A MISP galaxy (clusters/threat-actor.json): { values: [{ uuid, value, description, meta: { synonyms, refs, country,
// ... }, related: [{ dest-uuid, type }] }] }. A `uses` relation is a technique when its dest-uuid is an ATT&CK
// attack-pattern's (the galaxies share MITRE's uuids); the others name software and are not techniques.
export const parseMispGalaxy = (document: unknown): FeedContent => {

    if (!internals.isObject(document) || !Array.isArray(document.values)) {
        throw new FeedFormatError('is not a MISP galaxy: the document has no "values" list of clusters');
    }

    const rejections = new Rejections();
    const actors: FeedActor[] = [];
    const usages: FeedUsage[] = [];
    const seen = new Set<string>();
    document.values.forEach((cluster: unknown, index: number) => {

        const position = `values[${index}]`;
        if (!internals.isObject(cluster)) {
            rejections.add(position, 'is not an object');
            return;
        }

        const uuid = typeof cluster.uuid === 'string' ? cluster.uuid.toLowerCase() : null;
        if (!uuid || !isUuid(uuid)) {
            rejections.add(position, 'has no "uuid" (a UUID): the cluster cannot be followed from one import to the next');
            return;
        }

        if (seen.has(uuid)) {
            rejections.add(uuid, 'appears twice in the galaxy: the first one is kept');
            return;
        }

        seen.add(uuid);
        const name = internals.text(cluster.value, internals.maxName);
        if (!name) {
            rejections.add(uuid, 'has no "value" (the actor\'s name)');
            return;
        }

        const meta = internals.isObject(cluster.meta) ? cluster.meta : {};
        if (meta.synonyms !== undefined && !Array.isArray(meta.synonyms)) {
            rejections.add(uuid, '"meta.synonyms" is not a list of names');
            return;
        }

        const country = typeof meta.country === 'string' && internals.country.test(meta.country.trim().toUpperCase()) ? meta.country.trim().toUpperCase() : null;
        actors.push({
            item_id: uuid,
            name,
            aliases: internals.aliases(name, (meta.synonyms as unknown[] | undefined) ?? []),
            mitre_id: mispGroupId(meta),
            stix_id: null,
            country,
            description: internals.text(cluster.description, internals.maxDescription),
            last_seen: null
        });

        for (const related of Array.isArray(cluster.related) ? cluster.related : []) {
            const dest = internals.isObject(related) && related.type === 'uses' && typeof related['dest-uuid'] === 'string' ? related['dest-uuid'].toLowerCase() : null;
            if (dest && isUuid(dest)) {
                usages.push({ item_id: `${uuid}/uses/${dest}`, actor_item_id: uuid, technique: { mitre_id: null, stix_id: `attack-pattern--${dest}` }, description: null, last_seen: null, strict: false });
            }
        }
    });

    return { actors, usages, rejections: rejections.list, rejected: rejections.count, items: document.values.length };
};


// STIX 2.1 objects: intrusion-set and threat-actor objects are actors, attack-pattern objects name techniques
// (their ATT&CK id from the mitre-attack external reference, else their STIX id), `uses` relationships from an actor
// to an attack-pattern are technique usage. Other objects are not facts of this module and are passed over.
export const parseStixObjects = (objects: unknown[]): FeedContent => {

    const rejections = new Rejections();
    const byId = new Map<string, Record<string, unknown>>();
    const order: string[] = [];
    objects.forEach((object, index) => {

        const position = `objects[${index}]`;
        if (!internals.isObject(object)) {
            rejections.add(position, 'is not an object');
            return;
        }

        const id = typeof object.id === 'string' ? object.id : null;
        if (!id || !internals.stixId.test(id) || typeof object.type !== 'string' || !id.startsWith(`${object.type}--`)) {
            rejections.add(typeof id === 'string' ? id : position, 'has no valid STIX "type" and "id" (<type>--<UUID>)');
            return;
        }

        if (byId.has(id)) {
            rejections.add(id, 'appears twice: the first one is kept');
            return;
        }

        byId.set(id, object);
        order.push(id);
    });

    const actors: FeedActor[] = [];
    const actorIds = new Set<string>();
    const techniques = new Map<string, TechniqueRef>();
    for (const id of order) {
        const object = byId.get(id)!;
        if (object.revoked === true) {
            continue;                   // a revoked object is no longer reported: its facts are marked removed
        }

        if (object.type === 'intrusion-set' || object.type === 'threat-actor') {
            const name = internals.text(object.name, internals.maxName);
            if (!name) {
                rejections.add(id, 'has no "name"');
                continue;
            }

            if (object.aliases !== undefined && !Array.isArray(object.aliases)) {
                rejections.add(id, '"aliases" is not a list of names');
                continue;
            }

            actorIds.add(id);
            actors.push({
                item_id: id,
                name,
                aliases: internals.aliases(name, (object.aliases as unknown[] | undefined) ?? []),
                mitre_id: internals.externalId(object, internals.groupId),
                stix_id: id,
                country: null,
                description: internals.text(object.description, internals.maxDescription),
                last_seen: internals.date(object.last_seen) ?? internals.date(object.modified)
            });
        }
        else if (object.type === 'attack-pattern') {
            techniques.set(id, { mitre_id: internals.externalId(object, internals.techniqueId), stix_id: id });
        }
    }

    const usages: FeedUsage[] = [];
    for (const id of order) {
        const object = byId.get(id)!;
        if (object.type !== 'relationship' || object.relationship_type !== 'uses' || object.revoked === true) {
            continue;
        }

        const source = typeof object.source_ref === 'string' ? object.source_ref : '';
        const target = typeof object.target_ref === 'string' ? object.target_ref : '';
        if (!source.startsWith('intrusion-set--') && !source.startsWith('threat-actor--')) {
            continue;                   // software using a technique, a campaign using software: not an actor's fact
        }

        if (!target.startsWith('attack-pattern--')) {
            continue;
        }

        if (!actorIds.has(source)) {
            rejections.add(id, `"source_ref" ${source.slice(0, 100)} is not an actor of this feed (missing or rejected)`);
            continue;
        }

        if (!internals.stixId.test(target)) {
            rejections.add(id, '"target_ref" is not a STIX id');
            continue;
        }

        usages.push({
            item_id: id,
            actor_item_id: source,
            technique: techniques.get(target) ?? { mitre_id: null, stix_id: target },
            description: internals.text(object.description, internals.maxDescription),
            last_seen: internals.date(object.last_seen) ?? internals.date(object.modified) ?? internals.date(object.created),
            strict: true
        });
    }

    return { actors, usages, rejections: rejections.list, rejected: rejections.count, items: objects.length };
};


// A STIX 2.1 bundle: { type: 'bundle', objects: [...] }
export const parseStixBundle = (document: unknown): FeedContent => {

    if (!internals.isObject(document) || document.type !== 'bundle' || !Array.isArray(document.objects)) {
        throw new FeedFormatError('is not a STIX 2.1 bundle: the document has no "type": "bundle" with an "objects" list');
    }

    return parseStixObjects(document.objects);
};


export const rejectionCap = internals.maxRejections;
