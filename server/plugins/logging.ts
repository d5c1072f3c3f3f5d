import type * as Hapi from '@hapi/hapi';
import Pino, { type Logger } from 'pino';


const internals = {
    // The access line is the one log line of every request. pino's generic path (level check, serialisers, the
    // escaping of each value, key by key) cost about 7% of a cheap request such as GET /auth/me (docs/performance.md),
    // so the line is built here, as pino would write it: the level, the time, the logger's bindings (pid, hostname,
    // name), the fields, the message; and written to the logger's own destination (JSON lines, or pretty ones).
    accessLine: (logger: Logger) => {

        const stream = (logger as unknown as Record<symbol, { write: (line: string) => void }>)[Pino.symbols.streamSym]!;
        const bindings = (logger as unknown as Record<symbol, string>)[Pino.symbols.chindingsSym] ?? '';
        const levels = { info: logger.levels.values.info!, error: logger.levels.values.error! };

        return (entry: Record<string, unknown>, failed: boolean) => {

            if (!logger.isLevelEnabled(failed ? 'error' : 'info')) {
                return;
            }

            const fields = JSON.stringify(entry);
            stream.write(`{"level":${failed ? levels.error : levels.info},"time":"${new Date().toISOString()}"${bindings},${fields.slice(1, -1)},"msg":"${failed ? 'request failed' : 'request'}"}\n`);
        };
    }
};


// One JSON line per request, with its id; headers, payloads and query strings are never logged, so no password,
// token or key can reach the log from here: the access line is built from fixed, credential-free fields.
export const loggingPlugin: Hapi.Plugin<{ logger: Logger }> = {
    name: 'aegis/logging',
    register: (server, { logger }) => {

        const access = internals.accessLine(logger);

        server.events.on('response', (request) => {

            const response = request.response as Hapi.ResponseObject | null;
            const status = response?.statusCode ?? 0;
            access({
                request_id: request.info.id,
                method: request.method,
                path: request.path,
                status,
                ms: Date.now() - request.info.received,
                user_id: request.auth.credentials?.user?.id,
                ip: request.info.remoteAddress
            }, status >= 500);
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
