import * as Boom from '@hapi/boom';
import type * as Hapi from '@hapi/hapi';
import Joi from 'joi';


// How a request's input is refused: one 400 that names the offending fields (style.md P2), whether joi found them
// (every route's failAction, server.ts) or the input guard did (hardening.ts).
export const failAction = (request: Hapi.Request, h: Hapi.ResponseToolkit, err?: Error): never => {

    const details = (err as Joi.ValidationError | undefined)?.details ?? [];
    const fields = [...new Set(details.map((detail) => detail.path.join('.')))];
    const message = details.map((detail) => detail.message).join('; ') || 'Invalid request input';
    throw Object.assign(Boom.badRequest(message), { code: 'validation_failed', fields });
};


// A route that declares no query takes none. Its unknown fields are refused as joi's `Joi.object({})` would refuse
// them (a ValidationError naming each field), but by the input guard that every request already passes, not by a
// validation step of its own: hapi merges the validation options into a new object for every step it runs, which cost
// a cheap route such as GET /auth/me a twentieth of its time (docs/performance.md).
export const unknownQuery = (request: Hapi.Request): Joi.ValidationError | null => {

    const fields = request.route.settings.validate?.query ? [] : Object.keys(request.query);
    if (!fields.length) {
        return null;
    }

    const details = fields.map((field) => ({ message: `"${field}" is not allowed`, path: [field], type: 'object.unknown', context: { key: field, label: field } }));
    return new Joi.ValidationError(details.map((detail) => detail.message).join('. '), details, request.query);
};
