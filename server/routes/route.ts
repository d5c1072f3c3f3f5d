import type { ReqRef, ReqRefDefaults, RouteOptions, ServerRoute } from '@hapi/hapi';
import Joi from 'joi';

import { roles } from '../policy';
import { responses, type AnswerStatus } from '../schemas/common';


const internals = {
    unparsedBody: new Set(['GET', 'HEAD', 'OPTIONS']),
    noQuery: Joi.object({}),

    // The error statuses a route answers because of how it is declared, whatever its service does: 400 for its input
    // (every route validates query and payload: server.ts, plugins/validation.ts), 413 and 415 for a body, 401 when it authenticates, and 403
    // unless it is open to every role, to a temporary password and to a read-only key or a cookie (plugins/auth.ts)
    shared: (method: string, options: RouteOptions): AnswerStatus[] => {

        const statuses: AnswerStatus[] = [400];
        const readOnly = internals.unparsedBody.has(method.toUpperCase());
        if (!readOnly) {
            statuses.push(413, 415);
        }

        if (options.auth !== false) {
            const scope = (options.auth as { access?: { scope?: string[] } } | undefined)?.access?.scope ?? [];
            const everyone = roles.every((role) => scope.includes(role));
            statuses.push(401);
            if (!everyone || !readOnly || !options.plugins?.aegis?.allowDuringPasswordChange) {
                statuses.push(403);
            }
        }

        return statuses;
    },

    // What hapi-swagger cannot read from the route: a route without a query schema takes no query (the input guard
    // refuses any, plugins/validation.ts), and one without a payload schema takes the server's empty one (which
    // hapi-swagger would document as a request body)
    inputs: (options: RouteOptions) => ({
        ...(options.validate?.query ? {} : { validate: { query: internals.noQuery } }),
        // A form without fields is documented as no request body
        ...(options.validate?.payload ? {} : { payloadType: 'form' })
    })
};


// hapi types one route at a time; the module lists are arrays of differently typed routes. This is the one cast.
// The route's documentation (hapi-swagger) gets the error statuses its declaration implies next to those it declares.
export const route = <Refs extends ReqRef = ReqRefDefaults>(definition: ServerRoute<Refs>): ServerRoute => {

    const options = (definition.options ?? {}) as RouteOptions;
    const documentation = options.plugins?.['hapi-swagger'];
    const documented = { ...responses(...internals.shared(String(definition.method), options)), ...documentation?.responses };
    const security = options.auth === false ? { security: [] } : {};
    const inputs = internals.inputs(options);
    const swagger = { ...inputs, ...security, ...documentation, validate: { ...inputs.validate, ...documentation?.validate }, responses: documented };
    return { ...definition, options: { ...options, plugins: { ...options.plugins, 'hapi-swagger': swagger } } } as unknown as ServerRoute;
};
