import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams } from '../schemas/common';
import {
    osintFeed, osintFeedCreate, osintFeedListQuery, osintFeedPage, osintFeedUpdate, osintImport, osintImportListQuery, osintImportPage,
    osintPrevalenceListQuery, osintPrevalencePage
} from '../schemas/osint';
import type { OsintFeedCreate, OsintFeedFilters, OsintFeedUpdate, OsintImportFilters, PrevalenceFilters } from '../services/osint';

import { route } from './route';


const internals = {
    tags: ['api', 'osint'],
    auth: { access: { scope: [...Access.osint] } }
};


// OSINT threat-intelligence feeds (issue 14, docs/osint.md)
export const osintRoutes = [
    route<{ Query: OsintFeedFilters }>({
        method: 'GET',
        path: '/api/v1/osint/feeds',
        options: {
            description: 'List OSINT feeds (credentials are never shown, only has_secret). Filters: kind, enabled, search (name)',
            tags: internals.tags,
            auth: internals.auth,
            validate: { query: osintFeedListQuery },
            response: { status: { 200: osintFeedPage } }
        },
        handler: (request) => request.services().osint.listFeeds(actorOf(request), request.query)
    }),

    route<{ Payload: OsintFeedCreate }>({
        method: 'POST',
        path: '/api/v1/osint/feeds',
        options: {
            description: 'Add a feed: a MISP galaxy of threat actors, a STIX 2.1 bundle or a TAXII 2.1 collection, by URL (checked by the outbound rules: 400 url_not_allowed) or by a file inside OSINT_FEED_DIR (400 path_outside_feed_dir), with an optional schedule (cron in UTC or interval_minutes) and credentials (basic or API key, stored encrypted, write-only). 409 when the name is taken',
            tags: internals.tags,
            auth: internals.auth,
            validate: { payload: osintFeedCreate },
            response: { status: { 201: osintFeed } },
            plugins: answers(409)
        },
        handler: async (request, h) => h.response(await request.services().osint.createFeed(actorOf(request), request.payload)).code(201)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/osint/feeds/{id}',
        options: {
            description: 'A feed, with its schedule and the time of its last run and last success',
            tags: internals.tags,
            auth: internals.auth,
            validate: { params: idParams },
            response: { status: { 200: osintFeed } },
            plugins: answers(404)
        },
        handler: (request) => request.services().osint.getFeed(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string }; Payload: OsintFeedUpdate }>({
        method: 'PATCH',
        path: '/api/v1/osint/feeds/{id}',
        options: {
            description: 'Change a feed. A url replaces a file_path and the other way round; cron replaces interval_minutes and the other way round; secret replaces the stored credential (never shown). Disabling a feed takes its facts out of prevalence',
            tags: internals.tags,
            auth: internals.auth,
            validate: { params: idParams, payload: osintFeedUpdate },
            response: { status: { 200: osintFeed } },
            plugins: answers(404, 409)
        },
        handler: (request) => request.services().osint.updateFeed(actorOf(request), request.params.id, request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/osint/feeds/{id}',
        options: {
            description: 'Delete a feed, its import history and every fact it reported; the actors it created stay. Prevalence and risk are recomputed',
            tags: internals.tags,
            auth: internals.auth,
            validate: { params: idParams },
            plugins: answers(204, 404)
        },
        handler: async (request, h) => {

            await request.services().osint.removeFeed(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    }),

    route<{ Params: { id: string } }>({
        method: 'POST',
        path: '/api/v1/osint/feeds/{id}/run',
        options: {
            description: 'Import the feed now: answers the queued import, which the worker runs (follow it in GET /osint/imports/{id}). 409 when the feed is disabled or an import of it is already queued or running',
            tags: internals.tags,
            auth: internals.auth,
            validate: { params: idParams },
            response: { status: { 202: osintImport } },
            plugins: answers(404, 409)
        },
        handler: async (request, h) => h.response(await request.services().osint.runFeed(actorOf(request), request.params.id)).code(202)
    }),

    route<{ Query: OsintImportFilters }>({
        method: 'GET',
        path: '/api/v1/osint/imports',
        options: {
            description: 'The import history, newest first: counts added, updated, unchanged, removed and rejected (the reasons are in GET /osint/imports/{id}). Filters: feed_id, status',
            tags: internals.tags,
            auth: internals.auth,
            validate: { query: osintImportListQuery },
            response: { status: { 200: osintImportPage } }
        },
        handler: (request) => request.services().osint.listImports(actorOf(request), request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/osint/imports/{id}',
        options: {
            description: 'One import with its counts, the items it rejected and why, or the reason it failed',
            tags: internals.tags,
            auth: internals.auth,
            validate: { params: idParams },
            response: { status: { 200: osintImport } },
            plugins: answers(404)
        },
        handler: (request) => request.services().osint.getImport(actorOf(request), request.params.id)
    }),

    route<{ Query: PrevalenceFilters }>({
        method: 'GET',
        path: '/api/v1/osint/prevalence',
        options: {
            description: 'OSINT prevalence per technique (docs/osint.md), the figure the risk likelihood reads: active actors and feeds that report it, recency-weighted. Highest first. Filters: technique_id, min_prevalence',
            tags: internals.tags,
            auth: internals.auth,
            validate: { query: osintPrevalenceListQuery },
            response: { status: { 200: osintPrevalencePage } }
        },
        handler: (request) => request.services().osint.listPrevalence(actorOf(request), request.query)
    })
];
