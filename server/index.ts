import * as V8 from 'v8';

import { runSeeds } from '../seeds';

import { apiNodeFlags } from './config';
import { createLogger } from './logger';
import { Metrics, serveMetrics } from './metrics';
import { configOrExit, onShutdown, run } from './process';
import { createRuntime, version } from './runtime';
import { createServer } from './server';


// The API process: configuration → runtime (database, integrations, services, migrated) → seeds → hapi → listen.
// SIGTERM drains.
run('aegis-api', async () => {

    const config = configOrExit();
    const logger = createLogger({ level: config.logLevel, name: 'aegis-api', format: config.logFormat });
    const metrics = new Metrics('api');
    const runtime = await createRuntime(config, { name: 'aegis-api', logger, metrics });

    await runSeeds({ services: runtime.services, config, logger });

    // A process that only enqueues must still start agenda, or no NOTIFY reaches the worker (style.md)
    await runtime.agenda.start();

    metrics.watch({ knex: runtime.knex, relayStatus: () => runtime.services.events.status() });
    const server = await createServer({ config, services: runtime.services, logger, version, metrics });
    await server.start();
    const heapLimitMb = Math.round(V8.getHeapStatistics().heap_size_limit / 1024 / 1024);
    logger.info({ uri: server.info.uri, version, heap_limit_mb: heapLimitMb }, 'api listening');
    if (heapLimitMb > config.apiHeapMb + 128) {
        // The heap limit includes the young generation, hence the margin
        logger.warn({ heap_limit_mb: heapLimitMb, api_heap_mb: config.apiHeapMb }, `the API runs without its heap bound: start it with npm start, or with node ${apiNodeFlags({ API_HEAP_MB: String(config.apiHeapMb) }).join(' ')} (docs/performance.md#memory)`);
    }

    const metricsServer = config.metrics.port === undefined ? undefined : await serveMetrics(metrics, { host: config.metrics.host, port: config.metrics.port });
    if (metricsServer) {
        logger.info({ host: config.metrics.host, port: metricsServer.port }, 'metrics listening');
    }

    onShutdown(logger, async (signal) => {

        logger.info({ signal }, 'api stopping');

        // In-flight requests get up to 10 s to finish (SEC-25); new connections are refused at once
        await server.stop({ timeout: 10_000 });
        await metricsServer?.close();
        await runtime.close();
        logger.info('api stopped');
    });
});
