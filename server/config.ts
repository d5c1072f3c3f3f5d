import * as Net from 'net';
import * as Path from 'path';

import Ipaddr from 'ipaddr.js';
import Joi from 'joi';

import type { LogFormat } from './logger';


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
    logFormat: LogFormat;
    validateResponses: boolean;
    apiHeapMb: number;
    database: { url: string | undefined; poolMax: number };
    redis: { url: string | undefined };
    mongodbUrl: string | undefined;
    jwt: { secret: string | undefined; ttlSeconds: number; issuer: string; audience: string };
    cookie: { secure: boolean };
    cors: { origins: string[] };
    admin: { password: string | undefined };
    storage: S3Config | LocalStorageConfig;
    uploads: { maxBytes: number; allowedTypes: string[] };
    login: { maxFailuresPerUser: number; maxFailuresPerIp: number; maxFailuresPerPair: number; windowSeconds: number };
    // false: the socket's address is the client's; true: one proxy, any peer; a list: the proxies' addresses and ranges
    trustProxy: boolean | string[];
    apiKeys: { maxLifetimeDays: number };
    attack: { source: string; d3fendSource: string };
    coverage: { stalenessDays: number };
    // dashboards (issue 12)
    snapshots: { retentionDays: number };
    secretKey: Buffer | undefined;
    outbound: { allow: string[]; allowHttp: boolean; ports: number[]; connectTimeoutMs: number; timeoutMs: number; maxBytes: number };
    smtp: { url: string; from: string } | undefined;
    chromiumPath: string | undefined;
    worker: { heartbeatSeconds: number; lockLifetimeMs: number };
    relay: { pollMs: number; maxAttempts: number; retentionDays: number };
    metrics: { host: string; port: number | undefined; workerPort: number | undefined };
    // scores (issue 12): the folder of the compliance mappings that POST /compliance/import reads
    compliance: { source: string | undefined };
    // documents (issue 13)
    documents: { waitMs: number; timeoutMs: number };
    // osint (issue 14): OSINT_FEED_DIR, the one folder feeds read by file path may name
    osint: { feedDir: string };
}

export const defaultAttackSource = 'https://raw.githubusercontent.com/mitre-attack/attack-stix-data/master/enterprise-attack/enterprise-attack.json';
export const defaultD3fendSource = 'https://d3fend.mitre.org/ontologies/d3fend.ttl';

export const defaultUploadTypes = [
    'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'text/csv',
    'application/json', 'application/xml', 'application/vnd.tcpdump.pcap', 'application/x-pcapng',
    'application/x-ms-evtx', 'application/zip', 'application/gzip', 'application/x-7z-compressed'
];


// The API's V8 old-space bound in MiB (docs/performance.md#memory). A node flag, so it is given when the process is
// started (`apiNodeFlags`), not read by the process itself; the API only reports it.
const apiHeapMb = Joi.number().integer().min(128).max(65_536).default(1024);


