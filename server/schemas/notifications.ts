import Joi from 'joi';

import { listQuery, pageOf, timestamp } from './common';


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


export const notificationListQuery = listQuery(['created_at'], { unread: Joi.boolean(), type: Joi.string().max(64) });


export const readAllUpdate = Joi.object({ read: Joi.boolean().valid(true).required() });


export const readUpdate = Joi.object({ read: Joi.boolean().required() });
