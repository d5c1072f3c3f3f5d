import * as Boom from '@hapi/boom';
import type * as Hapi from '@hapi/hapi';

import { hasNul } from '../services/sql';
import { failAction, unknownQuery } from './validation';


const internals = {
    // The API serves JSON only: nothing may load, frame or run from it. /docs (Swagger UI) gets its own policy.
    apiPolicy: `default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
    docsPolicy: `default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`
};


export const hardeningPlugin: Hapi.Plugin<void> = {
    name: 'aegis/hardening',
    register: (server) => {

        // The input guard, after validation: a query on a route that takes none (plugins/validation.ts), then NUL anywhere
        server.ext('onPreHandler', (request, h) => {

            const unknown = unknownQuery(request);
            if (unknown) {
                return failAction(request, h, unknown);
            }

            if (hasNul(request.params) || hasNul(request.query) || hasNul(request.payload)) {
                throw Object.assign(Boom.badRequest('Input must not contain NUL characters'), { code: 'validation_failed' });
            }

            return h.continue;
        });

        server.ext('onPreResponse', (request, h) => {

            const response = request.response;
            const headers = response instanceof Error ? response.output.headers : (response as Hapi.ResponseObject).headers;
            const docs = request.path === '/docs' || request.path.startsWith('/swaggerui/');
            // A route that serves a document of its own (a report's HTML) keeps the stricter policy it set
            const own = headers['content-security-policy'];
            delete headers['content-security-policy'];
            headers['Content-Security-Policy'] = docs ? internals.docsPolicy : own ?? internals.apiPolicy;
            headers['Cross-Origin-Opener-Policy'] = 'same-origin';
            headers['Cross-Origin-Resource-Policy'] = 'same-origin';
            headers['Permissions-Policy'] = 'camera=(), microphone=(), geolocation=()';
            return h.continue;
        }, { after: ['aegis/errors'] });
    }
};
