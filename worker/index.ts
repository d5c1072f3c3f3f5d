import * as Crypto from 'crypto';
import * as Os from 'os';

import { createLogger } from '../server/logger';
import { configOrExit, onShutdown, run } from '../server/process';
import { createRuntime } from '../server/runtime';

import { defineJobs, logJobEvents, scheduleJobs } from './jobs';


// The worker process: the same runtime and services as the API, Agenda processing the jobs, a heartbeat, a drain.
run('aegis-worker', async () => {

    const config = configOrExit();
    const logger = createLogger({ level: config.logLevel, name: 'aegis-worker', format: config.logFormat });
    const workerId = `${Os.hostname()}:${process.pid}:${Crypto.randomBytes(3).toString('hex')}`;
    const runtime = await createRuntime(config, { name: `aegis-worker-${workerId}`, logger });
    const { agenda, services } = runtime;

    logJobEvents(agenda, logger);
    defineJobs(agenda, services, { attack: config.attack, logger });
    await agenda.start();
    await scheduleJobs(agenda, services);

    const startedAt = new Date();
    const beat = () => services.system.heartbeat(workerId, startedAt).catch((err: Error) => logger.warn({ err: err.message }, 'heartbeat failed'));
    await beat();
    const heartbeat = setInterval(beat, config.worker.heartbeatSeconds * 1000);
    logger.info({ worker_id: workerId }, 'worker started');

    onShutdown(logger, async (signal) => {

        logger.info({ signal }, 'worker draining');
        clearInterval(heartbeat);

        // Running jobs finish; those still running after the timeout are released (their lock is cleared)
        const result = await agenda.drain(30_000).catch((err: Error) => logger.warn({ err: err.message }, 'drain failed'));
        logger.info({ result }, 'worker drained');
        await services.system.removeHeartbeat(workerId).catch(() => undefined);
        await runtime.close();
    });
});
