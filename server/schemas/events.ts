import Joi from 'joi';

import { listQuery, pageOf } from './common';


const consumerName = Joi.string().max(100);

export const failedDeliveryQuery = listQuery(['updated_at', 'created_at'], { consumer: consumerName, event_type: Joi.string().max(64) });


export const eventDelivery = Joi.object({
    id: Joi.string().required(),
    consumer: consumerName.required(),
    event_id: Joi.string().required(),
    status: Joi.string().valid('pending', 'failed', 'processed').required(),
    attempts: Joi.number().integer().min(0).required(),
    next_attempt_at: Joi.date().allow(null).required(),
    last_error: Joi.string().allow(null).required(),
    created_at: Joi.date().required(),
    updated_at: Joi.date().required()
}).label('EventDelivery');


// A parked delivery with the event it failed on
export const failedDelivery = eventDelivery.keys({
    event_type: Joi.string().required(),
    entity_type: Joi.string().allow(null).required(),
    entity_id: Joi.string().allow(null).required(),
    payload: Joi.object().unknown(true).required(),
    event_created_at: Joi.date().required()
}).label('FailedDelivery');

export const failedDeliveryPage = pageOf(failedDelivery, 'FailedDeliveryPage');


export const consumerStatus = Joi.object({
    name: consumerName.required(),
    lag_seconds: Joi.number().min(0).required(),
    pending: Joi.number().integer().min(0).required(),
    failed: Joi.number().integer().min(0).required(),
    updated_at: Joi.date().required()
}).label('ConsumerStatus');
