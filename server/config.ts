import * as Path from 'path';

import Joi from 'joi';


export interface S3Config {
    driver: 's3';
    endPoint: string;
    port: number;
    useSSL: boolean;
    accessKey: string;
    secretKey: string;
    bucket: string;
    region: string;
    partSize: number;
}

export interface LocalStorageConfig {
    driver: 'local';
    root: string;
}

export interface Config {
    env: 'development' | 'production' | 'test';
    host: string;
    port: number;
    publicUrl: string | undefined;
    dataDir: string;
    logLevel: string;
    validateResponses: boolean;
    database: { url: string | undefined; poolMax: number };
    redis: { url: string | undefined };
    mongodbUrl: string | undefined;
    jwt: { secret: string | undefined; ttlSeconds: number; issuer: string; audience: string };
    cookie: { secure: boolean };
    cors: { origins: string[] };
    admin: { password: string | undefined };
    storage: S3Config | LocalStorageConfig;
    uploads: { maxBytes: number; allowedTypes: string[] };
    login: { maxFailuresPerUser: number; maxFailuresPerIp: number; windowSeconds: number };
    attack: { source: string; d3fendSource: string };
    chromiumPath: string;
    worker: { heartbeatSeconds: number; lockLifetimeMs: number };
    relay: { pollMs: number; maxAttempts: number; retentionDays: number };
    metrics: { host: string; port: number | undefined; workerPort: number | undefined };
}

export const defaultAttackSource = 'https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/enterprise-attack/enterprise-attack.json';
export const defaultD3fendSource = 'https://d3fend.mitre.org/api/ontology/inference/d3fend-full-mappings.json';

export const defaultUploadTypes = [
    'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'text/csv',
    'application/json', 'application/xml', 'application/vnd.tcpdump.pcap', 'application/x-pcapng',
    'application/x-ms-evtx', 'application/zip', 'application/gzip', 'application/x-7z-compressed'
];


const internals = {
    schema: Joi.object({
        NODE_ENV: Joi.string().valid('development', 'production', 'test').default('development'),
        HOST: Joi.string().hostname().default('127.0.0.1'),
        PORT: Joi.number().integer().min(0).max(65535).default(3000),
        AEGIS_PUBLIC_URL: Joi.string().uri({ scheme: ['http', 'https'] }),
        AEGIS_DATA_DIR: Joi.string().default('./.data'),
        LOG_LEVEL: Joi.string().valid('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent').default('info'),
        VALIDATE_RESPONSES: Joi.boolean().truthy('1').falsy('0'),
        DATABASE_URL: Joi.string().uri({ scheme: ['postgres', 'postgresql'] }),
        DATABASE_POOL_MAX: Joi.number().integer().min(2).max(200).default(10),
        REDIS_URL: Joi.string().uri({ scheme: ['redis', 'rediss'] }),
        MONGODB_URL: Joi.string().uri({ scheme: ['mongodb', 'mongodb+srv'] }),
        JWT_SECRET: Joi.string().min(32),
        JWT_TTL_SECONDS: Joi.number().integer().min(60).max(3600).default(3600),
        JWT_ISSUER: Joi.string().default('aegis'),
        JWT_AUDIENCE: Joi.string().default('aegis-api'),
        COOKIE_SECURE: Joi.boolean().truthy('1').falsy('0'),
        CORS_ORIGINS: Joi.string().allow('').default(''),
        AEGIS_ADMIN_PASSWORD: Joi.string().min(12).max(128),
        S3_ENDPOINT: Joi.string().hostname(),
        S3_PORT: Joi.number().integer().min(1).max(65535).default(9000),
        S3_USE_SSL: Joi.boolean().truthy('1').falsy('0').default(false),
        S3_ACCESS_KEY: Joi.string().when('S3_ENDPOINT', { is: Joi.exist(), then: Joi.required() }),
        S3_SECRET_KEY: Joi.string().when('S3_ENDPOINT', { is: Joi.exist(), then: Joi.required() }),
        S3_BUCKET: Joi.string().pattern(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/).default('aegis-evidence'),
        S3_REGION: Joi.string().default('us-east-1'),
        S3_PART_SIZE: Joi.number().integer().min(5 * 1024 * 1024).default(16 * 1024 * 1024),
        UPLOAD_MAX_BYTES: Joi.number().integer().min(1).default(100 * 1024 * 1024),
        UPLOAD_ALLOWED_TYPES: Joi.string(),
        LOGIN_MAX_FAILURES_PER_USER: Joi.number().integer().min(1).max(100).default(10),
        LOGIN_MAX_FAILURES_PER_IP: Joi.number().integer().min(1).default(50),
        LOGIN_WINDOW_SECONDS: Joi.number().integer().min(60).max(3600).default(900),
        ATTACK_SOURCE: Joi.string().default(defaultAttackSource),
        D3FEND_SOURCE: Joi.string().default(defaultD3fendSource),
        CHROMIUM_PATH: Joi.string().default('/usr/bin/chromium'),
        WORKER_HEARTBEAT_SECONDS: Joi.number().integer().min(1).max(300).default(10),
        WORKER_LOCK_LIFETIME_MS: Joi.number().integer().min(1000).default(10 * 60 * 1000),
        RELAY_POLL_MS: Joi.number().integer().min(50).max(60_000).default(1000),
        RELAY_MAX_ATTEMPTS: Joi.number().integer().min(1).max(100).default(8),
        RELAY_RETENTION_DAYS: Joi.number().integer().min(1).max(3650).default(7),
        METRICS_HOST: Joi.string().hostname().default('127.0.0.1'),
        METRICS_PORT: Joi.number().integer().min(0).max(65535),
        WORKER_METRICS_PORT: Joi.number().integer().min(0).max(65535)
    }),

    list: (value: string): string[] => value.split(',').map((item) => item.trim()).filter(Boolean),

    // joi's message starts with the variable's name; what follows is the rule (the value never appears in it)
    rule: (detail: Joi.ValidationErrorItem): string => detail.message.replace(/^"?[A-Z0-9_]+"?\s*/, '') || detail.type
};


