import { pipeline } from 'stream/promises';

import { StreamParser, type Quad } from 'n3';

import { openBundleStream } from './stix-parser';
import type { BundleInput } from './stix-types';


export interface D3fendTactic {
    id: string;
    name: string;
    definition: string | null;
    display_order: number;
}

export interface D3fendArtifactRelation {
    relation: string;
    artifact: string;
    artifact_label: string | null;
}

export interface D3fendCountermeasure {
    d3fend_id: string;
    name: string;
    iri_local: string;
    tactic: string;
    parent_d3fend_id: string | null;
    level: number;
    definition: string | null;
    synonyms: string[];
    artifact_relations: D3fendArtifactRelation[];
}

// One inference path, e.g. "analyzes Process <- accesses Process": the countermeasure analyzes a Process, and the
// ATT&CK technique accesses a Process (or a subclass of it).
export interface D3fendInference {
    via: string;
    defensive_relation: string;
    defensive_artifact: string;
    offensive_relation: string;
    offensive_artifact: string;
}

export interface D3fendMapping {
    d3fend_id: string;
    d3fend_name: string;
    d3fend_tactic: string;
    attack_id: string;
    attack_name: string | null;
    inferences: D3fendInference[];
}

export interface D3fendData {
    d3fend_version: string | null;
    tactics: D3fendTactic[];
    countermeasures: D3fendCountermeasure[];
    mappings: D3fendMapping[];
    triples: number;
    warnings: string[];
}


// What the parse keeps of one named class (or individual): its named superclasses, its restrictions (blank nodes)
// and the few annotations the records need. Everything else of the ontology (kb-articles, references) is dropped as
// it streams past.
interface Resource {
    parents: string[];
    restrictions: string[];
    label?: string;
    definition?: string;
    d3fendId?: string;
    attackId?: string;
    synonyms: string[];
    enables: string[];
    displayOrder?: number;
    isTactic: boolean;
}

interface Restriction {
    property?: string;
    value?: string;
}


