import Joi from 'joi';

import { listQuery, pageOf, timestamp, uuid } from './common';


const dependency = Joi.object({
    status: Joi.string().valid('ok', 'down', 'not_configured').required(),
    latency_ms: Joi.number().integer().min(0)
}).label('DependencyStatus');

export const health = Joi.object({
    status: Joi.string().valid('ok', 'degraded').required(),
    version: Joi.string().required(),
    time: timestamp.required(),
    dependencies: Joi.object({
        database: dependency.required(),
        redis: dependency.required(),
        object_storage: dependency.required(),
        worker: Joi.object({
            status: Joi.string().valid('ok', 'stale', 'down').required(),
            last_heartbeat_at: timestamp.allow(null).required()
        }).required()
    }).required()
}).label('Health');


export const scheduler = Joi.object({
    items: Joi.array().items(Joi.object({
        id: Joi.string().required(),
        name: Joi.string().required(),
        state: Joi.string().required(),
        schedule: Joi.string().allow(null).required(),
        last_run_at: timestamp.allow(null).required(),
        last_finished_at: timestamp.allow(null).required(),
        next_run_at: timestamp.allow(null).required(),
        failed_at: timestamp.allow(null).required(),
        fail_reason: Joi.string().allow(null).required(),
        fail_count: Joi.number().integer().min(0).required(),
        progress: Joi.number().allow(null).required()
    }).label('ScheduledJob')).required(),
    workers: Joi.array().items(Joi.object({
        worker_id: Joi.string().required(),
        hostname: Joi.string().required(),
        pid: Joi.number().integer().required(),
        started_at: timestamp.required(),
        beat_at: timestamp.required(),
        created_at: timestamp,
        updated_at: timestamp
    }).label('WorkerHeartbeat')).required()
}).label('Scheduler');


export const auditLog = Joi.object({
    id: Joi.string().required(),
    actor_id: Joi.string().allow(null),
    actor_role: Joi.string().allow(null),
    action: Joi.string().required(),
    entity_type: Joi.string().allow(null),
    entity_id: Joi.string().allow(null),
    outcome: Joi.string().valid('success', 'failure', 'denied').required(),
    ip: Joi.string().allow(null),
    user_agent: Joi.string().allow(null),
    request_id: Joi.string().allow(null),
    // What the action recorded: its shape depends on the action
    details: Joi.object().unknown(true),
    created_at: timestamp,
    updated_at: timestamp
}).label('AuditLog');

export const auditLogPage = pageOf(auditLog, 'AuditLogPage');


export const auditLogQuery = listQuery(['created_at', 'action'], {
    actor_id: uuid,
    action: Joi.string().max(100),
    entity_type: Joi.string().max(64),
    entity_id: Joi.string().max(128),
    outcome: Joi.string().valid('success', 'failure', 'denied'),
    from: timestamp,
    to: timestamp
});
