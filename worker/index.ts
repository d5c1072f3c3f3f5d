import * as Crypto from 'crypto';
import * as Os from 'os';

import { createLogger } from '../server/logger';
import { Metrics, serveMetrics } from '../server/metrics';
import { configOrExit, onShutdown, run } from '../server/process';
import { createRuntime } from '../server/runtime';
import { PdfRenderer } from '../integrations/pdf';

import { consumers } from './consumers';
import { defineJobs, logJobEvents, scheduleJobs } from './jobs';
import { EventRelay } from './relay';
// webhooks
import { WebhookSender } from './webhook-sender';


// The worker process: the same runtime and services as the API, Agenda processing the jobs, the event relay, a
// heartbeat, a drain.
run('aegis-worker', async () => {

    const config = configOrExit();
    const logger = createLogger({ level: config.logLevel, name: 'aegis-worker', format: config.logFormat });
    const workerId = `${Os.hostname()}:${process.pid}:${Crypto.randomBytes(3).toString('hex')}`;
    const metrics = new Metrics('worker');
    const runtime = await createRuntime(config, { name: `aegis-worker-${workerId}`, logger, metrics });
    const { agenda, services } = runtime;

    logJobEvents(agenda, logger);

    metrics.watch({ knex: runtime.knex, relayStatus: () => services.events.status() });
    metrics.watchJobs(agenda);

    // webhooks: woken when the relay commits deliveries of its `webhooks` consumer
    const sender = new WebhookSender({ webhooks: services.webhooks, logger });
    const relay = new EventRelay({
        knex: runtime.knex,
        consumers: consumers(services),
        databaseUrl: config.database.url,
        logger,
        onDelivery: (consumer, outcome, createdAt) => {

            metrics.delivery(consumer, outcome, createdAt);
            if (consumer === 'webhooks' && outcome !== 'parked') {
                sender.wake();
            }
        },
        options: { pollMs: config.relay.pollMs, maxAttempts: config.relay.maxAttempts }
    });

    // documents (issue 13): one browser per worker, launched at its first render
    const printer = new PdfRenderer({ chromiumPath: config.chromiumPath, timeoutMs: config.documents.timeoutMs });
    defineJobs(agenda, services, { attack: config.attack, relay: { retentionDays: config.relay.retentionDays, consumers: relay.consumers }, logger, documents: { printer, timeoutMs: config.documents.timeoutMs } });
    // Registered before the first job can run: a SIGTERM that arrives while the worker is still starting (a job it
    // picked up may already have finished) waits for the start to end, then drains, instead of killing the process
    // mid-job
    const handles: { heartbeat?: NodeJS.Timeout; metricsServer?: Awaited<ReturnType<typeof serveMetrics>> } = {};
    let started: Promise<unknown> = Promise.resolve();
    onShutdown(logger, async (signal) => {

        logger.info({ signal }, 'worker draining');
        await started.catch(() => undefined);
        clearInterval(handles.heartbeat);

        // Running jobs finish; those still running after the timeout are released (their lock is cleared)
        const result = await agenda.drain(30_000).catch((err: Error) => logger.warn({ err: err.message }, 'drain failed'));
        await relay.stop();
        await sender.stop();
        await printer.close();
        logger.info({ result }, 'worker drained');
        await handles.metricsServer?.close();
        await services.system.removeHeartbeat(workerId).catch(() => undefined);
        await runtime.close();
    });

    started = (async () => {

        await agenda.start();
        await scheduleJobs(agenda, services);
        await relay.start();
        sender.start();
    })();
    await started;

    handles.metricsServer = config.metrics.workerPort === undefined ? undefined : await serveMetrics(metrics, { host: config.metrics.host, port: config.metrics.workerPort });
    if (handles.metricsServer) {
        logger.info({ host: config.metrics.host, port: handles.metricsServer.port }, 'metrics listening');
    }

    const startedAt = new Date();
    const beat = () => services.system.heartbeat(workerId, startedAt).catch((err: Error) => logger.warn({ err: err.message }, 'heartbeat failed'));
    await beat();
    handles.heartbeat = setInterval(beat, config.worker.heartbeatSeconds * 1000);
    logger.info({ worker_id: workerId }, 'worker started');
});
