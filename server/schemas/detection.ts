import Joi from 'joi';

import { assetOwnershipRoles, assetTypes, assignmentRoles, ruleLanguages, ruleSeverities, ruleStatuses, validatedOutcomes } from '../models';
import type { AssetFilters, AssetInput, ChangeFilters, ChangeInput, DashboardFilters, DetectionFilters, ValidationFilters, ValidationInput } from '../services/detection';
import type { EvaluationInput, RuleFilters, RuleInput } from '../services/detection-rules';
import type { AssetOwnershipFilters, AssetOwnershipInput, AssignmentFilters, AssignmentInput, QueueFilters } from '../services/ownership';
import { detectionOutcomes } from '../services/test-lifecycle';

import { listQuery, pageOf, searchText, text, timestamp, uuid } from './common';
import { techniqueId } from './tests';


// Issue 11, detection engineering: every joi schema of the detection-lifecycle, detection-rules and ownership routes

const nullableString = Joi.string().allow(null);
const nullableDate = timestamp.allow(null);
const platformName = text(64).min(1);
const dataSourceId = Joi.string().pattern(/^DS\d{4}$/).message('must be an ATT&CK data source id such as DS0009');
const team = text(200).min(1);

// What every row answers besides its own fields
const stamps = { created_by: nullableString, created_at: timestamp, updated_at: timestamp };
const times = { created_at: timestamp, updated_at: timestamp };


// ---- Assets

const assetFields = {
    name: text(200).min(1),
    type: Joi.string().valid(...assetTypes),
    platform: platformName.allow(null),
    owner_id: uuid.allow(null),
    description: text(10_000).allow(null, ''),
    data_sources: Joi.array().items(dataSourceId).max(100).unique()
};

export const assetCreate = Joi.object<AssetInput, true>({ ...assetFields, name: assetFields.name.required(), type: assetFields.type.required() });
export const assetUpdate = Joi.object<AssetInput, true>(assetFields).min(1);
export const assetListQuery = listQuery(['name', 'type', 'created_at', 'updated_at'], { type: assetFields.type, platform: platformName, owner_id: uuid, technique_id: techniqueId, search: searchText }) as Joi.ObjectSchema<AssetFilters>;
export const assetTechniqueParams = Joi.object({ id: uuid.required(), tid: techniqueId.required() });

export const asset = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    type: Joi.string().required(),
    platform: nullableString,
    owner_id: nullableString,
    description: nullableString,
    data_sources: Joi.array().items(Joi.string()).required(),
    technique_ids: Joi.array().items(Joi.string()).required(),
    ...stamps
}).label('DetectionAsset');

export const assetPage = pageOf(asset, 'DetectionAssetPage');


// ---- Detections of tests, as rows

export const detectionListQuery = listQuery(['detected_at', 'created_at', 'outcome'], {
    test_id: uuid, asset_id: uuid, technique_id: techniqueId, outcome: Joi.string().valid(...detectionOutcomes), rule_id: uuid, detected_from: timestamp, detected_to: timestamp
}) as Joi.ObjectSchema<DetectionFilters>;

export const testDetection = Joi.object({
    id: Joi.string().required(),
    test_id: Joi.string().required(),
    position: Joi.number().integer().required(),
    asset_id: nullableString,
    tool: nullableString,
    outcome: Joi.string().required(),
    detected_at: nullableDate,
    rule_ids: Joi.array().items(Joi.string()).required(),
    alert_reference: nullableString,
    notes: nullableString,
    ...times
}).label('TestDetection');

export const testDetectionPage = pageOf(testDetection, 'TestDetectionPage');


// ---- Validations

export const validationCreate = Joi.object<ValidationInput, true>({
    technique_id: techniqueId.required(),
    asset_id: uuid.required(),
    outcome: Joi.string().valid(...validatedOutcomes).required(),
    validated_at: timestamp.max('now'),
    reason: text(2000).min(1).required()
});

export const invalidateInput = Joi.object({ reason: text(2000).min(1).required() });

export const validationListQuery = listQuery(['validated_at', 'created_at', 'technique_id'], {
    technique_id: techniqueId, asset_id: uuid, test_id: uuid, status: Joi.string().valid('valid', 'invalidated'), source: Joi.string().valid('test', 'manual')
}) as Joi.ObjectSchema<ValidationFilters>;

const validationFields = {
    id: Joi.string().required(),
    technique_id: Joi.string().required(),
    asset_id: Joi.string().required(),
    test_id: nullableString,
    source: Joi.string().valid('test', 'manual').required(),
    outcome: Joi.string().required(),
    validated_at: timestamp,
    reason: nullableString,
    status: Joi.string().valid('valid', 'invalidated').required(),
    invalidated_at: nullableDate,
    invalidated_by: nullableString,
    invalidation_reason: nullableString,
    ...stamps
};

export const validation = Joi.object(validationFields).label('DetectionValidation');
export const validationPage = pageOf(validation, 'DetectionValidationPage');


// ---- Infrastructure changes

