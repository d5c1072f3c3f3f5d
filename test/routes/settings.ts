import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import Pino from 'pino';

import { OutboundHttp } from '../../integrations/http';
import { AuditLog, Setting } from '../../server/models';
import { createServer } from '../../server/server';
import { SecretBox } from '../../server/services/secret-box';
import { SettingsService } from '../../server/services/settings';

import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after, afterEach } = lab;


const internals = {
    password: 'smtp-Pa55word-that-must-never-leak',
    token: 'jira-api-token-that-must-never-leak',

    defaults: (overrides: Record<string, unknown> = {}) => [
        { key: 'smtp', value: null, is_default: true, updated_by: null, updated_at: null },
        { key: 'jira', value: null, is_default: true, updated_by: null, updated_at: null },
        { key: 'coverage.staleness_days', value: 90, is_default: true, updated_by: null, updated_at: null },
        { key: 'scores.weights', value: { prevented: 100, alerted: 90, logged: 40, not_detected: 0 }, is_default: true, updated_by: null, updated_at: null },
        { key: 'scores.half_life_days', value: 180, is_default: true, updated_by: null, updated_at: null },
        { key: 'risk.likelihood_saturation', value: 31, is_default: true, updated_by: null, updated_at: null },
        // documents (issue 13)
        { key: 'reports.external_recipients', value: false, is_default: true, updated_by: null, updated_at: null },
        // detection (issue 11)
        { key: 'detection.half_life_days', value: 180, is_default: true, updated_by: null, updated_at: null },
        { key: 'detection.weights', value: { prevented: 100, alerted: 100, logged: 50 }, is_default: true, updated_by: null, updated_at: null },
        // second factors (issue 15)
        { key: 'auth.second_factor_required_roles', value: [], is_default: true, updated_by: null, updated_at: null },
        // sso (issue 15, OIDC)
        { key: 'sso.oidc', value: null, is_default: true, updated_by: null, updated_at: null },
        // sso (issue 15, SAML)
        { key: 'sso.saml', value: null, is_default: true, updated_by: null, updated_at: null }
    ].map((item) => ({ ...item, ...(overrides[item.key] as object) }))
};


