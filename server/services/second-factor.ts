import * as Crypto from 'crypto';

import type { Knex } from 'knex';
import * as QRCode from 'qrcode';

import { ConflictError, NotFoundError, UnauthorizedError, ValidationError } from '../errors';
import { SecondFactorChallenge, User, UserRecoveryCode, UserSecondFactor } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { throttleKeys } from './auth';
import { lockOr404 } from './changes';
import type { NotificationsService } from './notifications';
import { verifyPassword } from './passwords';
import { SecretBox } from './secret-box';
import type { SettingsService } from './settings';
import type { LoginThrottle } from './stores';
import { base32, matchingStep, otpauthUri } from './totp';


export type SecondFactorMethod = 'totp' | 'recovery_code';


// What the password step answers instead of a session when a second step is needed
export interface LoginChallenge {
    second_factor_required: true;
    enrolment_required: boolean;
    challenge: string;
    expires_at: string;
    methods: SecondFactorMethod[];
}


export interface TotpEnrolment {
    method: 'totp';
    otpauth_uri: string;
    secret: string;
    qr_code: string;
}


export interface SecondFactorStatus {
    enabled: boolean;
    method: 'totp' | null;
    pending: boolean;
    required: boolean;
    managed_by_identity_provider: boolean;
    confirmed_at: Date | null;
    last_used_at: Date | null;
    recovery_codes_remaining: number;
}


export interface RecoveryCodes {
    recovery_codes: string[];
}


// A proof of the factor: a current TOTP code, or one unused recovery code
export interface FactorProof {
    code?: string;
    recovery_code?: string;
}


// Called in the transaction that consumed the challenge: turns the proven user into the caller's answer (a session)
export type LoginFinish<T> = (trx: Knex.Transaction, user: User, method: SecondFactorMethod) => Promise<T>;


const internals = {
    issuer: 'Aegis',
    secretBytes: 20,                        // 160 bits, RFC 4226's recommendation
    recoveryCodes: 10,
    recoveryAlphabet: 'abcdefghijklmnopqrstuvwxyz234567',
    challengeSeconds: { verify: 300, enrol: 600 },

    invalidChallenge: () => new UnauthorizedError('The login challenge is unknown, used or expired: log in again with your password', 'challenge_invalid'),
    invalidFactor: () => new UnauthorizedError('The code is wrong, expired or already used: enter the current code from your authenticator app, or a recovery code', 'invalid_second_factor'),
    invalidCode: () => new ValidationError('The code is wrong, expired or already used: enter the current code from your authenticator app', ['code'], 'invalid_code'),

    sha256: (value: string) => Crypto.createHash('sha256').update(value).digest('hex'),

    // 16 characters of base32 (80 bits) in four groups: far beyond guessing, so a SHA-256 of each is enough
    recoveryCode: () => {

        const bytes = Crypto.randomBytes(16);
        const chars = [...bytes].map((byte) => internals.recoveryAlphabet[byte & 31]).join('');
        return chars.match(/.{4}/g)!.join('-');
    },

    // As typed: any case, with or without the dashes or spaces
    normaliseRecoveryCode: (code: string) => code.toLowerCase().replace(/[\s-]/g, ''),

    context: (userId: string) => `totp:${userId}`,

    assertLocal: (user: User) => {

        if (user.auth_provider !== 'local') {
            throw new ConflictError('Your identity provider handles second factors for your account', 'sso_account');
        }
    }
};


// Second factors of local accounts (docs/second-factors.md): TOTP enrolment, recovery codes, the login challenge
// between the password and the session, removal by the user and reset by an admin. SSO users are exempt: their
// identity provider does it.
export class SecondFactorService {

    private readonly box: SecretBox;

    constructor(private readonly deps: {
        knex: Knex;
        audit: AuditService;
        throttle: LoginThrottle;
        settings: SettingsService;
        notifications: NotificationsService;
        secretKey: Buffer;
    }) {

        this.box = new SecretBox(deps.secretKey);
    }