export const changeCreate = Joi.object<ChangeInput, true>({
    title: text(300).min(1).required(),
    description: text(10_000).min(1).required(),
    changed_at: timestamp.required(),
    asset_ids: Joi.array().items(uuid).max(200).unique(),
    platforms: Joi.array().items(platformName).max(50).unique(),
    data_sources: Joi.array().items(dataSourceId).max(100).unique()
}).or('asset_ids', 'platforms', 'data_sources').custom((value: ChangeInput, helpers) => (
    (value.asset_ids?.length ?? 0) + (value.platforms?.length ?? 0) + (value.data_sources?.length ?? 0) ? value : helpers.message({ custom: 'name at least one asset, platform or data source the change touches' })
));

export const changeListQuery = listQuery(['changed_at', 'created_at', 'title'], { asset_id: uuid, platform: platformName, data_source: dataSourceId, changed_from: timestamp, changed_to: timestamp }) as Joi.ObjectSchema<ChangeFilters>;

const changeFields = {
    id: Joi.string().required(),
    title: Joi.string().required(),
    description: Joi.string().required(),
    changed_at: timestamp,
    asset_ids: Joi.array().items(Joi.string()).required(),
    platforms: Joi.array().items(Joi.string()).required(),
    data_sources: Joi.array().items(Joi.string()).required(),
    ...stamps
};

export const change = Joi.object(changeFields).label('InfrastructureChange');
export const changeCreated = Joi.object({ ...changeFields, techniques_marked: Joi.number().integer().min(0).required() }).label('InfrastructureChangeCreated');
export const changePage = pageOf(change, 'InfrastructureChangePage');


// ---- Dashboard

export const dashboardQuery = listQuery(['confidence', 'technique_id', 'latest_validated_at', 'counted_validations'], {
    technique_id: techniqueId, min_confidence: Joi.number().min(0).max(1), max_confidence: Joi.number().min(0).max(1), needs_review: Joi.boolean()
}) as Joi.ObjectSchema<DashboardFilters>;

export const dashboard = Joi.object({
    as_of: timestamp.required(),
    half_life_days: Joi.number().required(),
    weights: Joi.object({ prevented: Joi.number(), alerted: Joi.number(), logged: Joi.number() }).required(),
    formula: Joi.string().required(),
    total: Joi.number().integer().required(),
    limit: Joi.number().integer().required(),
    offset: Joi.number().integer().required(),
    items: Joi.array().items(Joi.object({
        technique_id: Joi.string().required(),
        name: Joi.string().required(),
        needs_review: Joi.boolean().required(),
        coverage_status: Joi.string().required(),
        confidence: Joi.number().min(0).max(1).required(),
        counted_validations: Joi.number().integer().required(),
        latest_validated_at: nullableDate,
        validations_total: Joi.number().integer().min(0).required(),
        validations: Joi.array().items(Joi.object({
            ...validationFields,
            age_days: Joi.number().required(),
            counted: Joi.boolean().required(),
            contribution: Joi.number().required()
        }).label('DashboardValidation')).required()
    }).label('TechniqueDetectionConfidence')).required()
}).label('DetectionDashboard');


// ---- Rules

const ruleFields = {
    name: text(500).min(1),
    language: Joi.string().valid(...ruleLanguages),
    query: Joi.string().min(1).max(200_000),
    description: text(10_000).allow(null, ''),
    technique_ids: Joi.array().items(techniqueId).max(200).unique(),
    platforms: Joi.array().items(platformName).max(50).unique(),
    asset_id: uuid.allow(null),
    status: Joi.string().valid(...ruleStatuses),
    severity: Joi.string().valid(...ruleSeverities),
    author: text(1000).allow(null, ''),
    license: text(500).allow(null, '')
};

export const ruleCreate = Joi.object<RuleInput, true>({ ...ruleFields, name: ruleFields.name.required(), language: ruleFields.language.required(), query: ruleFields.query.required() });
export const ruleUpdate = Joi.object<RuleInput, true>(ruleFields).min(1);

export const ruleListQuery = listQuery(['name', 'severity', 'status', 'created_at', 'updated_at'], {
    language: ruleFields.language, status: ruleFields.status, severity: ruleFields.severity, technique_id: techniqueId, asset_id: uuid,
    source: Joi.string().valid('manual', 'sigma'), search: searchText, expected_for_test: uuid
}) as Joi.ObjectSchema<RuleFilters>;

const ruleItem = {
    id: Joi.string().required(),
    name: Joi.string().required(),
    language: Joi.string().required(),
    query: Joi.string().required(),
    description: nullableString,
    technique_ids: Joi.array().items(Joi.string()).required(),
    platforms: Joi.array().items(Joi.string()).required(),
    asset_id: nullableString,
    status: Joi.string().required(),
    severity: Joi.string().required(),
    author: nullableString,
    license: nullableString,
    source: Joi.string().required(),
    source_ref: nullableString,
    source_path: nullableString,
    atomic_refs: Joi.array().items(Joi.string()).required(),
    ...stamps
};

