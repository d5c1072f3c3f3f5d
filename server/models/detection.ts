import type { QueryBuilder } from 'objection';

import type { Actor } from '../policy';

import { BaseModel } from './base';
import { Test } from './test';


// Issue 11, detection engineering (docs/detection.md)

export const assetTypes = ['siem', 'edr', 'ndr', 'log_source', 'analytics', 'other'] as const;
export type AssetType = typeof assetTypes[number];

export const ruleLanguages = ['sigma', 'kql', 'spl', 'eql', 'yara', 'other'] as const;
export type RuleLanguage = typeof ruleLanguages[number];

export const ruleStatuses = ['stable', 'test', 'experimental', 'deprecated', 'unsupported', 'disabled'] as const;
export type RuleStatus = typeof ruleStatuses[number];

export const ruleSeverities = ['informational', 'low', 'medium', 'high', 'critical'] as const;
export type RuleSeverity = typeof ruleSeverities[number];

export const validatedOutcomes = ['prevented', 'alerted', 'logged'] as const;
export type ValidatedOutcome = typeof validatedOutcomes[number];

export const assignmentRoles = ['detection_owner', 'detection_engineer', 'red_owner', 'reviewer'] as const;
export type AssignmentRole = typeof assignmentRoles[number];

export const assetOwnershipRoles = ['owner', 'operator', 'escalation'] as const;
export type AssetOwnershipRole = typeof assetOwnershipRoles[number];


// Rows that carry a test's id show only when the actor may see that test (Test.visibleTo); rows without one always
const visibleThroughTest = (table: string) => {

    return (query: QueryBuilder<any>, actor: Actor) => {

        query.where((q) => q.whereNull(`${table}.test_id`).orWhereExists(Test.query().whereColumn('tests.id', `${table}.test_id`).modify('visibleTo', actor)));
    };
};


export class DetectionAsset extends BaseModel {

    static override tableName = 'detection_assets';

    declare id: string;
    declare name: string;
    declare type: AssetType;
    declare platform: string | null;
    declare owner_id: string | null;
    declare description: string | null;
    declare data_sources: string[];
    declare created_by: string | null;
    declare technique_ids?: string[];
}


export class TestDetection extends BaseModel {

    static override tableName = 'test_detections';

    declare id: string;
    declare test_id: string;
    declare position: number;
    declare asset_id: string | null;
    declare tool: string | null;
    declare outcome: string;
    declare detected_at: Date | null;
    declare rule_ids: string[];
    declare alert_reference: string | null;
    declare notes: string | null;

    static override modifiers = { visibleTo: visibleThroughTest('test_detections') };
}


export class DetectionValidation extends BaseModel {

    static override tableName = 'detection_validations';

    declare id: string;
    declare technique_id: string;
    declare asset_id: string;
    declare test_id: string | null;
    declare source: 'test' | 'manual';
    declare outcome: ValidatedOutcome;
    declare validated_at: Date;
    declare reason: string | null;
    declare status: 'valid' | 'invalidated';
    declare invalidated_at: Date | null;
    declare invalidated_by: string | null;
    declare invalidation_reason: string | null;
    declare created_by: string | null;

    static override modifiers = { visibleTo: visibleThroughTest('detection_validations') };
}


export class DetectionRule extends BaseModel {

    static override tableName = 'detection_rules';

    declare id: string;
    declare name: string;
    declare language: RuleLanguage;
    declare query: string;
    declare description: string | null;
    declare technique_ids: string[];
    declare platforms: string[];
    declare asset_id: string | null;
    declare status: RuleStatus;
    declare severity: RuleSeverity;
    declare author: string | null;
    declare license: string | null;
    declare source: 'manual' | 'sigma';
    declare source_ref: string | null;
    declare source_path: string | null;
    declare atomic_refs: string[];
    declare created_by: string | null;
}


export class DetectionRuleEvaluation extends BaseModel {

    static override tableName = 'detection_rule_evaluations';

    declare id: string;
    declare rule_id: string;
    declare test_id: string;
    declare fired: boolean;
    declare notes: string | null;
    declare evaluated_at: Date;
    declare created_by: string | null;

    static override modifiers = { visibleTo: visibleThroughTest('detection_rule_evaluations') };
}


export class InfrastructureChange extends BaseModel {

    static override tableName = 'infrastructure_changes';

    declare id: string;
    declare title: string;
    declare description: string;
    declare changed_at: Date;
    declare asset_ids: string[];
    declare platforms: string[];
    declare data_sources: string[];
    declare created_by: string | null;
}


export class TechniqueAssignment extends BaseModel {

    static override tableName = 'technique_assignments';

    declare id: string;
    declare technique_id: string;
    declare user_id: string | null;
    declare team: string | null;
    declare role: AssignmentRole;
    declare notes: string | null;
    declare created_by: string | null;
}


export class AssetOwnership extends BaseModel {

    static override tableName = 'asset_ownerships';

    declare id: string;
    declare asset_id: string;
    declare user_id: string | null;
    declare team: string | null;
    declare role: AssetOwnershipRole;
    declare notes: string | null;
    declare created_by: string | null;
}


export class RevalidationEntry extends BaseModel {

    static override tableName = 'revalidation_queue';

    declare id: string;
    declare change_id: string;
    declare technique_id: string;
    declare asset_id: string | null;
    declare matched_by: 'asset' | 'platform' | 'data_source';
    declare matched_value: string;
    declare reason: string;
    declare priority: number;
    declare priority_basis: string;
    declare owner_user_id: string | null;
    declare owner_team: string | null;
    declare notify_user_ids: string[];
    declare status: 'open' | 'closed';
    declare closed_at: Date | null;
    declare closed_by_test_id: string | null;

    override $parseDatabaseJson(json: Record<string, unknown>) {

        const parsed = super.$parseDatabaseJson(json);
        if (typeof parsed.priority === 'string') {
            parsed.priority = Number(parsed.priority);
        }

        return parsed;
    }
}