    // Whether a role must have a second factor (auth.second_factor_required_roles); never for an SSO user
    async requiredFor(user: User): Promise<boolean> {

        if (user.auth_provider !== 'local') {
            return false;
        }

        const roles = await this.deps.settings.get('auth.second_factor_required_roles');
        return Boolean(roles?.includes(user.role));
    }

    // The password step was right: a challenge when the user has a factor, or must enrol one; null for a session now
    async challengeAtLogin(trx: Knex.Transaction, user: User): Promise<LoginChallenge | null> {

        if (user.auth_provider !== 'local') {
            return null;
        }

        const factor = await UserSecondFactor.query(trx).findById(user.id);
        if (factor?.confirmed_at) {
            return await this.challenge(trx, user, 'verify');
        }

        return await this.requiredFor(user) ? await this.challenge(trx, user, 'enrol') : null;
    }

    async status(actor: Actor): Promise<SecondFactorStatus> {

        const user = await User.query(this.deps.knex).findById(actor.id!).throwIfNotFound();
        const [factor, remaining, required] = await Promise.all([
            UserSecondFactor.query(this.deps.knex).findById(user.id),
            UserRecoveryCode.query(this.deps.knex).where({ user_id: user.id }).whereNull('used_at').resultSize(),
            this.requiredFor(user)
        ]);

        return {
            enabled: Boolean(factor?.confirmed_at),
            method: factor?.confirmed_at ? factor.method : null,
            pending: Boolean(factor && !factor.confirmed_at),
            required,
            managed_by_identity_provider: user.auth_provider !== 'local',
            confirmed_at: factor?.confirmed_at ?? null,
            last_used_at: factor?.last_used_at ?? null,
            recovery_codes_remaining: remaining
        };
    }

    // Enrolment by a logged-in user: the password again, so that a session left open cannot add a factor that would
    // lock its owner out
    async startEnrolment(actor: Actor, input: { password: string }): Promise<TotpEnrolment> {

        const user = await User.query(this.deps.knex).findById(actor.id!).throwIfNotFound();
        internals.assertLocal(user);
        await this.checkPassword(actor, user, input.password);
        return await this.deps.knex.transaction((trx) => this.begin(trx, actor, user));
    }

    async confirmEnrolment(actor: Actor, input: { code: string }): Promise<RecoveryCodes> {

        const user = await User.query(this.deps.knex).findById(actor.id!).throwIfNotFound();
        return await this.activate(actor, user, input.code, () => Promise.resolve({}));
    }

    // Removal by the user: the password and the factor (a code or a recovery code)
    async remove(actor: Actor, input: FactorProof & { password: string }): Promise<void> {

        const user = await User.query(this.deps.knex).findById(actor.id!).throwIfNotFound();
        if (await this.requiredFor(user)) {
            throw new ConflictError('Your role requires a second factor: it cannot be removed (an admin can reset it, and you then set up a new one)', 'second_factor_required');
        }

        await this.checkPassword(actor, user, input.password);
        await this.withProof(actor, user, input, 'auth.second_factor.disable', async (trx) => {

            await this.clear(trx, user.id);
            await this.deps.audit.record(trx, actor, { action: 'auth.second_factor.disable', entity_type: 'user', entity_id: user.id });
        });
    }

    // New recovery codes, the old ones void; proven with a current code
    async regenerateRecoveryCodes(actor: Actor, input: { code: string }): Promise<RecoveryCodes> {

        const user = await User.query(this.deps.knex).findById(actor.id!).throwIfNotFound();
        return await this.withProof(actor, user, { code: input.code }, 'auth.second_factor.recovery_codes', async (trx) => {

            const codes = await this.replaceRecoveryCodes(trx, user.id);
            await this.deps.audit.record(trx, actor, { action: 'auth.second_factor.recovery_codes', entity_type: 'user', entity_id: user.id });
            return { recovery_codes: codes };
        });
    }

