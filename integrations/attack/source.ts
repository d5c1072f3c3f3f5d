import * as Fs from 'fs';
import { Transform, type Readable } from 'stream';

import type { OutboundHttp } from '../http';


export interface SourceOptions {
    timeoutMs?: number;
    maxBytes?: number;
}


const internals = {
    timeoutMs: 5 * 60_000,
    maxBytes: 256 * 1024 * 1024,

    // Counts the bytes as they pass and fails the stream past the cap, so a runaway download never fills memory or disk.
    cap(maxBytes: number, what: string): Transform {

        let seen = 0;
        return new Transform({
            transform(chunk: Buffer, encoding, callback) {

                seen += chunk.length;
                if (seen > maxBytes) {
                    callback(new Error(`${what} is larger than ${maxBytes} bytes`));
                    return;
                }

                callback(null, chunk);
            }
        });
    }
};


export const isUrl = (source: string): boolean => /^https?:\/\//i.test(source);


// An ATT&CK or D3FEND source as a byte stream: a local file (air-gapped installs) or an http(s) URL fetched through
// the outbound client (SEC-08: address rules, redirects re-checked, timeout, size cap after decompression). The bytes
// are streamed, never buffered whole; gzip is detected by the parser from the magic bytes.
export const openSource = async (source: string, outbound: OutboundHttp, options: SourceOptions = {}): Promise<Readable> => {

    const maxBytes = options.maxBytes ?? internals.maxBytes;
    if (!isUrl(source)) {
        await Fs.promises.access(source, Fs.constants.R_OK);
        return Fs.createReadStream(source).pipe(internals.cap(maxBytes, source));
    }

    const response = await outbound.open(source, { timeoutMs: options.timeoutMs ?? internals.timeoutMs, maxBytes, headers: { accept: 'application/json, application/gzip' } });
    return response.body;
};
