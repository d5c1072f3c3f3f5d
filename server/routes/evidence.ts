import type { Readable } from 'stream';

import { contentDisposition } from '../../integrations/storage';
import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams, responses } from '../schemas/common';
import { evidence, evidenceFile, evidenceListQuery, evidencePage, evidenceUpload } from '../schemas/evidence';
import type { ListQuery } from '../services/lists';
import { edits } from '../services/test-lifecycle';

import { route } from './route';


const internals = {
    tags: ['api', 'evidence'],
    // A file opened in the browser anyway runs nothing
    downloadPolicy: 'default-src \'none\'; sandbox',
    // Who may upload: the union of the red and blue rules; the service applies the one of the team in the form
    uploaders: [...new Set([...edits['evidence-red'].roles, ...edits['evidence-blue'].roles])]
};


export const evidenceRoutes = [
    route<{ Params: { id: string }; Payload: Readable }>({
        method: 'POST',
        path: '/api/v1/tests/{id}/evidence',
        options: {
            description: 'Upload an evidence file (multipart/form-data: the fields team=red|blue and description, then the file in "file"); streamed to object storage with its SHA-256 and sniffed type. Red evidence in red_executing by RL/RT/A, blue in blue_evaluating by BL/BT/A',
            tags: internals.tags,
            auth: { access: { scope: internals.uploaders } },
            validate: { params: idParams, payload: true },
            // Streamed, never buffered: the size limit (config.uploads.maxBytes) is counted by the service while streaming
            // octet-stream is what a body without a type is taken for: such a request reaches authorisation (403) and then the
            // service's 415, like any other non-multipart body
            payload: { output: 'stream', parse: false, allow: ['multipart/form-data', 'application/octet-stream'], defaultContentType: 'application/octet-stream', maxBytes: Number.MAX_SAFE_INTEGER, timeout: false },
            response: { status: { 201: evidence } },
            plugins: {
                'hapi-swagger': {
                    payloadType: 'form',
                    consumes: ['multipart/form-data'],
                    validate: { payload: evidenceUpload },
                    // 409: the test's state takes no evidence of that team
                    responses: responses(404, 409)
                }
            }
        },
        handler: async (request, h) => {

            const type = String(request.headers['content-type'] ?? '');
            const length = request.headers['content-length'];
            const created = await request.services().evidence.upload(actorOf(request), request.params.id, { contentType: type, contentLength: length ? Number(length) : undefined, body: request.payload });
            return h.response(created).code(201);
        }
    }),

    route<{ Params: { id: string }; Query: ListQuery }>({
        method: 'GET',
        path: '/api/v1/tests/{id}/evidence',
        options: {
            description: 'List the evidence files of a test',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams, query: evidenceListQuery },
            response: { status: { 200: evidencePage } },
            plugins: answers(404)
        },
        handler: (request) => request.services().evidence.list(actorOf(request), request.params.id, request.query)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/evidence/{id}',
        options: {
            description: 'Evidence metadata: name, type, size, SHA-256, team, uploader',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            response: { status: { 200: evidence } },
            plugins: answers(404)
        },
        handler: (request) => request.services().evidence.get(actorOf(request), request.params.id)
    }),

    route<{ Params: { id: string } }>({
        method: 'GET',
        path: '/api/v1/evidence/{id}/download',
        options: {
            description: 'Download the file, streamed with its stored type as an attachment (audited)',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            plugins: { 'hapi-swagger': { responses: { 200: evidenceFile, ...responses(404) } } }
        },
        handler: async (request, h) => {

            const { evidence: item, stream } = await request.services().evidence.download(actorOf(request), request.params.id);
            return h.response(stream)
                .type(item.content_type)
                .bytes(item.size)
                .header('content-disposition', contentDisposition(item.original_name))
                .header('x-content-type-options', 'nosniff')
                .header('content-security-policy', internals.downloadPolicy)
                .header('x-checksum-sha256', item.sha256);
        }
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/evidence/{id}',
        options: {
            description: 'Delete an evidence file: the uploader, or RL/BL/A (403 to others who can see it, 404 to those who cannot); never on a validated test',
            tags: internals.tags,
            auth: { access: { scope: [...Access.any] } },
            validate: { params: idParams },
            plugins: answers(204, 404, 409)
        },
        handler: async (request, h) => {

            await request.services().evidence.remove(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    })
];