export class ConfigError extends Error {

    constructor(public readonly problems: string[]) {

        super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
        this.name = 'ConfigError';
    }
}


// Reads only the variables the schema knows; a bad value names the variable and the rule, never the value.
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): Readonly<Config> => {

    const known = Object.keys(internals.schema.describe().keys ?? {});
    const input: Record<string, string> = {};
    for (const name of known) {
        const value = env[name];
        if (value !== undefined && value !== '') {
            input[name] = value;
        }
    }

    const { error, value: v } = internals.schema.validate(input, { abortEarly: false, errors: { wrap: { label: false } } });
    if (error) {
        throw new ConfigError(error.details.map((detail) => `${detail.context?.key}: ${internals.rule(detail)}`));
    }

    const dataDir = Path.resolve(v.AEGIS_DATA_DIR);
    const storage: Config['storage'] = v.S3_ENDPOINT ?
        {
            driver: 's3', endPoint: v.S3_ENDPOINT, port: v.S3_PORT, useSSL: v.S3_USE_SSL, accessKey: v.S3_ACCESS_KEY,
            secretKey: v.S3_SECRET_KEY, bucket: v.S3_BUCKET, region: v.S3_REGION, partSize: v.S3_PART_SIZE
        } :
        { driver: 'local', root: Path.join(dataDir, 'objects') };

    const config: Config = {
        env: v.NODE_ENV,
        host: v.HOST,
        port: v.PORT,
        publicUrl: v.AEGIS_PUBLIC_URL,
        dataDir,
        logLevel: v.LOG_LEVEL,
        validateResponses: v.VALIDATE_RESPONSES ?? v.NODE_ENV === 'test',
        database: { url: v.DATABASE_URL, poolMax: v.DATABASE_POOL_MAX },
        redis: { url: v.REDIS_URL },
        mongodbUrl: v.MONGODB_URL,
        jwt: { secret: v.JWT_SECRET, ttlSeconds: v.JWT_TTL_SECONDS, issuer: v.JWT_ISSUER, audience: v.JWT_AUDIENCE },
        cookie: { secure: v.COOKIE_SECURE ?? (v.AEGIS_PUBLIC_URL?.startsWith('https:') ?? false) },
        cors: { origins: internals.list(v.CORS_ORIGINS) },
        admin: { password: v.AEGIS_ADMIN_PASSWORD },
        storage,
        uploads: { maxBytes: v.UPLOAD_MAX_BYTES, allowedTypes: v.UPLOAD_ALLOWED_TYPES ? internals.list(v.UPLOAD_ALLOWED_TYPES) : defaultUploadTypes },
        login: { maxFailuresPerUser: v.LOGIN_MAX_FAILURES_PER_USER, maxFailuresPerIp: v.LOGIN_MAX_FAILURES_PER_IP, windowSeconds: v.LOGIN_WINDOW_SECONDS },
        attack: { source: v.ATTACK_SOURCE, d3fendSource: v.D3FEND_SOURCE },
        chromiumPath: v.CHROMIUM_PATH,
        worker: { heartbeatSeconds: v.WORKER_HEARTBEAT_SECONDS, lockLifetimeMs: v.WORKER_LOCK_LIFETIME_MS },
        relay: { pollMs: v.RELAY_POLL_MS, maxAttempts: v.RELAY_MAX_ATTEMPTS, retentionDays: v.RELAY_RETENTION_DAYS },
        metrics: { host: v.METRICS_HOST, port: v.METRICS_PORT, workerPort: v.WORKER_METRICS_PORT }
    };

    return Object.freeze(config);
};

