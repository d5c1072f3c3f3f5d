import Joi from 'joi';

import type { DataSourceAssessment } from '../services/data-sources';

import { text } from './common';


const score = Joi.number().integer().min(0).max(5);


export const assessment = Joi.object<DataSourceAssessment, true>({
    collected: Joi.boolean(),
    quality: Joi.object({
        device_completeness: score,
        data_field_completeness: score,
        timeliness: score,
        consistency: score,
        retention: score
    }).min(1),
    notes: text(20_000).allow(null, '')
}).min(1);
