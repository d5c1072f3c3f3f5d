import Joi from 'joi';

import { listQuery, pageOf, text, timestamp } from './common';


export const apiKeyScope = Joi.string().valid('read', 'write', 'admin');

export const apiKey = Joi.object({
    id: Joi.string().required(),
    user_id: Joi.string().required(),
    name: Joi.string().required(),
    scope: apiKeyScope.required(),
    prefix: Joi.string().required(),
    expires_at: timestamp.required(),
    last_used_at: timestamp.allow(null),
    revoked_at: timestamp.allow(null),
    created_by: Joi.string().allow(null),
    created_at: timestamp,
    updated_at: timestamp
}).label('ApiKey');

// Answered once, at creation: the key itself (only its hash is kept)
export const createdApiKey = apiKey.keys({ key: Joi.string().required() }).label('CreatedApiKey');

export const apiKeyPage = pageOf(apiKey, 'ApiKeyPage');


export const apiKeyListQuery = listQuery(['created_at', 'name', 'last_used_at'], { include_revoked: Joi.boolean() });


export const apiKeyCreate = Joi.object({
    name: text(100).min(1).required(),
    scope: apiKeyScope.required(),
    expires_at: Joi.date().iso().greater('now')
});
