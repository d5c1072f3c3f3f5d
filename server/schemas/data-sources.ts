import Joi from 'joi';

import type { DataSourceCreate, DataSourceUpdate } from '../services/data-sources';

import { listQuery, pageOf, searchText, text } from './common';
import { domain, mitreId, platform } from './techniques';


const score = Joi.number().integer().min(0).max(5);


const fields = {
    name: text(200).min(1),
    description: text(20_000).allow(null, ''),
    domain,
    log_sources: Joi.array().items(Joi.object({ name: text(200).min(1).required(), channel: text(500).allow(null, '') })).max(100),
    technique_ids: Joi.array().items(mitreId).max(2000).unique(),
    collected: Joi.boolean(),
    quality: Joi.object({
        device_completeness: score,
        data_field_completeness: score,
        timeliness: score,
        consistency: score,
        retention: score
    }).min(1),
    notes: text(20_000).allow(null, '')
};

export const dataSourceCreate = Joi.object<DataSourceCreate, true>({ ...fields, name: fields.name.required() });

// An imported component accepts only collected, quality and notes (409 mitre_managed otherwise, in the service)
export const dataSourceUpdate = Joi.object<DataSourceUpdate, true>(fields).min(1);


// Responses
export const dataComponent = Joi.object({
    id: Joi.string().required(),
    mitre_id: Joi.string().allow(null),
    name: Joi.string().required(),
    description: Joi.string().allow(null, ''),
    domains: Joi.array().items(Joi.string()),
    log_sources: Joi.array().items(Joi.object().unknown(true)),
    collected: Joi.boolean().required(),
    quality: Joi.object().unknown(true).required(),
    quality_score: Joi.number().allow(null).required(),
    notes: Joi.string().allow(null, ''),
    is_custom: Joi.boolean().required(),
    technique_count: Joi.number().integer()
}).label('DataComponent');

export const dataComponentDetail = dataComponent.keys({
    data_source: Joi.object().unknown(true).allow(null).required(),
    techniques: Joi.array().items(Joi.object({ mitre_id: Joi.string(), name: Joi.string(), coverage_status: Joi.string() }).unknown(true)).required()
}).label('DataComponentDetail');

export const gapItem = Joi.object({
    mitre_id: Joi.string().required(),
    name: Joi.string().required(),
    is_subtechnique: Joi.boolean().required(),
    coverage_status: Joi.string().required()
}).label('TechniqueGap');


export const dataSourceListQuery = listQuery(['name', 'mitre_id', 'collected', 'assessed_at'], {
    search: searchText,
    collected: Joi.boolean(),
    is_custom: Joi.boolean(),
    domain,
    include_deprecated: Joi.boolean()
});


// Blind spots and opportunities have one fixed order each
export const gapQuery = Joi.object({
    limit: Joi.number().integer().min(1).max(500).default(50),
    offset: Joi.number().integer().min(0).max(10_000_000).default(0),
    domain,
    platform
});


export const opportunity = gapItem.keys({ rank: Joi.number().integer().required(), collected_count: Joi.number().integer().required() });


export const dataComponentPage = pageOf(dataComponent, 'DataComponentPage');

export const blindSpotPage = pageOf(gapItem, 'BlindSpotPage');

export const opportunityPage = pageOf(opportunity, 'OpportunityPage');
