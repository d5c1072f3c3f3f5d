import Joi from 'joi';

import { listQuery, pageOf, text, timestamp, uuid } from './common';
import { coverageStatus, domain } from './techniques';


// Dashboards, snapshots and analytics (issue 12, docs/dashboards.md)

const days = (max: number) => Joi.number().integer().min(1).max(max);
const count = Joi.number().integer().min(0).required();
const percent = Joi.number().min(0).max(100).required();
const byStatus = Joi.object({ untested: count, not_covered: count, partial: count, covered: count }).label('CoverageCounts');
const period = { from: timestamp, to: timestamp };
const window = { from: timestamp.required(), to: timestamp.required() };

export const domainQuery = Joi.object({ domain });

export const historyQuery = Joi.object({ domain, days: days(365) });

export const executiveQuery = Joi.object({ domain, days: days(183) });

export const activityQuery = listQuery(['at'], { days: days(365), type: Joi.string().valid('test', 'validation', 'campaign') });

export const snapshotCreate = Joi.object({ note: text(500).allow(null, '') }).label('SnapshotCreate');

export const snapshotListQuery = listQuery(['taken_at'], { kind: Joi.string().valid('manual', 'scheduled'), ...period });

export const snapshotDetailQuery = Joi.object({ domain });

export const evolutionQuery = Joi.object({ domain, ...period });

export const compareQuery = Joi.object({ a: uuid.required(), b: uuid.required(), domain });

export const ttdQuery = Joi.object({ ...period, group_by: Joi.string().valid('none', 'tactic', 'tool', 'technique', 'week', 'asset') });

export const outcomesQuery = Joi.object({ ...period, group_by: Joi.string().valid('none', 'tactic', 'tool') });

export const rateQuery = Joi.object({ ...period, group_by: Joi.string().valid('none', 'week') });

export const periodQuery = Joi.object(period);


export const postureSummary = Joi.object({
    techniques: count,
    subtechniques: count,
    by_status: byStatus,
    covered_percent: percent,
    tested_percent: percent,
    needs_review: count
}).label('PostureSummary');

export const kpis = Joi.object({
    domain: Joi.string().required(),
    techniques: postureSummary,
    tests: Joi.object({
        total: count,
        by_state: Joi.object().pattern(Joi.string(), count).required(),
        validated_outcomes: Joi.object().pattern(Joi.string(), count).required(),
        validation_rate: Joi.number().min(0).max(1).allow(null).required()
    }).required(),
    campaigns: Joi.object({ total: count, draft: count, active: count, completed: count, overdue: count }).required(),
    computed_at: timestamp.required()
}).label('DashboardKpis');

export const coverageByTactic = Joi.object({
    domain: Joi.string().required(),
    tactics: Joi.array().items(Joi.object({
        tactic_id: Joi.string().allow(null).required(),
        shortname: Joi.string().required(),
        name: Joi.string().required(),
        techniques: count,
        by_status: byStatus,
        covered_percent: percent,
        tests: Joi.object({ total: count, validated: count }).required()
    }).label('TacticCoverage')).required()
}).label('CoverageByTactic');

export const activityItem = Joi.object({
    id: Joi.string().required(),
    type: Joi.string().valid('test', 'validation', 'campaign').required(),
    action: Joi.string().required(),
    at: timestamp.required(),
    actor_id: Joi.string().allow(null).required(),
    from_state: Joi.string().allow(null).required(),
    to_state: Joi.string().allow(null).required(),
    test: Joi.object({ id: Joi.string().required(), title: Joi.string().required(), technique_id: Joi.string().required(), state: Joi.string().required() }).allow(null).required(),
    campaign: Joi.object({ id: Joi.string().required(), name: Joi.string().required(), status: Joi.string().required() }).allow(null).required()
}).label('ActivityItem');

export const activityPage = pageOf(activityItem, 'ActivityPage');

export const evolutionPoint = postureSummary.keys({
    snapshot_id: Joi.string().allow(null).required(),
    taken_at: timestamp.required(),
    kind: Joi.string().valid('manual', 'scheduled', 'live').required()
}).label('EvolutionPoint');

export const evolution = Joi.object({ domain: Joi.string().required(), points: Joi.array().items(evolutionPoint).required() }).label('Evolution');