const evaluationItem = Joi.object({
    id: Joi.string().required(),
    rule_id: Joi.string().required(),
    test_id: Joi.string().required(),
    fired: Joi.boolean().required(),
    notes: nullableString,
    evaluated_at: timestamp,
    ...stamps
}).label('DetectionRuleEvaluation');

export const rule = Joi.object({
    ...ruleItem,
    test_evaluation: evaluationItem.allow(null).description('Only with expected_for_test: whether the rule fired for that test (POST /detection-rules/evaluate), null while not recorded')
}).label('DetectionRule');
export const rulePage = pageOf(rule, 'DetectionRulePage');

export const ruleDetail = Joi.object({
    ...ruleItem,
    expected_templates: Joi.array().items(Joi.object({
        id: Joi.string().required(), name: Joi.string().required(), technique_ids: Joi.array().items(Joi.string()), platforms: Joi.array().items(Joi.string()),
        atomic_guid: nullableString, simulated: Joi.boolean().required()
    }).label('ExpectedTemplate')).required(),
    evaluations: Joi.array().items(evaluationItem).required()
}).label('DetectionRuleDetail');

export const evaluationInput = Joi.object<EvaluationInput, true>({
    rule_id: uuid.required(),
    test_id: uuid.required(),
    fired: Joi.boolean().required(),
    notes: text(2000).allow(null, '')
});

export const evaluationResult = Joi.object({ evaluation: evaluationItem.required(), detections_updated: Joi.boolean().required() }).label('DetectionRuleEvaluationResult');


// ---- Ownership

export const assignmentCreate = Joi.object<AssignmentInput, true>({
    technique_id: techniqueId.required(),
    user_id: uuid.allow(null),
    team: team.allow(null),
    role: Joi.string().valid(...assignmentRoles).required(),
    notes: text(2000).allow(null, '')
});

export const assignmentUpdate = Joi.object<Omit<AssignmentInput, 'technique_id'>, true>({
    user_id: uuid.allow(null),
    team: team.allow(null),
    role: Joi.string().valid(...assignmentRoles),
    notes: text(2000).allow(null, '')
}).min(1);

export const assignmentListQuery = listQuery(['technique_id', 'role', 'created_at'], { technique_id: techniqueId, user_id: uuid, team, role: Joi.string().valid(...assignmentRoles) }) as Joi.ObjectSchema<AssignmentFilters>;

export const assignment = Joi.object({
    id: Joi.string().required(),
    technique_id: Joi.string().required(),
    user_id: nullableString,
    team: nullableString,
    role: Joi.string().required(),
    notes: nullableString,
    ...stamps
}).label('TechniqueAssignment');

export const assignmentPage = pageOf(assignment, 'TechniqueAssignmentPage');

export const assetOwnershipCreate = Joi.object<AssetOwnershipInput, true>({
    asset_id: uuid.required(),
    user_id: uuid.allow(null),
    team: team.allow(null),
    role: Joi.string().valid(...assetOwnershipRoles),
    notes: text(2000).allow(null, '')
});

export const assetOwnershipListQuery = listQuery(['created_at', 'role'], { asset_id: uuid, user_id: uuid, team }) as Joi.ObjectSchema<AssetOwnershipFilters>;

export const assetOwnership = Joi.object({
    id: Joi.string().required(),
    asset_id: Joi.string().required(),
    user_id: nullableString,
    team: nullableString,
    role: Joi.string().required(),
    notes: nullableString,
    ...stamps
}).label('AssetOwnership');

export const assetOwnershipPage = pageOf(assetOwnership, 'AssetOwnershipPage');

export const queueListQuery = listQuery(['priority', 'created_at', 'technique_id'], { status: Joi.string().valid('open', 'closed'), technique_id: techniqueId, change_id: uuid, owner_user_id: uuid }) as Joi.ObjectSchema<QueueFilters>;

export const queueEntry = Joi.object({
    id: Joi.string().required(),
    change_id: Joi.string().required(),
    technique_id: Joi.string().required(),
    asset_id: nullableString,
    matched_by: Joi.string().valid('asset', 'platform', 'data_source').required(),
    matched_value: Joi.string().required(),
    reason: Joi.string().required(),
    priority: Joi.number().required(),
    priority_basis: Joi.string().required(),
    owner_user_id: nullableString,
    owner_team: nullableString,
    notify_user_ids: Joi.array().items(Joi.string()).required().description('The users addressed when the entry was generated (revalidation.required; each one\'s notification preferences apply): its owner, or the active blue leads when the owner is a team or unknown'),
    status: Joi.string().valid('open', 'closed').required(),
    closed_at: nullableDate,
    closed_by_test_id: nullableString,
    ...times
}).label('RevalidationEntry');

export const queuePage = pageOf(queueEntry, 'RevalidationQueuePage');
export const queueGenerated = Joi.object({ created: Joi.number().integer().min(0).required(), notified: Joi.number().integer().min(0).required().description('Notifications written for the new entries: one per entry and addressed user who has not switched them off'), items: Joi.array().items(queueEntry).required() }).label('RevalidationQueueGenerated');
