import Joi from 'joi';

import type { ThreatActorCreate, ThreatActorLink, ThreatActorUpdate } from '../services/threat-actors';

import { text, uuid } from './common';
import { mitreId } from './techniques';


export const actorTechniqueParams = Joi.object({ id: uuid.required(), mitre_id: mitreId.required() });


const fields = {
    name: text(200).min(1),
    aliases: Joi.array().items(text(200).min(1)).max(100).unique(),
    description: text(20_000).allow(null, ''),
    country: Joi.string().pattern(/^[A-Z]{2}$/).allow(null).message('country must be an ISO 3166-1 alpha-2 code'),
    motivations: Joi.array().items(text(100).min(1)).max(20).unique(),
    tracked: Joi.boolean(),
    references: Joi.array().max(100).items(Joi.object({
        source_name: text(200).min(1).required(),
        external_id: text(100).allow(null),
        url: Joi.string().uri({ scheme: ['http', 'https'] }).max(2000).allow(null),
        description: text(2000).allow(null)
    }))
};


export const threatActorCreate = Joi.object<ThreatActorCreate, true>({ ...fields, name: fields.name.required() });

export const threatActorUpdate = Joi.object<ThreatActorUpdate, true>(fields).min(1);

export const threatActorLink = Joi.object<ThreatActorLink, true>({ description: text(5000).allow(null, '') }).allow(null);
