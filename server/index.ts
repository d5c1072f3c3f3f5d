import { runSeeds } from '../seeds';

import { createLogger } from './logger';
import { configOrExit, onShutdown, run } from './process';
import { createRuntime, version } from './runtime';
import { createServer } from './server';


// The API process: configuration → runtime (database, integrations, services, migrated) → seeds → hapi → listen.
// SIGTERM drains.
run('aegis-api', async () => {

    const config = configOrExit();
    const logger = createLogger({ level: config.logLevel, name: 'aegis-api', format: config.logFormat });
    const runtime = await createRuntime(config, { name: 'aegis-api', logger });

    await runSeeds({ services: runtime.services, config, logger });

    // A process that only enqueues must still start agenda, or no NOTIFY reaches the worker (style.md)
    await runtime.agenda.start();

    const server = await createServer({ config, services: runtime.services, logger, version });
    await server.start();
    logger.info({ uri: server.info.uri, version }, 'api listening');

    onShutdown(logger, async (signal) => {

        logger.info({ signal }, 'api stopping');

        // In-flight requests get up to 10 s to finish (SEC-25); new connections are refused at once
        await server.stop({ timeout: 10_000 });
        await runtime.close();
        logger.info('api stopped');
    });
});