export const sentence = Joi.object({
    key: Joi.string().required(),
    text: Joi.string().required(),
    figures: Joi.object().pattern(Joi.string(), Joi.number().allow(null)).required(),
    dates: Joi.object().pattern(Joi.string(), Joi.string()).required()
}).label('ExecutiveSentence');

export const executive = Joi.object({
    domain: Joi.string().required(),
    period: Joi.object(window).required(),
    previous: Joi.object(window).required(),
    figures: Joi.object().pattern(Joi.string(), Joi.number().allow(null)).required(),
    sentences: Joi.array().items(sentence).required()
}).label('ExecutiveSummary');

export const snapshot = Joi.object({
    id: Joi.string().required(),
    kind: Joi.string().valid('manual', 'scheduled').required(),
    note: Joi.string().allow(null).required(),
    taken_at: timestamp.required(),
    summary: Joi.object().pattern(Joi.string(), postureSummary).required(),
    created_by: Joi.string().allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('Snapshot');

export const snapshotPage = pageOf(snapshot, 'SnapshotPage');

const techniqueState = Joi.object({ coverage_status: coverageStatus.required(), score: Joi.number().integer().allow(null).required() }).label('TechniqueState');

export const snapshotDetail = snapshot.keys({
    techniques: Joi.array().items(Joi.object({
        technique_id: Joi.string().required(),
        name: Joi.string().allow(null).required(),
        domain: Joi.string().required(),
        is_subtechnique: Joi.boolean().required(),
        coverage_status: coverageStatus.required(),
        score: Joi.number().integer().allow(null).required(),
        own_coverage_status: coverageStatus.required(),
        own_score: Joi.number().integer().allow(null).required(),
        needs_review: Joi.boolean().required(),
        latest_validated_at: timestamp.allow(null).required()
    }).label('SnapshotTechnique')).required()
}).label('SnapshotDetail');

const change = Joi.object({
    technique_id: Joi.string().required(),
    name: Joi.string().allow(null).required(),
    is_subtechnique: Joi.boolean().required(),
    from: techniqueState.allow(null).required(),
    to: techniqueState.allow(null).required()
}).label('TechniqueChange');

const changes = Joi.array().items(change).required();
const side = Joi.object({ id: Joi.string().required(), taken_at: timestamp.required() });

export const comparison = Joi.object({
    a: side.required(),
    b: side.required(),
    domain: Joi.string().allow(null).required(),
    counts: Joi.object({ improved: count, regressed: count, unchanged: count, added: count, removed: count }).required(),
    improved: changes,
    regressed: changes,
    unchanged: changes,
    added: changes,
    removed: changes
}).label('SnapshotComparison');

const grouped = (item: Joi.ObjectSchema, label: string) => Joi.object({ ...window, group_by: Joi.string().required(), items: Joi.array().items(item).required() }).label(label);

export const timeToDetect = grouped(Joi.object({
    key: Joi.string().allow('').required(),
    label: Joi.string().required(),
    tests: count,
    mean_seconds: Joi.number().required(),
    median_seconds: Joi.number().required(),
    p90_seconds: Joi.number().required()
}).label('TimeToDetectGroup'), 'TimeToDetect');

export const outcomes = grouped(Joi.object({
    key: Joi.string().allow('').required(),
    label: Joi.string().required(),
    tests: count,
    outcomes: Joi.object().pattern(Joi.string(), count).required()
}).label('OutcomeGroup'), 'OutcomeDistribution');

export const validationRate = grouped(Joi.object({
    key: Joi.string().required(),
    validated: count,
    rejected: count,
    rate: Joi.number().min(0).max(1).allow(null).required()
}).label('ValidationRateGroup'), 'ValidationRate');

export const testsPerWeek = Joi.object({
    ...window,
    items: Joi.array().items(Joi.object({ week: Joi.string().required(), created: count, validated: count, rejected: count }).label('TestsWeek')).required()
}).label('TestsPerWeek');

export const throughput = Joi.object({
    ...window,
    items: Joi.array().items(Joi.object({ week: Joi.string().required(), team: Joi.string().valid('red', 'blue').required(), tests: count, mean_working_seconds: Joi.number().required() }).label('TeamThroughput')).required()
}).label('Throughput');
