import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Path from 'path';

import { createIntegrations, type Integrations } from '../integrations';
import type { Redis } from '../integrations/redis';

import type { Config } from './config';
import { createKnex, migrate, type Knex } from './db';
import { AgendaQueue, createAgenda } from './jobs';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { createServices, type ServiceDeps, type Services } from './services';
import { uploadSettings } from './services/evidence';


export interface Runtime {
    knex: Knex;
    redis: Redis | undefined;
    integrations: Integrations;
    queue: AgendaQueue;
    agenda: Awaited<ReturnType<typeof createAgenda>>['agenda'];
    services: Services;
    close: () => Promise<void>;
}


export const version: string = (() => {

    try {
        return JSON.parse(Fs.readFileSync(Path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
    }
    catch {
        return JSON.parse(Fs.readFileSync(Path.join(__dirname, '..', 'package.json'), 'utf8')).version;
    }
})();


// A secret the operator did not set is generated at first start and kept, readable by the owner only, in the data
// directory (JWT_SECRET as jwt-secret, AEGIS_SECRET_KEY as secret-key).
const generatedSecret = (dataDir: string, name: string, create: () => string): string => {

    const file = Path.join(dataDir, name);
    Fs.mkdirSync(dataDir, { recursive: true });
    try {
        Fs.writeFileSync(file, create(), { flag: 'wx', mode: 0o600 });
    }
    catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
            throw err;
        }
    }

    return Fs.readFileSync(file, 'utf8').trim();
};


export const resolveJwtSecret = (config: Pick<Config, 'jwt' | 'dataDir'>): string => {

    return config.jwt.secret ?? generatedSecret(config.dataDir, 'jwt-secret', () => Crypto.randomBytes(48).toString('base64url'));
};


// The AES-256-GCM key of the secrets in the settings store.
export const resolveSecretKey = (config: Pick<Config, 'secretKey' | 'dataDir'>): Buffer => {

    if (config.secretKey) {
        return config.secretKey;
    }

    const key = Buffer.from(generatedSecret(config.dataDir, 'secret-key', () => Crypto.randomBytes(32).toString('base64')), 'base64');
    if (key.length !== 32) {
        throw new Error(`${Path.join(config.dataDir, 'secret-key')} does not hold a 32-byte base64 key`);
    }

    return key;
};


// The one place that turns the configuration and the adapters into the services' dependencies: the API, the worker,
// the operator commands, the tests and the benchmarks all build their services through it.
export const serviceDeps = (config: Config, parts: Pick<ServiceDeps, 'knex' | 'queue' | 'redis' | 'storage' | 'outbound'> & { version?: string }): ServiceDeps => ({
    ...parts,
    uploads: uploadSettings(config),
    jwt: { secret: resolveJwtSecret(config), ttlSeconds: config.jwt.ttlSeconds, issuer: config.jwt.issuer, audience: config.jwt.audience },
    secretKey: resolveSecretKey(config),
    smtp: config.smtp,
    login: config.login,
    apiKeys: config.apiKeys,
    version: parts.version ?? version,
    heartbeatSeconds: config.worker.heartbeatSeconds,
    coverage: config.coverage,
    // scores (issue 12)
    compliance: config.compliance,
    // documents (issue 13)
    documents: config.documents,
    // dashboards (issue 12)
    snapshots: config.snapshots,
    // sso (issue 15, OIDC)
    oidc: { publicUrl: config.publicUrl },
    // osint (issue 14)
    osint: config.osint,
    // sso (issue 15, SAML): the SP entity id and ACS URL derive from the public URL, as the OpenAPI document's server does
    sso: { publicUrl: config.publicUrl?.replace(/\/+$/, '') ?? `http://127.0.0.1:${config.port}`, secureCookies: config.cookie.secure },
    // jira (issue 14)
    jira: { publicUrl: config.publicUrl }
});


// What both processes build from the configuration: database (migrated), Redis, integrations, queue and services.
export const createRuntime = async (config: Config, options: { name: string; logger: Logger; migrate?: boolean; metrics?: Metrics }): Promise<Runtime> => {

    const { logger } = options;
    const url = config.database.url;
    if (!url) {
        throw new Error('DATABASE_URL is required here (bin/start.ts starts the embedded PostgreSQL and sets it)');
    }

    if (options.migrate !== false) {
        const applied = await migrate(url);
        if (applied.length) {
            logger.info({ migrations: applied }, 'migrations applied');
        }
    }

    const knex = createKnex({
        url,
        poolMax: config.database.poolMax,
        onPoolError: (err) => logger.warn({ err: err.message }, 'database connection lost'),
        onWarning: (message) => logger.warn({ message: message.split('\n')[0] }, 'database warning')
    });
    const integrations = await createIntegrations(config, { logger, onOutboundCall: options.metrics && ((call) => options.metrics!.outbound(call.host, call.status ?? 0)) });
    const { agenda, close: closeAgenda } = await createAgenda({
        databaseUrl: url,
        mongodbUrl: config.mongodbUrl,
        name: options.name,
        lockLifetimeMs: config.worker.lockLifetimeMs,
        onError: (err) => logger.warn({ err: err.message }, 'job queue error')
    });

    const queue = new AgendaQueue(agenda, closeAgenda);
    const services = createServices(serviceDeps(config, { knex, queue, redis: integrations.redis, storage: integrations.storage, outbound: integrations.outbound }));

    return {
        knex,
        redis: integrations.redis,
        integrations,
        queue,
        agenda,
        services,
        close: async () => {

            await queue.stop().catch((err) => logger.warn({ err: err.message }, 'queue close failed'));
            await integrations.close();
            await knex.destroy();
        }
    };
};
