import * as Boom from '@hapi/boom';
import type * as Hapi from '@hapi/hapi';
import { DataError, DBError, CheckViolationError, ForeignKeyViolationError, NotFoundError as ObjectionNotFound, NotNullViolationError, UniqueViolationError } from 'objection';

import * as Errors from '../errors';

import { actorOf } from './services';


type Mapper = (err: any) => Boom.Boom;
type ErrorClass = abstract new (...args: any[]) => Error;


const retryAfter = (error: Boom.Boom, seconds: number): Boom.Boom => {

    error.output.headers['Retry-After'] = String(seconds);
    return error;
};

const internals: { mappers: Map<ErrorClass, Mapper>; toBoom: (err: Error) => Boom.Boom | null; isConnectionError: (err: any) => boolean } = {
    // Domain and database errors to HTTP. Anything not listed stays a 500, which is always a bug (conventions.md).
    mappers: new Map<ErrorClass, Mapper>([
        [Errors.NotFoundError, (err: Errors.NotFoundError) => Boom.notFound(err.message)],
        [Errors.ForbiddenError, (err: Errors.ForbiddenError) => Boom.forbidden(err.message)],
        [Errors.UnauthorizedError, (err: Errors.UnauthorizedError) => Boom.unauthorized(err.message)],
        [Errors.InvalidTransitionError, (err: Errors.InvalidTransitionError) => Boom.conflict(err.message)],
        [Errors.ConflictError, (err: Errors.ConflictError) => Boom.conflict(err.message)],
        [Errors.ValidationError, (err: Errors.ValidationError) => Object.assign(Boom.badRequest(err.message), { fields: err.fields })],
        [Errors.RateLimitedError, (err: Errors.RateLimitedError) => retryAfter(Boom.tooManyRequests(err.message), err.retryAfterSeconds)],
        [Errors.UnavailableError, (err: Errors.UnavailableError) => retryAfter(Boom.serverUnavailable(err.message), err.retryAfterSeconds)],
        [Errors.UpstreamError, (err: Errors.UpstreamError) => Boom.badGateway(err.message)],
        [Errors.PayloadTooLargeError, (err: Errors.PayloadTooLargeError) => Boom.entityTooLarge(err.message)],
        [Errors.UnsupportedMediaTypeError, (err: Errors.UnsupportedMediaTypeError) => Boom.unsupportedMediaType(err.message)],
        [ObjectionNotFound, () => Object.assign(Boom.notFound('Not found'), { code: 'not_found' })],
        [UniqueViolationError, (err: InstanceType<typeof UniqueViolationError>) => Object.assign(Boom.conflict('A record with the same unique value already exists'), { code: 'already_exists', fields: err.columns })],
        [ForeignKeyViolationError, () => Object.assign(Boom.badRequest('A referenced record does not exist or is still referenced'), { code: 'invalid_reference' })],
        [CheckViolationError, () => Object.assign(Boom.badRequest('A value is out of its allowed range'), { code: 'validation_failed' })],
        [NotNullViolationError, (err: InstanceType<typeof NotNullViolationError>) => Object.assign(Boom.badRequest('A required value is missing'), { code: 'validation_failed', fields: [err.column] })],
        [DataError, () => Object.assign(Boom.badRequest('A value has the wrong type or size'), { code: 'validation_failed' })]
    ]),

    toBoom: (err: Error): Boom.Boom | null => {

        // The nearest class in the error's prototype chain that has a mapping wins
        for (let proto = Object.getPrototypeOf(err); proto && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {   // eslint-disable-line @hapi/for-loop
            const mapper = internals.mappers.get(proto.constructor);
            if (mapper) {
                const error = mapper(err);
                if (err instanceof Errors.DomainError) {
                    Object.assign(error, { code: err.code });
                }

                return error;
            }
        }

        // The database is down or the pool is exhausted: a 503 the client may retry, not a 500 (SEC-23)
        if (err instanceof DBError || internals.isConnectionError(err)) {
            return retryAfter(Boom.serverUnavailable('The database is temporarily unavailable'), 5);
        }

        return null;
    },

    isConnectionError: (err: any): boolean => {

        const text = `${err?.name ?? ''} ${err?.code ?? ''} ${err?.message ?? ''}`;
        return /KnexTimeoutError|ECONNREFUSED|ECONNRESET|57P01|57P03|08006|08001|08003|Connection terminated/i.test(text);
    }
};


export const errorsPlugin: Hapi.Plugin<{ exposeValidation?: boolean }> = {
    name: 'aegis/errors',
    register: (server) => {

        server.ext('onPreResponse', (request, h) => {

            const { response } = request;
            if (!(response instanceof Error)) {
                return h.continue;
            }

            // hapi has already boomified a thrown error as a 500; the original class says what it really is
            let error: Boom.Boom & { code?: string; fields?: string[] } = internals.toBoom(response) ?? (Boom.isBoom(response) ? response : Boom.boomify(response));

            if (error.output.statusCode >= 500) {
                request.log(['error'], { err: response, status: error.output.statusCode });
                if (error.output.statusCode === 500) {
                    // Generic body: the stack and the message stay in the log
                    error = Boom.badImplementation();
                }
            }

            const payload: Record<string, unknown> = { ...error.output.payload };

            // The raw messages of the JWT scheme say why a token failed; the client only learns that it did
            if (error.output.statusCode === 401 && !(response instanceof Errors.DomainError)) {
                payload.message = 'Missing, invalid or expired credentials';
            }

            if (error.code) {
                payload.code = error.code;
            }

            if (error.fields) {
                payload.fields = error.fields;
            }

            payload.request_id = request.info.id;

            // An authenticated caller refused by a role, scope or ownership rule is a security event worth keeping
            if (error.output.statusCode === 403 && request.auth.credentials?.user) {
                void request.services().audit.recordOutside(actorOf(request), {
                    action: 'access.denied', outcome: 'denied', details: { method: request.method, path: request.path, code: error.code }
                });
            }

            const reply = h.response(payload).code(error.output.statusCode);
            for (const [name, value] of Object.entries(error.output.headers)) {
                if (value !== undefined) {
                    reply.header(name, String(value));
                }
            }

            return reply;
        });
    }
};


export const isMappedError = (err: Error): boolean => internals.toBoom(err) !== null;
