import Joi from 'joi';

import { lessonSeverities, lessonStatuses, playbookTypes } from '../models';
import type { LessonCreate, LessonFields, LessonFilters, PlaybookCreate, PlaybookFilters, PlaybookUpdate } from '../services/knowledge';

import { listQuery, pageOf, text, timestamp, uuid } from './common';
import { tag, tags, techniqueId } from './tests';


// Markdown is stored exactly as written (never trimmed, never rendered): at most 200,000 characters
const markdown = Joi.string().max(200_000).allow('');
const type = Joi.string().valid(...playbookTypes);
const severity = Joi.string().valid(...lessonSeverities);
const status = Joi.string().valid(...lessonStatuses);
const version = Joi.number().integer().min(1).max(1_000_000);

const playbookFields = {
    title: text(300).min(1),
    type,
    technique_ids: Joi.array().items(techniqueId).max(200).unique(),
    body: markdown,
    tags
};

export const playbookCreate = Joi.object<PlaybookCreate, true>({
    ...playbookFields,
    title: playbookFields.title.required(),
    type: type.required()
}).label('PlaybookCreate');

export const playbookUpdate = Joi.object<PlaybookUpdate, true>({ ...playbookFields, version }).min(1).label('PlaybookUpdate');

export const playbookRestore = Joi.object({ version }).allow(null).label('PlaybookRestore');

export const playbookVersionParams = Joi.object({ id: uuid.required(), version: version.required() });

export const playbookListQuery = listQuery(['title', 'type', 'created_at', 'updated_at'], {
    technique_id: techniqueId,
    type,
    tag,
    search: Joi.string().trim().min(1).max(200)
}) as Joi.ObjectSchema<PlaybookFilters>;

export const versionListQuery = listQuery(['version']);

const lessonFields = {
    title: text(300).min(1),
    severity,
    status,
    technique_id: techniqueId.allow(null),
    campaign_id: uuid.allow(null),
    test_id: uuid.allow(null),
    body: markdown
};

export const lessonCreate = Joi.object<LessonCreate, true>({
    ...lessonFields,
    title: lessonFields.title.required(),
    severity: severity.required()
}).label('LessonCreate');

export const lessonUpdate = Joi.object<LessonFields, true>(lessonFields).min(1).label('LessonUpdate');

export const lessonListQuery = listQuery(['created_at', 'updated_at', 'severity', 'title', 'status'], {
    severity,
    status,
    technique_id: techniqueId,
    campaign_id: uuid,
    test_id: uuid,
    search: Joi.string().trim().min(1).max(200)
}) as Joi.ObjectSchema<LessonFilters>;


const nullable = Joi.string().allow(null).required();

const content = {
    title: Joi.string().required(),
    type: type.required(),
    technique_ids: Joi.array().items(Joi.string()).required(),
    body: Joi.string().allow('').required(),
    tags: Joi.array().items(Joi.string()).required()
};

export const playbookVersion = Joi.object({
    id: Joi.string().required(),
    playbook_id: Joi.string().required(),
    version: Joi.number().integer().required(),
    ...content,
    restored_from: Joi.number().integer().allow(null).required(),
    author_id: nullable,
    created_at: timestamp
}).label('PlaybookVersion');

export const playbookSummary = Joi.object({
    id: Joi.string().required(),
    ...content,
    version: Joi.number().integer().required(),
    created_by: nullable,
    updated_by: nullable,
    created_at: timestamp,
    updated_at: timestamp
}).label('PlaybookSummary');

export const playbook = playbookSummary.keys({
    versions: Joi.array().items(Joi.object({
        version: Joi.number().integer().required(),
        title: Joi.string().required(),
        author_id: nullable,
        restored_from: Joi.number().integer().allow(null).required(),
        created_at: timestamp
    }).label('PlaybookVersionSummary')).required()
}).label('Playbook');

export const playbookPage = pageOf(playbookSummary, 'PlaybookPage');

export const playbookVersionPage = pageOf(playbookVersion, 'PlaybookVersionPage');

export const lesson = Joi.object({
    id: Joi.string().required(),
    title: Joi.string().required(),
    severity: severity.required(),
    status: status.required(),
    technique_id: nullable,
    campaign_id: nullable,
    test_id: nullable,
    body: Joi.string().allow('').required(),
    created_by: nullable,
    created_at: timestamp,
    updated_at: timestamp
}).label('Lesson');

export const lessonPage = pageOf(lesson, 'LessonPage');

const counts = (keys: readonly string[]) => Joi.object(Object.fromEntries(keys.map((key) => [key, Joi.number().integer().min(0).required()])));

export const knowledgeStats = Joi.object({
    playbooks_by_type: counts(playbookTypes).required(),
    lessons_by_severity: counts(lessonSeverities).required(),
    techniques_without_playbook: Joi.object({
        total: Joi.number().integer().min(0).required(),
        items: Joi.array().items(Joi.object({ mitre_id: Joi.string().required(), name: Joi.string().required() })).required()
    }).required()
}).label('KnowledgeStats');
