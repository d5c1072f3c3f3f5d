import Joi from 'joi';

import { ValidationError } from '../errors';
import type { AlertRuleType } from '../models';
import type { AlertFilters, AlertRuleCreate, AlertRuleFilters, AlertRuleUpdate } from '../services/alerts';

import { listQuery, pageOf, text, timestamp, uuid } from './common';
import { mitreId } from './techniques';


export const alertRuleTypes = ['coverage_regression', 'stale_validation', 'detection_failure', 'risk_threshold', 'sla_breach'] as const;
export const alertSeverities = ['low', 'medium', 'high', 'critical'] as const;
export const alertStatuses = ['open', 'acknowledged', 'resolved', 'dismissed'] as const;


// Every rule type may be narrowed to some techniques (at most 1,000); the rest of its parameters are its own. Defaults
// are filled in and stored, so that a rule reads back what it evaluates (docs/alerts.md lists them).
const scope = { technique_ids: Joi.array().items(mitreId).unique().min(1).max(1000) };

const parameterSchemas: Record<AlertRuleType, Joi.ObjectSchema> = {
    // How many outcome levels (prevented > alerted > logged > not_detected) the latest validation must lose
    coverage_regression: Joi.object({ ...scope, min_drop: Joi.number().integer().min(1).max(3).default(1) }),
    stale_validation: Joi.object({ ...scope, max_age_days: Joi.number().integer().min(1).max(3650).default(180) }),
    detection_failure: Joi.object({ ...scope, outcomes: Joi.array().items(Joi.string().valid('not_detected', 'logged')).unique().min(1).default(['not_detected']) }),
    // Risk runs from 0 to 25 (likelihood 1-5 x impact 1-5 x the uncovered share)
    risk_threshold: Joi.object({ ...scope, min_risk: Joi.number().min(0).max(25).required() }),
    // What is past due: the remediation of tests, and (subject 'campaign') active campaigns past their end date
    sla_breach: Joi.object({ ...scope, subjects: Joi.array().items(Joi.string().valid('remediation', 'campaign')).unique().min(1).default(['remediation']), grace_days: Joi.number().integer().min(0).max(365).default(0) })
};


// A rule's parameters checked against its type: the defaults filled in, or a 400 naming the field (`parameters.x`)
export const ruleParameters = (type: AlertRuleType, parameters: unknown): Record<string, unknown> => {

    const { value, error } = parameterSchemas[type].validate(parameters ?? {}, { abortEarly: false, convert: false });
    if (error) {
        const fields = [...new Set(error.details.map((detail) => ['parameters', ...detail.path].join('.')))].sort();
        throw new ValidationError(`Invalid parameters for a ${type} rule: ${error.details.map((detail) => detail.message.replace(/^"(.+?)"/, 'parameters.$1')).join('; ')}`, fields);
    }

    return value as Record<string, unknown>;
};


const ruleFields = {
    name: text(200).min(1),
    description: text(2000).allow(null, ''),
    parameters: Joi.object().unknown(true).description('Checked against the rule type (docs/alerts.md)'),
    severity: Joi.string().valid(...alertSeverities),
    enabled: Joi.boolean()
};

export const alertRuleCreate = Joi.object<AlertRuleCreate, true>({
    ...ruleFields,
    name: ruleFields.name.required(),
    rule_type: Joi.string().valid(...alertRuleTypes).required()
}).label('AlertRuleCreate');

export const alertRuleUpdate = Joi.object<AlertRuleUpdate, true>(ruleFields).min(1).label('AlertRuleUpdate');

export const alertRuleListQuery = listQuery(['name', 'rule_type', 'created_at', 'updated_at'], {
    rule_type: Joi.string().valid(...alertRuleTypes),
    severity: Joi.string().valid(...alertSeverities),
    enabled: Joi.boolean()
}) as Joi.ObjectSchema<AlertRuleFilters>;

export const alertListQuery = listQuery(['fired_at', 'created_at', 'updated_at'], {
    status: Joi.string().valid(...alertStatuses),
    severity: Joi.string().valid(...alertSeverities),
    rule_type: Joi.string().valid(...alertRuleTypes),
    rule_id: uuid,
    subject_type: Joi.string().valid('technique', 'test', 'campaign'),
    technique_id: mitreId
}) as Joi.ObjectSchema<AlertFilters>;

export const alertActionInput = Joi.object<{ note?: string }, true>({
    note: text(2000).allow('')
}).allow(null).label('AlertActionInput');



export const alertRule = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    description: Joi.string().allow(null),
    rule_type: Joi.string().valid(...alertRuleTypes).required(),
    parameters: Joi.object().unknown(true).required(),
    severity: Joi.string().valid(...alertSeverities).required(),
    enabled: Joi.boolean().required(),
    last_evaluated_at: timestamp.allow(null),
    created_by: Joi.string().allow(null),
    created_at: timestamp,
    updated_at: timestamp
}).label('AlertRule');

export const alertRulePage = pageOf(alertRule, 'AlertRulePage');

export const alert = Joi.object({
    id: Joi.string().required(),
    rule_id: Joi.string().required(),
    rule_type: Joi.string().valid(...alertRuleTypes).required(),
    severity: Joi.string().valid(...alertSeverities).required(),
    subject_type: Joi.string().valid('technique', 'test', 'campaign').required(),
    subject_id: Joi.string().required(),
    technique_id: Joi.string().allow(null),
    test_ids: Joi.array().items(Joi.string()).required(),
    status: Joi.string().valid(...alertStatuses).required(),
    title: Joi.string().required(),
    details: Joi.object().unknown(true).required(),
    fired_at: timestamp,
    acknowledged_at: timestamp.allow(null),
    acknowledged_by: Joi.string().allow(null),
    resolved_at: timestamp.allow(null),
    resolved_by: Joi.string().allow(null),
    dismissed_at: timestamp.allow(null),
    dismissed_by: Joi.string().allow(null),
    note: Joi.string().allow(null),
    cleared_at: timestamp.allow(null),
    created_at: timestamp,
    updated_at: timestamp
}).label('Alert');

export const alertPage = pageOf(alert, 'AlertPage');

const counts = (keys: readonly string[]) => Joi.object(Object.fromEntries(keys.map((key) => [key, Joi.number().integer().min(0).required()])));

export const alertSummary = Joi.object({
    total: Joi.number().integer().min(0).required(),
    by_status: counts(alertStatuses).required(),
    by_severity: counts(alertSeverities).required(),
    by_rule_type: counts(alertRuleTypes).required(),
    active_by_severity: counts(alertSeverities).required().description('Open and acknowledged instances only')
}).label('AlertSummary');

export const evaluationRequest = Joi.object({ job_id: Joi.string().required(), status: Joi.string().valid('queued', 'already_queued').required() }).label('AlertEvaluationRequest');
