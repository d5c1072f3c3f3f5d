import * as Path from 'path';

import { openBundleStream, type BundleInput } from './stix';


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
    iri_local: string | null;
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
    defensive_relation: string | null;
    defensive_artifact: string | null;
    offensive_relation: string | null;
    offensive_artifact: string | null;
}

export interface D3fendMapping {
    d3fend_id: string;
    d3fend_name: string;
    d3fend_tactic: string;
    attack_id: string;
    attack_name: string | null;
    attack_status: string | null;
    inferences: D3fendInference[];
}

export interface D3fendTechniques {
    d3fend_version: string | null;
    tactics: D3fendTactic[];
    countermeasures: D3fendCountermeasure[];
    warnings: string[];
}

export interface D3fendMappings {
    d3fend_version: string | null;
    attack_version: string | null;
    mappings: D3fendMapping[];
    warnings: string[];
}

export interface D3fendData extends D3fendTechniques {
    attack_version: string | null;
    mappings: D3fendMapping[];
}


type Json = Readonly<Record<string, unknown>>;


const internals = {
    techniquesFile: 'd3fend-techniques.json',
    mappingsFile: 'd3fend-attack-mappings.json',

    // The D3FEND files are small (under 1 MB): read whole, but refuse anything that is clearly not them.
    maxBytes: 64 * 1024 * 1024,

    async read(input: BundleInput, what: string): Promise<Json> {

        const chunks: Buffer[] = [];
        let length = 0;
        for await (const chunk of await openBundleStream(input)) {
            const buffer = chunk as Buffer;
            length += buffer.length;
            if (length > internals.maxBytes) {
                throw new Error(`${what} is larger than ${internals.maxBytes} bytes`);
            }

            chunks.push(buffer);
        }

        const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
            throw new Error(`${what} is not a JSON object`);
        }

        return value as Json;
    },

    list(value: unknown, path: string): Json[] {

        if (!Array.isArray(value)) {
            throw new Error(`${path} is not an array`);
        }

        return value.map((item, index) => {

            if (typeof item !== 'object' || item === null || Array.isArray(item)) {
                throw new Error(`${path}[${index}] is not an object`);
            }

            return item as Json;
        });
    },

    required(object: Json, key: string, path: string): string {

        const value = object[key];
        if (typeof value !== 'string' || value === '') {
            throw new Error(`${path}.${key} is missing`);
        }

        return value;
    },

    optional(value: unknown): string | null {

        return typeof value === 'string' && value !== '' ? value : null;
    },

    inference(via: string): D3fendInference {

        const [defensive = '', offensive = ''] = via.split(' <- ');
        const [defensiveRelation, defensiveArtifact] = defensive.split(' ');
        const [offensiveRelation, offensiveArtifact] = offensive.split(' ');
        return {
            via,
            defensive_relation: internals.optional(defensiveRelation),
            defensive_artifact: internals.optional(defensiveArtifact),
            offensive_relation: internals.optional(offensiveRelation),
            offensive_artifact: internals.optional(offensiveArtifact)
        };
    }
};


export const parseD3fendTechniques = async (input: BundleInput): Promise<D3fendTechniques> => {

    const document = await internals.read(input, 'd3fend techniques');
    const warnings: string[] = [];

    const tactics = internals.list(document.tactics, 'tactics').map((tactic, index): D3fendTactic => ({
        id: internals.required(tactic, 'id', `tactics[${index}]`),
        name: internals.required(tactic, 'name', `tactics[${index}]`),
        definition: internals.optional(tactic.definition),
        display_order: typeof tactic.display_order === 'number' ? tactic.display_order : index
    }));

    tactics.sort((a, b) => a.display_order - b.display_order);

    const countermeasures = internals.list(document.techniques, 'techniques').map((technique, index): D3fendCountermeasure => {

        const path = `techniques[${index}]`;
        return {
            d3fend_id: internals.required(technique, 'id', path),
            name: internals.required(technique, 'name', path),
            iri_local: internals.optional(technique.iri_local),
            tactic: internals.required(technique, 'tactic', path),
            parent_d3fend_id: internals.optional(technique.parent_id),
            level: typeof technique.level === 'number' ? technique.level : 0,
            definition: internals.optional(technique.definition),
            synonyms: Array.isArray(technique.synonyms) ? technique.synonyms.filter((synonym): synonym is string => typeof synonym === 'string') : [],
            artifact_relations: (Array.isArray(technique.artifact_relations) ? internals.list(technique.artifact_relations, `${path}.artifact_relations`) : []).map((relation, at) => ({
                relation: internals.required(relation, 'relation', `${path}.artifact_relations[${at}]`),
                artifact: internals.required(relation, 'artifact', `${path}.artifact_relations[${at}]`),
                artifact_label: internals.optional(relation.artifact_label)
            }))
        };
    });

    const ids = new Set(countermeasures.map((countermeasure) => countermeasure.d3fend_id));
    const tacticIds = new Set(tactics.map((tactic) => tactic.id));
    for (const countermeasure of countermeasures) {
        if (countermeasure.parent_d3fend_id && !ids.has(countermeasure.parent_d3fend_id)) {
            warnings.push(`${countermeasure.d3fend_id} has parent ${countermeasure.parent_d3fend_id}, which is not in the file`);
        }

        if (!tacticIds.has(countermeasure.tactic)) {
            warnings.push(`${countermeasure.d3fend_id} has tactic ${countermeasure.tactic}, which is not in the file`);
        }
    }

    return { d3fend_version: internals.optional(document.d3fend_version), tactics, countermeasures, warnings };
};