const internals = {
    d3f: 'http://d3fend.mitre.org/ontologies/d3fend.owl#',
    rdfType: 'http://www.w3.org/1999/02/22-rdf-syntax-ns#type',
    rdfsLabel: 'http://www.w3.org/2000/01/rdf-schema#label',
    subClassOf: 'http://www.w3.org/2000/01/rdf-schema#subClassOf',
    onProperty: 'http://www.w3.org/2002/07/owl#onProperty',
    someValuesFrom: 'http://www.w3.org/2002/07/owl#someValuesFrom',
    versionInfo: 'http://www.w3.org/2002/07/owl#versionInfo',
    versionIri: 'http://www.w3.org/2002/07/owl#versionIRI',

    local(iri: string): string {

        return iri.startsWith(internals.d3f) ? iri.slice(internals.d3f.length) : iri.replace(/^.*[#/]/, '');
    },

    compare: (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
};


class Ontology {

    resources = new Map<string, Resource>();
    restrictions = new Map<string, Restriction>();
    versionInfo: string | null = null;
    versionIri: string | null = null;
    triples = 0;
    private ancestorSets = new Map<string, Set<string>>();

    add(quad: Quad): void {

        this.triples++;
        const subject = quad.subject.value;
        const predicate = quad.predicate.value;
        const object = quad.object;

        if (predicate === internals.onProperty || predicate === internals.someValuesFrom) {
            if (quad.subject.termType === 'BlankNode' && object.termType === 'NamedNode') {
                const restriction = this.restrictions.get(subject) ?? {};
                restriction[predicate === internals.onProperty ? 'property' : 'value'] = object.value;
                this.restrictions.set(subject, restriction);
            }

            return;
        }

        if (predicate === internals.versionInfo) {
            this.versionInfo = object.value;
            return;
        }

        if (predicate === internals.versionIri) {
            this.versionIri = object.value;
            return;
        }

        if (quad.subject.termType !== 'NamedNode') {
            return;
        }

        switch (predicate) {
            case internals.subClassOf:
                if (object.termType === 'NamedNode') {
                    this.resource(subject).parents.push(object.value);
                }
                else if (object.termType === 'BlankNode') {
                    this.resource(subject).restrictions.push(object.value);
                }

                return;
            case internals.rdfType:
                if (object.value === `${internals.d3f}DefensiveTactic`) {
                    this.resource(subject).isTactic = true;
                }

                return;
            case internals.rdfsLabel:
                this.resource(subject).label ??= object.value;
                return;
            case `${internals.d3f}definition`:
                this.resource(subject).definition ??= object.value;
                return;
            case `${internals.d3f}d3fend-id`:
                this.resource(subject).d3fendId = object.value;
                return;
            case `${internals.d3f}attack-id`:
                this.resource(subject).attackId = object.value;
                return;
            case `${internals.d3f}synonym`:
                this.resource(subject).synonyms.push(object.value);
                return;
            case `${internals.d3f}enables`:
                this.resource(subject).enables.push(object.value);
                return;
            case `${internals.d3f}display-order`:
                this.resource(subject).displayOrder = Number(object.value);
                return;
        }
    }

    // Every named superclass, transitively (a cycle in the data ends the walk, it does not hang it)
    ancestors(iri: string): Set<string> {

        let found = this.ancestorSets.get(iri);
        if (!found) {
            found = new Set<string>();
            const stack = [iri];
            while (stack.length) {
                for (const parent of this.resources.get(stack.pop()!)?.parents ?? []) {
                    if (!found.has(parent)) {
                        found.add(parent);
                        stack.push(parent);
                    }
                }
            }

            this.ancestorSets.set(iri, found);
        }

        return found;
    }

    // The direct `owl:onProperty P; owl:someValuesFrom C` restrictions of a class, C being a named class
    directRestrictions(iri: string): { property: string; value: string }[] {

        const found: { property: string; value: string }[] = [];
        for (const id of this.resources.get(iri)?.restrictions ?? []) {
            const restriction = this.restrictions.get(id);
            if (restriction?.property && restriction.value) {
                found.push({ property: restriction.property, value: restriction.value });
            }
        }

        return found;
    }

    resource(iri: string): Resource {

        let resource = this.resources.get(iri);
        if (!resource) {
            resource = { parents: [], restrictions: [], synonyms: [], enables: [], isTactic: false };
            this.resources.set(iri, resource);
        }

        return resource;
    }
}


const derive = (ontology: Ontology): D3fendData => {

    const warnings: string[] = [];
    const { d3f } = internals;
    const enables = `${d3f}enables`;

    const tacticIris = [...ontology.resources].filter(([, resource]) => resource.isTactic).map(([iri]) => iri);
    const tactics = tacticIris.map((iri, index): D3fendTactic => {

        const resource = ontology.resources.get(iri)!;
        return { id: internals.local(iri), name: resource.label ?? internals.local(iri), definition: resource.definition ?? null, display_order: resource.displayOrder ?? index };
    }).sort((a, b) => a.display_order - b.display_order || internals.compare(a.id, b.id));

    // A countermeasure is a class with a d3fend-id under DefensiveTechnique (the D3A- ids under other roots are the
    // analytic methods they use)
    const techniques = new Map([...ontology.resources]
        .filter(([iri, resource]) => resource.d3fendId && ontology.ancestors(iri).has(`${d3f}DefensiveTechnique`))
        .map(([iri, resource]) => [iri, resource]));

    const depths = new Map<string, number>();
    const depth = (iri: string, seen = new Set<string>()): number => {

        const known = depths.get(iri);
        if (known !== undefined) {
            return known;
        }

        seen.add(iri);
        const parents = techniques.get(iri)!.parents.filter((parent) => techniques.has(parent) && !seen.has(parent));
        const value = parents.length ? 1 + Math.max(...parents.map((parent) => depth(parent, seen))) : 0;
        depths.set(iri, value);
        return value;
    };

    // The tactic a technique enables, on the class or its nearest ancestor (as an annotation or a restriction). Only a
    // tactic counts: DefensiveTechnique itself `enables some DefensiveTactic`, which names no tactic.
    const tacticSet = new Set(tacticIris);
    const tactic = (iri: string): string | null => {

        let frontier = [iri];
        const seen = new Set(frontier);
        while (frontier.length) {
            for (const at of frontier) {
                const found = [...ontology.resources.get(at)?.enables ?? [], ...ontology.directRestrictions(at).filter((restriction) => restriction.property === enables).map((restriction) => restriction.value)]
                    .filter((value) => tacticSet.has(value));
                if (found.length) {
                    return internals.local(found.sort(internals.compare)[0]!);
                }
            }

            frontier = frontier.flatMap((at) => ontology.resources.get(at)?.parents ?? []).filter((parent) => !seen.has(parent) && seen.add(parent));
        }

        return null;
    };

    const countermeasures: D3fendCountermeasure[] = [];
    const byIri = new Map<string, D3fendCountermeasure>();
    for (const [iri, resource] of techniques) {
        const enabled = tactic(iri);
        if (!enabled) {
            warnings.push(`${resource.d3fendId} (${internals.local(iri)}) enables no tactic: left out`);
            continue;
        }

        // With several technique superclasses (a reasoned ontology repeats the inherited ones), the deepest is the parent
        const parents = resource.parents.filter((parent) => techniques.has(parent)).sort((a, b) => depth(b) - depth(a) || internals.compare(a, b));
        const countermeasure: D3fendCountermeasure = {
            d3fend_id: resource.d3fendId!,
            name: resource.label ?? internals.local(iri),
            iri_local: internals.local(iri),
            tactic: enabled,
            parent_d3fend_id: parents.length ? techniques.get(parents[0]!)!.d3fendId! : null,
            level: depth(iri),
            definition: resource.definition ?? null,
            synonyms: [...new Set(resource.synonyms)].sort(internals.compare),
            artifact_relations: ontology.directRestrictions(iri)
                .filter((restriction) => restriction.property !== enables)
                .map((restriction) => ({ relation: internals.local(restriction.property), artifact: internals.local(restriction.value), artifact_label: ontology.resources.get(restriction.value)?.label ?? null }))
                .sort((a, b) => internals.compare(a.relation, b.relation) || internals.compare(a.artifact, b.artifact))
        };

        countermeasures.push(countermeasure);
        byIri.set(iri, countermeasure);
    }

    countermeasures.sort((a, b) => internals.compare(a.d3fend_id, b.d3fend_id));

    // The inference D3FEND documents (../shared/data/README.md): a countermeasure acting on a digital artifact A maps to
    // an ATT&CK technique whose own restriction names A or a subclass of A. Each ATT&CK restriction is indexed under
    // its artifact and every ancestor of it, so that a countermeasure's artifact finds it in one lookup.
    const offensive = new Map<string, { iri: string; relation: string; artifact: string }[]>();
    for (const [iri, resource] of ontology.resources) {
        if (!resource.attackId) {
            continue;
        }

        for (const restriction of ontology.directRestrictions(iri)) {
            for (const artifact of [restriction.value, ...ontology.ancestors(restriction.value)]) {
                const list = offensive.get(artifact) ?? [];
                list.push({ iri, relation: internals.local(restriction.property), artifact: internals.local(restriction.value) });
                offensive.set(artifact, list);
            }
        }
    }

    const digitalArtifact = `${d3f}DigitalArtifact`;
    const pairs = new Map<string, D3fendMapping>();
    for (const [iri, countermeasure] of byIri) {
        for (const restriction of ontology.directRestrictions(iri)) {
            if (restriction.property === enables || (restriction.value !== digitalArtifact && !ontology.ancestors(restriction.value).has(digitalArtifact))) {
                continue;
            }

            for (const target of offensive.get(restriction.value) ?? []) {
                const attack = ontology.resources.get(target.iri)!;
                const key = `${countermeasure.d3fend_id}\u0000${attack.attackId}`;
                let mapping = pairs.get(key);
                if (!mapping) {
                    mapping = {
                        d3fend_id: countermeasure.d3fend_id, d3fend_name: countermeasure.name, d3fend_tactic: countermeasure.tactic,
                        attack_id: attack.attackId!, attack_name: attack.label ?? null, inferences: []
                    };
                    pairs.set(key, mapping);
                }

                const relation = internals.local(restriction.property);
                const artifact = internals.local(restriction.value);
                const via = `${relation} ${artifact} <- ${target.relation} ${target.artifact}`;
                if (!mapping.inferences.some((inference) => inference.via === via)) {
                    mapping.inferences.push({ via, defensive_relation: relation, defensive_artifact: artifact, offensive_relation: target.relation, offensive_artifact: target.artifact });
                }
            }
        }
    }

    const order = (inference: D3fendInference) => [inference.defensive_relation, inference.defensive_artifact, inference.offensive_artifact, inference.offensive_relation];
    const mappings = [...pairs.values()].sort((a, b) => internals.compare(a.attack_id, b.attack_id) || internals.compare(a.d3fend_id, b.d3fend_id));
    for (const mapping of mappings) {
        mapping.inferences.sort((a, b) => {

            const [left, right] = [order(a), order(b)];
            return left.reduce((result, value, index) => result || internals.compare(value, right[index]!), 0);
        });
    }

    const versionFromIri = ontology.versionIri ? /\/(\d+\.\d+[^/]*)\/[^/]*$/.exec(ontology.versionIri)?.[1] ?? null : null;
    return { d3fend_version: ontology.versionInfo ?? versionFromIri, tactics, countermeasures, mappings, triples: ontology.triples, warnings };
};


// Streams the D3FEND ontology in Turtle (MITRE's d3fend.ttl, or the d3fend-protege.ttl source; gzipped or not) and
// derives the countermeasures, the tactics and the ATT&CK mappings from it. Only the triples the records need are
// kept: the 2.5 MB ontology parses in about half a second.
export const parseD3fendOntology = async (input: BundleInput): Promise<D3fendData> => {

    const ontology = new Ontology();
    const parser = new StreamParser({ format: 'text/turtle' });
    const flowing = pipeline(await openBundleStream(input), parser);
    flowing.catch(() => null);

    for await (const quad of parser as AsyncIterable<Quad>) {
        ontology.add(quad);
    }

    await flowing;
    const data = derive(ontology);
    if (!data.countermeasures.length) {
        throw new Error(`it has no D3FEND technique (${ontology.triples} triples, none a class under d3f:DefensiveTechnique with a d3f:d3fend-id)`);
    }

    return data;
};


// Countermeasures grouped under their tactic, in the tactics' display order (Model, Harden, Detect, …).
export const countermeasuresByTactic = (data: Pick<D3fendData, 'tactics' | 'countermeasures'>): Map<string, D3fendCountermeasure[]> => {

    const groups = new Map<string, D3fendCountermeasure[]>(data.tactics.map((tactic) => [tactic.id, []]));
    for (const countermeasure of data.countermeasures) {
        const group = groups.get(countermeasure.tactic) ?? [];
        group.push(countermeasure);
        groups.set(countermeasure.tactic, group);
    }

    return groups;
};
