import Joi from 'joi';

import type { ThreatActorCreate, ThreatActorLink, ThreatActorUpdate } from '../services/threat-actors';

import { listQuery, pageOf, searchText, text, uuid } from './common';
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


// Responses
export const threatActor = Joi.object({
    id: Joi.string().required(),
    stix_id: Joi.string().allow(null),
    mitre_id: Joi.string().allow(null),
    source: Joi.string().valid('mitre', 'custom', 'misp', 'osint').required(),
    domains: Joi.array().items(Joi.string()),
    name: Joi.string().required(),
    aliases: Joi.array().items(Joi.string()).required(),
    description: Joi.string().allow(null, ''),
    url: Joi.string().allow(null),
    references: Joi.array().items(Joi.object().unknown(true)),
    country: Joi.string().allow(null),
    motivations: Joi.array().items(Joi.string()),
    tracked: Joi.boolean().required(),
    revoked: Joi.boolean(),
    deprecated: Joi.boolean(),
    technique_count: Joi.number().integer()
}).label('ThreatActor');

export const threatActorDetail = threatActor.keys({
    techniques: Joi.array().items(Joi.object({ mitre_id: Joi.string(), name: Joi.string(), source: Joi.string() }).unknown(true)).required(),
    software: Joi.array().items(Joi.object().unknown(true)).required(),
    campaigns: Joi.array().items(Joi.object().unknown(true)).required()
}).label('ThreatActorDetail');

export const threatActorTechnique = Joi.object({
    threat_actor_id: Joi.string().required(),
    technique_id: Joi.string().required(),
    source: Joi.string().required(),
    description: Joi.string().allow(null, '')
}).label('ThreatActorTechnique');


export const threatActorListQuery = listQuery(['name', 'mitre_id', 'created_at', 'updated_at'], {
    search: searchText,
    technique_id: mitreId,
    source: Joi.string().valid('mitre', 'custom', 'misp', 'osint'),
    tracked: Joi.boolean(),
    include_deprecated: Joi.boolean()
});


export const threatActorPage = pageOf(threatActor, 'ThreatActorPage');
