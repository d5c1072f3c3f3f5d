import { Transform, type Readable, type TransformCallback } from 'stream';


const internals = {
    maxKeyLength: 512,
    segment: /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/,
    partialSegment: /^([A-Za-z0-9][A-Za-z0-9._-]{0,254})?$/
};


export interface PutOptions {
    size?: number;
    contentType: string;
}

export interface ObjectStat {
    size: number;
    lastModified: Date;
    contentType?: string;
}

export interface ObjectListing {
    key: string;
    size: number;
    lastModified: Date;
}

export interface PresignOptions {
    filename: string;
    contentType: string;
}

export interface ObjectStore {
    readonly driver: 'local' | 's3';
    init(): Promise<void>;
    put(key: string, body: Readable, options: PutOptions): Promise<{ size: number }>;
    get(key: string): Promise<Readable>;
    stat(key: string): Promise<ObjectStat | null>;
    delete(key: string): Promise<void>;
    exists(key: string): Promise<boolean>;
    list(prefix: string): AsyncIterable<ObjectListing>;
    ping(): Promise<void>;
    presignedGetUrl?(key: string, seconds: number, options: PresignOptions): Promise<string>;
}


export class InvalidObjectKeyError extends Error {

    readonly code = 'invalid_object_key';

    constructor(key: string) {

        super(`Invalid object key ${JSON.stringify(key.slice(0, 80))}`);
        this.name = 'InvalidObjectKeyError';
    }
}


export class ObjectNotFoundError extends Error {

    readonly code = 'object_not_found';

    constructor(readonly key: string) {

        super(`Object not found: ${key}`);
        this.name = 'ObjectNotFoundError';
    }
}


export class ObjectSizeMismatchError extends Error {

    readonly code = 'object_size_mismatch';

    constructor(readonly expected: number, readonly actual: number) {

        super(`Object body does not match its declared size of ${expected} bytes (got ${actual})`);
        this.name = 'ObjectSizeMismatchError';
    }
}


export const isValidKey = (key: string): boolean => {

    if (typeof key !== 'string' ||
        key.length === 0 ||
        key.length > internals.maxKeyLength) {

        return false;
    }

    return key.split('/').every((segment) => internals.segment.test(segment));
};


export const assertValidKey = (key: string): void => {

    if (!isValidKey(key)) {
        throw new InvalidObjectKeyError(key);
    }
};


// A listing prefix is any prefix of a valid key: whole valid segments, then at most one partial segment.
export const assertValidPrefix = (prefix: string): void => {

    if (typeof prefix !== 'string' || prefix.length > internals.maxKeyLength) {
        throw new InvalidObjectKeyError(String(prefix));
    }

    const segments = prefix.split('/');
    const last = segments.pop() ?? '';
    if (!segments.every((segment) => internals.segment.test(segment)) ||
        !internals.partialSegment.test(last)) {

        throw new InvalidObjectKeyError(prefix);
    }
};


// Counts the bytes that go through and, when a size was declared, fails as soon as the body is longer, or at the
// end when it is shorter, so a store never commits an object whose size differs from what the caller announced.
export class ByteCounter extends Transform {

    bytes = 0;

    constructor(private readonly expected?: number) {

        super();
    }

    override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {

        this.bytes += chunk.length;
        if (this.expected !== undefined &&
            this.bytes > this.expected) {

            return callback(new ObjectSizeMismatchError(this.expected, this.bytes));
        }

        callback(null, chunk);
    }

    override _flush(callback: TransformCallback): void {

        if (this.expected !== undefined &&
            this.bytes !== this.expected) {

            return callback(new ObjectSizeMismatchError(this.expected, this.bytes));
        }

        callback();
    }
}
