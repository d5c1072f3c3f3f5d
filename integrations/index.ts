import type { Logger } from 'pino';

import type { Config } from '../server/config';

import { OutboundHttp, type OutboundOptions } from './http';
import { createRedis, type Redis } from './redis';
import { createObjectStore, type ObjectStore } from './storage';


export interface Integrations {
    redis: Redis | undefined;
    storage: ObjectStore;
    outbound: OutboundHttp;
    close: () => Promise<void>;
}


// The bundle of adapters built from the configuration: the local fallbacks when a service is not configured.
export const createIntegrations = async (config: Pick<Config, 'redis' | 'storage' | 'outbound'>, options: { logger: Logger; onOutboundCall?: OutboundOptions['onCall'] }): Promise<Integrations> => {

    const { logger } = options;
    let lastRedisError = '';
    const redis = config.redis.url ? createRedis(config.redis.url, {
        onError: (err) => {

            // ioredis repeats the same error on every reconnect attempt; log each change once
            if (err.message !== lastRedisError) {
                lastRedisError = err.message;
                logger.warn({ err: err.message }, 'redis unavailable');
            }
        }
    }) : undefined;

    redis?.on('ready', () => {

        lastRedisError = '';
    });

    const storage = createObjectStore(config.storage);
    await storage.init().catch((err: Error) => logger.warn({ err: err.message }, 'object storage not ready'));

    return {
        redis,
        storage,
        // Each call (each redirect hop) is reported to the process's metrics, per target host
        outbound: new OutboundHttp({ ...config.outbound, onCall: options.onOutboundCall }),
        close: () => {

            redis?.disconnect();
            return Promise.resolve();
        }
    };
};
