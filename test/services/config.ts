import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { ConfigError, defaultUploadTypes, loadConfig } from '../../server/config';
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
        expect(config.relay).to.equal({ pollMs: 1000, maxAttempts: 8, retentionDays: 7 });
        expect(config.metrics).to.equal({ host: '127.0.0.1', port: undefined, workerPort: undefined });
        expect(Object.isFrozen(config)).to.be.true();
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
        const attempt = () => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', JWT_SECRET: secret, JWT_TTL_SECONDS: '86400', S3_ENDPOINT: 'minio', LOG_LEVEL: 'loud', RELAY_RETENTION_DAYS: '0', METRICS_PORT: '99999' });
        expect(attempt).to.throw(ConfigError);
        try {
            attempt();
        }
        catch (err) {
            const message = (err as Error).message;
            for (const name of ['PORT', 'DATABASE_URL', 'JWT_SECRET', 'JWT_TTL_SECONDS', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'LOG_LEVEL', 'RELAY_RETENTION_DAYS', 'METRICS_PORT']) {
                expect(message).to.include(name);
            }

            expect(message).to.not.include(secret);
            expect(message).to.not.include('mysql');
        }
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
