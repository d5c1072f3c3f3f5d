import Joi from 'joi';

import type { ControlFilters, UnmatchedFilters } from '../services/compliance';
import type { RiskFilters } from '../services/risk';
import type { ScoreConfigUpdate, ScoreFilters } from '../services/scores';

import { listQuery, pageOf, timestamp } from './common';
import { coverageStatus, domain, mitreId } from './techniques';


// Scores, risk and compliance (issue 12; docs/posture.md, docs/compliance.md)

const shortname = Joi.string().pattern(/^[a-z][a-z-]{1,63}$/).message('must be a tactic shortname such as credential-access');
const band = Joi.string().valid('critical', 'high', 'medium', 'low');
const outcome = Joi.string().valid('prevented', 'alerted', 'logged', 'not_detected');
const weight = Joi.number().integer().min(0).max(100);
const date = Joi.date().iso().allow(null).required();

export const techniqueParams = Joi.object({ technique_id: mitreId.required() });


// Scores

export const scoreConfigUpdate = Joi.object<ScoreConfigUpdate, true>({
    weights: Joi.object({ prevented: weight, alerted: weight, logged: weight, not_detected: weight }).min(1),
    half_life_days: Joi.number().integer().min(1).max(3650),
    likelihood_saturation: Joi.number().integer().min(1).max(1000)
}).min(1);

const weights = Joi.object({ prevented: weight.required(), alerted: weight.required(), logged: weight.required(), not_detected: weight.required() }).label('OutcomeWeights');

export const scoreConfig = Joi.object({
    weights: weights.required(),
    half_life_days: Joi.number().integer().required(),
    likelihood_saturation: Joi.number().integer().required(),
    tactic_impacts: Joi.object().pattern(Joi.string(), Joi.number().integer().min(1).max(5)).required().description('Default impact of a technique by its tactics (the highest counts)'),
    detection_confidence: Joi.string().required().description('Where the detection-confidence factor comes from'),
    recomputed: Joi.object({ profiles: Joi.number().integer().required(), computed_at: timestamp.required() }).label('Recomputed')
}).label('ScoreConfig');

export const domainQuery = Joi.object({ domain: domain.default('enterprise-attack') });

const aggregate = {
    techniques: Joi.number().integer().required(),
    tested: Joi.number().integer().required(),
    score: Joi.number().min(0).max(100).allow(null).required()
};

export const tacticScore = Joi.object({
    tactic_id: Joi.string().allow(null).required(),
    name: Joi.string().required(),
    shortname: Joi.string().required(),
    domain: Joi.string().required(),
    matrix_order: Joi.number().integer().allow(null).required(),
    ...aggregate
}).label('TacticScore');

export const scoreOverview = Joi.object({
    domain: Joi.string().required(),
    overall: Joi.object(aggregate).label('OverallScore').required(),
    tactics: Joi.array().items(tacticScore).required(),
    computed_at: date
}).label('ScoreOverview');

export const tacticScoreQuery = listQuery(['matrix_order', 'score', 'name'], { domain: domain.default('enterprise-attack') });

export const tacticScorePage = pageOf(tacticScore, 'TacticScorePage');

const scoreFields = {
    technique_id: Joi.string().required(),
    name: Joi.string().required(),
    domain: Joi.string().required(),
    is_subtechnique: Joi.boolean().required(),
    parent_id: Joi.string().allow(null).required(),
    tactics: Joi.array().items(Joi.string()).required(),
    coverage_status: coverageStatus.required(),
    outcome: outcome.allow(null).required(),
    validated_at: date,
    decay: Joi.number().min(0).max(1).allow(null).required().description('0.5 ^ (age in days / half-life)'),
    confidence: Joi.number().min(0).max(1).required().description('Detection confidence factor (0-1): the technique\'s detection confidence when it has detection validations, else 1'),
    own_score: Joi.number().integer().min(0).max(100).allow(null).required(),
    score: Joi.number().integer().min(0).max(100).allow(null).required().description('own_score rolled up over the sub-techniques'),
    computed_at: timestamp.required()
};

export const techniqueScore = Joi.object(scoreFields).label('TechniqueScore');

export const techniqueScoreDetail = techniqueScore.keys({
    weight: Joi.number().integer().allow(null).required(),
    half_life_days: Joi.number().integer().required(),
    subtechniques: Joi.array().items(techniqueScore).required()
}).label('TechniqueScoreDetail');

