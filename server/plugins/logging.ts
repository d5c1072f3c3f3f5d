import type * as Hapi from '@hapi/hapi';
import type { Logger } from 'pino';


// One JSON line per request, with its id; headers, payloads and query strings are never logged, so no password,
// token or key can reach the log from here.
export const loggingPlugin: Hapi.Plugin<{ logger: Logger }> = {
    name: 'aegis/logging',
    register: (server, { logger }) => {

        // The access line is built from fixed, credential-free fields: redacting it would only cost time
        const access = logger.child({}, { redact: [] });

        server.events.on('response', (request) => {

            const response = request.response as Hapi.ResponseObject | null;
            const status = response?.statusCode ?? 0;
            const entry = {
                request_id: request.info.id,
                method: request.method,
                path: request.path,
                status,
                ms: Date.now() - request.info.received,
                user_id: request.auth.credentials?.user?.id,
                ip: request.info.remoteAddress
            };

            if (status >= 500) {
                access.error(entry, 'request failed');
            }
            else {
                access.info(entry, 'request');
            }
        });

        server.events.on({ name: 'request', channels: ['app'] }, (request, event, tags) => {

            if (tags.error) {
                const data = event.data as { err?: Error } | undefined;
                const err = data?.err ?? event.error as Error | undefined;
                logger.error({ request_id: request.info.id, err: err ? { name: err.name, message: err.message, stack: err.stack } : undefined }, 'request error');
            }
        });

        server.events.on('log', (event, tags) => {

            logger[tags.error ? 'error' : 'info']({ tags: Object.keys(tags), data: event.data }, 'server');
        });
    }
};
