import Joi from 'joi';

import type { WorklogCreate, WorklogFilters, WorklogUpdate } from '../services/worklogs';

import { listQuery, pageOf, text, timestamp, uuid } from './common';


export const day = Joi.string().pattern(/^\d{4}-\d{2}-\d{2}$/).message('must be a date (YYYY-MM-DD)');

export const worklogCreate = Joi.object<WorklogCreate, true>({
    test_id: uuid,
    campaign_id: uuid,
    minutes: Joi.number().integer().min(1).max(1440).required(),
    date: day.required(),
    note: text(2000).allow(null, '')
}).or('test_id', 'campaign_id');

export const worklogUpdate = Joi.object<WorklogUpdate, true>({
    minutes: Joi.number().integer().min(1).max(1440),
    date: day,
    note: text(2000).allow(null, '')
}).min(1);

const filters = {
    user_id: uuid,
    test_id: uuid,
    campaign_id: uuid,
    date_from: day,
    date_to: day
};

export const worklogListQuery = listQuery(['date', 'created_at', 'minutes'], filters) as Joi.ObjectSchema<WorklogFilters>;

export const worklogSummaryQuery = Joi.object({ ...filters, group_by: Joi.string().valid('test', 'user', 'campaign').required() });

export const worklog = Joi.object({
    id: Joi.string().required(),
    user_id: Joi.string().required(),
    test_id: Joi.string().allow(null),
    campaign_id: Joi.string().allow(null),
    minutes: Joi.number().integer().required(),
    date: Joi.string().required(),
    note: Joi.string().allow(null),
    created_at: timestamp,
    updated_at: timestamp
}).label('Worklog');


export const worklogSummary = Joi.object({
    group_by: Joi.string().required(),
    total_minutes: Joi.number().integer().required(),
    items: Joi.array().items(Joi.object({ key: Joi.string().required(), minutes: Joi.number().integer().required(), entries: Joi.number().integer().required() }))
}).label('WorklogSummary');


export const worklogPage = pageOf(worklog, 'WorklogPage');
