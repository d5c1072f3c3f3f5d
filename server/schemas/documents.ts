import Joi from 'joi';

import type { ScheduleFilters, ScheduleInput } from '../services/report-schedules';

import { listQuery, pageOf, text, timestamp, uuid } from './common';
import { mitreId } from './techniques';
import { day } from './worklogs';


// Report documents and report schedules (issue 13, docs/documents.md)

export const documentKinds = ['coverage-summary', 'executive-summary', 'quarterly-summary', 'technique', 'purple-campaign'] as const;

const format = Joi.string().valid('json', 'html', 'pdf').default('json').description('json: the data; html: the document; pdf: the document printed by the worker');
const quarter = Joi.string().pattern(/^\d{4}-Q[1-4]$/).message('must be a quarter such as 2026-Q4');

export const coverageDocumentQuery = Joi.object({ format });
export const executiveDocumentQuery = Joi.object({ format, from: day.description('first day of the period (default: 29 days before "to")'), to: day.description('last day of the period, inclusive (default: today, UTC)') });
export const quarterlyDocumentQuery = Joi.object({ format, quarter: quarter.description('the quarter (default: the current one)') });
export const techniqueDocumentParams = Joi.object({ id: mitreId.required() });
export const techniqueDocumentQuery = Joi.object({ format });
export const campaignDocumentParams = Joi.object({ id: uuid.required() });

const count = Joi.number().integer().min(0).required();
const statuses = Joi.object({ covered: count, partial: count, not_covered: count, untested: count }).label('CoverageCounts');
const activity = Joi.object({ tests_created: count, tests_executed: count, tests_validated: count, detected: count }).label('DocumentActivity');
const seconds = Joi.number().integer().min(0).allow(null).required();

export const documentData = Joi.object({
    kind: Joi.string().valid(...documentKinds).required(),
    title: Joi.string().required(),
    subtitle: Joi.string().required(),
    generated_at: Joi.string().isoDate().required(),
    params: Joi.object({ from: Joi.string(), to: Joi.string(), quarter: Joi.string(), id: Joi.string() }).required(),
    period: Joi.object({ from: Joi.string().required(), to: Joi.string().required(), previous_from: Joi.string().required(), previous_to: Joi.string().required() }).allow(null).required(),
    scope: Joi.object({ techniques: count, tested: count, tests: count }).required(),
    coverage: Joi.object({
        percent: Joi.number().integer().min(0).max(100).required(),
        by_status: statuses.required(),
        by_tactic: Joi.array().items(Joi.object({ tactic_id: Joi.string().allow(null).required(), name: Joi.string().required(), total: count, by_status: statuses.required(), percent: Joi.number().integer().required() }).label('TacticCoverage')).required()
    }).required(),
    activity: Joi.object({ current: activity.required(), previous: activity.required() }).allow(null).required(),
    outcomes: Joi.object({ prevented: count, alerted: count, logged: count, not_detected: count, not_applicable: count }).required(),
    time_to_detect: Joi.object({
        count,
        median_seconds: seconds,
        mean_seconds: seconds,
        p90_seconds: seconds,
        buckets: Joi.array().items(Joi.object({ label: Joi.string().required(), count }).label('TimeToDetectBucket')).required(),
        previous: Joi.object({ count, median_seconds: seconds })
    }).required(),
    trend: Joi.array().items(Joi.object({ week: Joi.string().required(), validated: count, detected: count }).label('TrendWeek')).required(),
    gaps: Joi.array().items(Joi.object({
        technique_id: Joi.string().required(), name: Joi.string().required(), coverage_status: Joi.string().required(), score: Joi.number().integer().allow(null).required(),
        impact: Joi.number().integer().allow(null).required(), likelihood: Joi.number().allow(null).required(), actors: count,
        risk: Joi.number().allow(null).required().description('The stored risk of docs/posture.md (risk_profiles), null while the technique has no profile yet'),
        band: Joi.string().allow(null).required()
    }).label('RiskGap')).required(),
    remediation: Joi.object({ by_status: Joi.object({ open: count, in_progress: count, awaiting_retest: count, resolved: count, accepted_risk: count }).required(), overdue: count }).required(),
    technique: Joi.object({
        mitre_id: Joi.string().required(), name: Joi.string().required(), tactics: Joi.array().items(Joi.string()).required(), platforms: Joi.array().items(Joi.string()).required(),
        coverage_status: Joi.string().required(), score: Joi.number().integer().allow(null).required(), description: Joi.string().allow(null).required()
    }),
    campaign: Joi.object({
        id: Joi.string().required(), name: Joi.string().required(), type: Joi.string().required(), status: Joi.string().required(), description: Joi.string().allow(null).required(),
        start_date: Joi.string().allow(null).required(), end_date: Joi.string().allow(null).required(), threat_actor: Joi.string().allow(null).required(),
        techniques: Joi.array().items(Joi.string()).required(),
        progress: Joi.object({ total: count, validated: count, percent: Joi.number().min(0).max(100).required(), by_state: Joi.object().pattern(Joi.string(), count).required() }).required()
    }).label('DocumentCampaign'),
    tests: Joi.array().items(Joi.object({
        id: Joi.string().required(), title: Joi.string().required(), technique_id: Joi.string().required(), state: Joi.string().required(), attack_result: Joi.string().allow(null).required(),
        detection_outcome: Joi.string().allow(null).required(), time_to_detect_seconds: seconds, remediation_status: Joi.string().required(), validated_at: Joi.string().allow(null).required(),
        evidence: Joi.array().items(Joi.object({ name: Joi.string().required(), sha256: Joi.string().required() }).label('DocumentEvidence')).required()
    }).label('DocumentTest')),
    tests_truncated: Joi.boolean()
}).label('DocumentData');

