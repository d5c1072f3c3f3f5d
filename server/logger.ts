import Pino, { type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';


export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
    level: string;
    name: string;
    format?: LogFormat;                 // config.logFormat: json unless a person reads the terminal
    destination?: DestinationStream;    // stdout by default
}


const internals = {

    // Anything that looks like a credential is censored wherever it appears in a logged object, in either format.
    redact: {
        paths: [
            'password', '*.password', 'new_password', '*.new_password', 'current_password', '*.current_password', 'password_hash', '*.password_hash',
            'token', '*.token', 'access_token', '*.access_token', 'secret', '*.secret', 'key', '*.key', 'key_hash', '*.key_hash',
            'authorization', '*.authorization', 'headers.authorization', 'headers.cookie', 'cookie', '*.cookie', 'SAMLResponse', '*.SAMLResponse',
            'api_token', '*.api_token', 'config.jwt.secret', 'config.storage.secretKey', 'config.secretKey', 'url', '*.url'
        ],
        censor: '[redacted]'
    },

    // pino-pretty formats each JSON line as it is written, in this process and synchronously: nothing is left in a
    // transport thread to lose at exit, and a terminal is not a hot path.
    pretty(destination: DestinationStream | undefined): DestinationStream {

        // Colours when the terminal supports them (pino-pretty's default, which honours NO_COLOR), never into another stream
        const prettify = prettyFactory({ ...destination ? { colorize: false } : {}, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
        const output = destination ?? Pino.destination({ dest: 1, sync: true });
        return { write: (line: string) => output.write(prettify(line)) };
    }
};


// JSON lines, written in batches at least every 250 ms (a write per line costs a system call per request) and
// flushed before exit; or, for a person at a terminal (LOG_FORMAT=pretty), readable lines.
export const createLogger = (options: LoggerOptions): Logger => Pino({
    name: options.name,
    level: options.level,
    redact: internals.redact,
    timestamp: Pino.stdTimeFunctions.isoTime
}, options.format === 'pretty' ?
    internals.pretty(options.destination) :
    options.destination ?? Pino.destination({ dest: 1, sync: false, minLength: 8192, periodicFlush: 250 }));


export type { Logger };
