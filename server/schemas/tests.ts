import Joi from 'joi';

import { detectionOutcomes, testActions, testStates } from '../services/test-lifecycle';
import type { BlueUpdate, ClassificationUpdate, FromTemplate, RedUpdate, RemediationUpdate, TestCreate, TestFilters, TestUpdate, TransitionInput } from '../services/tests';

import { listQuery, pageOf, searchText, text, timestamp, uuid } from './common';


export const techniqueId = Joi.string().pattern(/^([TX]\d{4}(\.\d{3})?)$/).message('technique_id must be a technique id such as T1059.001');
export const priority = Joi.string().valid('low', 'medium', 'high', 'critical');
export const classification = Joi.string().valid('public', 'internal', 'confidential', 'restricted');
export const platform = text(64).min(1);
export const tag = Joi.string().trim().min(1).max(64).pattern(/^[^\s,]+( [^\s,]+)*$/);
export const tags = Joi.array().items(tag).max(50).unique();
export const state = Joi.string().valid(...testStates);
export const remediationStatus = Joi.string().valid('none', 'open', 'in_progress', 'awaiting_retest', 'resolved', 'accepted_risk');


const general = {
    title: text(300).min(1),
    objective: text(10_000).allow(null, ''),
    description: text(50_000).allow(null, ''),
    technique_id: techniqueId,
    platform: platform.allow(null),
    priority,
    tags,
    red_assignee_id: uuid.allow(null),
    blue_assignee_id: uuid.allow(null),
    expected_outcome: text(10_000).allow(null, ''),
    expected_detection_asset_ids: Joi.array().items(uuid).max(100).unique()
};


export const testCreate = Joi.object<TestCreate, true>({
    ...general,
    title: general.title.when('retest_of_id', { is: Joi.exist(), otherwise: Joi.required() }),
    technique_id: general.technique_id.when('retest_of_id', { is: Joi.exist(), otherwise: Joi.required() }),
    template_id: uuid,
    retest_of_id: uuid
});

export const testUpdate = Joi.object<TestUpdate, true>(general).min(1);

export const redUpdate = Joi.object<RedUpdate, true>({
    procedure: text(50_000).allow(null, ''),
    tool: text(200).allow(null, ''),
    command: text(50_000).allow(null, ''),
    target_host: text(255).allow(null, ''),
    executed_at: timestamp.allow(null),
    attack_result: Joi.string().valid('succeeded', 'partially_succeeded', 'failed', 'blocked').allow(null),
    red_notes: text(50_000).allow(null, '')
}).min(1);

export const detection = Joi.object({
    asset_id: uuid.allow(null),
    tool: text(200).allow(null, ''),
    outcome: Joi.string().valid(...detectionOutcomes).required(),
    detected_at: timestamp.allow(null),
    rule_ids: Joi.array().items(uuid).max(100).unique(),
    alert_reference: text(500).allow(null, ''),
    notes: text(10_000).allow(null, '')
}).or('asset_id', 'tool');

export const blueUpdate = Joi.object<BlueUpdate, true>({
    detections: Joi.array().items(detection).max(100),
    blue_notes: text(50_000).allow(null, '')
}).min(1);

export const remediationUpdate = Joi.object<RemediationUpdate, true>({
    remediation_status: remediationStatus,
    remediation_notes: text(50_000).allow(null, ''),
    remediation_owner_id: uuid.allow(null),
    remediation_due: Joi.string().pattern(/^\d{4}-\d{2}-\d{2}$/).message('remediation_due must be a date (YYYY-MM-DD)').allow(null)
}).min(1);

export const classificationUpdate = Joi.object<ClassificationUpdate, true>({
    data_classification: classification.required()
});

export const transitionInput = Joi.object<Pick<TransitionInput, 'comment'>, true>({
    comment: text(10_000).allow('')
}).allow(null);

export const validationInput = Joi.object<TransitionInput, true>({
    approved: Joi.boolean().required(),
    comment: text(10_000).allow('').when('approved', { is: false, then: Joi.string().min(1).required() })
});