export const renderStatus = Joi.object({
    id: Joi.string().required(),
    kind: Joi.string().required(),
    status: Joi.string().valid('queued', 'running', 'done', 'failed').required(),
    file_name: Joi.string().required(),
    size: Joi.number().integer().allow(null).required(),
    error: Joi.string().allow(null).required(),
    location: Joi.string().required().description('where to ask again: GET answers the PDF once it is printed'),
    created_at: timestamp.required(),
    finished_at: timestamp.allow(null).required()
}).label('RenderStatus');

// What hapi validates a document's 200 against: the data (JSON), or the HTML
export const documentAnswer = Joi.alternatives().try(documentData, Joi.string());

// The 200 of a document: the data, the HTML document or the PDF, by `format`
export const documentFile = {
    description: 'format=json: the document\'s data; format=html: the HTML document (format=pdf answers 202 or 303)',
    schema: documentData,
    'x-content': {
        'application/json': { schema: { $ref: '#/components/schemas/DocumentData' } },
        'text/html': { schema: { type: 'string' } }
    }
};

export const renderFile = {
    description: 'The PDF, once printed',
    'x-content': { 'application/pdf': { schema: { type: 'string', format: 'binary' } } }
};


// Schedules
const recipients = {
    recipient_user_ids: Joi.array().items(uuid).max(100).description('users: each receives what their account may see'),
    recipient_emails: Joi.array().items(Joi.string().email({ tlds: false }).max(320)).max(100).description('addresses outside Aegis (when the reports.external_recipients setting allows them): they receive what a viewer sees')
};

// The id is the technique's (technique) or the campaign's (purple-campaign): the service checks which the kind needs
const scheduleParams = Joi.object({ from: day, to: day, quarter, id: Joi.alternatives().try(mitreId, uuid).messages({ 'alternatives.match': '{{#label}} must be a technique id such as T1059.001 (technique) or a campaign\'s id (purple-campaign)' }) })
    .description('the document\'s parameters (technique: id, its MITRE id; purple-campaign: id, the campaign\'s; executive-summary: from, to; quarterly-summary: quarter)');
const cron = Joi.string().trim().max(120).description('a cron expression (5 or 6 fields) in the schedule\'s time zone');
const period = Joi.string().valid('daily', 'weekly', 'monthly', 'quarterly').description('07:00 in the time zone: every day, every Monday, the 1st of each month, the 1st of each quarter');
const timezone = Joi.string().max(64).description('IANA time zone (default UTC)');

const scheduleFields = {
    name: text(200).min(1),
    kind: Joi.string().valid(...documentKinds),
    params: scheduleParams,
    cron,
    period,
    timezone,
    ...recipients,
    enabled: Joi.boolean()
};

// Either cron or period: the service says which is missing or doubled, naming "cron"
export const scheduleCreate = Joi.object<ScheduleInput, true>({ ...scheduleFields, name: scheduleFields.name.required(), kind: scheduleFields.kind.required() }).label('ReportScheduleCreate');

export const scheduleUpdate = Joi.object<Partial<ScheduleInput>, true>(scheduleFields).min(1).label('ReportScheduleUpdate');

export const scheduleListQuery = listQuery(['created_at', 'name', 'next_run_at'], { owner_id: uuid, kind: Joi.string().valid(...documentKinds) }) as Joi.ObjectSchema<ScheduleFilters>;

export const schedule = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    owner_id: Joi.string().required(),
    kind: Joi.string().required(),
    params: Joi.object().unknown(true).required(),
    cron: Joi.string().allow(null).required(),
    period: Joi.string().allow(null).required(),
    timezone: Joi.string().required(),
    recipient_user_ids: Joi.array().items(Joi.string()).required(),
    recipient_emails: Joi.array().items(Joi.string()).required(),
    enabled: Joi.boolean().required(),
    next_run_at: timestamp.allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('ReportSchedule');

export const schedulePage = pageOf(schedule, 'ReportSchedulePage');

export const scheduleRun = Joi.object({
    id: Joi.string().required(),
    schedule_id: Joi.string().required(),
    period_key: Joi.string().required(),
    status: Joi.string().valid('running', 'sent', 'failed').required(),
    attempts: Joi.number().integer().required(),
    error: Joi.string().allow(null).required(),
    recipients: Joi.number().integer().required(),
    sent_to: Joi.array().items(Joi.string()).required(),
    in_flight: Joi.string().allow(null).required().description('the address a message is being sent to now'),
    unconfirmed: Joi.array().items(Joi.string()).required().description('addresses whose message was in flight when a worker stopped: perhaps delivered, never sent again'),
    started_at: timestamp.required(),
    finished_at: timestamp.allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('ReportScheduleRun');

export const scheduleRunPage = pageOf(scheduleRun, 'ReportScheduleRunPage');
export const scheduleRunsQuery = listQuery(['started_at']);
