import type { Readable } from 'stream';


// The records the STIX parser (stix-parser.ts) yields, and the bundle they form.
export type AttackDomain = 'enterprise-attack' | 'mobile-attack' | 'ics-attack';

export type AttackRelationshipType = 'uses' | 'mitigates' | 'subtechnique-of' | 'detects' | 'attributed-to' | 'revoked-by';

// A file path (.json or .json.gz) or any Readable of the bundle bytes, gzipped or not.
export type BundleInput = string | Readable;

export interface AttackProgress {
    objects: number;
}

export interface ParseAttackOptions {
    onProgress?: (progress: AttackProgress) => void;
    progressInterval?: number;
    domain?: AttackDomain;
}

export interface AttackRecord {
    stix_id: string;
    domain: AttackDomain;
    domains: AttackDomain[];
    created: string | null;
    modified: string;
    revoked: boolean;
    deprecated: boolean;
}

export interface AttackObjectRecord extends AttackRecord {
    mitre_id: string | null;
    name: string;
    description: string | null;
    url: string | null;
    version: string | null;
}

export interface AttackCollection extends AttackRecord {
    name: string;
    description: string | null;
    version: string | null;
    attack_spec_version: string | null;
}

export interface AttackMatrix extends AttackObjectRecord {
    tactic_stix_ids: string[];
}

export interface AttackTactic extends AttackObjectRecord {
    shortname: string;
    order: number | null;
}

export interface AttackTechnique extends AttackObjectRecord {
    is_subtechnique: boolean;
    parent_stix_id: string | null;
    parent_mitre_id: string | null;
    tactics: string[];
    platforms: string[];
    detection: string | null;
    data_sources: string[];
}

export type AttackMitigation = AttackObjectRecord;

export interface AttackGroup extends AttackObjectRecord {
    aliases: string[];
}

export interface AttackCampaign extends AttackObjectRecord {
    aliases: string[];
    first_seen: string | null;
    last_seen: string | null;
}

export interface AttackSoftware extends AttackObjectRecord {
    type: 'malware' | 'tool';
    aliases: string[];
    platforms: string[];
}

export interface AttackDataSource extends AttackObjectRecord {
    platforms: string[];
    collection_layers: string[];
}

export interface AttackLogSource {
    name: string;
    channel: string | null;
}

export interface AttackDataComponent extends AttackObjectRecord {
    data_source_stix_id: string | null;
    log_sources: AttackLogSource[];
}

export interface AttackDetectionStrategy extends AttackObjectRecord {
    analytic_stix_ids: string[];
}

export interface AttackLogSourceReference extends AttackLogSource {
    data_component_stix_id: string;
}

export interface AttackMutableElement {
    field: string;
    description: string | null;
}

export interface AttackAnalytic extends AttackObjectRecord {
    platforms: string[];
    log_source_references: AttackLogSourceReference[];
    data_component_stix_ids: string[];
    mutable_elements: AttackMutableElement[];
}

export interface AttackRelationship extends AttackRecord {
    type: AttackRelationshipType;
    source_stix_id: string;
    source_type: string;
    target_stix_id: string;
    target_type: string;
    description: string | null;
}

export interface AttackRevocation {
    stix_id: string;
    mitre_id: string | null;
    object_type: string;
    successor_stix_id: string;
    successor_mitre_id: string | null;
    final_stix_id: string;
    final_mitre_id: string | null;
}

export interface AttackCounts {
    objects: number;
    by_type: Record<string, number>;
    relationships_by_type: Record<string, number>;
    ignored_types: Record<string, number>;
    ignored_relationship_types: Record<string, number>;
}

export interface AttackBundle {
    domain: AttackDomain;
    attack_version: string | null;
    collection: AttackCollection | null;
    matrices: AttackMatrix[];
    tactics: AttackTactic[];
    techniques: AttackTechnique[];
    mitigations: AttackMitigation[];
    groups: AttackGroup[];
    campaigns: AttackCampaign[];
    software: AttackSoftware[];
    data_sources: AttackDataSource[];
    data_components: AttackDataComponent[];
    detection_strategies: AttackDetectionStrategy[];
    analytics: AttackAnalytic[];
    relationships: AttackRelationship[];
    revocations: AttackRevocation[];
    counts: AttackCounts;
    warnings: string[];
}

export interface AttackDetectionLink {
    technique_stix_id: string;
    detection_strategy_stix_id: string;
    analytic_stix_id: string;
    data_component_stix_id: string;
}
