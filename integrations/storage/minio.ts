import * as Minio from 'minio';
import { pipeline, Writable, type Readable } from 'stream';
import { pipeline as pipelineAsync } from 'stream/promises';

import { contentDisposition } from './file-name';
import {
    assertValidKey,
    assertValidPrefix,
    ByteCounter,
    ObjectNotFoundError,
    type ObjectListing,
    type ObjectStat,
    type ObjectStore,
    type PresignOptions,
    type PutOptions
} from './object-store';


const internals = {
    mib: 1024 * 1024,
    defaultRegion: 'us-east-1',
    notFound: new Set(['NotFound', 'NoSuchKey']),

    ignore(): void { },

    isNotFound(err: unknown): boolean {

        return internals.notFound.has((err as Minio.S3Error | null)?.code ?? '');
    }
};


export interface MinioStoreOptions {
    endPoint: string;
    port?: number;
    useSSL: boolean;
    accessKey: string;
    secretKey: string;
    bucket: string;
    region?: string;

    // Bytes held in memory per upload, between 5 MiB and 5 GiB. An object of known size up to this goes up in one PUT;
    // anything else goes up as a multipart upload of parts this large. s3rver implements no multipart upload, so
    // against s3rver every put must give its size and stay within it (docs/storage.md).
    partSize?: number;
    pathStyle?: boolean;
}


export const defaultPartSize = 16 * internals.mib;


export class MinioStore implements ObjectStore {

    readonly driver = 's3';
    readonly bucket: string;
    readonly region: string;
    readonly client: Minio.Client;

    constructor(options: MinioStoreOptions) {

        this.bucket = options.bucket;
        this.region = options.region ?? internals.defaultRegion;

        // partSize is always passed: without it the client sizes parts for a 5 TiB object whenever the size is unknown
        // (528 MiB buffered per upload).
        this.client = new Minio.Client({
            endPoint: options.endPoint,
            port: options.port,
            useSSL: options.useSSL,
            accessKey: options.accessKey,
            secretKey: options.secretKey,
            region: this.region,
            partSize: options.partSize ?? defaultPartSize,
            pathStyle: options.pathStyle ?? true
        });
    }

    async init(): Promise<void> {

        await this.ensureBucket();
    }

    async ensureBucket(): Promise<void> {

        if (await this.client.bucketExists(this.bucket)) {
            return;
        }

        try {
            await this.client.makeBucket(this.bucket, this.region);
        }
        catch (err) {
            // Another process (the API and the worker start together) created it first.
            if ((err as Minio.S3Error).code !== 'BucketAlreadyOwnedByYou') {
                throw err;
            }
        }
    }

    async put(key: string, body: Readable, options: PutOptions): Promise<{ size: number }> {

        assertValidKey(key);

        // A single PUT or a completed multipart upload is atomic in S3: a body that errors half-way leaves no object.
        const counter = new ByteCounter(options.size);
        const metaData = { 'Content-Type': options.contentType };

        // The client does not read the stream at all when told the size is 0: check that it is empty here
        if (options.size === 0) {
            await pipelineAsync(body, counter, new Writable({ write: (chunk, encoding, callback) => callback() }));
            await this.client.putObject(this.bucket, key, Buffer.alloc(0), 0, metaData);
            return { size: 0 };
        }

        pipeline(body, counter, internals.ignore);          // Errors reach the client through counter
        await this.client.putObject(this.bucket, key, counter, options.size, metaData);
        return { size: counter.bytes };
    }

    async get(key: string): Promise<Readable> {

        assertValidKey(key);

        try {
            return await this.client.getObject(this.bucket, key);
        }
        catch (err) {
            throw internals.isNotFound(err) ? new ObjectNotFoundError(key) : err;
        }
    }

    async stat(key: string): Promise<ObjectStat | null> {

        assertValidKey(key);

        try {
            const stat = await this.client.statObject(this.bucket, key);
            const contentType = stat.metaData['content-type'] as string | undefined;
            return { size: stat.size, lastModified: stat.lastModified, ...(contentType ? { contentType } : {}) };
        }
        catch (err) {
            if (internals.isNotFound(err)) {
                return null;
            }

            throw err;
        }
    }

    async exists(key: string): Promise<boolean> {

        return (await this.stat(key)) !== null;
    }

    async delete(key: string): Promise<void> {

        assertValidKey(key);
        await this.client.removeObject(this.bucket, key);
    }

    async *list(prefix: string): AsyncIterable<ObjectListing> {

        assertValidPrefix(prefix);

        for await (const item of this.client.listObjectsV2(this.bucket, prefix, true)) {
            if (item.name !== undefined) {
                yield { key: item.name, size: item.size, lastModified: item.lastModified };
            }
        }
    }

    async ping(): Promise<void> {

        if (!await this.client.bucketExists(this.bucket)) {
            throw new Error(`Bucket ${this.bucket} does not exist`);
        }
    }

    presignedGetUrl(key: string, seconds: number, options: PresignOptions): Promise<string> {

        assertValidKey(key);

        return this.client.presignedGetObject(this.bucket, key, seconds, {
            'response-content-disposition': contentDisposition(options.filename),
            'response-content-type': options.contentType
        });
    }
}