const scoreFilters = {
    domain,
    tactic: shortname,
    coverage_status: coverageStatus,
    subtechniques: Joi.boolean().default(true).description('false: top-level techniques only')
};

export const techniqueScoreQuery = listQuery(['score', 'own_score', 'technique_id', 'validated_at'], scoreFilters) as Joi.ObjectSchema<ScoreFilters>;

export const techniqueScorePage = pageOf(techniqueScore, 'TechniqueScorePage');


// Risk

export const riskProfile = Joi.object({
    ...scoreFields,
    actor_count: Joi.number().integer().min(0).required(),
    likelihood: Joi.number().min(1).max(5).required(),
    impact: Joi.number().integer().min(1).max(5).required(),
    impact_source: Joi.string().required().description('technique (set by an admin), tactic:<shortname> (its default) or default (3)'),
    risk: Joi.number().min(0).max(25).required(),
    band: band.required(),
    reason: Joi.string().required()
}).label('RiskProfile');

export const riskProfilePage = pageOf(riskProfile, 'RiskProfilePage');

export const riskProfileQuery = listQuery(['risk', 'score', 'likelihood', 'impact', 'technique_id'], { ...scoreFilters, band }) as Joi.ObjectSchema<RiskFilters>;

export const riskRecommendationQuery = listQuery(['risk'], { domain, tactic: shortname, subtechniques: scoreFilters.subtechniques }) as Joi.ObjectSchema<RiskFilters>;

export const riskTopQuery = Joi.object({
    limit: Joi.number().integer().min(1).max(100).default(10),
    domain,
    subtechniques: scoreFilters.subtechniques
});

export const riskAggregateQuery = Joi.object({
    domain,
    subtechniques: Joi.boolean().default(false).description('true: count sub-techniques beside their parents')
});

export const riskMatrix = Joi.object({
    domain: Joi.string().allow(null).required(),
    coverage_statuses: Joi.array().items(Joi.string()).required(),
    rows: Joi.array().items(Joi.object({
        impact: Joi.number().integer().required(),
        cells: Joi.array().items(Joi.object({ coverage_status: Joi.string().required(), techniques: Joi.number().integer().required(), risk: Joi.number().required() }).label('RiskMatrixCell')).required()
    }).label('RiskMatrixRow')).required()
}).label('RiskMatrix');

const counts = (keys: string[], label: string) => Joi.object(Object.fromEntries(keys.map((key) => [key, Joi.number().integer().required()]))).label(label);

export const riskSummary = Joi.object({
    domain: Joi.string().allow(null).required(),
    techniques: Joi.number().integer().required(),
    total_risk: Joi.number().required(),
    mean_risk: Joi.number().required(),
    max_risk: Joi.number().required(),
    risk_reduction: Joi.number().allow(null).required().description('1 - total risk / the total if no technique were validated'),
    by_band: counts(['critical', 'high', 'medium', 'low'], 'RiskByBand').required(),
    by_coverage_status: counts(['untested', 'not_covered', 'partial', 'covered'], 'RiskByCoverage').required(),
    uncovered_high_risk: Joi.number().integer().required(),
    computed_at: date
}).label('RiskSummary');

export const riskImpactUpdate = Joi.object({ impact: Joi.number().integer().min(1).max(5).allow(null).required().description('null: back to the default of its tactics') });

export const jobAccepted = Joi.object({ job_id: Joi.string().required(), status: Joi.string().valid('queued').required() }).label('RiskComputeAccepted');


// Compliance

const controlStatus = Joi.string().valid('covered', 'partial', 'not_covered', 'untested', 'no_techniques');

const frameworkFields = {
    id: Joi.string().required(),
    key: Joi.string().required(),
    name: Joi.string().required(),
    version: Joi.string().allow('').required(),
    attack_version: Joi.string().allow(null).required(),
    attack_domain: Joi.string().allow(null).required(),
    source_file: Joi.string().required(),
    provenance: Joi.string().required(),
    licence: Joi.string().required(),
    mapping_updated: Joi.string().allow(null).required(),
    imported_at: timestamp.required(),
    imported_by: Joi.string().allow(null).required(),
    created_at: timestamp.required(),
    updated_at: timestamp.required(),
    controls: Joi.number().integer().required(),
    mappings: counts(['total', 'exact', 'revoked', 'unmatched'], 'ComplianceMappingCounts').required(),
    coverage: Joi.object({
        controls_by_status: counts(['covered', 'partial', 'not_covered', 'untested', 'no_techniques'], 'ControlsByStatus').required(),
        controls_percent_covered: Joi.number().allow(null).required(),
        techniques: Joi.number().integer().required(),
        techniques_covered: Joi.number().integer().required(),
        techniques_percent_covered: Joi.number().allow(null).required()
    }).label('FrameworkCoverage').required()
};

