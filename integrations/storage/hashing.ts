import * as Crypto from 'crypto';
import { Transform, type TransformCallback } from 'stream';


const internals = {
    defaultHeadBytes: 4096
};


export class PayloadTooLargeError extends Error {

    readonly code = 'payload_too_large';

    constructor(readonly limitBytes: number) {

        super(`Payload exceeds the limit of ${limitBytes} bytes`);
        this.name = 'PayloadTooLargeError';
    }
}


export interface HashingStreamOptions {
    headBytes?: number;                                 // How many leading bytes to keep in `head` for sniffing
}


// A pass-through that hashes and counts what flows through it, keeps the first bytes for content sniffing, and
// fails with PayloadTooLargeError on the chunk that crosses the limit (that chunk is not passed on).
export class HashingStream extends Transform {

    bytes = 0;
    head: Buffer = Buffer.alloc(0);

    private readonly hash = Crypto.createHash('sha256');
    private readonly headBytes: number;
    private digest: string | null = null;

    constructor(readonly limitBytes: number, options: HashingStreamOptions = {}) {

        super();
        this.headBytes = options.headBytes ?? internals.defaultHeadBytes;
    }

    get sha256(): string {

        if (this.digest === null) {
            throw new Error('The SHA-256 is known once the stream has ended');
        }

        return this.digest;
    }

    override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {

        if (this.bytes + chunk.length > this.limitBytes) {
            return callback(new PayloadTooLargeError(this.limitBytes));
        }

        this.bytes += chunk.length;
        this.hash.update(chunk);
        if (this.head.length < this.headBytes) {
            this.head = Buffer.concat([this.head, chunk.subarray(0, this.headBytes - this.head.length)]);
        }

        callback(null, chunk);
    }

    override _flush(callback: TransformCallback): void {

        this.digest = this.hash.digest('hex');
        callback();
    }
}


export const hashingStream = (limitBytes: number, options?: HashingStreamOptions): HashingStream => new HashingStream(limitBytes, options);
