import Joi from 'joi';

import type { TechniqueCreate, TechniqueReview, TechniqueUpdate } from '../services/techniques';

import { text } from './common';


// A MITRE technique or sub-technique id (T1059, T1059.001, ICS T0800) or a custom one under the reserved prefix (X0001)
export const mitreId = Joi.string().pattern(/^(T\d{4}|X\d{4,6})(\.\d{3})?$/).message('must be a technique id such as T1059.001 or X0001');

export const tacticId = Joi.string().pattern(/^TA\d{4}$/).message('must be a tactic id such as TA0002');

export const domain = Joi.string().valid('enterprise-attack', 'mobile-attack', 'ics-attack');

export const platform = Joi.string().trim().min(1).max(64);

export const coverageStatus = Joi.string().valid('untested', 'not_covered', 'partial', 'covered');

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
