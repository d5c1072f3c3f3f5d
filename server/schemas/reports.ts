import Joi from 'joi';

import type { CoverageFilters, RemediationFilters, TestResultFilters } from '../services/reports';
import { detectionOutcomes, testStates } from '../services/test-lifecycle';

import { listQuery, pageOf, timestamp, uuid } from './common';
import { domain, platform } from './techniques';
import { day } from './worklogs';


const format = Joi.string().valid('json', 'csv').default('json').description('json (a page, with a summary over every matching row) or csv (every matching row, streamed)');
const tactic = Joi.string().trim().pattern(/^(TA\d{4}|[a-z][a-z-]{1,63})$/).message('must be a tactic shortname (execution) or MITRE id (TA0002)');
const techniqueId = Joi.string().trim().max(32);
const counts = Joi.object().pattern(Joi.string(), Joi.number().integer().min(0));

export const coverageQuery = Joi.object<CoverageFilters, true>({ domain, platform });

export const testResultsQuery = listQuery(['executed_at', 'validated_at', 'created_at', 'technique_id', 'state'], {
    date_from: day.description('executed on or after this day (UTC)'),
    date_to: day.description('executed on or before this day (UTC)'),
    tactic,
    technique_id: techniqueId,
    outcome: Joi.string().valid(...detectionOutcomes),
    state: Joi.string().valid(...testStates),
    campaign_id: uuid.description('the tests of this campaign (an unknown campaign has none)'),
    format
}) as Joi.ObjectSchema<TestResultFilters>;

export const remediationQuery = listQuery(['remediation_due', 'updated_at', 'validated_at', 'technique_id'], {
    remediation_status: Joi.string().valid('none', 'open', 'in_progress', 'awaiting_retest', 'resolved', 'accepted_risk'),
    owner_id: uuid,
    overdue: Joi.boolean(),
    tactic,
    technique_id: techniqueId,
    format
}) as Joi.ObjectSchema<RemediationFilters>;

const coverageCounts = {
    techniques: Joi.number().integer().required(),
    untested: Joi.number().integer().required(),
    not_covered: Joi.number().integer().required(),
    partial: Joi.number().integer().required(),
    covered: Joi.number().integer().required(),
    coverage_percent: Joi.number().required().description('100 × (covered + partial / 2) / techniques, one decimal')
};

export const coverageSummary = Joi.object({
    generated_at: timestamp.required(),
    domain: Joi.string().required(),
    totals: Joi.object({ ...coverageCounts, average_score: Joi.number().allow(null).required() }).required(),
    by_tactic: Joi.array().items(Joi.object({ tactic_id: Joi.string().allow(null).required().description('the MITRE id; null for a tactic that has none (the column allows it)'), shortname: Joi.string().required(), name: Joi.string().required(), ...coverageCounts })).required(),
    tests: Joi.object({ total: Joi.number().integer().required(), validated: Joi.number().integer().required() }).required().description('the tests the caller may see')
}).label('CoverageSummary');

const nullableString = Joi.string().allow(null).required();
const nullableTime = timestamp.allow(null).required();

export const testResult = Joi.object({
    id: Joi.string().required(),
    title: Joi.string().required(),
    technique_id: Joi.string().required(),
    technique_name: Joi.string().required(),
    tactics: nullableString.description('the technique\'s tactic shortnames, ;-separated'),
    state: Joi.string().required(),
    priority: Joi.string().required(),
    data_classification: Joi.string().required(),
    platform: nullableString,
    attack_result: nullableString,
    detection_outcome: nullableString,
    executed_at: nullableTime,
    detected_at: nullableTime,
    time_to_detect_seconds: Joi.number().integer().allow(null).required(),
    validated_at: nullableTime,
    red_assignee_id: nullableString,
    blue_assignee_id: nullableString,
    remediation_status: Joi.string().required(),
    created_at: timestamp.required()
}).label('TestResultRow');

export const testResultsPage = pageOf(testResult, 'TestResultsReport').keys({
    summary: Joi.object({ by_state: counts.required(), by_outcome: counts.required().description('detection outcome; none when not evaluated') }).required()
}).label('TestResultsReport');

export const remediationRow = Joi.object({
    id: Joi.string().required(),
    title: Joi.string().required(),
    technique_id: Joi.string().required(),
    technique_name: Joi.string().required(),
    state: Joi.string().required(),
    detection_outcome: nullableString,
    remediation_status: Joi.string().required(),
    remediation_owner_id: nullableString,
    remediation_due: nullableString,
    overdue: Joi.boolean().required().description('due before today and still open or in progress'),
    jira_issue_key: nullableString,
    validated_at: nullableTime,
    updated_at: timestamp.required()
}).label('RemediationRow');

export const remediationPage = pageOf(remediationRow, 'RemediationReport').keys({
    summary: Joi.object({ by_status: counts.required(), overdue: Joi.number().integer().required() }).required()
}).label('RemediationReport');

export const csvFile = {
    description: 'RFC 4180 CSV (UTF-8, every field quoted, CRLF, a header row), streamed as an attachment; formula-like cells are prefixed with an apostrophe',
    'x-content': { 'text/csv': { schema: { type: 'string', format: 'binary' } } }
};
