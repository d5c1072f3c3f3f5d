import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { apiNodeFlags, ConfigError, defaultLogFormat, defaultUploadTypes, loadConfig } from '../../server/config';
import { createLogger } from '../../server/logger';
import { resolveSecretKey } from '../../server/runtime';
import { checkPasswordPolicy } from '../../server/services/passwords';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


describe('Configuration', () => {

    it('applies the documented defaults', () => {

        const config = loadConfig({});
        expect(config.port).to.equal(3000);
        expect(config.database.url).to.be.undefined();
        expect(config.redis.url).to.be.undefined();
        expect(config.storage).to.equal({ driver: 'local', root: `${config.dataDir}/objects` });
        expect(config.jwt.ttlSeconds).to.equal(3600);
        expect(config.uploads).to.equal({ maxBytes: 100 * 1024 * 1024, allowedTypes: defaultUploadTypes });
        expect(config.cookie.secure).to.be.false();
        expect(config.login).to.equal({ maxFailuresPerUser: 10, maxFailuresPerIp: 50, maxFailuresPerPair: 5, windowSeconds: 900 });
        expect(config.trustProxy).to.be.false();
        expect(config.apiKeys).to.equal({ maxLifetimeDays: 365 });
        expect(config.coverage).to.equal({ stalenessDays: 180 });
        expect(config.secretKey).to.be.undefined();
        expect(config.outbound).to.equal({ allow: [], allowHttp: false, ports: [443, 80], connectTimeoutMs: 10_000, timeoutMs: 30_000, maxBytes: 10 * 1024 * 1024 });
        expect(config.smtp).to.be.undefined();
        expect(config.relay).to.equal({ pollMs: 1000, maxAttempts: 8, retentionDays: 7 });
        expect(config.metrics).to.equal({ host: '127.0.0.1', port: undefined, workerPort: undefined });
        expect(config.apiHeapMb).to.equal(1024);
        expect(Object.isFrozen(config)).to.be.true();
    });

    it('gives the API process its heap bound from API_HEAP_MB, and names the variable when it is wrong', () => {

        expect(apiNodeFlags({})).to.equal(['--max-old-space-size=1024', '--initial-old-space-size=96']);
        expect(apiNodeFlags({ API_HEAP_MB: '' })).to.equal(['--max-old-space-size=1024', '--initial-old-space-size=96']);
        expect(apiNodeFlags({ API_HEAP_MB: '768' })).to.equal(['--max-old-space-size=768', '--initial-old-space-size=96']);
        expect(loadConfig({ API_HEAP_MB: '256' }).apiHeapMb).to.equal(256);
        for (const value of ['64', 'lots', '1.5', '70000']) {
            expect(() => apiNodeFlags({ API_HEAP_MB: value })).to.throw(ConfigError, /API_HEAP_MB: /);
            expect(() => loadConfig({ API_HEAP_MB: value })).to.throw(ConfigError, /API_HEAP_MB/);
        }
    });

    it('makes the cookie Secure by default in production, unless COOKIE_SECURE says otherwise', () => {

        expect(loadConfig({ NODE_ENV: 'production' }).cookie.secure).to.be.true();
        expect(loadConfig({ NODE_ENV: 'production', COOKIE_SECURE: 'false' }).cookie.secure).to.be.false();
        expect(loadConfig({ NODE_ENV: 'development', AEGIS_PUBLIC_URL: 'http://aegis.local' }).cookie.secure).to.be.false();
    });

    it('reads the login throttle, the proxy trust and the API-key lifetime', () => {

        expect(loadConfig({ LOGIN_MAX_FAILURES_PER_USER: '3' }).login.maxFailuresPerPair).to.equal(2);
        expect(loadConfig({ LOGIN_MAX_FAILURES_PER_PAIR: '7' }).login.maxFailuresPerPair).to.equal(7);
        expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).to.be.true();
        expect(loadConfig({ TRUST_PROXY: 'off' }).trustProxy).to.be.false();
        expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, ::1,192.168.1.5' }).trustProxy).to.equal(['10.0.0.0/8', '::1', '192.168.1.5']);
        expect(loadConfig({ API_KEY_MAX_LIFETIME_DAYS: '30' }).apiKeys.maxLifetimeDays).to.equal(30);

        for (const [name, value] of [['TRUST_PROXY', 'yes'], ['TRUST_PROXY', '10.0.0.0/33'], ['TRUST_PROXY', '10.0.0.1/8/1'], ['LOGIN_MAX_FAILURES_PER_PAIR', '11'], ['API_KEY_MAX_LIFETIME_DAYS', '0']] as const) {
            expect(() => loadConfig({ [name]: value }), `${name}=${value}`).to.throw(ConfigError, new RegExp(name));
        }
    });

    it('reads the secret key in hex or base64, the outbound allow list and SMTP', () => {

        const key = Crypto.randomBytes(32);
        for (const text of [key.toString('hex'), key.toString('base64'), key.toString('base64url')]) {
            expect(loadConfig({ AEGIS_SECRET_KEY: text }).secretKey).to.equal(key);
        }

        const config = loadConfig({ OUTBOUND_ALLOW_HOSTS: 'jira.corp.example, 10.1.2.3, 10.20.0.0/16, fd00::/8, localhost.', OUTBOUND_ALLOW_HTTP: '1', OUTBOUND_PORTS: '443, 8443', SMTP_URL: 'smtps://mail.example:465', SMTP_FROM: 'aegis@example.com' });
        expect(config.outbound).to.include({ allow: ['jira.corp.example', '10.1.2.3', '10.20.0.0/16', 'fd00::/8', 'localhost.'], allowHttp: true, ports: [443, 8443] });
        expect(config.smtp).to.equal({ url: 'smtps://mail.example:465', from: 'aegis@example.com' });
    });

    it('keeps a generated secret key in the data directory when AEGIS_SECRET_KEY is unset', () => {

        const dataDir = Path.join(Os.tmpdir(), `aegis-key-${process.pid}-${Date.now()}`);
        try {
            const key = resolveSecretKey({ dataDir, secretKey: undefined });
            expect(key.length).to.equal(32);
            expect(resolveSecretKey({ dataDir, secretKey: undefined })).to.equal(key);
            expect(Fs.statSync(Path.join(dataDir, 'secret-key')).mode & 0o777).to.equal(0o600);

            const given = Crypto.randomBytes(32);
            expect(resolveSecretKey({ dataDir, secretKey: given })).to.equal(given);

            Fs.writeFileSync(Path.join(dataDir, 'secret-key'), 'c2hvcnQ=');
            expect(() => resolveSecretKey({ dataDir, secretKey: undefined })).to.throw(/secret-key does not hold a 32-byte base64 key/);
        }
        finally {
            Fs.rmSync(dataDir, { recursive: true, force: true });
        }
    });

    it('configures S3, TLS cookies and lists from the environment', () => {

        const config = loadConfig({ S3_ENDPOINT: 'minio.internal', S3_ACCESS_KEY: 'ak', S3_SECRET_KEY: 'sk', AEGIS_PUBLIC_URL: 'https://aegis.example.com', CORS_ORIGINS: 'https://a.example, https://b.example', UPLOAD_ALLOWED_TYPES: 'image/png,application/pdf', METRICS_PORT: '9464', WORKER_METRICS_PORT: '9465', RELAY_RETENTION_DAYS: '30' });
        expect(config.metrics).to.equal({ host: '127.0.0.1', port: 9464, workerPort: 9465 });
        expect(config.relay.retentionDays).to.equal(30);
        expect(config.storage).to.include({ driver: 's3', endPoint: 'minio.internal', bucket: 'aegis-evidence', port: 9000 });
        expect(config.cookie.secure).to.be.true();
        expect(config.cors.origins).to.equal(['https://a.example', 'https://b.example']);
        expect(config.uploads.allowedTypes).to.equal(['image/png', 'application/pdf']);
    });

    it('refuses bad values, naming each variable and never printing its value', () => {

        const secret = 'short-secret';
        const attempt = () => loadConfig({
            PORT: 'eighty', DATABASE_URL: 'mysql://x', JWT_SECRET: secret, JWT_TTL_SECONDS: '86400', S3_ENDPOINT: 'minio', LOG_LEVEL: 'loud',
            AEGIS_SECRET_KEY: secret, OUTBOUND_ALLOW_HOSTS: 'jira.corp, not a host!, 10.0.0.0/99', OUTBOUND_PORTS: 'https', SMTP_URL: 'smtp://mail.example',
            COVERAGE_STALENESS_DAYS: '0', RELAY_RETENTION_DAYS: '0', METRICS_PORT: '99999'
        });
        expect(attempt).to.throw(ConfigError);
        try {
            attempt();
        }
        catch (err) {
            const message = (err as Error).message;
            for (const name of ['PORT', 'DATABASE_URL', 'JWT_SECRET', 'JWT_TTL_SECONDS', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'LOG_LEVEL', 'OUTBOUND_PORTS', 'SMTP_FROM', 'COVERAGE_STALENESS_DAYS', 'RELAY_RETENTION_DAYS', 'METRICS_PORT']) {
                expect(message).to.include(name);
            }

            expect(message).to.include('AEGIS_SECRET_KEY: must be 32 bytes written in base64 or hex');
            expect(message).to.include('OUTBOUND_ALLOW_HOSTS: has 2 entries that are not a host name, an IP address or a CIDR range');
            expect(message).to.not.include('not a host!');

            expect(message).to.not.include(secret);
            expect(message).to.not.include('mysql');
        }
    });
});


