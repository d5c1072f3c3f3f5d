import { BaseModel } from './base';


// Scores and risk per technique (risk_profiles), written by RiskService.recompute only
export class RiskProfile extends BaseModel {

    static override tableName = 'risk_profiles';
    static override idColumn = 'technique_id';

    declare technique_id: string;
    declare domain: string;
    declare is_subtechnique: boolean;
    declare tactics: string[];
    declare coverage_status: string;
    declare outcome: string | null;
    declare validated_at: Date | null;
    declare decay: number | null;
    declare confidence: number;
    declare own_score: number | null;
    declare score: number | null;
    declare actor_count: number;
    declare likelihood: number;
    declare impact: number;
    declare impact_source: string;
    declare risk: number;
    declare band: 'critical' | 'high' | 'medium' | 'low';
    declare reason: string;
    declare computed_at: Date;
}


export class ComplianceFramework extends BaseModel {

    static override tableName = 'compliance_frameworks';

    declare id: string;
    declare key: string;
    declare name: string;
    declare version: string;
    declare attack_version: string | null;
    declare attack_domain: string | null;
    declare source_file: string;
    declare provenance: string;
    declare licence: string;
    declare mapping_updated: string | null;
    declare imported_at: Date;
    declare imported_by: string | null;
}


export class ComplianceControl extends BaseModel {

    static override tableName = 'compliance_controls';

    declare id: string;
    declare framework_id: string;
    declare control_id: string;
    declare family: string;
    declare family_name: string | null;
    declare name: string;
    declare description: string | null;
    declare mappable: boolean;
}


export class ComplianceMapping extends BaseModel {

    static override tableName = 'compliance_mappings';

    declare id: string;
    declare control_id: string;
    declare attack_id: string;
    declare attack_name: string | null;
    declare mapping_type: string;
    declare comments: string | null;
    declare technique_id: string | null;
    declare match: 'exact' | 'revoked' | 'unmatched';
    declare unmatched_reason: 'unknown' | 'deprecated' | 'revoked' | null;
}
