import Joi from 'joi';

import { jiraSyncStatuses, jiraSyncTriggers } from '../models';
import type { JiraIssueFilters, JiraSyncFilters } from '../services/jira';

import { listQuery, pageOf, timestamp } from './common';


// jira (issue 14): docs/jira.md

export const jiraIssueKey = Joi.string().trim().uppercase().pattern(/^[A-Z][A-Z0-9_]{1,19}-\d{1,9}$/).message('key must be a Jira issue key such as SEC-123');

export const jiraLinkPayload = Joi.object({ key: jiraIssueKey.required() }).label('JiraLinkPayload');

export const jiraSyncListQuery = listQuery(['created_at', 'finished_at', 'issues_changed', 'issues_failed'], {
    status: Joi.string().valid(...jiraSyncStatuses),
    trigger: Joi.string().valid(...jiraSyncTriggers)
}) as Joi.ObjectSchema<JiraSyncFilters>;

export const jiraIssueListQuery = listQuery(['updated_at', 'created_at', 'last_synced_at', 'jira_updated_at', 'issue_key'], {
    status_category: Joi.string().valid('new', 'indeterminate', 'done', 'undefined'),
    remediation_status: Joi.string().valid('open', 'in_progress', 'awaiting_retest', 'resolved', 'accepted_risk', 'none'),
    failing: Joi.boolean().description('true: only the issues whose last sync failed (last_error)')
}) as Joi.ObjectSchema<JiraIssueFilters>;

export const jiraWebhookQuery = Joi.object({
    secret: Joi.string().max(200).description('The shared secret (webhook_secret of the jira setting), for Jira Data Center webhooks that cannot sign')
}).label('JiraWebhookQuery');

const linkFields = {
    test_id: Joi.string().required(),
    issue_key: Joi.string().required(),
    issue_id: Joi.string().allow(null).required(),
    origin: Joi.string().valid('created', 'linked').required(),
    url: Joi.string().allow(null).required().description('The issue in Jira (browse link)'),
    status_name: Joi.string().allow(null).required().description('The Jira status when last read'),
    status_category: Joi.string().allow(null).required().description('Its category: new, indeterminate, done'),
    resolution: Joi.string().allow(null).required(),
    jira_updated_at: timestamp.allow(null).required(),
    last_synced_at: timestamp.allow(null).required(),
    last_error: Joi.string().allow(null).required().description('Why the last sync of this issue failed; null when it did not'),
    linked_by: Joi.string().allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
};

export const jiraLink = Joi.object(linkFields).label('JiraLink');

export const jiraIssueRow = Joi.object({
    ...linkFields,
    test_title: Joi.string().required(),
    technique_id: Joi.string().required(),
    remediation_status: Joi.string().required()
}).label('JiraIssue');

export const jiraIssuePage = pageOf(jiraIssueRow, 'JiraIssuePage');

export const jiraSyncRun = Joi.object({
    id: Joi.string().required(),
    trigger: Joi.string().valid(...jiraSyncTriggers).required(),
    status: Joi.string().valid(...jiraSyncStatuses).required(),
    requested_by: Joi.string().allow(null).required(),
    issue_keys: Joi.array().items(Joi.string()).allow(null).required(),
    not_before: timestamp.allow(null).required().description('Jira asked to wait (429 Retry-After): no scheduled run before this'),
    since: timestamp.allow(null).required().description('The lower bound of the JQL on `updated`'),
    cursor: timestamp.allow(null).required().description('Where the next poll starts (set when this one finished)'),
    issues_seen: Joi.number().integer().required(),
    issues_changed: Joi.number().integer().required(),
    issues_failed: Joi.number().integer().required(),
    failures: Joi.array().items(Joi.object({ issue_key: Joi.string().required(), reason: Joi.string().required() })).required(),
    error: Joi.string().allow(null).required().description('Why the whole run failed (Jira unreachable, unauthorised, rate limited...)'),
    started_at: timestamp.allow(null).required(),
    finished_at: timestamp.allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('JiraSyncRun');

export const jiraSyncRunPage = pageOf(jiraSyncRun, 'JiraSyncRunPage');

export const jiraConnectionReport = Joi.object({
    ok: Joi.boolean().required(),
    deployment: Joi.string().valid('cloud', 'data_center').allow(null).required(),
    checks: Joi.array().items(Joi.object({
        check: Joi.string().valid('configuration', 'reach', 'credentials', 'project', 'issue_type').required(),
        ok: Joi.boolean().required(),
        message: Joi.string().required()
    })).required()
}).label('JiraConnectionReport');

export const jiraWebhookPayload = Joi.object({
    webhookEvent: Joi.string().description('jira:issue_updated, jira:issue_created...'),
    issue: Joi.object({ key: Joi.string().required() }).unknown(true).required()
}).unknown(true).label('JiraWebhookPayload');

export const jiraWebhookAnswer = Joi.object({
    accepted: Joi.boolean().required().description('false: the issue is linked to no test (nothing to do)'),
    run_id: Joi.string().allow(null).required()
}).label('JiraWebhookAnswer');