describe('Log format', () => {

    it('prints readable lines to a terminal in development, JSON everywhere else, and LOG_FORMAT decides when set', () => {

        expect(loadConfig({}, { stdoutIsTTY: true }).logFormat).to.equal('pretty');
        expect(loadConfig({ NODE_ENV: 'development' }, { stdoutIsTTY: true }).logFormat).to.equal('pretty');
        expect(loadConfig({}, { stdoutIsTTY: false }).logFormat).to.equal('json');
        expect(loadConfig({ NODE_ENV: 'production' }, { stdoutIsTTY: true }).logFormat).to.equal('json');
        expect(loadConfig({ NODE_ENV: 'test' }, { stdoutIsTTY: true }).logFormat).to.equal('json');
        expect(loadConfig({ LOG_FORMAT: 'json' }, { stdoutIsTTY: true }).logFormat).to.equal('json');
        expect(loadConfig({ NODE_ENV: 'production', LOG_FORMAT: 'pretty' }, { stdoutIsTTY: false }).logFormat).to.equal('pretty');
        expect(() => loadConfig({ LOG_FORMAT: 'colour' })).to.throw(ConfigError, 'Invalid configuration:\n  LOG_FORMAT: must be one of [json, pretty]');

        // bin/start.ts makes the same choice for its two children from its own stdout
        expect([defaultLogFormat(undefined, true), defaultLogFormat('', true), defaultLogFormat('development', false), defaultLogFormat('production', true)]).to.equal(['pretty', 'pretty', 'json', 'json']);
    });

    it('writes a readable line per entry in the pretty format, still redacting credentials', () => {

        const written: string[] = [];
        const logger = createLogger({ level: 'info', name: 'aegis-worker', format: 'pretty', destination: { write: (line: string) => written.push(line) } });
        logger.error({ job: 'attack-sync', password: 'hunter2-hunter2' }, 'attack-sync failed: ATT&CK import failed: /data/enterprise-attack.json: file not found.');
        logger.debug('below the level');

        expect(written.length).to.equal(1);
        expect(written[0]).to.match(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] ERROR \(aegis-worker\): attack-sync failed: ATT&CK import failed: \/data\/enterprise-attack\.json: file not found\.\n {4}job: "attack-sync"\n {4}password: "\[redacted\]"\n$/);
        expect(() => JSON.parse(written[0]!)).to.throw();
    });

    it('writes one JSON object per line in the json format', () => {

        const written: string[] = [];
        const logger = createLogger({ level: 'info', name: 'aegis-api', format: 'json', destination: { write: (line: string) => written.push(line) } });
        logger.info({ token: 'abc' }, 'api listening');

        const line = JSON.parse(written[0]!);
        expect(line).to.include({ level: 30, name: 'aegis-api', token: '[redacted]', msg: 'api listening' });
        expect(new Date(line.time).toISOString()).to.equal(line.time);
    });
});


describe('Password policy', () => {

    it('accepts a long unusual passphrase and refuses the weak ones, counting code points', () => {

        expect(() => checkPasswordPolicy('Correct-Horse-Battery-9', { username: 'alice' })).to.not.throw();
        expect(() => checkPasswordPolicy('ééé-çàü-ñöß-€ø', { username: 'alice' })).to.not.throw();

        for (const weak of ['short', 'password1234', 'Password1234!', 'qwertyuiop', '111111111111', 'aegis-aegis-aegis', 'my-alice-password', 'abababababab', '🔥'.repeat(11)]) {
            expect(() => checkPasswordPolicy(weak, { username: 'alice' }), weak).to.throw();
        }

        expect(() => checkPasswordPolicy('x'.repeat(129), { username: 'alice' })).to.throw(/12 to 128/);
    });
});
