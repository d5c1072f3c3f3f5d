import { Model } from 'objection';

import { BaseModel } from './base';


export type AttackDomainName = 'enterprise-attack' | 'mobile-attack' | 'ics-attack';

export type CoverageStatusName = 'untested' | 'not_covered' | 'partial' | 'covered';


// The columns every imported STIX object has (the migration's stix() helper)
abstract class StixObject extends BaseModel {

    id!: string;
    stix_id!: string;
    mitre_id!: string | null;
    domain!: AttackDomainName;
    domains!: AttackDomainName[];
    name!: string;
    description!: string | null;
    url!: string | null;
    revoked!: boolean;
    deprecated!: boolean;
}


export class Tactic extends StixObject {

    static override tableName = 'tactics';

    shortname!: string;
    matrix_order!: number | null;
}


// Keyed on the MITRE id (T1059.001), or on the reserved prefix for custom techniques (X0001).
export class Technique extends BaseModel {

    static override tableName = 'techniques';
    static override idColumn = 'mitre_id';

    mitre_id!: string;
    stix_id!: string | null;
    domain!: AttackDomainName;
    domains!: AttackDomainName[];
    name!: string;
    description!: string | null;
    url!: string | null;
    version!: string | null;
    is_subtechnique!: boolean;
    parent_id!: string | null;
    platforms!: string[];
    detection!: string | null;
    legacy_data_sources!: string[];
    is_custom!: boolean;
    revoked!: boolean;
    deprecated!: boolean;
    revoked_by_id!: string | null;
    modified!: Date | null;
    attack_version!: string | null;
    impact!: number | null;
    needs_review!: boolean;
    review_reason!: string | null;
    review_requested_at!: Date | null;
    review_requested_by!: string | null;
    notes!: string | null;
    coverage_status!: CoverageStatusName;
    latest_validated_test_id!: string | null;
    latest_validated_at!: Date | null;
    coverage_updated_at!: Date | null;
    created_by!: string | null;

    static override relationMappings = () => ({
        tactics: {
            relation: Model.ManyToManyRelation,
            modelClass: Tactic,
            join: { from: 'techniques.mitre_id', through: { from: 'technique_tactics.technique_id', to: 'technique_tactics.tactic_id' }, to: 'tactics.id' }
        }
    });

    static override modifiers = {
        active(query: any) {

            query.where('techniques.revoked', false).where('techniques.deprecated', false);
        }
    };
}


// MITRE groups (stix_id set, kept current by the sync) and the organisation's own actors (stix_id null).
export class ThreatActor extends BaseModel {

    static override tableName = 'threat_actors';
    static override jsonAttributes = ['references'];        // a JSON array: pg would otherwise write it as a SQL array

    id!: string;
    stix_id!: string | null;
    mitre_id!: string | null;
    source!: 'mitre' | 'custom' | 'misp';
    domains!: AttackDomainName[];
    name!: string;
    aliases!: string[];
    description!: string | null;
    url!: string | null;
    references!: { source_name: string; external_id?: string | null; url?: string | null; description?: string | null }[];
    country!: string | null;
    motivations!: string[];
    tracked!: boolean;
    revoked!: boolean;
    deprecated!: boolean;
    modified!: Date | null;
    attack_version!: string | null;
    created_by!: string | null;
}


export interface DataQuality {
    device_completeness?: number;
    data_field_completeness?: number;
    timeliness?: number;
    consistency?: number;
    retention?: number;
}


// An ATT&CK data component, with the organisation's view of it (collected, quality, notes).
export class DataComponent extends StixObject {

    static override tableName = 'data_components';
    static override jsonAttributes = ['log_sources', 'quality'];

    data_source_id!: string | null;
    log_sources!: { name: string; channel: string | null }[];
    collected!: boolean;
    quality!: DataQuality;
    notes!: string | null;
    assessed_by!: string | null;
    assessed_at!: Date | null;
}


export class AttackImport extends BaseModel {

    static override tableName = 'attack_imports';

    id!: string;
    kind!: 'attack' | 'd3fend';
    domain!: string | null;
    source!: string;
    attack_version!: string | null;
    status!: 'running' | 'succeeded' | 'failed';
    counts!: Record<string, unknown>;
    error!: string | null;
    started_at!: Date;
    finished_at!: Date | null;
    created_by!: string | null;
}
