import * as Fs from 'fs';
import * as Path from 'path';

import { ValidationError } from '../errors';


// Reading the Center for Threat-Informed Defense "Mappings Explorer" files (mapex unified data schema) into
// frameworks, controls and mappings, and matching each mapping's ATT&CK id to a technique of today. Pure but for
// reading the folder.

export interface ParsedControl {
    control_id: string;
    family: string;
    family_name: string | null;
    name: string;
    description: string | null;
    mappable: boolean;
}

export interface ParsedMapping {
    control_id: string;
    attack_id: string;
    attack_name: string | null;
    mapping_type: string;
    comments: string | null;
}

export interface ParsedFramework {
    key: string;
    name: string;
    version: string;
    attack_version: string | null;
    attack_domain: string | null;
    source_file: string;
    provenance: string;
    licence: string;
    mapping_updated: string | null;
    controls: ParsedControl[];
    mappings: ParsedMapping[];
}

export interface KnownTechnique {
    mitre_id: string;
    revoked: boolean;
    deprecated: boolean;
    revoked_by_id: string | null;
}

export type Match = { technique_id: string; match: 'exact' | 'revoked'; unmatched_reason: null } | { technique_id: null; match: 'unmatched'; unmatched_reason: 'unknown' | 'deprecated' | 'revoked' };


interface MapexObject {
    capability_id: string | null;
    capability_group: string | null;
    capability_description: string | null;
    mapping_type: string | null;
    attack_object_id: string | null;
    attack_object_name: string | null;
    comments?: string | null;
    status: string;
}


const internals = {
    names: { nist_800_53: 'NIST SP 800-53', csa_ccm: 'CSA Cloud Controls Matrix' } as Record<string, string>,

    // NIST writes AC-2 where the mappings write AC-02
    nistId: (id: string) => id.replace(/-0*(\d)/, '-$1'),

    // The NIST descriptions are HTML paragraphs: plain text, one paragraph a line
    plain: (html: string) => html.replace(/<\/p>\s*<p>/g, '\n').replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, '\'').replace(/&amp;/g, '&').trim(),

    line: (text: string, label: string) => text.split('\n').find((line) => line.startsWith(label))?.slice(label.length).trim() ?? null
};


// The mapping files of a folder: <framework>-<version>_attack-<attack version>-<domain>.json, with an optional
// <framework>-<version>_descriptions.json beside, SOURCE.md (provenance) and LICENSE.txt
export const readComplianceFolder = (dir: string): ParsedFramework[] => {

    if (!Fs.existsSync(dir) || !Fs.statSync(dir).isDirectory()) {
        throw new ValidationError(`${dir} is not a folder of compliance mappings`, ['dir'], 'compliance_source_missing');
    }

    const files = Fs.readdirSync(dir).filter((file) => /_attack-[\d.]+-\w+\.json$/.test(file)).sort();
    if (!files.length) {
        throw new ValidationError(`${dir} holds no mapping file (<framework>_attack-<version>-<domain>.json)`, ['dir'], 'compliance_source_missing');
    }

    const source = Fs.existsSync(Path.join(dir, 'SOURCE.md')) ? Fs.readFileSync(Path.join(dir, 'SOURCE.md'), 'utf8') : '';
    const origin = internals.line(source, 'Source:');
    const licence = internals.line(source, '- License:') ?? (Fs.existsSync(Path.join(dir, 'LICENSE.txt')) ? 'LICENSE.txt beside the mapping files' : 'unknown');
    return files.map((file) => {

        const prefix = file.slice(0, file.indexOf('_attack-'));
        const descriptionsFile = Path.join(dir, `${prefix}_descriptions.json`);
        const descriptions = Fs.existsSync(descriptionsFile) ? JSON.parse(Fs.readFileSync(descriptionsFile, 'utf8')) as { id: string; description: string }[] : [];
        return parseMapex(JSON.parse(Fs.readFileSync(Path.join(dir, file), 'utf8')), {
            file,
            provenance: `${origin ?? 'unknown source'}, ${file}`,
            licence,
            descriptions: new Map(descriptions.map((item) => [item.id, internals.plain(item.description)]))
        });
    });
};


