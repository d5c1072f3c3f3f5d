import * as Fs from 'fs';
import { Readable, Transform } from 'stream';


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

    // pipe() does not forward errors: a download that breaks off must fail the stream its reader holds, not stall it
    capped(input: Readable, maxBytes: number, source: string, timeoutMs: number): Readable {

        const output = internals.cap(maxBytes, source);
        input.once('error', (err) => output.destroy(toSourceError(err, source, { timeoutMs })));
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


// The cause of a failed read in words, from the error's code (fetch puts the socket's error in `cause`), or null
// when the error says nothing about reaching the source.
export const describeFailure = (err: unknown, source: string, options: { timeoutMs?: number } = {}): string | null => {

    const error = (err ?? {}) as ErrorLike;
    const code = internals.code(error);
    const host = internals.host(source);

    if (error.name === 'TimeoutError' || /TIMEOUT|ETIMEDOUT/.test(code ?? '')) {
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

    if (/redirect/i.test(error.cause?.message ?? '')) {
        return 'answered with a redirect, which is not followed: use the final URL';
    }

    return null;
};


// Any error met while reading a source, as a SourceError: the cause in words when the error's code tells it, or else
// `otherwise` (e.g. "is not a STIX 2.1 bundle") with the error's own message.
export const toSourceError = (err: unknown, source: string, options: { timeoutMs?: number; otherwise?: string } = {}): SourceError => {

    if (err instanceof SourceError) {
        return err;
    }

    const shown = displaySource(source);
    const message = (err instanceof Error ? err.message : String(err)).replaceAll(source, shown);
    const reason = describeFailure(err, source, options) ?? (options.otherwise ? `${options.otherwise} (${message})` : message);
    return new SourceError(shown, reason, { cause: err });
};


// An ATT&CK or D3FEND source as a byte stream: a local file (air-gapped installs) or an http(s) URL fetched with a
// timeout, a size cap and no redirects (SEC-08). The bytes are streamed, never buffered whole; gzip is detected by
// the parser from the magic bytes. Every failure, now or while the stream is read, is a SourceError.
export const openSource = async (source: string, options: SourceOptions = {}): Promise<Readable> => {

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

        return internals.capped(Fs.createReadStream(source), maxBytes, shown, timeoutMs);
    }

    // fetch refuses a URL with credentials in it: they go in an Authorization header (a private mirror)
    const url = new URL(source);
    const headers: Record<string, string> = { accept: 'application/json, application/gzip, text/turtle' };
    if (url.username || url.password) {
        headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
        url.username = '';
        url.password = '';
    }

    const signal = AbortSignal.timeout(timeoutMs);
    const response = await fetch(url, { redirect: 'error', signal, headers }).catch((err: unknown) => {

        throw toSourceError(err, source, { timeoutMs });
    });

    if (!response.ok || !response.body) {
        await response.body?.cancel();
        throw new SourceError(shown, `answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    }

    const length = Number(response.headers.get('content-length'));
    if (length > maxBytes) {
        await response.body.cancel();
        throw new SourceError(shown, `is larger than ${maxBytes} bytes`);
    }

    return internals.capped(Readable.fromWeb(response.body as never), maxBytes, shown, timeoutMs);
};
