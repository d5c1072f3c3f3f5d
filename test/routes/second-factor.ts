import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { AuditLog, Notification, SecondFactorChallenge, User, UserRecoveryCode, UserSecondFactor } from '../../server/models';
import type { Role } from '../../server/policy';

import { challengeOf, codeAt, enrolled, expectSessionSemantics, fromBase32, steadyStep } from '../helpers/second-factor';
import { init, login, origin, password, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// The wrong codes and passwords of this file come from an address of its own, so that they count against no other
// test's address in the login throttle
const address = `172.${Crypto.randomInt(16, 32)}.${Crypto.randomInt(0, 250)}.${Crypto.randomInt(1, 250)}`;


const internals = {
    network: () => `10.${Crypto.randomInt(100, 250)}.${Crypto.randomInt(0, 250)}`,

    address,

    // What a refusal must leave as it was: the user's factor, codes, challenges and login stamp
    snapshot: async (context: TestContext, userId: string): Promise<{ factor: object | undefined; codes: object[]; challenges: object[]; user: object | undefined }> => ({
        factor: await UserSecondFactor.query(context.knex).findById(userId),
        codes: await UserRecoveryCode.query(context.knex).where({ user_id: userId }).orderBy('id'),
        challenges: await SecondFactorChallenge.query(context.knex).where({ user_id: userId }).orderBy('id'),
        user: await User.query(context.knex).findById(userId).select('last_login_at', 'token_version')
    }),

    post: (context: TestContext, url: string, payload: object, headers: Record<string, string> = {}, remoteAddress = address) => context.server.inject({ method: 'POST', url, payload, headers, remoteAddress }),

    second: (context: TestContext, payload: object, remoteAddress?: string) => internals.post(context, '/api/v1/auth/login/second-factor', payload, {}, remoteAddress),

    body: (res: { payload: string }) => {

        const { request_id: requestId, ...rest } = JSON.parse(res.payload);
        return rest;
    },

    // Runs with roles requiring a second factor, then puts the setting back (tests run one at a time)
    requiring: async (context: TestContext, roles: Role[], work: () => Promise<void>) => {

        await context.services.settings.set(context.actor('admin'), 'auth.second_factor_required_roles', roles);
        try {
            await work();
        }
        finally {
            await context.services.settings.reset(context.actor('admin'), 'auth.second_factor_required_roles');
        }
    }
};


describe('Second factors', () => {

    let context: TestContext;

    before(async () => {

        context = await init();
    });

    after(async () => {

        await context.stop();
    });

    describe('enrolment (POST /auth/second-factor/totp, /confirm, GET /auth/second-factor)', () => {

        it('enrols a TOTP factor: URI, secret and QR code, then the first code confirms it and answers ten recovery codes once', async () => {

            const user = await context.createUser('blue_tech');
            const { authorization } = await login(context.server, user.username);

            const initial = await context.server.inject({ method: 'GET', url: '/api/v1/auth/second-factor', headers: { authorization } });
            expect(initial.result).to.equal({ enabled: false, method: null, pending: false, required: false, managed_by_identity_provider: false, confirmed_at: null, last_used_at: null, recovery_codes_remaining: 0 });

            const started = await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization });
            expect(started.statusCode).to.equal(201);
            const enrolment = started.result as { method: string; otpauth_uri: string; secret: string; qr_code: string };
            expect(Object.keys(enrolment).sort()).to.equal(['method', 'otpauth_uri', 'qr_code', 'secret']);
            expect(enrolment.method).to.equal('totp');
            expect(enrolment.secret).to.match(/^[A-Z2-7]{32}$/);
            expect(fromBase32(enrolment.secret)).to.have.length(20);
            expect(enrolment.otpauth_uri).to.equal(`otpauth://totp/Aegis:${user.username}?secret=${enrolment.secret}&issuer=Aegis&algorithm=SHA1&digits=6&period=30`);
            expect(enrolment.qr_code).to.startWith('data:image/svg+xml;base64,');
            expect(Buffer.from(enrolment.qr_code.split(',')[1]!, 'base64').toString()).to.startWith('<svg xmlns="http://www.w3.org/2000/svg"');

            const pending = await context.server.inject({ method: 'GET', url: '/api/v1/auth/second-factor', headers: { authorization } });
            expect(pending.result).to.include({ enabled: false, pending: true, recovery_codes_remaining: 0 });

            // Stored encrypted: neither the secret's bytes nor its base32 are in the row, nor in the audit
            const row = await context.knex('user_second_factors').where({ user_id: user.id }).first();
            expect(row.secret_ciphertext.includes(fromBase32(enrolment.secret))).to.be.false();
            expect(JSON.stringify(row)).to.not.include(enrolment.secret);
            expect(JSON.stringify(await AuditLog.query(context.knex).where({ actor_id: user.id }))).to.not.include(enrolment.secret);

            // A pending factor asks nothing at the login
            expect((await login(context.server, user.username)).token).to.be.a.string();

            const step = await steadyStep();
            const confirmed = await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: codeAt(enrolment.secret, step) }, { authorization });
            expect(confirmed.statusCode).to.equal(200);
            const codes = (confirmed.result as { recovery_codes: string[] }).recovery_codes;
            expect(codes).to.have.length(10);
            expect(new Set(codes).size).to.equal(10);
            for (const code of codes) {
                expect(code).to.match(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
            }

            // Stored as hashes only
            const stored = await UserRecoveryCode.query(context.knex).where({ user_id: user.id });
            expect(stored).to.have.length(10);
            expect(JSON.stringify(stored)).to.not.include(codes[0]!);
            expect(stored.map((item) => item.code_hash)).to.include(Crypto.createHash('sha256').update(codes[0]!.replace(/-/g, '')).digest('hex'));

            const status = await context.server.inject({ method: 'GET', url: '/api/v1/auth/second-factor', headers: { authorization } });
            expect(status.result).to.include({ enabled: true, method: 'totp', pending: false, required: false, recovery_codes_remaining: 10 });
            expect(await AuditLog.query(context.knex).where({ action: 'auth.second_factor.enable', entity_id: user.id })).to.have.length(1);

            // The confirming code was spent: it does not also open a login
            const challenge = await challengeOf(context.server, user.username);
            expect((await internals.second(context, { challenge, code: codeAt(enrolment.secret, step) })).statusCode).to.equal(401);
        });

        it('refuses a wrong password, a wrong confirming code, a confirmation with nothing pending and a second factor, writing nothing', async () => {

            const user = await context.createUser('red_tech');
            const { authorization } = await login(context.server, user.username);

            const wrong = await internals.post(context, '/api/v1/auth/second-factor/totp', { password: 'Not-the-password-1' }, { authorization });
            expect(wrong.statusCode).to.equal(400);
            expect(internals.body(wrong)).to.equal({ statusCode: 400, error: 'Bad Request', message: 'The current password is wrong', code: 'invalid_current_password', fields: ['password'] });
            expect(await UserSecondFactor.query(context.knex).findById(user.id)).to.not.exist();

            const nothing = await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: '123456' }, { authorization });
            expect(nothing.statusCode).to.equal(409);
            expect((nothing.result as { code: string }).code).to.equal('no_pending_enrolment');

            const started = await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization });
            const secret = (started.result as { secret: string }).secret;
            const unchanged = await internals.snapshot(context, user.id);
            const step = await steadyStep();
            const badCode = await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: codeAt(secret, step + 5) }, { authorization });
            expect(badCode.statusCode).to.equal(400);
            expect(internals.body(badCode)).to.equal({ statusCode: 400, error: 'Bad Request', message: 'The code is wrong, expired or already used: enter the current code from your authenticator app', code: 'invalid_code', fields: ['code'] });
            expect(await internals.snapshot(context, user.id)).to.equal(unchanged);
            expect(await AuditLog.query(context.knex).where({ action: 'auth.second_factor.enable', entity_id: user.id, outcome: 'failure' })).to.have.length(1);

            for (const payload of [{}, { code: '12345' }, { code: 'abcdef' }, { code: '123456', extra: 1 }, { code: 123456 }]) {
                const res = await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', payload, { authorization });
                expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
            }

            expect(await internals.snapshot(context, user.id)).to.equal(unchanged);
            expect((await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: codeAt(secret, step) }, { authorization })).statusCode).to.equal(200);

            const again = await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization });
            expect(again.statusCode).to.equal(409);
            expect((again.result as { code: string }).code).to.equal('second_factor_exists');
            const twice = await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: codeAt(secret, step + 1) }, { authorization });
            expect(twice.statusCode).to.equal(409);
            expect((twice.result as { code: string }).code).to.equal('second_factor_exists');
        });

        it('replaces a pending enrolment when started again: only the newest secret confirms', async () => {

            const user = await context.createUser('viewer');
            const { authorization } = await login(context.server, user.username);
            const first = ((await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization })).result as { secret: string }).secret;
            const second = ((await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization })).result as { secret: string }).secret;
            expect(first).to.not.equal(second);
            const step = await steadyStep();
            expect((await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: codeAt(first, step) }, { authorization })).statusCode).to.equal(400);
            expect((await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: codeAt(second, step) }, { authorization })).statusCode).to.equal(200);
        });

        it('leaves SSO users to their identity provider, and refuses API keys and temporary passwords', async () => {

            const sso = await context.createUser('red_lead');
            await context.knex('users').where({ id: sso.id }).update({ auth_provider: 'saml', external_id: `saml-${sso.id}`, password_hash: null });
            const ssoUser = (await User.query(context.knex).findById(sso.id))!;
            const auth = { strategy: 'jwt-bearer', credentials: { user: ssoUser, scope: ['red_lead'], app: {} } };

            const status = await context.server.inject({ method: 'GET', url: '/api/v1/auth/second-factor', auth });
            expect(status.result).to.include({ enabled: false, managed_by_identity_provider: true, required: false });
            const start = await context.server.inject({ method: 'POST', url: '/api/v1/auth/second-factor/totp', auth, payload: { password } });
            expect(start.statusCode).to.equal(409);
            expect((start.result as { code: string }).code).to.equal('sso_account');
            expect(await UserSecondFactor.query(context.knex).findById(sso.id)).to.not.exist();

            // Exempt even when the role requires a factor
            await internals.requiring(context, ['red_lead'], async () => {

                expect(await context.services.secondFactors.requiredFor(ssoUser)).to.be.false();
                expect(await context.knex.transaction((trx) => context.services.secondFactors.challengeAtLogin(trx, ssoUser))).to.be.null();
                expect(await context.services.secondFactors.requiredFor((await User.query(context.knex).findById(context.users.red_lead.id))!)).to.be.true();
            });

            const owner = await context.createUser('blue_lead');
            const { authorization } = await login(context.server, owner.username);
            const key = await internals.post(context, '/api/v1/api-keys', { name: `key-${Crypto.randomUUID()}`, scope: 'admin' }, { authorization });
            const apiKey = `Bearer ${(key.result as { key: string }).key}`;
            const byKey = await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization: apiKey });
            expect(byKey.statusCode).to.equal(403);
            expect((byKey.result as { code: string }).code).to.equal('interactive_session_required');

            const temporary = await context.createUser('viewer', { must_change_password: true });
            const session = await login(context.server, temporary.username);
            const confined = await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization: session.authorization });
            expect(confined.statusCode).to.equal(403);
            expect((confined.result as { code: string }).code).to.equal('password_change_required');
        });
    });

    describe('login with a second factor (POST /auth/login, /auth/login/second-factor)', () => {

        it('answers a challenge, no session and no cookie, to the password; the code then ends in the same session as a password login', async () => {

            const { user, secret, step } = await enrolled(context, 'blue_lead');
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password } });
            expect(res.statusCode).to.equal(200);
            expect(res.headers['set-cookie']).to.not.exist();
            const body = res.result as Record<string, unknown>;
            expect(Object.keys(body).sort()).to.equal(['challenge', 'enrolment_required', 'expires_at', 'methods', 'second_factor_required']);
            expect(body).to.include({ second_factor_required: true, enrolment_required: false, methods: ['totp', 'recovery_code'] });
            expect(body.challenge).to.match(/^[A-Za-z0-9_-]{43}$/);
            expect(new Date(body.expires_at as string).getTime()).to.be.within(Date.now() + 290_000, Date.now() + 301_000);
            expect(await AuditLog.query(context.knex).where({ action: 'auth.login', actor_id: user.id })).to.have.length(1);       // the enrolment's own login
            expect(await SecondFactorChallenge.query(context.knex).where({ user_id: user.id })).to.have.length(1);
            expect(JSON.stringify(await SecondFactorChallenge.query(context.knex).where({ user_id: user.id }))).to.not.include(body.challenge as string);

            const second = await internals.second(context, { challenge: body.challenge, code: codeAt(secret, step) });
            await expectSessionSemantics(context, second, user.id);
            const audit = await AuditLog.query(context.knex).where({ action: 'auth.login', actor_id: user.id }).orderBy('created_at', 'desc').first();
            expect(audit!.details).to.equal({ second_factor: 'totp' });

            // The password login of a user without a factor: the same semantics
            const plain = await context.createUser('blue_lead');
            await expectSessionSemantics(context, await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: plain.username, password } }), plain.id);
        });

        it('refuses a wrong code, a replayed code, an expired, reused, unknown or enrolment challenge with 401, writing nothing', async () => {

            const { user, secret, step } = await enrolled(context, 'red_lead');
            const challenge = await challengeOf(context.server, user.username);
            const unchanged = await internals.snapshot(context, user.id);

            const wrong = await internals.second(context, { challenge, code: codeAt(secret, step + 7) });
            expect(wrong.statusCode).to.equal(401);
            expect(internals.body(wrong)).to.equal({ statusCode: 401, error: 'Unauthorized', message: 'The code is wrong, expired or already used: enter the current code from your authenticator app, or a recovery code', code: 'invalid_second_factor' });
            expect(wrong.headers['set-cookie']).to.not.exist();

            // Replay: the code that confirmed the enrolment (step - 1) was used
            const replayed = await internals.second(context, { challenge, code: codeAt(secret, step - 1) });
            expect(replayed.statusCode).to.equal(401);
            expect((replayed.result as { code: string }).code).to.equal('invalid_second_factor');
            const unknownRecovery = await internals.second(context, { challenge, recovery_code: 'aaaa-bbbb-cccc-dddd' });
            expect(unknownRecovery.statusCode).to.equal(401);
            expect(await internals.snapshot(context, user.id)).to.equal(unchanged);
            expect(await AuditLog.query(context.knex).where({ action: 'auth.login', entity_id: user.id, outcome: 'failure' })).to.have.length(3);

            // The challenge survives wrong codes; the right one ends it
            const ok = await internals.second(context, { challenge, code: codeAt(secret, step) });
            expect(ok.statusCode).to.equal(200);

            const reused = await internals.second(context, { challenge, code: codeAt(secret, step + 1) });
            expect(reused.statusCode).to.equal(401);
            expect(internals.body(reused)).to.equal({ statusCode: 401, error: 'Unauthorized', message: 'The login challenge is unknown, used or expired: log in again with your password', code: 'challenge_invalid' });

            // The same code a second time, with a fresh challenge: replay refused
            const fresh = await challengeOf(context.server, user.username);
            const replay = await internals.second(context, { challenge: fresh, code: codeAt(secret, step) });
            expect(replay.statusCode).to.equal(401);
            expect((replay.result as { code: string }).code).to.equal('invalid_second_factor');

            // Expired
            await context.knex('second_factor_challenges').where({ user_id: user.id, used_at: null }).update({ expires_at: new Date(Date.now() - 1000) });
            const expiredUnchanged = await internals.snapshot(context, user.id);
            const expired = await internals.second(context, { challenge: fresh, code: codeAt(secret, step + 1) });
            expect(expired.statusCode).to.equal(401);
            expect((expired.result as { code: string }).code).to.equal('challenge_invalid');
            expect(await internals.snapshot(context, user.id)).to.equal(expiredUnchanged);

            const unknown = await internals.second(context, { challenge: Crypto.randomBytes(32).toString('base64url'), code: '123456' });
            expect(unknown.statusCode).to.equal(401);
            expect((unknown.result as { code: string }).code).to.equal('challenge_invalid');

            // The code of step + 1 is still unused: a new challenge takes it
            const last = await internals.second(context, { challenge: await challengeOf(context.server, user.username), code: codeAt(secret, step + 1) });
            expect(last.statusCode).to.equal(200);
        });

        it('refuses every forged second step with a 401 and one code, and no cookie', async () => {

            const victim = await enrolled(context, 'admin');
            const attacker = await enrolled(context, 'viewer');
            const challenge = await challengeOf(context.server, victim.user.username);
            const attackerChallenge = await challengeOf(context.server, attacker.user.username);
            const stored = (await SecondFactorChallenge.query(context.knex).where({ user_id: victim.user.id }).whereNull('used_at').first())!;
            const flipped = `${challenge.slice(0, -1)}${challenge.endsWith('A') ? 'B' : 'A'}`;
            const unchanged = await internals.snapshot(context, victim.user.id);

            const forged: [object, string][] = [
                [{ challenge, code: codeAt(attacker.secret, attacker.step) }, 'invalid_second_factor'],                 // another user's code
                [{ challenge, recovery_code: attacker.recoveryCodes[0]! }, 'invalid_second_factor'],                     // another user's recovery code
                [{ challenge, code: codeAt(victim.secret, victim.step - 1) }, 'invalid_second_factor'],                  // the victim's spent code
                [{ challenge, code: codeAt(victim.secret, victim.step + 3) }, 'invalid_second_factor'],                  // a code outside the window
                [{ challenge: flipped, code: codeAt(victim.secret, victim.step) }, 'challenge_invalid'],                 // one character changed
                [{ challenge: Buffer.from(stored.token_hash, 'hex').toString('base64url'), code: codeAt(victim.secret, victim.step) }, 'challenge_invalid'],     // the stored hash
                [{ challenge: Buffer.alloc(32).toString('base64url'), code: codeAt(victim.secret, victim.step) }, 'challenge_invalid']                           // zeros
            ];

            for (const [payload, code] of forged) {
                const res = await internals.second(context, payload);
                expect(res.statusCode, JSON.stringify(payload)).to.equal(401);
                expect((res.result as { code: string }).code, JSON.stringify(payload)).to.equal(code);
                expect(res.headers['set-cookie']).to.not.exist();
            }

            expect(await internals.snapshot(context, victim.user.id)).to.equal(unchanged);

            // The attacker's own challenge with the victim's code opens the attacker's account at most, never the victim's
            const crossed = await internals.second(context, { challenge: attackerChallenge, code: codeAt(victim.secret, victim.step) });
            expect(crossed.statusCode).to.equal(401);
            expect((await internals.second(context, { challenge, code: codeAt(victim.secret, victim.step) })).statusCode).to.equal(200);
        });

        it('gives one session for two concurrent uses of one challenge', async () => {

            const { user, secret, step } = await enrolled(context, 'viewer');
            const challenge = await challengeOf(context.server, user.username);
            const both = await Promise.all([
                internals.second(context, { challenge, code: codeAt(secret, step) }),
                internals.second(context, { challenge, code: codeAt(secret, step + 1) })
            ]);

            expect(both.map((res) => res.statusCode).sort()).to.equal([200, 401]);
        });

        it('refuses the challenge of a user deactivated meanwhile, and a secret that does not open (moved to another user, or altered)', async () => {

            const { user, secret, step } = await enrolled(context, 'blue_tech');
            const challenge = await challengeOf(context.server, user.username);
            await context.services.users.deactivate(context.actor('admin'), user.id);
            const refused = await internals.second(context, { challenge, code: codeAt(secret, step) });
            expect(refused.statusCode).to.equal(401);
            expect((refused.result as { code: string }).code).to.equal('challenge_invalid');

            // The ciphertext is bound to its user: copied onto another user's factor it opens to nothing
            const other = await enrolled(context, 'blue_tech');
            const source = await context.knex('user_second_factors').where({ user_id: user.id }).first();
            await context.knex('user_second_factors').where({ user_id: other.user.id }).update({ secret_ciphertext: source.secret_ciphertext, secret_iv: source.secret_iv, secret_tag: source.secret_tag });
            const moved = await internals.second(context, { challenge: await challengeOf(context.server, other.user.username), code: codeAt(secret, step) });
            expect(moved.statusCode).to.equal(401);
            expect((moved.result as { code: string }).code).to.equal('invalid_second_factor');
            expect((await internals.second(context, { challenge: await challengeOf(context.server, other.user.username), code: codeAt(other.secret, other.step) })).statusCode).to.equal(401);
        });

        it('accepts each recovery code once, typed in any case, with or without dashes', async () => {

            const { user, recoveryCodes } = await enrolled(context, 'blue_tech');
            const [first, second] = recoveryCodes as [string, string];

            const used = await internals.second(context, { challenge: await challengeOf(context.server, user.username), recovery_code: first.toUpperCase() });
            await expectSessionSemantics(context, used, user.id);
            const audit = await AuditLog.query(context.knex).where({ action: 'auth.login', actor_id: user.id }).orderBy('created_at', 'desc').first();
            expect(audit!.details).to.equal({ second_factor: 'recovery_code' });

            const challenge = await challengeOf(context.server, user.username);
            const unchanged = await internals.snapshot(context, user.id);
            const twice = await internals.second(context, { challenge, recovery_code: first });
            expect(twice.statusCode).to.equal(401);
            expect(await internals.snapshot(context, user.id)).to.equal(unchanged);

            // Form-encoded, as the password step may be
            const form = await context.server.inject({
                method: 'POST', url: '/api/v1/auth/login/second-factor', remoteAddress: address,
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
                payload: `challenge=${challenge}&recovery_code=${second.replace(/-/g, '')}`
            });

            expect(form.statusCode).to.equal(200);
            expect(form.headers['set-cookie']![0]!).to.startWith('aegis_token=');
            const third = await internals.second(context, { challenge: await challengeOf(context.server, user.username), recovery_code: recoveryCodes[2]! });
            const authorization = `Bearer ${(third.result as { access_token: string }).access_token}`;
            const status = await context.server.inject({ method: 'GET', url: '/api/v1/auth/second-factor', headers: { authorization } });
            expect(status.result).to.include({ enabled: true, recovery_codes_remaining: 7 });
        });

        it('answers 400 to malformed second steps and 403 to a cross-site one, before anything is checked', async () => {

            const challenge = Crypto.randomBytes(32).toString('base64url');
            const cases = [
                {}, { challenge }, { code: '123456' }, { challenge, code: '123456', recovery_code: 'aaaa-bbbb-cccc-dddd' },
                { challenge: 'short', code: '123456' }, { challenge, code: '1234567' }, { challenge, recovery_code: 'not-a-code' }, { challenge, code: '123456', extra: true }
            ];

            for (const payload of cases) {
                const res = await internals.second(context, payload);
                expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
                expect((res.result as { code: string }).code).to.equal('validation_failed');
            }

            const crossSite = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login/second-factor', headers: { origin: 'https://evil.example' }, payload: { challenge, code: '123456' } });
            expect(crossSite.statusCode).to.equal(403);
            expect((crossSite.result as { code: string }).code).to.equal('csrf_rejected');
            const allowed = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login/second-factor', headers: { origin }, payload: { challenge, code: '123456' } });
            expect(allowed.statusCode).to.equal(401);
        });

        it('throttles wrong codes with the login throttle: 429 and Retry-After, then the right code is refused too from that address', async () => {

            const { user, secret, step } = await enrolled(context, 'red_tech');
            const throttled = `${internals.network()}.1`;
            const challenge = await challengeOf(context.server, user.username, throttled);
            const pair = context.config.login.maxFailuresPerPair;

            const statuses: number[] = [];
            for (let i = 0; i < pair + 2; ++i) {
                const code = String((Number(codeAt(secret, step)) + 1 + i) % 1_000_000).padStart(6, '0');
                statuses.push((await internals.second(context, { challenge, code }, throttled)).statusCode);
            }

            expect(statuses).to.equal([...Array(pair).fill(401), 429, 429]);
            const blocked = await internals.second(context, { challenge, code: codeAt(secret, step) }, throttled);
            expect(blocked.statusCode).to.equal(429);
            expect(Number(blocked.headers['retry-after'])).to.be.within(1, context.config.login.windowSeconds);
            expect((blocked.result as { code: string }).code).to.equal('rate_limited');

            // One throttle: the password step from that address is refused as well; another address goes on
            expect((await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password }, remoteAddress: throttled })).statusCode).to.equal(429);
            const elsewhere = await internals.second(context, { challenge, code: codeAt(secret, step) }, `${internals.network()}.2`);
            expect(elsewhere.statusCode).to.equal(200);
        });

        it('leaves API keys as they are: a key of a user with a second factor keeps working', async () => {

            const user = await context.createUser('blue_lead');
            const { authorization } = await login(context.server, user.username);
            const key = await internals.post(context, '/api/v1/api-keys', { name: `key-${Crypto.randomUUID()}`, scope: 'read' }, { authorization });
            const apiKey = `Bearer ${(key.result as { key: string }).key}`;

            const started = await internals.post(context, '/api/v1/auth/second-factor/totp', { password }, { authorization });
            const step = await steadyStep();
            expect((await internals.post(context, '/api/v1/auth/second-factor/totp/confirm', { code: codeAt((started.result as { secret: string }).secret, step) }, { authorization })).statusCode).to.equal(200);

            const me = await context.server.inject({ method: 'GET', url: '/api/v1/users/me', headers: { authorization: apiKey } });
            expect(me.statusCode).to.equal(200);
            expect((me.result as { id: string }).id).to.equal(user.id);
        });
    });

    describe('roles that require a second factor (auth.second_factor_required_roles)', () => {

        it('gives a user of such a role without a factor an enrolment challenge, never a session, until the enrolment ends the login', async () => {

            const user = await context.createUser('blue_tech');
            await internals.requiring(context, ['blue_tech', 'red_tech'], async () => {

                const res = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password } });
                expect(res.statusCode).to.equal(200);
                expect(res.headers['set-cookie']).to.not.exist();
                const body = res.result as { challenge: string; enrolment_required: boolean; methods: string[]; access_token?: string };
                expect(body).to.include({ second_factor_required: true, enrolment_required: true, methods: ['totp'] });
                expect(body.access_token).to.not.exist();
                const { challenge } = body;

                // An enrolment challenge is no verify challenge
                const verify = await internals.second(context, { challenge, code: '123456' });
                expect(verify.statusCode).to.equal(401);
                expect((verify.result as { code: string }).code).to.equal('challenge_invalid');

                const started = await internals.post(context, '/api/v1/auth/login/second-factor/totp', { challenge });
                expect(started.statusCode).to.equal(201);
                const secret = (started.result as { secret: string }).secret;

                const step = await steadyStep();
                const unchanged = await internals.snapshot(context, user.id);
                const wrong = await internals.post(context, '/api/v1/auth/login/second-factor/totp/confirm', { challenge, code: codeAt(secret, step + 6) });
                expect(wrong.statusCode).to.equal(400);
                expect((wrong.result as { code: string }).code).to.equal('invalid_code');
                expect(wrong.headers['set-cookie']).to.not.exist();
                expect(await internals.snapshot(context, user.id)).to.equal(unchanged);

                const confirmed = await internals.post(context, '/api/v1/auth/login/second-factor/totp/confirm', { challenge, code: codeAt(secret, step) });
                expect((confirmed.result as { recovery_codes: string[] }).recovery_codes).to.have.length(10);
                await expectSessionSemantics(context, confirmed, user.id);

                // Spent; and the next login asks for the factor
                expect((await internals.post(context, '/api/v1/auth/login/second-factor/totp', { challenge })).statusCode).to.equal(401);
                const next = await challengeOf(context.server, user.username);
                expect((await internals.second(context, { challenge: next, code: codeAt(secret, step + 1) })).statusCode).to.equal(200);

                // The role's rule keeps the factor: its owner cannot remove it
                const session = await internals.second(context, { challenge: await challengeOf(context.server, user.username), recovery_code: (confirmed.result as { recovery_codes: string[] }).recovery_codes[0]! });
                const authorization = `Bearer ${(session.result as { access_token: string }).access_token}`;
                const status = await context.server.inject({ method: 'GET', url: '/api/v1/auth/second-factor', headers: { authorization } });
                expect(status.result).to.include({ enabled: true, required: true });
                const removal = await context.server.inject({ method: 'DELETE', url: '/api/v1/auth/second-factor', headers: { authorization }, payload: { password, recovery_code: (confirmed.result as { recovery_codes: string[] }).recovery_codes[1]! } });
                expect(removal.statusCode).to.equal(409);
                expect((removal.result as { code: string }).code).to.equal('second_factor_required');
                expect(await UserSecondFactor.query(context.knex).findById(user.id)).to.exist();
            });

            // Roles not listed log in with the password alone
            expect((await login(context.server, (await context.createUser('blue_tech')).username)).token).to.be.a.string();
        });

        it('refuses enrolment-step input that is malformed, expired or not an enrolment challenge', async () => {

            const { user } = await enrolled(context, 'red_lead');
            const verifyChallenge = await challengeOf(context.server, user.username);
            const refused = await internals.post(context, '/api/v1/auth/login/second-factor/totp', { challenge: verifyChallenge });
            expect(refused.statusCode).to.equal(401);
            expect((refused.result as { code: string }).code).to.equal('challenge_invalid');

            for (const payload of [{}, { challenge: 'x' }, { challenge: verifyChallenge, extra: 1 }]) {
                expect((await internals.post(context, '/api/v1/auth/login/second-factor/totp', payload)).statusCode, JSON.stringify(payload)).to.equal(400);
            }

            for (const payload of [{ challenge: verifyChallenge }, { code: '123456' }, { challenge: verifyChallenge, code: '12345a' }]) {
                expect((await internals.post(context, '/api/v1/auth/login/second-factor/totp/confirm', payload)).statusCode, JSON.stringify(payload)).to.equal(400);
            }

            const unchanged = await internals.snapshot(context, user.id);
            const confirm = await internals.post(context, '/api/v1/auth/login/second-factor/totp/confirm', { challenge: verifyChallenge, code: '123456' });
            expect(confirm.statusCode).to.equal(401);
            expect((confirm.result as { code: string }).code).to.equal('challenge_invalid');
            expect(await internals.snapshot(context, user.id)).to.equal(unchanged);
            expect((unchanged.factor as UserSecondFactor).confirmed_at).to.be.a.date();
        });

        it('validates the setting: known roles, each once', async () => {

            const admin = await login(context.server, context.users.admin.username);
            for (const value of [['pilot'], ['viewer', 'viewer'], 'admin', [1]]) {
                const res = await context.server.inject({ method: 'PUT', url: '/api/v1/system/settings/auth.second_factor_required_roles', headers: { authorization: admin.authorization }, payload: { value } });
                expect(res.statusCode, JSON.stringify(value)).to.equal(400);
            }

            expect(await context.knex('settings').where({ key: 'auth.second_factor_required_roles' })).to.have.length(0);
            const read = await context.server.inject({ method: 'GET', url: '/api/v1/system/settings/auth.second_factor_required_roles', headers: { authorization: admin.authorization } });
            expect(read.result).to.include({ value: [], is_default: true });
        });
    });

    describe('removal and new recovery codes (DELETE /auth/second-factor, POST /auth/second-factor/recovery-codes)', () => {

        it('removes the own factor with the password and a code, and refuses a wrong password or code, writing nothing', async () => {

            const { user, secret, step } = await enrolled(context, 'red_tech');
            const session = await internals.second(context, { challenge: await challengeOf(context.server, user.username), code: codeAt(secret, step) });
            const authorization = `Bearer ${(session.result as { access_token: string }).access_token}`;
            const remove = (payload: object) => context.server.inject({ method: 'DELETE', url: '/api/v1/auth/second-factor', headers: { authorization }, payload, remoteAddress: internals.address });

            const unchanged = await internals.snapshot(context, user.id);
            const wrongPassword = await remove({ password: 'Not-the-password-1', code: codeAt(secret, step + 1) });
            expect(wrongPassword.statusCode).to.equal(400);
            expect((wrongPassword.result as { code: string }).code).to.equal('invalid_current_password');
            const wrongCode = await remove({ password, code: codeAt(secret, step + 8) });
            expect(wrongCode.statusCode).to.equal(400);
            expect((wrongCode.result as { code: string }).code).to.equal('invalid_code');
            const replayed = await remove({ password, code: codeAt(secret, step) });
            expect(replayed.statusCode).to.equal(400);
            for (const payload of [{ password }, { code: '123456' }, { password, code: '123456', recovery_code: 'aaaa-bbbb-cccc-dddd' }]) {
                expect((await remove(payload)).statusCode, JSON.stringify(payload)).to.equal(400);
            }

            expect(await internals.snapshot(context, user.id)).to.equal(unchanged);

            const removed = await remove({ password, code: codeAt(secret, step + 1) });
            expect(removed.statusCode).to.equal(204);
            expect(await UserSecondFactor.query(context.knex).findById(user.id)).to.not.exist();
            expect(await UserRecoveryCode.query(context.knex).where({ user_id: user.id })).to.have.length(0);
            expect(await AuditLog.query(context.knex).where({ action: 'auth.second_factor.disable', entity_id: user.id, outcome: 'success' })).to.have.length(1);
            expect(await AuditLog.query(context.knex).where({ action: 'auth.second_factor.disable', entity_id: user.id, outcome: 'failure' })).to.have.length(2);
            expect((await login(context.server, user.username)).token).to.be.a.string();

            const none = await remove({ password, code: '123456' });
            expect(none.statusCode).to.equal(404);
        });

        it('replaces the recovery codes when a current code proves the factor: the old ones stop working', async () => {

            const { user, secret, step, recoveryCodes } = await enrolled(context, 'blue_lead');
            const { authorization } = await login(context.server, context.users.viewer.username);
            const ownSession = await internals.second(context, { challenge: await challengeOf(context.server, user.username), recovery_code: recoveryCodes[0]! });
            const own = `Bearer ${(ownSession.result as { access_token: string }).access_token}`;

            const unchanged = await internals.snapshot(context, user.id);
            const wrong = await internals.post(context, '/api/v1/auth/second-factor/recovery-codes', { code: codeAt(secret, step + 9) }, { authorization: own });
            expect(wrong.statusCode).to.equal(400);
            expect(await internals.snapshot(context, user.id)).to.equal(unchanged);

            // Someone without a factor has none to replace
            const none = await internals.post(context, '/api/v1/auth/second-factor/recovery-codes', { code: '123456' }, { authorization });
            expect(none.statusCode).to.equal(404);

            const renewed = await internals.post(context, '/api/v1/auth/second-factor/recovery-codes', { code: codeAt(secret, step) }, { authorization: own });
            expect(renewed.statusCode).to.equal(200);
            const fresh = (renewed.result as { recovery_codes: string[] }).recovery_codes;
            expect(fresh).to.have.length(10);
            expect(fresh).to.not.include(recoveryCodes[1]!);

            expect((await internals.second(context, { challenge: await challengeOf(context.server, user.username), recovery_code: recoveryCodes[1]! })).statusCode).to.equal(401);
            expect((await internals.second(context, { challenge: await challengeOf(context.server, user.username), recovery_code: fresh[0]! })).statusCode).to.equal(200);
        });
    });

    describe('admin reset (DELETE /users/{id}/second-factor)', () => {

        it('removes the factor, ends the user\'s sessions, notifies and audits; the next login needs the password only', async () => {

            const { user, secret, step } = await enrolled(context, 'viewer');
            const session = await internals.second(context, { challenge: await challengeOf(context.server, user.username), code: codeAt(secret, step) });
            const authorization = `Bearer ${(session.result as { access_token: string }).access_token}`;
            const admin = await login(context.server, context.users.admin.username);

            const res = await context.server.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}/second-factor`, headers: { authorization: admin.authorization } });
            expect(res.statusCode).to.equal(204);
            expect(await UserSecondFactor.query(context.knex).findById(user.id)).to.not.exist();
            expect(await UserRecoveryCode.query(context.knex).where({ user_id: user.id })).to.have.length(0);
            expect(await SecondFactorChallenge.query(context.knex).where({ user_id: user.id })).to.have.length(0);

            const me = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization } });
            expect(me.statusCode).to.equal(401);
            expect((me.result as { code: string }).code).to.equal('token_revoked');

            const audit = await AuditLog.query(context.knex).where({ action: 'user.second_factor_reset', entity_id: user.id });
            expect(audit).to.have.length(1);
            expect(audit[0]!.actor_id).to.equal(context.users.admin.id);
            const notes = await Notification.query(context.knex).where({ user_id: user.id, type: 'security.second_factor_reset' });
            expect(notes).to.have.length(1);
            expect(notes[0]!.title).to.equal('An administrator reset your second factor');

            const again = await login(context.server, user.username);
            const list = await context.server.inject({ method: 'GET', url: '/api/v1/notifications', headers: { authorization: again.authorization } });
            expect((list.result as { items: { type: string }[] }).items.map((item) => item.type)).to.include('security.second_factor_reset');
        });

        it('answers 404 to an unknown user or one without a factor, and 409 to an admin\'s own, writing nothing', async () => {

            const admin = await login(context.server, context.users.admin.username);
            const reset = (id: string) => context.server.inject({ method: 'DELETE', url: `/api/v1/users/${id}/second-factor`, headers: { authorization: admin.authorization } });
            const audits = async () => (await AuditLog.query(context.knex).where({ action: 'user.second_factor_reset' }).resultSize());
            const count = await audits();

            expect((await reset(Crypto.randomUUID())).statusCode).to.equal(404);
            const plain = await context.createUser('red_tech');
            const none = await reset(plain.id);
            expect(none.statusCode).to.equal(404);
            expect((none.result as { message: string }).message).to.equal('Second factor not found');
            expect((await User.query(context.knex).findById(plain.id))!.token_version).to.equal(plain.token_version);
            expect((await reset('not-a-uuid')).statusCode).to.equal(400);

            const own = await reset(context.users.admin.id);
            expect(own.statusCode).to.equal(409);
            expect((own.result as { code: string }).code).to.equal('cannot_reset_own_second_factor');
            expect(await audits()).to.equal(count);

            // Only admins
            const lead = await login(context.server, context.users.red_lead.username);
            expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/users/${plain.id}/second-factor`, headers: { authorization: lead.authorization } })).statusCode).to.equal(403);
        });

        it('sends a reset user of a role that requires a factor to the enrolment at the next login', async () => {

            const { user } = await enrolled(context, 'red_lead');
            await context.services.secondFactors.reset(context.actor('admin'), user.id);
            await internals.requiring(context, ['red_lead'], async () => {

                const res = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password } });
                expect(res.result).to.include({ second_factor_required: true, enrolment_required: true });
            });
        });
    });
});