    // An admin resets a user's factor (a lost phone): the factor, its recovery codes and open challenges are gone, the
    // user's sessions end (token_version), the user is notified. Not one's own: that is DELETE /auth/second-factor.
    async reset(actor: Actor, userId: string): Promise<void> {

        await this.deps.knex.transaction(async (trx) => {

            const user = await lockOr404(User.query(trx).findById(userId), 'User');
            if (user.id === actor.id) {
                throw new ConflictError('You cannot reset your own second factor: remove it with DELETE /auth/second-factor (password and code)', 'cannot_reset_own_second_factor');
            }

            const factor = await UserSecondFactor.query(trx).findById(user.id).forUpdate();
            if (!factor) {
                throw new NotFoundError('Second factor', { user_id: user.id });
            }

            await this.clear(trx, user.id);
            await SecondFactorChallenge.query(trx).delete().where({ user_id: user.id });
            await user.$patchReturning(trx, { token_version: user.token_version + 1 });
            await this.deps.audit.record(trx, actor, { action: 'user.second_factor_reset', entity_type: 'user', entity_id: user.id, details: { was_confirmed: Boolean(factor.confirmed_at) } });
            await this.deps.notifications.notify(trx, [{
                user_id: user.id,
                type: 'security.second_factor_reset',
                title: 'An administrator reset your second factor',
                body: 'Your sessions were ended. If your role requires a second factor, you set up a new one at your next login; otherwise set one up again from your account settings. If you did not ask for this, tell your administrators.',
                entity_type: 'user',
                entity_id: user.id
            }]);
        });
    }

    // The login's second step: the challenge, then the factor, counted against the login throttle before it is checked
    async completeLogin<T>(actor: Actor, input: FactorProof & { challenge: string }, finish: LoginFinish<T>): Promise<T> {

        const { user } = await this.openChallenge(input.challenge, 'verify');
        const keys = await this.consume(actor, user);

        const outcome = await this.deps.knex.transaction(async (trx) => {

            const challenge = await this.lockChallenge(trx, input.challenge, 'verify');
            const method = await this.prove(trx, user, input);
            if (!method) {
                return null;
            }

            await challenge.$patchReturning(trx, { used_at: new Date() });
            return { value: await finish(trx, user, method) };
        });

        if (!outcome) {
            await this.failed(actor, user, 'auth.login', { stage: 'second_factor' });
            throw internals.invalidFactor();
        }

        await this.deps.throttle.succeeded(keys.account, keys.address);
        return outcome.value;
    }

    // The login's enrolment step (a role that requires a factor, a user without one)
    async startEnrolmentAtLogin(actor: Actor, input: { challenge: string }): Promise<TotpEnrolment> {

        const { user } = await this.openChallenge(input.challenge, 'enrol');
        return await this.deps.knex.transaction(async (trx) => {

            await this.lockChallenge(trx, input.challenge, 'enrol');
            return await this.begin(trx, { ...actor, id: user.id, role: user.role }, user);
        });
    }

    async confirmEnrolmentAtLogin<T extends object>(actor: Actor, input: { challenge: string; code: string }, finish: LoginFinish<T>): Promise<T & RecoveryCodes> {

        const { user } = await this.openChallenge(input.challenge, 'enrol');
        return await this.activate({ ...actor, id: user.id, role: user.role }, user, input.code, async (trx) => {

            const challenge = await this.lockChallenge(trx, input.challenge, 'enrol');
            await challenge.$patchReturning(trx, { used_at: new Date() });
            return await finish(trx, user, 'totp');
        });
    }

