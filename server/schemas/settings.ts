import Joi from 'joi';

import { listQuery, pageOf, timestamp, uuid } from './common';


export const settingParams = Joi.object({ key: Joi.string().max(64).pattern(/^[a-z][a-z0-9_.]*$/).required() });

// The value's own schema is the key's (server/settings.ts), applied by the service; secret fields take a string to
// set, null to clear, and keep their value when left out
export const settingUpdate = Joi.object({ value: Joi.any().required() });

export const setting = Joi.object({
    key: Joi.string().required(),
    description: Joi.string().required(),
    value: Joi.any().required().description('The value; each secret field is answered as { set: true|false }, never its value'),
    is_default: Joi.boolean().required(),
    updated_by: uuid.allow(null).required(),
    updated_at: timestamp.allow(null).required()
}).label('Setting');

export const settingsPage = pageOf(setting, 'SettingsPage');

export const emailTest = Joi.object({ to: Joi.string().email({ tlds: false }).max(320) }).allow(null);

export const emailResult = Joi.object({
    to: Joi.string().required(),
    message_id: Joi.string().required(),
    accepted: Joi.array().items(Joi.string()).required(),
    rejected: Joi.array().items(Joi.string()).required()
}).label('EmailResult');


export const settingListQuery = listQuery(['key']);