export const parseMapex = (document: { metadata: Record<string, any>; mapping_objects: MapexObject[] }, options: { file: string; provenance: string; licence: string; descriptions: Map<string, string> }): ParsedFramework => {

    const { metadata } = document;
    if (!metadata?.mapping_framework || !Array.isArray(document.mapping_objects)) {
        throw new ValidationError(`${options.file} is not a Mappings Explorer file (metadata.mapping_framework, mapping_objects)`, ['dir'], 'compliance_source_invalid');
    }

    const groups = (metadata.capability_groups ?? {}) as Record<string, string>;
    const controls = new Map<string, ParsedControl>();
    const mappings = new Map<string, ParsedMapping>();
    for (const item of document.mapping_objects) {
        // A technique no control mitigates (capability null) says nothing about controls
        if (!item.capability_id) {
            continue;
        }

        const mappable = item.status !== 'non_mappable' && Boolean(item.attack_object_id);
        const known = controls.get(item.capability_id);
        controls.set(item.capability_id, {
            control_id: item.capability_id,
            family: item.capability_group ?? item.capability_id.split('-')[0]!,
            family_name: groups[item.capability_group ?? ''] ?? null,
            name: item.capability_description ?? item.capability_id,
            description: options.descriptions.get(item.capability_id) ?? options.descriptions.get(internals.nistId(item.capability_id)) ?? null,
            mappable: (known?.mappable ?? false) || mappable
        });

        if (mappable) {
            mappings.set(`${item.capability_id}/${item.attack_object_id}`, {
                control_id: item.capability_id,
                attack_id: item.attack_object_id!,
                attack_name: item.attack_object_name,
                mapping_type: item.mapping_type ?? 'mitigates',
                comments: item.comments?.trim() || null
            });
        }
    }

    return {
        key: `${metadata.mapping_framework}-${metadata.mapping_framework_version ?? ''}`.replace(/-$/, ''),
        name: internals.names[metadata.mapping_framework] ?? metadata.mapping_framework,
        version: metadata.mapping_framework_version ?? '',
        attack_version: metadata.attack_version ?? null,
        attack_domain: metadata.technology_domain ?? null,
        source_file: options.file,
        provenance: options.provenance,
        licence: options.licence,
        mapping_updated: metadata.last_update ?? null,
        controls: [...controls.values()].sort((a, b) => a.control_id.localeCompare(b.control_id)),
        mappings: [...mappings.values()]
    };
};


// A mapping written for an older ATT&CK: the technique itself when active; its successor when revoked (followed
// through a chain of revocations); otherwise reported: unknown id, deprecated without successor, revoked into nothing
// active.
export const matchTechnique = (attackId: string, techniques: Map<string, KnownTechnique>): Match => {

    let technique = techniques.get(attackId);
    if (!technique) {
        return { technique_id: null, match: 'unmatched', unmatched_reason: 'unknown' };
    }

    let revoked = false;
    for (let i = 0; technique.revoked && i < 10; ++i) {
        revoked = true;
        const next: KnownTechnique | undefined = technique.revoked_by_id ? techniques.get(technique.revoked_by_id) : undefined;
        if (!next) {
            return { technique_id: null, match: 'unmatched', unmatched_reason: 'revoked' };
        }

        technique = next;
    }

    if (technique.revoked) {
        return { technique_id: null, match: 'unmatched', unmatched_reason: 'revoked' };
    }

    if (technique.deprecated) {
        return { technique_id: null, match: 'unmatched', unmatched_reason: 'deprecated' };
    }

    return { technique_id: technique.mitre_id, match: revoked ? 'revoked' : 'exact', unmatched_reason: null };
};