    // A pending factor with a fresh secret (a second start replaces the first); the secret is answered once, here
    private async begin(trx: Knex.Transaction, actor: Actor, user: User): Promise<TotpEnrolment> {

        internals.assertLocal(user);
        const current = await UserSecondFactor.query(trx).findById(user.id).forUpdate();
        if (current?.confirmed_at) {
            throw new ConflictError('A second factor is already set up: remove it first (DELETE /auth/second-factor)', 'second_factor_exists');
        }

        const secret = Crypto.randomBytes(internals.secretBytes);
        const sealed = this.box.seal(internals.context(user.id), secret.toString('base64'));
        await trx('user_second_factors').insert({
            user_id: user.id,
            method: 'totp',
            secret_ciphertext: sealed.ciphertext,
            secret_iv: sealed.iv,
            secret_tag: sealed.tag,
            secret_key_id: sealed.key_id,
            confirmed_at: null,
            last_used_step: null,
            last_used_at: null,
            updated_at: trx.fn.now()
        }).onConflict('user_id').merge();

        await this.deps.audit.record(trx, actor, { action: 'auth.second_factor.enrol', entity_type: 'user', entity_id: user.id });
        const uri = otpauthUri(internals.issuer, user.username, secret);
        const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
        return { method: 'totp', otpauth_uri: uri, secret: base32(secret), qr_code: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
    }

    // The first code confirms the pending factor: it becomes the user's, with ten recovery codes shown this once
    private async activate<T extends object>(actor: Actor, user: User, code: string, then: (trx: Knex.Transaction) => Promise<T>): Promise<T & RecoveryCodes> {

        const keys = await this.consume(actor, user);
        const outcome = await this.deps.knex.transaction(async (trx) => {

            const factor = await UserSecondFactor.query(trx).findById(user.id).forUpdate();
            if (!factor || factor.confirmed_at) {
                throw factor ?
                    new ConflictError('A second factor is already set up', 'second_factor_exists') :
                    new ConflictError('No enrolment is pending: start one first (POST /auth/second-factor/totp)', 'no_pending_enrolment');
            }

            const step = this.step(factor, code, user.id);
            if (step === null) {
                return null;
            }

            const value = await then(trx);
            await factor.$patchReturning(trx, { confirmed_at: new Date(), last_used_step: String(step), last_used_at: new Date() });
            const codes = await this.replaceRecoveryCodes(trx, user.id);
            await this.deps.audit.record(trx, actor, { action: 'auth.second_factor.enable', entity_type: 'user', entity_id: user.id, details: { method: 'totp' } });
            return { ...value, recovery_codes: codes };
        });

        if (!outcome) {
            await this.failed(actor, user, 'auth.second_factor.enable');
            throw internals.invalidCode();
        }

        await this.deps.throttle.succeeded(keys.account, keys.address);
        return outcome;
    }

    // A change that needs the factor proven: counted, checked, then made in the transaction that used the proof
    private async withProof<T>(actor: Actor, user: User, proof: FactorProof, action: string, change: (trx: Knex.Transaction) => Promise<T>): Promise<T> {

        const keys = await this.consume(actor, user);
        const outcome = await this.deps.knex.transaction(async (trx) => {

            await lockOr404(UserSecondFactor.query(trx).findById(user.id).whereNotNull('confirmed_at'), 'Second factor');
            const method = await this.prove(trx, user, proof);
            return method ? { value: await change(trx) } : null;
        });

        if (!outcome) {
            await this.failed(actor, user, action);
            throw internals.invalidCode();
        }

        await this.deps.throttle.succeeded(keys.account, keys.address);
        return outcome.value;
    }

    // The factor proven, its use recorded (the code's step, or the recovery code spent); null when the proof fails
    private async prove(trx: Knex.Transaction, user: User, proof: FactorProof): Promise<SecondFactorMethod | null> {

        if (proof.recovery_code !== undefined) {
            const hash = internals.sha256(internals.normaliseRecoveryCode(proof.recovery_code));
            const spent = await UserRecoveryCode.query(trx).patch({ used_at: new Date() }).where({ user_id: user.id, code_hash: hash }).whereNull('used_at');
            return spent ? 'recovery_code' : null;
        }

        const factor = await UserSecondFactor.query(trx).findById(user.id).whereNotNull('confirmed_at').forUpdate();
        const step = factor && proof.code !== undefined ? this.step(factor, proof.code, user.id) : null;
        if (!factor || step === null) {
            return null;
        }

        await factor.$patchReturning(trx, { last_used_step: String(step), last_used_at: new Date() });
        return 'totp';
    }

    // The step of a right code not used before (a code is accepted once: replay refused), or null
    private step(factor: UserSecondFactor, code: string, userId: string): number | null {

        const secret = this.box.open(internals.context(userId), { ciphertext: factor.secret_ciphertext, iv: factor.secret_iv, tag: factor.secret_tag, key_id: factor.secret_key_id });
        if (secret === undefined) {
            return null;
        }

        const step = matchingStep(Buffer.from(secret, 'base64'), code, Date.now());
        return step !== null && (factor.last_used_step === null || step > Number(factor.last_used_step)) ? step : null;
    }

    private async replaceRecoveryCodes(trx: Knex.Transaction, userId: string): Promise<string[]> {

        const codes = Array.from({ length: internals.recoveryCodes }, internals.recoveryCode);
        await UserRecoveryCode.query(trx).delete().where({ user_id: userId });
        await UserRecoveryCode.query(trx).insert(codes.map((code) => ({ user_id: userId, code_hash: internals.sha256(internals.normaliseRecoveryCode(code)) })));
        return codes;
    }

    private async clear(trx: Knex.Transaction, userId: string): Promise<void> {

        await UserRecoveryCode.query(trx).delete().where({ user_id: userId });
        await UserSecondFactor.query(trx).deleteById(userId);
    }

    private async challenge(trx: Knex.Transaction, user: User, purpose: 'verify' | 'enrol'): Promise<LoginChallenge> {

        const token = Crypto.randomBytes(32).toString('base64url');
        const expiresAt = new Date(Date.now() + internals.challengeSeconds[purpose] * 1000);
        // The user's spent and expired challenges go as a new one comes
        await SecondFactorChallenge.query(trx).delete().where({ user_id: user.id }).where((query) => query.whereNotNull('used_at').orWhere('expires_at', '<=', new Date()));
        await SecondFactorChallenge.query(trx).insert({ token_hash: internals.sha256(token), user_id: user.id, purpose, expires_at: expiresAt });
        return {
            second_factor_required: true,
            enrolment_required: purpose === 'enrol',
            challenge: token,
            expires_at: expiresAt.toISOString(),
            methods: purpose === 'verify' ? ['totp', 'recovery_code'] : ['totp']
        };
    }

    // A live challenge of this purpose and its active local user, or 401 challenge_invalid
    private async openChallenge(token: string, purpose: 'verify' | 'enrol'): Promise<{ challenge: SecondFactorChallenge; user: User }> {

        const challenge = await SecondFactorChallenge.query(this.deps.knex).findOne({ token_hash: internals.sha256(token), purpose });
        const user = challenge && !challenge.used_at && challenge.expires_at.getTime() > Date.now() ? await User.query(this.deps.knex).findById(challenge.user_id) : undefined;
        if (!challenge || !user || !user.is_active || user.auth_provider !== 'local') {
            throw internals.invalidChallenge();
        }

        return { challenge, user };
    }

    // The same, locked in the transaction that spends it: two requests with one challenge get one session
    private async lockChallenge(trx: Knex.Transaction, token: string, purpose: 'verify' | 'enrol'): Promise<SecondFactorChallenge> {

        const challenge = await SecondFactorChallenge.query(trx).findOne({ token_hash: internals.sha256(token), purpose }).forUpdate();
        if (!challenge || challenge.used_at || challenge.expires_at.getTime() <= Date.now()) {
            throw internals.invalidChallenge();
        }

        return challenge;
    }

    // The current password, checked as change-password checks it (one throttle for every password attempt)
    private async checkPassword(actor: Actor, user: User, password: string): Promise<void> {

        const keys = await this.consume(actor, user);
        if (!user.password_hash || !await verifyPassword(user.password_hash, password)) {
            await this.failed(actor, user, 'auth.second_factor.password');
            throw new ValidationError('The current password is wrong', ['password'], 'invalid_current_password');
        }

        await this.deps.throttle.succeeded(keys.account, keys.address);
    }

    private async consume(actor: Actor, user: User): Promise<{ account: string; address: string }> {

        const keys = { account: throttleKeys.account(user.username), address: throttleKeys.address(actor) };
        await this.deps.throttle.consume(keys.account, keys.address);
        return keys;
    }

    private async failed(actor: Actor, user: User, action: string, details: Record<string, unknown> = {}): Promise<void> {

        await this.deps.audit.record(this.deps.knex, { ...actor, id: user.id, role: user.role }, { action, entity_type: 'user', entity_id: user.id, outcome: 'failure', details });
    }
}
