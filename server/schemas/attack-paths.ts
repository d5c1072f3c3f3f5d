import Joi from 'joi';

import { executionStates, stepOutcomes } from '../models';
import type { AttackPathCreate, AttackPathFilters, AttackPathUpdate, ExecutionFilters, StepCreate, StepRecord, StepUpdate } from '../services/attack-paths';

import { listQuery, pageOf, text, timestamp, uuid } from './common';
import { tags, techniqueId } from './tests';


const nullableText = (max: number) => text(max).allow(null, '');

const stepFields = {
    technique_id: techniqueId,
    notes: nullableText(10_000),
    template_id: uuid.allow(null)
};

export const stepCreate = Joi.object<StepCreate, true>({
    ...stepFields,
    technique_id: techniqueId.required(),
    position: Joi.number().integer().min(1).max(1000)
}).label('AttackPathStepCreate');

export const stepUpdate = Joi.object<StepUpdate, true>({
    ...stepFields,
    position: Joi.number().integer().min(1).max(1000)
}).min(1).label('AttackPathStepUpdate');

export const attackPathCreate = Joi.object<AttackPathCreate, true>({
    name: text(300).min(1).required(),
    description: nullableText(10_000),
    tags,
    steps: Joi.array().items(stepCreate.fork(['position'], (schema) => schema.forbidden())).max(200)
}).label('AttackPathCreate');

export const attackPathUpdate = Joi.object<AttackPathUpdate, true>({
    name: text(300).min(1),
    description: nullableText(10_000),
    tags
}).min(1).label('AttackPathUpdate');

export const attackPathListQuery = listQuery(['name', 'created_at', 'updated_at'], {
    technique_id: techniqueId,
    tag: Joi.string().trim().min(1).max(64),
    search: Joi.string().trim().min(1).max(200)
}) as Joi.ObjectSchema<AttackPathFilters>;

export const stepParams = Joi.object({ id: uuid.required(), sid: uuid.required() });

export const executionCreate = Joi.object({ notes: nullableText(10_000) }).allow(null).label('ExecutionCreate');

export const executionStart = Joi.object({}).allow(null).label('ExecutionStart');

export const stepRecord = Joi.object<StepRecord, true>({
    outcome: Joi.string().valid(...stepOutcomes).required(),
    notes: nullableText(10_000),
    executed_at: timestamp.max('now').allow(null),
    test_id: uuid.allow(null)
}).label('ExecutionStepRecord');

export const executionComplete = Joi.object({ notes: nullableText(10_000) }).allow(null).label('ExecutionComplete');

export const executionAbort = Joi.object({ reason: nullableText(2000) }).allow(null).label('ExecutionAbort');

export const executionListQuery = listQuery(['created_at', 'started_at', 'state'], {
    state: Joi.string().valid(...executionStates)
}) as Joi.ObjectSchema<ExecutionFilters>;


const nullable = Joi.string().allow(null).required();
const nullableDate = timestamp.allow(null).required();

export const attackPathStep = Joi.object({
    id: Joi.string().required(),
    position: Joi.number().integer().required(),
    technique_id: Joi.string().required(),
    technique_name: Joi.string().required(),
    notes: nullable,
    template_id: nullable,
    created_at: timestamp,
    updated_at: timestamp
}).label('AttackPathStep');

export const attackPathSummary = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    description: nullable,
    tags: Joi.array().items(Joi.string()).required(),
    step_count: Joi.number().integer().required(),
    execution_count: Joi.number().integer().required(),
    created_by: nullable,
    created_at: timestamp,
    updated_at: timestamp
}).label('AttackPathSummary');

export const attackPath = attackPathSummary.keys({
    steps: Joi.array().items(attackPathStep).required()
}).label('AttackPath');

export const attackPathPage = pageOf(attackPathSummary, 'AttackPathPage');

// The test that proved a step, as far as the reader may see it (null when it is hidden from them)
export const provingTest = Joi.object({
    id: Joi.string().required(),
    title: Joi.string().required(),
    state: Joi.string().required(),
    technique_id: Joi.string().required(),
    detection_outcome: nullable
}).label('ProvingTest');

export const executionStep = Joi.object({
    id: Joi.string().required(),
    path_step_id: nullable,
    position: Joi.number().integer().required(),
    technique_id: Joi.string().required(),
    step_notes: nullable,
    template_id: nullable,
    outcome: Joi.string().valid(...stepOutcomes).allow(null).required(),
    notes: nullable,
    executed_at: nullableDate,
    test_id: nullable,
    test: provingTest.allow(null).required(),
    recorded_by: nullable,
    recorded_at: nullableDate
}).label('ExecutionStep');

export const executionSummary = Joi.object({
    id: Joi.string().required(),
    path_id: nullable,
    path_name: Joi.string().required(),
    state: Joi.string().valid(...executionStates).required(),
    notes: nullable,
    started_at: nullableDate,
    started_by: nullable,
    completed_at: nullableDate,
    aborted_at: nullableDate,
    abort_reason: nullable,
    created_by: nullable,
    created_at: timestamp,
    updated_at: timestamp
}).label('ExecutionSummary');

export const execution = executionSummary.keys({
    steps: Joi.array().items(executionStep).required()
}).label('Execution');

export const executionPage = pageOf(executionSummary, 'ExecutionPage');
