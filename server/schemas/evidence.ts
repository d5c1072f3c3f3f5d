import Joi from 'joi';

import { listQuery, pageOf, timestamp } from './common';


export const evidence = Joi.object({
    id: Joi.string().required(),
    test_id: Joi.string().required(),
    team: Joi.string().valid('red', 'blue').required(),
    original_name: Joi.string().required(),
    content_type: Joi.string().required(),
    size: Joi.number().integer().min(1).required(),
    sha256: Joi.string().hex().length(64).required(),
    description: Joi.string().allow(null),
    uploaded_by: Joi.string().allow(null),
    created_at: timestamp,
    updated_at: timestamp
}).label('Evidence');


// The upload form's fields, which the service validates itself once the route has streamed the body to it
export const evidenceFields = Joi.object({
    team: Joi.string().valid('red', 'blue').required(),
    description: Joi.string().trim().max(2000).allow('')
});


// The upload form as documentation: the route streams the body to the service, which validates the fields itself
export const evidenceUpload = Joi.object({
    team: Joi.string().valid('red', 'blue').required(),
    description: Joi.string().max(2000).allow(''),
    file: Joi.any().meta({ swaggerType: 'file' }).required().description('The file, last in the form')
}).label('EvidenceUpload');


// The download is a stream in the file's own type, which hapi cannot validate: an OpenAPI response object, whose
// media type plugins/openapi.ts keeps
export const evidenceFile = {
    description: 'The file, as an attachment in its stored type, with its SHA-256 in x-checksum-sha256',
    'x-content': { '*/*': { schema: { type: 'string', format: 'binary' } } }
};


export const evidenceListQuery = listQuery(['created_at', 'original_name', 'size', 'team']);


export const evidencePage = pageOf(evidence, 'EvidencePage');
