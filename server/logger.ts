import Pino, { type Logger } from 'pino';


// JSON lines, written in batches at least every 250 ms (a write per line costs a system call per request) and
// flushed before exit; anything that looks like a credential is censored wherever it appears in a logged object.
export const createLogger = (options: { level: string; name: string }): Logger => Pino({
    name: options.name,
    level: options.level,
    redact: {
        paths: [
            'password', '*.password', 'new_password', '*.new_password', 'current_password', '*.current_password', 'password_hash', '*.password_hash',
            'token', '*.token', 'access_token', '*.access_token', 'secret', '*.secret', 'key', '*.key', 'key_hash', '*.key_hash',
            'authorization', '*.authorization', 'headers.authorization', 'headers.cookie', 'cookie', '*.cookie', 'SAMLResponse', '*.SAMLResponse',
            'api_token', '*.api_token', 'config.jwt.secret', 'config.storage.secretKey', 'config.secretKey', 'url', '*.url'
        ],
        censor: '[redacted]'
    },
    timestamp: Pino.stdTimeFunctions.isoTime
}, Pino.destination({ dest: 1, sync: false, minLength: 8192, periodicFlush: 250 }));


export type { Logger };
