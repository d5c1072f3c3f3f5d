import { LocalFileStore } from './local';
import type { MinioStoreOptions } from './minio';
import { type ObjectStore } from './object-store';


export { contentDisposition, sanitizeFileName } from './file-name';
export { HashingStream, hashingStream, PayloadTooLargeError, type HashingStreamOptions } from './hashing';
export { LocalFileStore, type LocalFileStoreOptions } from './local';
export type { MinioStore, MinioStoreOptions } from './minio';
export {
    assertValidKey,
    assertValidPrefix,
    InvalidObjectKeyError,
    isValidKey,
    ObjectNotFoundError,
    ObjectSizeMismatchError,
    type ObjectListing,
    type ObjectStat,
    type ObjectStore,
    type PresignOptions,
    type PutOptions
} from './object-store';
export { knownContentTypes, sniffContentType, sniffLength, type ContentTypeName, type SniffedContentType } from './sniff';


export interface LocalStoreConfig {
    driver: 'local';
    root: string;
}

export interface S3StoreConfig extends MinioStoreOptions {
    driver: 's3';
}

export type ObjectStoreConfig = LocalStoreConfig | S3StoreConfig;


// The caller awaits `store.init()` before use (creates the root or the bucket). The S3 driver's module (and minio's,
// about 6 MB of RSS and 5 MB of heap) is loaded only when the S3 driver is configured (docs/performance.md, Memory).
export const createObjectStore = (config: ObjectStoreConfig): ObjectStore => {

    if (config.driver === 'local') {
        return new LocalFileStore({ root: config.root });
    }

    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
    const { MinioStore } = require('./minio') as typeof import('./minio');

    return new MinioStore(config);
};
