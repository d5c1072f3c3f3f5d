import type { Redis } from 'ioredis';


// ioredis' defaults queue commands and retry them for about 74 s while Redis is down; Aegis must fail fast instead
// (SEC-04), and reconnect by itself in the background.
//
// ioredis is loaded by the first call: a process without REDIS_URL never needs it, and loading it costs about 12 MB of
// RSS (docs/performance.md, Memory).
export const createRedis = (url: string, options: { onError?: (err: Error) => void } = {}): Redis => {

    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
    const { Redis: Client } = require('ioredis') as typeof import('ioredis');

    const redis = new Client(url, {
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        commandTimeout: 500,
        connectTimeout: 1000,
        lazyConnect: false,
        // Commands issued in the same tick (concurrent requests' revocation checks) share one write
        enableAutoPipelining: true,
        retryStrategy: (times) => Math.min(times * 100, 1000)
    });

    redis.on('error', (err) => options.onError?.(err));
    return redis;
};


export type { Redis };
