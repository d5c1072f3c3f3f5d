import Joi from 'joi';

import type { Preferences } from '../models';
import { roles } from '../policy';
import { notificationTypes } from '../services/notifications';
import { maxPasswordLength } from '../services/passwords';
import { userSortFields, type UserCreate, type UserUpdate } from '../services/users';

import { listQuery, pageOf, searchText, text, timestamp } from './common';


export const role = Joi.string().valid(...roles);

export const username = Joi.string().pattern(/^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$/).message('username must be 3-64 letters, digits or . _ @ -');

export const email = Joi.string().email({ tlds: false }).max(254);

// Only the length cap here: the policy itself (length, common passwords, username) lives in the service
export const password = Joi.string().min(1).max(maxPasswordLength * 4);


export const userCreate = Joi.object<UserCreate, true>({
    username: username.required(),
    password: password.required(),
    role: role.required(),
    email: email.allow(null),
    display_name: text(200).allow(null, '')
});


export const userUpdate = Joi.object<UserUpdate, true>({
    role,
    is_active: Joi.boolean(),
    display_name: text(200).allow(null, ''),
    email: email.allow(null),
    must_change_password: Joi.boolean()
}).min(1);


export const preferences = Joi.object<Preferences, true>({
    theme: Joi.string().valid('light', 'dark', 'system'),
    language: Joi.string().pattern(/^[a-z]{2}(-[A-Z]{2})?$/),
    timezone: Joi.string().max(64).pattern(/^[A-Za-z_]+(\/[A-Za-z0-9_+-]+){0,2}$/),
    page_size: Joi.number().integer().min(10).max(500),
    notifications: Joi.object({
        in_app: Joi.boolean(),
        email: Joi.boolean(),
        // Per event type, e.g. { "test.review": { "in_app": false } }; what is not said is on
        events: Joi.object().pattern(Joi.string().valid(...notificationTypes), Joi.object({ in_app: Joi.boolean(), email: Joi.boolean() }).min(1))
    })
}).min(1);


export const user = Joi.object({
    id: Joi.string().required(),
    username: Joi.string().required(),
    email: Joi.string().allow(null),
    display_name: Joi.string().allow(null),
    role: role.required(),
    is_active: Joi.boolean().required(),
    must_change_password: Joi.boolean().required(),
    auth_provider: Joi.string().required(),
    preferences: Joi.object().unknown(true),
    last_login_at: timestamp.allow(null),
    created_by: Joi.string().allow(null),
    created_at: timestamp,
    updated_at: timestamp
}).label('User');


// A login or a password change: the token (also set as the aegis_token cookie) and whom it stands for
export const session = Joi.object({
    access_token: Joi.string().required(),
    token_type: Joi.string().valid('bearer').required(),
    expires_at: timestamp.required(),
    user: user.required()
}).label('Session');


export const login = Joi.object({
    username: Joi.string().min(1).max(128).required(),
    password: Joi.string().min(1).max(1024).required()
});


export const passwordChange = Joi.object({
    current_password: password.required(),
    new_password: password.required()
});


export const userListQuery = listQuery(userSortFields, {
    role,
    is_active: Joi.boolean(),
    search: searchText
});


export const userPage = pageOf(user, 'UserPage');