describe('Settings', () => {

    let context: TestContext;

    before(async () => {

        // The operator allows one on-premises address for the URL fields; everything else internal stays refused
        context = await init({ redis: false, env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1' } });
    });

    after(async () => {

        await context.stop();
    });

    afterEach(async () => {

        await Setting.query(context.knex).delete();
    });

    const put = (key: string, value: unknown) => context.server.inject({ method: 'PUT', url: `/api/v1/system/settings/${key}`, auth: context.as('admin'), payload: { value } });

    it('lists every key with its default, its description and no secret', async () => {

        const res = await context.server.inject({ method: 'GET', url: '/api/v1/system/settings', auth: context.as('admin') });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body).to.include({ total: internals.defaults().length, limit: 50, offset: 0 });
        expect(body.items.map(({ description, ...item }: { description: string }) => item)).to.equal(internals.defaults());
        expect(body.items.every((item: { description: string }) => item.description.length > 10)).to.be.true();

        const window = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/settings?limit=2&offset=1', auth: context.as('admin') })).payload);
        expect(window.items.map((item: { key: string }) => item.key)).to.equal(['jira', 'coverage.staleness_days']);

        const sorted = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/settings?sort=key&order=desc', auth: context.as('admin') })).payload);
        expect(sorted.items.map((item: { key: string }) => item.key)).to.equal(['sso.saml', 'sso.oidc', 'smtp', 'scores.weights', 'scores.half_life_days', 'risk.likelihood_saturation', 'reports.external_recipients', 'jira', 'detection.weights', 'detection.half_life_days', 'coverage.staleness_days', 'auth.second_factor_required_roles']);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/system/settings?sort=value', auth: context.as('admin') })).statusCode).to.equal(400);
    });

    it('stores a value, answers secrets as { set } only, keeps them encrypted at rest and out of the audit trail', async () => {

        const admin = context.users.admin;
        const res = await put('smtp', { host: 'mail.example.test', port: 2525, username: 'aegis', password: internals.password, from: 'aegis@example.test' });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body).to.include({ key: 'smtp', is_default: false, updated_by: admin.id });
        expect(body.value).to.equal({ host: 'mail.example.test', port: 2525, secure: false, username: 'aegis', password: { set: true }, from: 'aegis@example.test' });
        expect(res.payload).to.not.include(internals.password);

        const row = await context.knex('settings').where({ key: 'smtp' }).first();
        expect(row.value).to.equal({ host: 'mail.example.test', port: 2525, secure: false, username: 'aegis', from: 'aegis@example.test' });
        expect(row.secret_iv.length).to.equal(12);
        expect(row.secret_tag.length).to.equal(16);
        expect(JSON.stringify(row)).to.not.include(internals.password);
        expect(row.secret_ciphertext.includes(Buffer.from(internals.password))).to.be.false();

        const audit = await AuditLog.query(context.knex).where({ action: 'settings.update', entity_id: 'smtp' }).orderBy('created_at', 'desc').first();
        expect(audit).to.include({ actor_id: admin.id, entity_type: 'setting', outcome: 'success' });
        expect(audit!.details).to.equal({ value: row.value, write_only_changed: ['password'] });
        expect(JSON.stringify(audit)).to.not.include(internals.password);

        // The code that sends mail reads the decrypted value
        expect(await context.services.settings.get('smtp')).to.equal({ ...row.value, password: internals.password });

        // A secret left out keeps its value; null clears it
        const kept = JSON.parse((await put('smtp', { host: 'relay.example.test', from: 'aegis@example.test' })).payload);
        expect(kept.value).to.equal({ host: 'relay.example.test', port: 587, secure: false, password: { set: true }, from: 'aegis@example.test' });
        expect((await context.services.settings.get('smtp'))!.password).to.equal(internals.password);
        const lastAudit = await AuditLog.query(context.knex).where({ action: 'settings.update', entity_id: 'smtp' }).orderBy('created_at', 'desc').first();
        expect(lastAudit!.details).to.equal({ value: { host: 'relay.example.test', port: 587, secure: false, from: 'aegis@example.test' }, write_only_changed: [] });

        const cleared = JSON.parse((await put('smtp', { host: 'relay.example.test', from: 'aegis@example.test', password: null })).payload);
        expect(cleared.value.password).to.equal({ set: false });
        expect(await context.services.settings.get('smtp')).to.equal({ host: 'relay.example.test', port: 587, secure: false, from: 'aegis@example.test' });
        expect((await context.knex('settings').where({ key: 'smtp' }).first()).secret_ciphertext).to.be.null();

        const one = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/settings/smtp', auth: context.as('admin') })).payload);
        expect(one).to.equal(cleared);
    });

    it('stores scalar and object values and resets them to their defaults', async () => {

        const days = await put('coverage.staleness_days', 30);
        expect(days.statusCode).to.equal(200);
        expect(JSON.parse(days.payload)).to.include({ key: 'coverage.staleness_days', value: 30, is_default: false });
        expect(await context.services.settings.get('coverage.staleness_days')).to.equal(30);

        await put('scores.weights', { prevented: 100, alerted: 80, logged: 30, not_detected: 0 });
        const list = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/settings', auth: context.as('admin') })).payload);
        const changed = list.items.filter((item: { is_default: boolean }) => !item.is_default).map((item: { key: string; value: unknown }) => [item.key, item.value]);
        expect(changed).to.equal([['coverage.staleness_days', 30], ['scores.weights', { prevented: 100, alerted: 80, logged: 30, not_detected: 0 }]]);

        const reset = await context.server.inject({ method: 'DELETE', url: '/api/v1/system/settings/coverage.staleness_days', auth: context.as('admin') });
        expect(reset.statusCode).to.equal(200);
        expect(JSON.parse(reset.payload)).to.include({ key: 'coverage.staleness_days', value: 90, is_default: true, updated_by: null, updated_at: null });
        expect(await context.services.settings.get('coverage.staleness_days')).to.equal(90);
        expect(await AuditLog.query(context.knex).where({ action: 'settings.reset', entity_id: 'coverage.staleness_days' }).resultSize()).to.equal(1);

        // Resetting a key already at its default changes and audits nothing
        expect((await context.server.inject({ method: 'DELETE', url: '/api/v1/system/settings/coverage.staleness_days', auth: context.as('admin') })).statusCode).to.equal(200);
        expect(await AuditLog.query(context.knex).where({ action: 'settings.reset', entity_id: 'coverage.staleness_days' }).resultSize()).to.equal(1);
    });

    it('refuses bad values with 400 and the field names, and unknown keys with 404, changing nothing', async () => {

        const cases: [string, unknown, string[]][] = [
            ['coverage.staleness_days', 0, ['value']],
            ['coverage.staleness_days', 'ninety', ['value']],
            ['scores.half_life_days', 1.5, ['value']],
            ['scores.weights', { prevented: 101, alerted: 90, logged: 40 }, ['value.prevented', 'value.not_detected']],
            ['smtp', { host: 'not a host', from: 'nobody', port: 0 }, ['value.host', 'value.port', 'value.from']],
            ['smtp', { host: 'mail.example.test', from: 'aegis@example.test', password: '' }, ['value.password']],
            ['smtp', { host: 'mail.example.test', from: 'aegis@example.test', relay: true }, ['value.relay']],
            ['smtp', null, ['value']],
            ['jira', { url: 'ftp://jira.example.test', username: 'aegis' }, ['value.url']]
        ];

        for (const [key, value, fields] of cases) {
            const res = await put(key, value);
            expect(res.statusCode, `${key} ${JSON.stringify(value)}`).to.equal(400);
            expect(JSON.parse(res.payload)).to.include({ code: 'validation_failed', fields });
        }

        await expect(context.services.settings.set(context.actor('admin'), 'coverage.staleness_days', undefined)).to.reject(/is required/);
        const unknown = await put('no.such.key', 1);
        expect(unknown.statusCode).to.equal(404);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/system/settings/constructor', auth: context.as('admin') })).statusCode).to.equal(404);
        expect((await context.server.inject({ method: 'PUT', url: '/api/v1/system/settings/smtp', auth: context.as('admin'), payload: { host: 'x' } })).statusCode).to.equal(400);
        expect((await context.server.inject({ method: 'GET', url: '/api/v1/system/settings/Bad%20Key', auth: context.as('admin') })).statusCode).to.equal(400);
        expect(await Setting.query(context.knex).resultSize()).to.equal(0);
    });

    it('checks URL fields against the outbound address rules when they are saved', async () => {

        for (const url of ['https://169.254.169.254/', 'https://localhost/', 'https://2130706434/', 'https://0x7f000002/', 'https://[::ffff:127.0.0.2]/', 'https://10.0.0.1/', 'https://0.0.0.0/', 'http://127.0.0.1/', 'https://93.184.216.34:22/', 'https://user:pass@127.0.0.1/']) {
            const res = await put('jira', { url, username: 'aegis', api_token: internals.token });
            expect(res.statusCode, url).to.equal(400);
            const body = JSON.parse(res.payload);
            expect(body).to.include({ code: 'url_not_allowed', fields: ['value.url'] });
            expect(res.payload).to.not.include(internals.token);
        }

        expect(await Setting.query(context.knex).resultSize()).to.equal(0);

        // The address the operator allowed (OUTBOUND_ALLOW_HOSTS), in any form, on any port, normalised
        const res = await put('jira', { url: 'https://2130706433:8443/jira', username: 'aegis', api_token: internals.token });
        expect(res.statusCode).to.equal(200);
        expect(JSON.parse(res.payload).value).to.equal({ url: 'https://127.0.0.1:8443/jira', username: 'aegis', api_token: { set: true }, personal_access_token: { set: false }, webhook_secret: { set: false } });
    });

    it('never writes a secret to the request log, whether the change succeeds, fails validation or the mail it is used for fails', async () => {

        const lines: string[] = [];
        const logger = Pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
        const server = await createServer({ config: context.config, services: context.services, logger, version: 'test' });
        const auth = context.as('admin');
        const inject = (method: string, url: string, payload?: object) => server.inject({ method, url, auth, ...(payload ? { payload } : {}) });

        const smtp = { host: '127.0.0.1', port: 1, username: 'aegis', password: internals.password, from: 'aegis@example.test' };
        expect((await inject('PUT', '/api/v1/system/settings/smtp', { value: smtp })).statusCode).to.equal(200);
        expect((await inject('PUT', '/api/v1/system/settings/smtp', { value: { ...smtp, port: 'none' } })).statusCode).to.equal(400);
        expect((await inject('PUT', '/api/v1/system/settings/smtp', { value: smtp, extra: internals.password })).statusCode).to.equal(400);
        expect((await inject('PUT', '/api/v1/system/settings/jira', { value: { url: 'https://10.0.0.1/', username: 'aegis', api_token: internals.token } })).statusCode).to.equal(400);
        expect((await inject('POST', '/api/v1/system/email/test', { to: 'soc@example.test' })).statusCode).to.equal(502);
        await server.stop();

        expect(lines.length).to.be.above(4);
        const log = lines.join('');
        expect(log).to.include('/api/v1/system/settings/smtp');
        expect(log).to.not.include(internals.password);
        expect(log).to.not.include(internals.token);
    });

    it('answers 409 secret_unreadable for a secret sealed under another key or altered, and lets it be set again', async () => {

        await put('smtp', { host: 'mail.example.test', from: 'aegis@example.test', password: internals.password });
        const other = new SettingsService({ knex: context.knex, audit: context.services.audit, outbound: new OutboundHttp(), secretKey: Crypto.randomBytes(32) });

        await expect(other.get('smtp')).to.reject(/encrypted under another AEGIS_SECRET_KEY, or altered/);
        expect((await other.describe(context.actor('admin'), 'smtp')).value).to.include({ password: { set: true } });
        await expect(other.set(context.actor('admin'), 'smtp', { host: 'mail.example.test', from: 'aegis@example.test' })).to.reject(/set them again/);

        const replaced = await other.set(context.actor('admin'), 'smtp', { host: 'mail.example.test', from: 'aegis@example.test', password: 'new-password-1' });
        expect(replaced.value).to.include({ password: { set: true } });
        expect((await other.get('smtp'))!.password).to.equal('new-password-1');

        const res = await context.server.inject({ method: 'POST', url: '/api/v1/system/email/test', auth: context.as('admin'), payload: { to: 'someone@example.test' } });
        expect(res.statusCode).to.equal(409);
        expect(JSON.parse(res.payload)).to.include({ code: 'secret_unreadable' });

        // Tampering with the ciphertext, or moving it to another key, does not open either
        await put('smtp', { host: 'mail.example.test', from: 'aegis@example.test', password: internals.password });
        const row = await context.knex('settings').where({ key: 'smtp' }).first();
        row.secret_ciphertext[0] ^= 1;
        await context.knex('settings').where({ key: 'smtp' }).update({ secret_ciphertext: row.secret_ciphertext });
        await expect(context.services.settings.get('smtp')).to.reject(/cannot be decrypted/);

        const box = new SecretBox(Crypto.randomBytes(32));
        const sealed = box.seal('smtp', 'x');
        expect(box.open('smtp', sealed)).to.equal('x');
        expect(box.open('jira', sealed)).to.be.undefined();
    });
});
