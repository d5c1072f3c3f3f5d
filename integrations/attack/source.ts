import * as Fs from 'fs';
import * as Http from 'http';
import { Transform, type Readable } from 'stream';

import { OutboundError, type OutboundHttp } from '../http';


export interface SourceOptions {
    timeoutMs?: number;
    maxBytes?: number;
}


// A source that could not be read, or not as what it should hold: `source` is what may be shown of it (no
// credentials), `reason` the cause in words. The message reads "<source>: <reason>".
export class SourceError extends Error {

    constructor(readonly source: string, readonly reason: string, options?: { cause?: unknown }) {

        super(`${source}: ${reason}`, options);
        this.name = 'SourceError';
    }
}


interface ErrorLike {
    name?: string;
    code?: string;
    message?: string;
    cause?: ErrorLike & { errors?: ErrorLike[] };
}


const internals = {
    timeoutMs: 5 * 60_000,
    maxBytes: 256 * 1024 * 1024,

    offline: 'this machine may have no internet access',

    // Counts the bytes as they pass and fails the stream past the cap, so a runaway download never fills memory or disk.
    cap(maxBytes: number, source: string): Transform {

        let seen = 0;
        return new Transform({
            transform(chunk: Buffer, encoding, callback) {

                seen += chunk.length;
                if (seen > maxBytes) {
                    callback(new SourceError(source, `is larger than ${maxBytes} bytes`));
                    return;
                }

                callback(null, chunk);
            }
        });
    },

    // pipe() does not forward errors: a download that breaks off must fail the stream its reader holds, not stall it,
    // with the cause in words (the outbound client caps a download already; this cap is a file's)
    capped(input: Readable, limits: { maxBytes: number; timeoutMs: number }, source: string): Readable {

        const output = internals.cap(limits.maxBytes, source);
        input.once('error', (err) => output.destroy(toSourceError(err, source, limits)));
        output.once('close', () => input.destroy());
        return input.pipe(output);
    },

    // A system or undici error code (a DOMException's numeric `code` says nothing more than its name)
    code(err: ErrorLike): string | undefined {

        return [err, err.cause, ...err.cause?.errors ?? []].map((item) => item?.code).find((code): code is string => typeof code === 'string');
    },

    host(source: string): string {

        return isUrl(source) ? new URL(source).host : source;
    }
};


export const isUrl = (source: string): boolean => /^https?:\/\//i.test(source);