export const framework = Joi.object(frameworkFields).label('ComplianceFramework');

export const frameworkDetail = Joi.object({
    ...frameworkFields,
    families: Joi.array().items(Joi.object({ family: Joi.string().required(), family_name: Joi.string().allow(null).required(), controls: Joi.number().integer().required(), covered: Joi.number().integer().required() }).label('ControlFamily')).required()
}).label('ComplianceFrameworkDetail');

export const frameworkPage = pageOf(framework, 'ComplianceFrameworkPage');

export const frameworkListQuery = listQuery(['key', 'name', 'imported_at']);

const uncovered = Joi.object({ technique_id: Joi.string().required(), coverage_status: coverageStatus.required() }).label('UncoveredTechnique');

export const control = Joi.object({
    id: Joi.string().required(),
    framework_id: Joi.string().required(),
    control_id: Joi.string().required(),
    family: Joi.string().required(),
    family_name: Joi.string().allow(null).required(),
    name: Joi.string().required(),
    mappable: Joi.boolean().required(),
    status: controlStatus.required(),
    techniques: Joi.number().integer().required(),
    covered: Joi.number().integer().required(),
    coverage_percent: Joi.number().allow(null).required(),
    uncovered_techniques: Joi.array().items(uncovered).required()
}).label('ComplianceControl');

export const controlDetail = control.keys({
    description: Joi.string().allow(null).required(),
    framework: Joi.object({ id: Joi.string().required(), key: Joi.string().required(), name: Joi.string().required(), version: Joi.string().allow('').required() }).label('FrameworkRef').required(),
    mappings: Joi.array().items(Joi.object({
        attack_id: Joi.string().required(),
        attack_name: Joi.string().allow(null).required(),
        mapping_type: Joi.string().required(),
        comments: Joi.string().allow(null).required(),
        technique_id: Joi.string().required(),
        technique_name: Joi.string().required(),
        coverage_status: coverageStatus.required(),
        score: Joi.number().integer().allow(null).required(),
        match: Joi.string().valid('exact', 'revoked').required()
    }).label('ControlMapping')).required(),
    unmatched: Joi.array().items(Joi.object({ attack_id: Joi.string().required(), attack_name: Joi.string().allow(null).required(), reason: Joi.string().required() }).label('ControlUnmatched')).required()
}).label('ComplianceControlDetail');

export const controlPage = pageOf(control, 'ComplianceControlPage');

export const controlListQuery = listQuery(['control_id', 'family', 'coverage_percent', 'techniques'], {
    family: Joi.string().pattern(/^[A-Za-z&]{1,10}$/).message('must be a control family such as AC'),
    status: controlStatus
}) as Joi.ObjectSchema<ControlFilters>;

export const unmatchedReason = Joi.string().valid('unknown', 'deprecated', 'revoked');

export const unmatchedListQuery = listQuery(['attack_id', 'control_id'], { reason: unmatchedReason }) as Joi.ObjectSchema<UnmatchedFilters>;

export const unmatchedPage = pageOf(Joi.object({
    attack_id: Joi.string().required(),
    attack_name: Joi.string().allow(null).required(),
    reason: unmatchedReason.required(),
    control_uuid: Joi.string().required(),
    control_id: Joi.string().required(),
    control_name: Joi.string().required()
}).label('UnmatchedMapping'), 'UnmatchedMappingPage');

export const complianceImport = Joi.object({
    frameworks: Joi.array().items(Joi.object({
        key: Joi.string().required(),
        framework_id: Joi.string().required(),
        controls: Joi.number().integer().required(),
        mappings: Joi.number().integer().required(),
        exact: Joi.number().integer().required(),
        revoked: Joi.number().integer().required(),
        unmatched: Joi.number().integer().required()
    }).label('ComplianceImportFramework')).required()
}).label('ComplianceImport');
export { idParams } from './common';
