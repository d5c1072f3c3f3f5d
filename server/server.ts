import * as Hapi from '@hapi/hapi';
import Joi from 'joi';
import type { Logger } from 'pino';

import type { Config } from './config';
import type { Metrics } from './metrics';
import { authPlugin } from './plugins/auth';
import { errorsPlugin } from './plugins/errors';
import { hardeningPlugin } from './plugins/hardening';
import { loggingPlugin } from './plugins/logging';
import { metricsPlugin } from './plugins/metrics';
import { openapiPlugin } from './plugins/openapi';
import { servicesPlugin } from './plugins/services';
// sso (issue 15, OIDC)
import { oidcPlugin } from './plugins/oidc';
import { routes } from './routes';
import { cookieName } from './routes/auth';
import type { Services } from './services';
import { failAction } from './plugins/validation';


export interface ServerOptions {
    config: Pick<Config, 'host' | 'port' | 'publicUrl' | 'cookie' | 'cors' | 'jwt' | 'uploads' | 'validateResponses' | 'trustProxy'>;
    services: Services;
    logger: Logger;
    version: string;
    metrics?: Metrics | undefined;
}


const internals = {
    origin: (url: string | undefined) => (url ? new URL(url).origin : undefined)
};


export const createServer = async (options: ServerOptions): Promise<Hapi.Server> => {

    const { config } = options;
    const allowedOrigins = [...new Set([...config.cors.origins, internals.origin(config.publicUrl)].filter((origin): origin is string => Boolean(origin)))];

    const server = Hapi.server({
        host: config.host,
        port: config.port,
        router: { stripTrailingSlash: false, isCaseSensitive: true },
        load: { sampleInterval: 1000, maxEventLoopDelay: 2000 },
        routes: {
            validate: {
                failAction,
                options: { abortEarly: false, errors: { wrap: { label: false } } },
                // A route that declares no payload accepts none (unknown fields answer 400); one that declares no query
                // accepts none either, refused by the input guard (plugins/hardening.ts, plugins/validation.ts)
                payload: Joi.object({}).allow(null)
            },
            payload: { maxBytes: 1024 * 1024, allow: 'application/json', protoAction: 'error' },
            // Response schemas document every route; they are enforced (a mismatch is a 500) under test, where drift
            // must fail (the fields they declare; models carry hidden columns that serialisation drops), and skipped in
            // production, where they would only cost time
            response: config.validateResponses ? { failAction: 'error', options: { allowUnknown: true } } : { sample: 0 },
            cache: { otherwise: 'no-store' },
            security: {
                hsts: { maxAge: 31_536_000, includeSubDomains: true },
                xframe: 'deny',
                xss: 'disabled',
                noOpen: true,
                noSniff: true,
                referrer: 'no-referrer'
            },
            cors: allowedOrigins.length ? { origin: allowedOrigins, credentials: true } : false
        },
        state: { strictHeader: true, ignoreErrors: true }
    });

    server.state(cookieName, {
        ttl: config.jwt.ttlSeconds * 1000,
        isSecure: config.cookie.secure,
        isHttpOnly: true,
        isSameSite: 'Lax',
        path: '/',
        encoding: 'none',
        clearInvalid: true,
        strictHeader: true
    });

    await server.register([
        { plugin: loggingPlugin, options: { logger: options.logger } },
        { plugin: servicesPlugin, options: { services: options.services } },
        { plugin: errorsPlugin, options: {} },
        { plugin: hardeningPlugin },
        { plugin: authPlugin, options: { cookieName, allowedOrigins, trustProxy: config.trustProxy } },
        { plugin: openapiPlugin, options: { version: options.version, cookieName, serverUrl: config.publicUrl?.replace(/\/+$/, '') ?? `http://127.0.0.1:${config.port}` } }
    ]);

    // sso (issue 15, OIDC): the sealed cookie of a sign-in in progress
    await server.register({ plugin: oidcPlugin, options: { password: options.services.oidc.cookiePassword, secure: config.cookie.secure } });

    if (options.metrics) {
        await server.register({ plugin: metricsPlugin, options: { metrics: options.metrics } });
    }

    server.route(routes);
    await server.initialize();
    return server;
};