// What may be shown of a source: a path as it is, a URL without its credentials, query string or fragment.
export const displaySource = (source: string): string => {

    if (!isUrl(source)) {
        return source;
    }

    try {
        const url = new URL(source);
        return `${url.protocol}//${url.host}${url.pathname}`;
    }
    catch {
        return source.replace(/^(\w+:\/\/)[^/?#]*@/, '$1').replace(/[?#].*$/, '');
    }
};


// The cause of a failed read in words, from the outbound client's kind and the error's code (the socket's error, or
// fetch's in `cause`), or null when the error says nothing about reaching the source.
export const describeFailure = (err: unknown, source: string, options: { timeoutMs?: number; maxBytes?: number } = {}): string | null => {

    const error = (err ?? {}) as ErrorLike;
    const code = internals.code(error);
    const host = internals.host(source);

    if (err instanceof OutboundError) {
        switch (err.kind) {
            case 'blocked':
                return `is not allowed by the outbound rules (${err.message}); a mirror on the local network must be added to OUTBOUND_ALLOW_HOSTS${/^http:/i.test(source) ? ', and an http:// URL needs OUTBOUND_ALLOW_HTTP=true' : ''}`;
            case 'too_large':
                return `is larger than ${options.maxBytes ?? internals.maxBytes} bytes`;
            case 'http_status': {
                const redirects = /redirected more than (\d+) times/.exec(err.message);
                return redirects ? `redirected more than ${redirects[1]} times: use the final URL` : `answered HTTP ${err.status}${Http.STATUS_CODES[err.status!] ? ` ${Http.STATUS_CODES[err.status!]}` : ''}`;
            }

            case 'timeout':
                if (code === 'ETIMEDOUT') {
                    return `could not be reached: no connection to ${host} in time (timeout, ${code}); ${internals.offline}`;
                }

                break;
        }
    }

    if (error.name === 'TimeoutError' || (err instanceof OutboundError && err.kind === 'timeout') || /TIMEOUT|ETIMEDOUT/.test(code ?? '')) {
        const ms = options.timeoutMs ?? internals.timeoutMs;
        return `no complete answer within ${ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`} (timeout${code ? `, ${code}` : ''})`;
    }

    if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code)) {
        return `its TLS certificate could not be verified (${code}); a proxy may be intercepting HTTPS`;
    }

    switch (code) {
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
            return `could not be reached: DNS lookup of ${isUrl(source) ? new URL(source).hostname : source} failed (${code}); ${internals.offline}`;
        case 'ECONNREFUSED':
            return `could not be reached: connection refused by ${host} (${code})`;
        case 'ENETUNREACH':
        case 'EHOSTUNREACH':
        case 'ENETDOWN':
            return `could not be reached: no route to ${host} (${code}); ${internals.offline}`;
        case 'ECONNRESET':
        case 'EPIPE':
        case 'UND_ERR_SOCKET':
            return `the connection to ${host} broke off (${code})`;
        case 'ENOENT':
            return 'file not found';
        case 'EACCES':
        case 'EPERM':
            return `permission denied (${code})`;
        case 'EISDIR':
            return 'is a folder, not a file';
    }

    return null;
};


// Any error met while reading a source, as a SourceError: the cause in words when the error's code tells it, or else
// `otherwise` (e.g. "is not a STIX 2.1 bundle") with the error's own message.
export const toSourceError = (err: unknown, source: string, options: { timeoutMs?: number; maxBytes?: number; otherwise?: string } = {}): SourceError => {

    if (err instanceof SourceError) {
        return err;
    }

    const shown = displaySource(source);
    const message = (err instanceof Error ? err.message : String(err)).replaceAll(source, shown);
    const reason = describeFailure(err, source, options) ?? (options.otherwise ? `${options.otherwise} (${message})` : message);
    return new SourceError(shown, reason, { cause: err });
};


// An ATT&CK or D3FEND source as a byte stream: a local file (air-gapped installs) or an http(s) URL fetched through
// the outbound client (SEC-08: address rules, redirects re-checked, timeout, size cap after decompression). The bytes
// are streamed, never buffered whole; gzip is detected by the parser from the magic bytes. Every failure, now or while
// the stream is read, is a SourceError.
export const openSource = async (source: string, outbound: OutboundHttp, options: SourceOptions = {}): Promise<Readable> => {

    const maxBytes = options.maxBytes ?? internals.maxBytes;
    const timeoutMs = options.timeoutMs ?? internals.timeoutMs;
    const shown = displaySource(source);
    if (!isUrl(source)) {
        const stat = await Fs.promises.stat(source).catch((err: unknown) => {

            throw toSourceError(err, source);
        });

        if (stat.isDirectory()) {
            throw new SourceError(shown, 'is a folder, not a file');
        }

        return internals.capped(Fs.createReadStream(source), { maxBytes, timeoutMs }, shown);
    }

    // The outbound client refuses a URL with credentials in it: they go in an Authorization header (a private mirror),
    // which the client drops on a redirect to another origin
    const url = new URL(source);
    const headers: Record<string, string> = { accept: 'application/json, application/gzip, text/turtle' };
    if (url.username || url.password) {
        headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
        url.username = '';
        url.password = '';
    }

    const response = await outbound.open(url.href, { timeoutMs, maxBytes, headers }).catch((err: unknown) => {

        throw toSourceError(err, source, { timeoutMs, maxBytes });
    });

    return internals.capped(response.body, { maxBytes, timeoutMs }, shown);
};
