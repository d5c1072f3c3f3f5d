import { Model } from 'objection';

import { BaseModel } from './base';


export type AttackDomainName = 'enterprise-attack' | 'mobile-attack' | 'ics-attack';

export type CoverageStatusName = 'untested' | 'not_covered' | 'partial' | 'covered';


// The columns every imported STIX object has (the migration's stix() helper)
abstract class StixObject extends BaseModel {

    declare id: string;
    declare stix_id: string;
    declare mitre_id: string | null;
    declare domain: AttackDomainName;
    declare domains: AttackDomainName[];
    declare name: string;
    declare description: string | null;
    declare url: string | null;
    declare revoked: boolean;
    declare deprecated: boolean;
}


export class Tactic extends StixObject {

    static override tableName = 'tactics';

    declare shortname: string;
    declare matrix_order: number | null;
}


// Keyed on the MITRE id (T1059.001), or on the reserved prefix for custom techniques (X0001).
export class Technique extends BaseModel {

    static override tableName = 'techniques';
    static override idColumn = 'mitre_id';

    declare mitre_id: string;
    declare stix_id: string | null;
    declare domain: AttackDomainName;
    declare domains: AttackDomainName[];
    declare name: string;
    declare description: string | null;
    declare url: string | null;
    declare version: string | null;
    declare is_subtechnique: boolean;
    declare parent_id: string | null;
    declare platforms: string[];
    declare detection: string | null;
    declare legacy_data_sources: string[];
    declare is_custom: boolean;
    declare revoked: boolean;
    declare deprecated: boolean;
    declare revoked_by_id: string | null;
    declare modified: Date | null;
    declare attack_version: string | null;
    declare impact: number | null;
    declare needs_review: boolean;
    declare review_reason: string | null;
    declare review_requested_at: Date | null;
    declare review_requested_by: string | null;
    declare notes: string | null;
    declare coverage_status: CoverageStatusName;
    declare score: number | null;
    declare own_coverage_status: CoverageStatusName;
    declare own_score: number | null;
    declare latest_validated_test_id: string | null;
    declare latest_validated_at: Date | null;
    declare coverage_updated_at: Date | null;
    declare created_by: string | null;

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

    declare id: string;
    declare stix_id: string | null;
    declare mitre_id: string | null;
    declare source: 'mitre' | 'custom' | 'misp' | 'osint';
    declare domains: AttackDomainName[];
    declare name: string;
    declare aliases: string[];
    declare description: string | null;
    declare url: string | null;
    declare references: { source_name: string; external_id?: string | null; url?: string | null; description?: string | null }[];
    declare country: string | null;
    declare motivations: string[];
    declare tracked: boolean;
    declare revoked: boolean;
    declare deprecated: boolean;
    declare modified: Date | null;
    declare attack_version: string | null;
    declare created_by: string | null;
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

    declare data_source_id: string | null;
    declare log_sources: { name: string; channel: string | null }[];
    declare collected: boolean;
    declare quality: DataQuality;
    declare notes: string | null;
    declare assessed_by: string | null;
    declare assessed_at: Date | null;
    declare is_custom: boolean;                 // the organisation's own (stix_id null, mitre_id XDC0001...)
    declare created_by: string | null;
}


export class AttackImport extends BaseModel {

    static override tableName = 'attack_imports';

    declare id: string;
    declare kind: 'attack' | 'd3fend';
    declare domain: string | null;
    declare source: string;
    declare attack_version: string | null;
    declare status: 'running' | 'succeeded' | 'failed';
    declare counts: Record<string, unknown>;
    declare error: string | null;
    declare started_at: Date;
    declare finished_at: Date | null;
    declare created_by: string | null;
}
