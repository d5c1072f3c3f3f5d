import Joi from 'joi';

import type { TechniqueCreate, TechniqueReview, TechniqueUpdate } from '../services/techniques';

import { listQuery, pageOf, searchText, text, timestamp } from './common';


// A MITRE technique or sub-technique id (T1059, T1059.001, ICS T0800) or a custom one under the reserved prefix (X0001)
export const mitreId = Joi.string().pattern(/^(T\d{4}|X\d{4,6})(\.\d{3})?$/).message('must be a technique id such as T1059.001 or X0001');

export const tacticId = Joi.string().pattern(/^TA\d{4}$/).message('must be a tactic id such as TA0002');

export const domain = Joi.string().valid('enterprise-attack', 'mobile-attack', 'ics-attack');

export const platform = Joi.string().trim().min(1).max(64);

export const coverageStatuses = ['untested', 'not_covered', 'partial', 'covered'];
export const coverageStatus = Joi.string().valid(...coverageStatuses);

export const mitreParams = Joi.object({ mitre_id: mitreId.required() });


const fields = {
    name: text(200).min(1),
    description: text(20_000).allow(null, ''),
    domain,
    platforms: Joi.array().items(platform).max(30).unique(),
    tactic_ids: Joi.array().items(tacticId).max(20).unique(),
    parent_id: mitreId.allow(null),
    impact: Joi.number().integer().min(1).max(5).allow(null),
    notes: text(20_000).allow(null, '')
};


export const techniqueCreate = Joi.object<TechniqueCreate, true>({ ...fields, name: fields.name.required() });

export const techniqueUpdate = Joi.object<TechniqueUpdate, true>(fields).min(1);

export const techniqueReview = Joi.object<TechniqueReview, true>({
    needs_review: Joi.boolean().required(),
    reason: text(1000).allow(null, '').when('needs_review', { is: true, then: text(1000).min(1).required() })
});


// Responses (fields not listed are allowed: models carry more than the contract names)
const nullableText = Joi.string().allow(null, '');

export const tacticRef = Joi.object({ id: Joi.string().allow(null).required(), shortname: Joi.string().required(), name: Joi.string().required() }).label('TacticRef');

export const techniqueSummary = Joi.object({
    mitre_id: Joi.string().required(),
    name: Joi.string().required(),
    domain: domain.required(),
    is_subtechnique: Joi.boolean().required(),
    parent_id: Joi.string().allow(null).required(),
    platforms: Joi.array().items(Joi.string()).required(),
    tactics: Joi.array().items(tacticRef).required(),
    coverage_status: coverageStatus.required(),
    score: Joi.number().min(0).max(100).allow(null).required(),
    own_coverage_status: coverageStatus.required(),
    own_score: Joi.number().min(0).max(100).allow(null).required(),
    needs_review: Joi.boolean().required(),
    impact: Joi.number().integer().allow(null).required(),
    is_custom: Joi.boolean().required(),
    revoked: Joi.boolean().required(),
    deprecated: Joi.boolean().required(),
    revoked_by_id: Joi.string().allow(null).required(),
    latest_validated_at: timestamp.allow(null).required(),
    url: nullableText.required()
}).label('TechniqueSummary');

export const technique = techniqueSummary.keys({
    description: nullableText,
    review_reason: nullableText,
    notes: nullableText,
    parent: Joi.object({ mitre_id: Joi.string(), name: Joi.string() }).allow(null).required(),
    revoked_by: Joi.object({ mitre_id: Joi.string(), name: Joi.string() }).allow(null).required(),
    subtechniques: Joi.array().items(techniqueSummary).required(),
    data_components: Joi.array().items(Joi.object({ id: Joi.string(), mitre_id: Joi.string().allow(null), name: Joi.string(), collected: Joi.boolean() })).required(),
    mitigations: Joi.array().items(Joi.object({ mitre_id: Joi.string().allow(null), name: Joi.string(), description: nullableText })).required(),
    threat_actors: Joi.array().items(Joi.object({ id: Joi.string(), mitre_id: Joi.string().allow(null), name: Joi.string(), source: Joi.string() })).required(),
    latest_validated_tests: Joi.array().items(Joi.object({ id: Joi.string(), title: Joi.string(), detection_outcome: Joi.string().allow(null), validated_at: timestamp.allow(null), score: Joi.number().allow(null) }).unknown(true)).required()
}).label('Technique');

export const techniqueD3fend = Joi.object({
    technique_id: Joi.string().required(),
    name: Joi.string().required(),
    total: Joi.number().integer().required(),
    tactics: Joi.array().items(Joi.object({
        tactic: Joi.string().required(),
        countermeasures: Joi.array().items(Joi.object({
            d3fend_id: Joi.string().required(),
            name: Joi.string().required(),
            tactic: Joi.string().required(),
            definition: nullableText,
            parent_id: Joi.string().allow(null),
            technique_ids: Joi.array().items(Joi.string()).required(),
            inferences: Joi.array().items(Joi.object().unknown(true)).required()
        })).required()
    })).required()
}).label('TechniqueD3fend');


export const techniqueListQuery = listQuery(['mitre_id', 'name', 'coverage_status', 'impact', 'modified', 'updated_at'], {
    tactic_id: tacticId,
    platform,
    coverage_status: coverageStatus,
    search: searchText,
    domain,
    needs_review: Joi.boolean(),
    is_custom: Joi.boolean(),
    parent_id: mitreId,
    include_subtechniques: Joi.boolean(),
    include_deprecated: Joi.boolean()
});


export const techniquePage = pageOf(techniqueSummary, 'TechniquePage');
