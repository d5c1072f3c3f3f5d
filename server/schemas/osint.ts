import Joi from 'joi';

import { osintAuthTypes, osintFeedKinds } from '../models';
import type { OsintFeedCreate, OsintFeedFilters, OsintFeedUpdate, OsintImportFilters, PrevalenceFilters } from '../services/osint';

import { listQuery, pageOf, text, timestamp, uuid } from './common';
import { techniqueId } from './tests';


const fields = {
    name: text(200).min(1),
    kind: Joi.string().valid(...osintFeedKinds).description('misp_galaxy (a MISP galaxy of threat actors), stix_bundle (a STIX 2.1 bundle), taxii_collection (a TAXII 2.1 collection)'),
    url: Joi.string().trim().max(2000).uri({ scheme: ['http', 'https'] }).allow(null)
        .description('Fetched through the outbound client (public addresses only unless OUTBOUND_ALLOW_HOSTS allows it). For TAXII: the discovery endpoint or the API root'),
    file_path: Joi.string().trim().min(1).max(500).pattern(/^[^\0]+$/).allow(null)
        .description('For air-gapped installs: a file inside OSINT_FEED_DIR, relative to it'),
    collection: text(200).min(1).allow(null).description('TAXII 2.1 only: the collection\'s id or title'),
    auth_type: Joi.string().valid(...osintAuthTypes).description('none, basic (username + secret as password) or api_key (secret sent in api_key_header)'),
    username: text(200).min(1).allow(null),
    api_key_header: Joi.string().max(100).pattern(/^[A-Za-z0-9-]+$/).allow(null).description('The header that carries the API key (default Authorization)'),
    secret: Joi.string().min(1).max(4000).description('The password or API key: stored encrypted, never answered'),
    cron: Joi.string().trim().min(1).max(100).allow(null).description('A cron expression in UTC (five fields); or interval_minutes; neither: run on request only'),
    interval_minutes: Joi.number().integer().min(5).max(525_600).allow(null),
    enabled: Joi.boolean()
};

export const osintFeedCreate = Joi.object<OsintFeedCreate, true>({
    ...fields,
    name: fields.name.required(),
    kind: fields.kind.required()
}).label('OsintFeedCreate');

export const osintFeedUpdate = Joi.object<OsintFeedUpdate, true>(fields).min(1).label('OsintFeedUpdate');

export const osintFeedListQuery = listQuery(['created_at', 'name', 'updated_at', 'next_run_at'], {
    kind: Joi.string().valid(...osintFeedKinds),
    enabled: Joi.boolean(),
    search: Joi.string().trim().min(1).max(200)
}) as Joi.ObjectSchema<OsintFeedFilters>;

export const osintImportListQuery = listQuery(['created_at', 'finished_at'], {
    feed_id: uuid,
    status: Joi.string().valid('queued', 'running', 'succeeded', 'failed')
}) as Joi.ObjectSchema<OsintImportFilters>;

export const osintPrevalenceListQuery = listQuery(['prevalence', 'actors', 'feeds', 'technique_id', 'last_reported_at'], {
    technique_id: techniqueId,
    min_prevalence: Joi.number().min(0).max(1)
}) as Joi.ObjectSchema<PrevalenceFilters>;

export const osintFeed = Joi.object({
    id: Joi.string().required(),
    name: Joi.string().required(),
    kind: Joi.string().valid(...osintFeedKinds).required(),
    url: Joi.string().allow(null).required(),
    file_path: Joi.string().allow(null).required(),
    collection: Joi.string().allow(null).required(),
    auth_type: Joi.string().valid(...osintAuthTypes).required(),
    username: Joi.string().allow(null).required(),
    api_key_header: Joi.string().allow(null).required(),
    has_secret: Joi.boolean().required().description('Whether a password or API key is stored (it is never answered)'),
    cron: Joi.string().allow(null).required(),
    interval_minutes: Joi.number().integer().allow(null).required(),
    enabled: Joi.boolean().required(),
    next_run_at: timestamp.allow(null).required(),
    last_run_at: timestamp.allow(null).required(),
    last_succeeded_at: timestamp.allow(null).required(),
    created_by: Joi.string().allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('OsintFeed');

export const osintFeedPage = pageOf(osintFeed, 'OsintFeedPage');

const rejection = Joi.object({
    item: Joi.string().required().description('The feed\'s id of the item, or its position when it has none'),
    reason: Joi.string().required()
}).label('OsintRejection');

export const osintImport = Joi.object({
    id: Joi.string().required(),
    feed_id: Joi.string().required(),
    trigger: Joi.string().valid('manual', 'schedule').required(),
    status: Joi.string().valid('queued', 'running', 'succeeded', 'failed').required(),
    source: Joi.string().allow(null).required().description('What was read: the file, or the URL without credentials or query'),
    added: Joi.number().integer().required(),
    updated: Joi.number().integer().required(),
    unchanged: Joi.number().integer().required(),
    removed: Joi.number().integer().required().description('Facts the feed no longer reports, marked removed'),
    rejected: Joi.number().integer().required(),
    rejections: Joi.array().items(rejection).description('The rejected items and why (the first 1,000); in GET /osint/imports/{id}'),
    error: Joi.string().allow(null).required(),
    started_at: timestamp.allow(null).required(),
    finished_at: timestamp.allow(null).required(),
    requested_by: Joi.string().allow(null).required(),
    created_at: timestamp,
    updated_at: timestamp
}).label('OsintImport');

export const osintImportPage = pageOf(osintImport, 'OsintImportPage');

export const osintPrevalence = Joi.object({
    technique_id: Joi.string().required(),
    actors: Joi.number().integer().required().description('Active actors the enabled feeds say use it (or a sub-technique)'),
    feeds: Joi.number().integer().required(),
    weighted_actors: Joi.number().required().description('Each actor weighted by the recency of its latest report (half-life a year)'),
    prevalence: Joi.number().min(0).max(1).required().description('min(1, weighted_actors × (1 + 0.25 × (feeds − 1)) / 10)'),
    last_reported_at: timestamp.required(),
    computed_at: timestamp.required()
}).label('OsintPrevalence');

export const osintPrevalencePage = pageOf(osintPrevalence, 'OsintPrevalencePage');
