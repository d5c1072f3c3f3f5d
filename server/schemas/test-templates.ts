import Joi from 'joi';

import type { TemplateCreate, TemplateFields, TemplateFilters } from '../services/test-templates';

import { listQuery, pageOf, searchText, text, uuid } from './common';
import { platform, priority, tag, tags, techniqueId } from './tests';


const fields = {
    name: text(300).min(1),
    description: text(50_000).allow(null, ''),
    objective: text(10_000).allow(null, ''),
    procedure: text(50_000).allow(null, ''),
    expected_outcome: text(10_000).allow(null, ''),
    expected_detection: text(10_000).allow(null, ''),
    technique_ids: Joi.array().items(techniqueId).min(1).max(100).unique(),
    platforms: Joi.array().items(platform).max(20).unique(),
    tags,
    priority,
    tool: text(200).allow(null, ''),
    command: text(50_000).allow(null, ''),
    cleanup_command: text(50_000).allow(null, '')
};


export const templateCreate = Joi.object<TemplateCreate, true>({
    ...fields,
    name: fields.name.when('source_test_id', { is: Joi.exist(), otherwise: Joi.required() }),
    technique_ids: fields.technique_ids.when('source_test_id', { is: Joi.exist(), otherwise: Joi.required() }),
    source_test_id: uuid
});

export const templateUpdate = Joi.object<TemplateFields, true>(fields).min(1);

export const templateListQuery = listQuery(['created_at', 'updated_at', 'name'], {
    technique_id: techniqueId,
    platform,
    source: Joi.string().valid('manual', 'test', 'atomic'),
    tag,
    search: searchText
}) as Joi.ObjectSchema<TemplateFilters>;

export const template = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    technique_ids: Joi.array().items(Joi.string()).required(),
    source: Joi.string().required()
}).unknown(true).label('TestTemplate');


export const templatePage = pageOf(template, 'TestTemplatePage');