// One record per (D3FEND technique, ATT&CK technique) pair, holding every inference path that links them.
export const parseD3fendMappings = async (input: BundleInput): Promise<D3fendMappings> => {

    const document = await internals.read(input, 'd3fend mappings');
    const mappings: D3fendMapping[] = [];
    const warnings: string[] = [];

    for (const [index, entry] of internals.list(document.mappings, 'mappings').entries()) {
        const path = `mappings[${index}]`;
        const attackId = internals.required(entry, 'attack_id', path);
        for (const [at, defense] of internals.list(entry.d3fend, `${path}.d3fend`).entries()) {
            const via = Array.isArray(defense.via) ? defense.via.filter((item): item is string => typeof item === 'string') : [];
            const inferences = via.map(internals.inference);
            for (const inference of inferences) {
                if (!inference.defensive_artifact || !inference.offensive_artifact) {
                    warnings.push(`${path}.d3fend[${at}]: cannot read the inference path "${inference.via}"`);
                }
            }

            mappings.push({
                d3fend_id: internals.required(defense, 'id', `${path}.d3fend[${at}]`),
                d3fend_name: internals.required(defense, 'name', `${path}.d3fend[${at}]`),
                d3fend_tactic: internals.required(defense, 'tactic', `${path}.d3fend[${at}]`),
                attack_id: attackId,
                attack_name: internals.optional(entry.attack_name),
                attack_status: internals.optional(entry.attack_status_in_attack_18_1),
                inferences
            });
        }
    }

    return {
        d3fend_version: internals.optional(document.d3fend_version),
        attack_version: internals.optional(document.attack_version_in_ontology),
        mappings,
        warnings
    };
};


// Reads d3fend-techniques.json and d3fend-attack-mappings.json from one folder (../shared/data/d3fend/).
export const loadD3fend = async (directory: string): Promise<D3fendData> => {

    const [techniques, mappings] = await Promise.all([
        parseD3fendTechniques(Path.join(directory, internals.techniquesFile)),
        parseD3fendMappings(Path.join(directory, internals.mappingsFile))
    ]);

    const ids = new Set(techniques.countermeasures.map((countermeasure) => countermeasure.d3fend_id));
    const unknown = new Set(mappings.mappings.filter((mapping) => !ids.has(mapping.d3fend_id)).map((mapping) => mapping.d3fend_id));
    return {
        ...techniques,
        attack_version: mappings.attack_version,
        mappings: mappings.mappings,
        warnings: [
            ...techniques.warnings,
            ...mappings.warnings,
            ...[...unknown].map((id) => `mappings refer to ${id}, which is not among the countermeasures`)
        ]
    };
};


// Countermeasures grouped under their tactic, in the tactics' display order (Model, Harden, Detect, …).
export const countermeasuresByTactic = (data: D3fendTechniques): Map<string, D3fendCountermeasure[]> => {

    const groups = new Map<string, D3fendCountermeasure[]>(data.tactics.map((tactic) => [tactic.id, []]));
    for (const countermeasure of data.countermeasures) {
        const group = groups.get(countermeasure.tactic) ?? [];
        group.push(countermeasure);
        groups.set(countermeasure.tactic, group);
    }

    return groups;
};