export const fromTemplate = Joi.object<FromTemplate, true>({
    template_ids: Joi.array().items(uuid).min(1).max(100).unique().required(),
    technique_ids: Joi.array().items(techniqueId).min(1).max(100).unique(),
    overrides: Joi.object({
        title: general.title,
        platform: general.platform,
        priority,
        tags,
        red_assignee_id: general.red_assignee_id,
        blue_assignee_id: general.blue_assignee_id,
        expected_outcome: general.expected_outcome
    })
});

export const testSortFields = ['created_at', 'updated_at', 'title', 'priority', 'state', 'technique_id', 'validated_at', 'executed_at'];

export const testListQuery = listQuery(testSortFields, {
    state: Joi.array().items(state).max(6).single(),
    technique_id: techniqueId,
    campaign_id: uuid,
    assigned_to: Joi.string().guid().allow('me'),
    platform,
    priority,
    tag,
    red_assignee_id: uuid,
    blue_assignee_id: uuid,
    remediation_status: remediationStatus,
    created_from: timestamp,
    created_to: timestamp,
    search: searchText
}) as Joi.ObjectSchema<TestFilters>;

export const actionParams = Joi.string().valid(...testActions);


const nullableString = Joi.string().allow(null);
const nullableDate = timestamp.allow(null);

const detectionResult = Joi.object({
    asset_id: nullableString,
    tool: nullableString,
    outcome: Joi.string().valid(...detectionOutcomes).required(),
    detected_at: nullableDate,
    rule_ids: Joi.array().items(Joi.string()),
    alert_reference: nullableString,
    notes: nullableString
}).label('Detection');

export const test = Joi.object({
    id: Joi.string().required(),
    title: Joi.string().required(),
    state: state.required(),
    technique_id: Joi.string().required(),
    objective: nullableString, description: nullableString, platform: nullableString, priority: Joi.string(),
    tags: Joi.array().items(Joi.string()), campaign_ids: Joi.array().items(Joi.string()), blind: Joi.boolean(),
    red_assignee_id: nullableString, blue_assignee_id: nullableString, data_classification: Joi.string(),
    template_id: nullableString, retest_of_id: nullableString, expected_outcome: nullableString,
    expected_detection_asset_ids: Joi.array().items(Joi.string()),
    procedure: nullableString, tool: nullableString, command: nullableString, target_host: nullableString,
    executed_at: nullableDate, attack_result: nullableString, red_notes: nullableString,
    detections: Joi.array().items(detectionResult), blue_notes: nullableString,
    detection_outcome: nullableString, detected_at: nullableDate,
    red_approved: Joi.boolean().allow(null), red_validated_by: nullableString, red_validated_at: nullableDate, red_validation_comment: nullableString,
    blue_approved: Joi.boolean().allow(null), blue_validated_by: nullableString, blue_validated_at: nullableDate, blue_validation_comment: nullableString,
    validated_at: nullableDate, rejected_at: nullableDate,
    red_seconds: Joi.number().integer(), blue_seconds: Joi.number().integer(), elapsed_seconds: Joi.number().integer(),
    timer_running: Joi.boolean(), timer_paused: Joi.boolean(), timer_started_at: nullableDate, time_to_detect_seconds: Joi.number().integer().allow(null),
    remediation_status: Joi.string(), remediation_notes: nullableString, remediation_owner_id: nullableString,
    remediation_due: Joi.string().pattern(/^\d{4}-\d{2}-\d{2}$/).allow(null), jira_issue_key: nullableString,
    version: Joi.number().integer(), created_by: nullableString, created_at: timestamp, updated_at: timestamp
}).label('Test');

export const createdTests = Joi.object({ items: Joi.array().items(test).required() }).label('CreatedTests');

export const retestChain = Joi.object({ items: Joi.array().items(test).required() }).label('RetestChain');


export const timelineEntry = Joi.object({
    id: Joi.string().required(),
    test_id: Joi.string().required(),
    actor_id: nullableString,
    actor_role: nullableString,
    action: Joi.string().required(),
    from_state: nullableString,
    to_state: nullableString,
    // The fields the change touched, each as { from, to }; evidence changes name the file
    changes: Joi.object().unknown(true),
    comment: nullableString,
    created_at: timestamp,
    updated_at: timestamp
}).label('TimelineEntry');

export const timelinePage = pageOf(timelineEntry, 'TimelinePage');


export const timelineQuery = listQuery(['created_at']);


export const testPage = pageOf(test, 'TestPage');
