import Joi from 'joi';

import { pageOf, timestamp } from './common';


export const notification = Joi.object({
    id: Joi.string().required(),
    user_id: Joi.string().required(),
    type: Joi.string().required(),
    title: Joi.string().required(),
    body: Joi.string().allow(null),
    entity_type: Joi.string().allow(null),
    entity_id: Joi.string().allow(null),
    read_at: timestamp.allow(null),
    created_at: timestamp,
    updated_at: timestamp
}).label('Notification');

export const notificationPage = pageOf(notification, 'NotificationPage').keys({ unread_count: Joi.number().integer().min(0).required() }).label('NotificationPage');

export const readAll = Joi.object({ updated: Joi.number().integer().min(0).required() }).label('NotificationsRead');
