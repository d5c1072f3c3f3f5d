import * as Crypto from 'crypto';
import * as Os from 'os';

import { loadConfig, ConfigError } from '../server/config';
import { createLogger } from '../server/logger';
import { createRuntime } from '../server/runtime';

import { defineJobs, scheduleJobs } from './jobs';


// The worker process: the same runtime and services as the API, Agenda processing the jobs, a heartbeat, a drain.
const main = async () => {

    let config;
    try {
        config = loadConfig();
    }
    catch (err) {
        if (err instanceof ConfigError) {
            process.stderr.write(`${err.message}\n`);
            process.exit(78);
        }

        throw err;
    }

    const logger = createLogger({ level: config.logLevel, name: 'aegis-worker' });
    const workerId = `${Os.hostname()}:${process.pid}:${Crypto.randomBytes(3).toString('hex')}`;
    const runtime = await createRuntime(config, { name: `aegis-worker-${workerId}`, logger });
    const { agenda, services } = runtime;

    // Agenda re-emits other processes' events (remote = true, a notification instead of a job): log only our own
    agenda.on('start', (job, remote?: boolean) => !remote && logger.info({ job: job.attrs.name, id: String(job.attrs._id) }, 'job started'));
    agenda.on('success', (job, remote?: boolean) => !remote && logger.info({ job: job.attrs.name, id: String(job.attrs._id) }, 'job succeeded'));
    agenda.on('fail', (err: Error | string, job, remote?: boolean) => !remote && logger.error({ job: job.attrs.name, id: String(job.attrs._id), err: String(err) }, 'job failed'));

    defineJobs(agenda, services, { attack: config.attack, logger });
    await agenda.start();
    await scheduleJobs(agenda, services);

    const startedAt = new Date();
    const beat = () => services.system.heartbeat(workerId, startedAt).catch((err: Error) => logger.warn({ err: err.message }, 'heartbeat failed'));
    await beat();
    const heartbeat = setInterval(beat, config.worker.heartbeatSeconds * 1000);
    logger.info({ worker_id: workerId }, 'worker started');

    let stopping = false;
    const stop = async (signal: string) => {

        if (stopping) {
            return;
        }

        stopping = true;
        logger.info({ signal }, 'worker draining');
        clearInterval(heartbeat);

        // Running jobs finish; those still running after the timeout are released (their lock is cleared)
        const result = await agenda.drain(30_000).catch((err: Error) => logger.warn({ err: err.message }, 'drain failed'));
        logger.info({ result }, 'worker drained');
        await services.system.removeHeartbeat(workerId).catch(() => undefined);
        await runtime.close();
        await new Promise<void>((resolve) => logger.flush(() => resolve()));
        process.exit(0);
    };

    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
};


main().catch((err) => {

    process.stderr.write(`aegis-worker failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
});