const internals = {
    schema: Joi.object({
        NODE_ENV: Joi.string().valid('development', 'production', 'test').default('development'),
        HOST: Joi.string().hostname().default('127.0.0.1'),
        PORT: Joi.number().integer().min(0).max(65535).default(3000),
        AEGIS_PUBLIC_URL: Joi.string().uri({ scheme: ['http', 'https'] }),
        AEGIS_DATA_DIR: Joi.string().default('./.data'),
        LOG_LEVEL: Joi.string().valid('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent').default('info'),
        LOG_FORMAT: Joi.string().valid('json', 'pretty'),
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
        LOGIN_MAX_FAILURES_PER_PAIR: Joi.number().integer().min(1).max(Joi.ref('LOGIN_MAX_FAILURES_PER_USER')),
        LOGIN_WINDOW_SECONDS: Joi.number().integer().min(60).max(3600).default(900),
        TRUST_PROXY: Joi.alternatives(
            Joi.boolean().truthy('1', 'on').falsy('0', 'off'),
            Joi.string().custom((value: string) => {

                const proxies = value.split(',').map((item) => item.trim()).filter(Boolean);
                if (!proxies.length || !proxies.every((proxy) => internals.isAddressOrRange(proxy))) {
                    throw new Error('not an address or range');
                }

                return proxies;
            })
        ).default(false),
        API_KEY_MAX_LIFETIME_DAYS: Joi.number().integer().min(1).max(3650).default(365),
        ATTACK_SOURCE: Joi.string().default(defaultAttackSource),
        D3FEND_SOURCE: Joi.string().default(defaultD3fendSource),
        COVERAGE_STALENESS_DAYS: Joi.number().integer().min(1).max(3650).default(180),
        COMPLIANCE_SOURCE: Joi.string().max(4096),
        // dashboards (issue 12)
        SNAPSHOT_RETENTION_DAYS: Joi.number().integer().min(1).max(3650).default(365),
        CHROMIUM_PATH: Joi.string(),
        AEGIS_SECRET_KEY: Joi.string().custom((value: string, helpers) => internals.key(value) ?? helpers.message({ custom: 'must be 32 bytes written in base64 or hex' })),
        OUTBOUND_ALLOW_HOSTS: Joi.string().custom((value: string, helpers) => {

            const bad = internals.list(value).filter((entry) => !internals.isHostOrRange(entry));
            return bad.length ? helpers.message({ custom: `has ${bad.length} entr${bad.length === 1 ? 'y that is' : 'ies that are'} not a host name, an IP address or a CIDR range` }) : value;
        }),
        OUTBOUND_ALLOW_HTTP: Joi.boolean().truthy('1').falsy('0').default(false),
        OUTBOUND_PORTS: Joi.string().pattern(/^\s*\d{1,5}\s*(,\s*\d{1,5}\s*)*$/).default('443,80'),
        OUTBOUND_CONNECT_TIMEOUT_MS: Joi.number().integer().min(100).max(120_000).default(10_000),
        OUTBOUND_TIMEOUT_MS: Joi.number().integer().min(100).max(30 * 60_000).default(30_000),
        OUTBOUND_MAX_BYTES: Joi.number().integer().min(1024).default(10 * 1024 * 1024),
        SMTP_URL: Joi.string().uri({ scheme: ['smtp', 'smtps'] }),
        SMTP_FROM: Joi.string().email({ tlds: false }).when('SMTP_URL', { is: Joi.exist(), then: Joi.required() }),
        API_HEAP_MB: apiHeapMb,
        WORKER_HEARTBEAT_SECONDS: Joi.number().integer().min(1).max(300).default(10),
        WORKER_LOCK_LIFETIME_MS: Joi.number().integer().min(1000).default(10 * 60 * 1000),
        RELAY_POLL_MS: Joi.number().integer().min(50).max(60_000).default(1000),
        RELAY_MAX_ATTEMPTS: Joi.number().integer().min(1).max(100).default(8),
        RELAY_RETENTION_DAYS: Joi.number().integer().min(1).max(3650).default(7),
        METRICS_HOST: Joi.string().hostname().default('127.0.0.1'),
        METRICS_PORT: Joi.number().integer().min(0).max(65535),
        WORKER_METRICS_PORT: Joi.number().integer().min(0).max(65535),
        // documents (issue 13)
        REPORT_WAIT_MS: Joi.number().integer().min(0).max(60_000).default(5000),
        REPORT_RENDER_TIMEOUT_MS: Joi.number().integer().min(1000).max(10 * 60_000).default(60_000),
        // osint (issue 14)
        OSINT_FEED_DIR: Joi.string()
    }),

    list: (value: string): string[] => value.split(',').map((item) => item.trim()).filter(Boolean),

    // 10.0.0.1, ::1, 10.0.0.0/8, fd00::/8
    isAddressOrRange: (value: string): boolean => {

        const [address, prefix, extra] = value.split('/');
        const family = Net.isIP(address!);
        if (!family || extra !== undefined) {
            return false;
        }

        return prefix === undefined || /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
    },

    // 32 bytes as 64 hex digits or as base64 (either alphabet, padding optional)
    key: (value: string): Buffer | undefined => {

        const key = /^[0-9a-f]{64}$/i.test(value) ? Buffer.from(value, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(value) ? Buffer.from(value, 'base64') : undefined;
        return key?.length === 32 ? key : undefined;
    },

    isHostOrRange: (entry: string): boolean => {

        if (entry.includes('/')) {
            return Ipaddr.isValidCIDR(entry);
        }

        return Net.isIP(entry) !== 0 || /^(?=.{1,253}\.?$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(entry);
    },

    // joi's message starts with the variable's name; what follows is the rule (the value never appears in it)
    rule: (detail: Joi.ValidationErrorItem): string => detail.message.replace(/^"?[A-Z0-9_]+"?\s*/, '') || detail.type
};


export class ConfigError extends Error {

    constructor(public readonly problems: string[]) {

        super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
        this.name = 'ConfigError';
    }
}


// Readable lines for a person at a terminal in development; JSON lines for everything else (a pipe, a file, a log
// collector) and always under test and production, unless LOG_FORMAT says otherwise. bin/start.ts decides once for
// both of its children.
export const defaultLogFormat = (nodeEnv: string | undefined, stdoutIsTTY: boolean): LogFormat => (stdoutIsTTY && (nodeEnv || 'development') === 'development' ? 'pretty' : 'json');


// The node flags the API process is started with (`npm start`, the benches): its heap bound from API_HEAP_MB, and a
// floor under the old generation's collection limit. Without a bound V8 sizes the heap from the machine's memory and
// lets it grow to several times what is live between two full collections. Without the floor, V8 derives that limit
// from the live heap alone, which is about 51 MB at rest: evidence uploads then reach it with the buffers they hold
// while the disk catches up, and ran 28 full collections where they ran 4, at twice the CPU per GB (96 MiB: 9, and
// the CPU per GB of before; docs/performance.md#memory).
const apiOldSpaceFloorMb = 96;

export const apiNodeFlags = (env: NodeJS.ProcessEnv): string[] => {

    const { value, error } = apiHeapMb.validate(env.API_HEAP_MB || undefined, { convert: true });
    if (error) {
        throw new ConfigError([`API_HEAP_MB: ${internals.rule(error.details[0]!)}`]);
    }

    return [`--max-old-space-size=${value as number}`, `--initial-old-space-size=${apiOldSpaceFloorMb}`];
};


// Reads only the variables the schema knows; a bad value names the variable and the rule, never the value.
export const loadConfig = (env: NodeJS.ProcessEnv = process.env, options: { stdoutIsTTY?: boolean } = {}): Readonly<Config> => {

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
        logFormat: v.LOG_FORMAT ?? defaultLogFormat(v.NODE_ENV, options.stdoutIsTTY ?? Boolean(process.stdout.isTTY)),
        validateResponses: v.VALIDATE_RESPONSES ?? v.NODE_ENV === 'test',
        database: { url: v.DATABASE_URL, poolMax: v.DATABASE_POOL_MAX },
        redis: { url: v.REDIS_URL },
        mongodbUrl: v.MONGODB_URL,
        jwt: { secret: v.JWT_SECRET, ttlSeconds: v.JWT_TTL_SECONDS, issuer: v.JWT_ISSUER, audience: v.JWT_AUDIENCE },
        cookie: { secure: v.COOKIE_SECURE ?? (v.NODE_ENV === 'production' || (v.AEGIS_PUBLIC_URL?.startsWith('https:') ?? false)) },
        cors: { origins: internals.list(v.CORS_ORIGINS) },
        admin: { password: v.AEGIS_ADMIN_PASSWORD },
        storage,
        uploads: { maxBytes: v.UPLOAD_MAX_BYTES, allowedTypes: v.UPLOAD_ALLOWED_TYPES ? internals.list(v.UPLOAD_ALLOWED_TYPES) : defaultUploadTypes },
        login: {
            maxFailuresPerUser: v.LOGIN_MAX_FAILURES_PER_USER,
            maxFailuresPerIp: v.LOGIN_MAX_FAILURES_PER_IP,
            // Below the account's limit by default, so that one address alone cannot lock an account for everyone
            maxFailuresPerPair: v.LOGIN_MAX_FAILURES_PER_PAIR ?? Math.ceil(v.LOGIN_MAX_FAILURES_PER_USER / 2),
            windowSeconds: v.LOGIN_WINDOW_SECONDS
        },
        trustProxy: v.TRUST_PROXY,
        apiKeys: { maxLifetimeDays: v.API_KEY_MAX_LIFETIME_DAYS },
        attack: { source: v.ATTACK_SOURCE, d3fendSource: v.D3FEND_SOURCE },
        coverage: { stalenessDays: v.COVERAGE_STALENESS_DAYS },
        compliance: { source: v.COMPLIANCE_SOURCE },
        // dashboards (issue 12)
        snapshots: { retentionDays: v.SNAPSHOT_RETENTION_DAYS },
        chromiumPath: v.CHROMIUM_PATH,
        secretKey: v.AEGIS_SECRET_KEY,                                  // a Buffer: the schema decoded it
        outbound: {
            allow: internals.list(v.OUTBOUND_ALLOW_HOSTS ?? ''),
            allowHttp: v.OUTBOUND_ALLOW_HTTP,
            ports: internals.list(v.OUTBOUND_PORTS).map(Number),
            connectTimeoutMs: v.OUTBOUND_CONNECT_TIMEOUT_MS,
            timeoutMs: v.OUTBOUND_TIMEOUT_MS,
            maxBytes: v.OUTBOUND_MAX_BYTES
        },
        smtp: v.SMTP_URL ? { url: v.SMTP_URL, from: v.SMTP_FROM } : undefined,
        apiHeapMb: v.API_HEAP_MB,
        worker: { heartbeatSeconds: v.WORKER_HEARTBEAT_SECONDS, lockLifetimeMs: v.WORKER_LOCK_LIFETIME_MS },
        relay: { pollMs: v.RELAY_POLL_MS, maxAttempts: v.RELAY_MAX_ATTEMPTS, retentionDays: v.RELAY_RETENTION_DAYS },
        metrics: { host: v.METRICS_HOST, port: v.METRICS_PORT, workerPort: v.WORKER_METRICS_PORT },
        documents: { waitMs: v.REPORT_WAIT_MS, timeoutMs: v.REPORT_RENDER_TIMEOUT_MS },
        // osint (issue 14)
        osint: { feedDir: v.OSINT_FEED_DIR ? Path.resolve(v.OSINT_FEED_DIR) : Path.join(dataDir, 'feeds') }
    };

    return Object.freeze(config);
};

