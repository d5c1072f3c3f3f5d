import * as Crypto from 'crypto';

import * as Jwt from '@hapi/jwt';
import type { Knex } from 'knex';

import { UnauthorizedError, ValidationError } from '../errors';
import { ApiKey, User, type ApiKeyScope } from '../models';
import type { Actor, Role } from '../policy';

import type { AuditService } from './audit';
import type { LoginChallenge, RecoveryCodes, SecondFactorMethod, SecondFactorService } from './second-factor';
import { checkPasswordPolicy, dummyHash, hashPassword, verifyPassword } from './passwords';
import { isUuid } from './sql';
import type { LoginThrottle, RevocationStore } from './stores';


export interface JwtSettings {
    secret: string;
    ttlSeconds: number;
    issuer: string;
    audience: string;
}


export interface Session {
    access_token: string;
    token_type: 'bearer';
    expires_at: string;
    user: User;
}


// What every authentication strategy resolves a request to.
export interface Principal {
    user: User;
    role: Role;
    scope: Role[];
    apiKey?: { id: string; scope: ApiKeyScope };
    token?: { jti: string; exp: number };
}


export interface TokenPayload {
    sub?: unknown;
    role?: unknown;
    jti?: unknown;
    iat?: unknown;
    exp?: unknown;
    ver?: unknown;
}


// Why a presented token or key was refused: the only reason a client is told (the 401's `code`)
export type TokenFailure = 'token_expired' | 'token_revoked' | 'token_invalid';


// What every API key starts with: the auth strategies tell an API key from a JWT by it
export const apiKeyPrefix = 'aegis_';


// The throttle's keys: the account as typed at the login, lower-cased (bounded: lower-casing may lengthen it), and
// the client's address; second factors (issue 15) count against the same keys
export const throttleKeys = {
    account: (username: string) => username.toLowerCase().slice(0, 128),
    address: (actor: Actor) => actor.ip ?? 'unknown'
};


const internals = {
    algorithm: 'HS256' as const,
    invalidLogin: 'Invalid username or password',
    apiKeyPattern: new RegExp(`^${apiKeyPrefix}[0-9a-f]{64}$`),
    account: throttleKeys.account,
    address: throttleKeys.address,
    // last_used_at: at most once a minute per key; how many keys a process remembers stamping
    keyUseInterval: 60_000,
    keyUseRemembered: 10_000
};


export class AuthService {

    // When this process last stamped each key's last_used_at
    private readonly keyUse = new Map<string, number>();

    constructor(private readonly deps: {
        knex: Knex;
        audit: AuditService;
        revocations: RevocationStore;
        throttle: LoginThrottle;
        jwt: JwtSettings;
        apiKeys: { maxLifetimeDays: number };
        // second factors (issue 15)
        secondFactors: SecondFactorService;
    }) { }

    get jwtSettings(): JwtSettings {

        return this.deps.jwt;
    }

    // The attempt is counted before the password is checked (SEC-10): concurrent wrong passwords cannot all pass a
    // check made before any of them was counted. A right password takes its own attempt back. A user with a second
    // factor, or whose role requires one, gets a challenge instead of a session (docs/second-factors.md).
    async login(actor: Actor, username: string, password: string): Promise<Session | LoginChallenge> {

        const account = internals.account(username);
        const address = internals.address(actor);
        await this.deps.throttle.consume(account, address);

        const user = await User.query(this.deps.knex).whereRaw('lower(username) = lower(?)', [username]).first();

        // The same work and the same answer for an unknown user, a wrong password, an SSO-only or inactive user
        const valid = await verifyPassword(user?.password_hash ?? await dummyHash, password);
        if (!user || !valid || !user.is_active || !user.password_hash) {
            await this.deps.audit.record(this.deps.knex, { ...actor, id: user?.id ?? null, role: user?.role ?? actor.role }, {
                action: 'auth.login', entity_type: 'user', entity_id: user?.id, outcome: 'failure', details: { username: username.slice(0, 128) }
            });

            throw new UnauthorizedError(internals.invalidLogin, 'invalid_credentials');
        }

        await this.deps.throttle.succeeded(account, address);
        const session = await User.transaction(this.deps.knex, async (trx) => {

            const challenge = await this.deps.secondFactors.challengeAtLogin(trx, user);
            if (challenge) {
                await this.deps.audit.record(trx, { ...actor, id: user.id, role: user.role }, { action: 'auth.login_challenge', entity_type: 'user', entity_id: user.id, details: { enrolment_required: challenge.enrolment_required } });
                return challenge;
            }

            return await this.started(trx, actor, user);
        });

        return session;
    }

    // second factors (issue 15): the login's second step, a code or a recovery code against the challenge
    async loginSecondFactor(actor: Actor, input: { challenge: string; code?: string; recovery_code?: string }): Promise<Session> {

        return await this.deps.secondFactors.completeLogin(actor, input, (trx, user, method) => this.started(trx, actor, user, method));
    }

    // The enrolment a role requires, at the login: its first code ends the login with a session and the recovery codes
    async loginEnrolment(actor: Actor, input: { challenge: string; code: string }): Promise<Session & RecoveryCodes> {

        return await this.deps.secondFactors.confirmEnrolmentAtLogin(actor, input, (trx, user, method) => this.started(trx, actor, user, method));
    }

    // A login that succeeded: stamped, audited, and its session issued, in the transaction of its last step
    private async started(trx: Knex.Transaction, actor: Actor, user: User, secondFactor?: SecondFactorMethod): Promise<Session> {

        const updated = await user.$patchReturning(trx, { last_login_at: new Date() });
        await this.deps.audit.record(trx, { ...actor, id: user.id, role: user.role }, { action: 'auth.login', entity_type: 'user', entity_id: user.id, ...(secondFactor ? { details: { second_factor: secondFactor } } : {}) });
        return this.issue(updated);
    }

    issue(user: User): Session {

        const now = Math.floor(Date.now() / 1000);
        const exp = now + this.deps.jwt.ttlSeconds;
        const token = Jwt.token.generate(
            { sub: user.id, role: user.role, jti: Crypto.randomUUID(), iat: now, exp, ver: user.token_version, aud: this.deps.jwt.audience, iss: this.deps.jwt.issuer },
            { key: this.deps.jwt.secret, algorithm: internals.algorithm },
            { iat: false }
        );

        return { access_token: token, token_type: 'bearer', expires_at: new Date(exp * 1000).toISOString(), user };
    }

    // Called after the jwt scheme has checked the signature, algorithm, aud, iss, iat, exp and age. A token that was
    // ours but whose session ended (logout, no such user any more, deactivation, a new token_version) is revoked.
    async resolveToken(payload: TokenPayload): Promise<Principal | TokenFailure> {

        const { sub, jti, exp, iat, ver } = payload;
        if (typeof sub !== 'string' || !isUuid(sub) || typeof jti !== 'string' || typeof exp !== 'number' || typeof iat !== 'number' || typeof ver !== 'number') {
            return 'token_invalid';
        }

        // The hottest lookup of the API (every request): plain SQL, no query builder
        const row = await this.deps.revocations.userUnlessRevoked(sub, jti);
        const user = row ? User.fromDatabaseJson(row) : null;
        if (!user || !user.is_active || user.token_version !== ver) {
            return 'token_revoked';
        }

        return { user, role: user.role, scope: [user.role], token: { jti, exp } };
    }

    // A key that is unknown, revoked, expired (by its expires_at, or older than the maximum lifetime now configured)
    // or whose owner is inactive is refused alike, and the attempt is audited like a failed login (never the key).
    async resolveApiKey(raw: string, actor: Actor): Promise<Principal | null> {

        const key = internals.apiKeyPattern.test(raw) ?
            await ApiKey.query(this.deps.knex).withGraphJoined('user').where('api_keys.key_hash', hashApiKey(raw)).first() :
            undefined;

        const now = Date.now();
        const reason = this.keyRefusal(key, now);
        if (!key || reason) {
            await this.deps.audit.record(this.deps.knex, { ...actor, id: key?.user_id ?? null, role: key?.user?.role ?? actor.role }, {
                action: 'auth.api_key', entity_type: 'api_key', entity_id: key?.id, outcome: 'failure', details: { reason, ...(key ? { prefix: key.prefix } : {}) }
            });

            return null;
        }

        const user = key.user!;
        await this.stampUse(key, now);
        return { user, role: user.role, scope: [user.role], apiKey: { id: key.id, scope: key.scope } };
    }

    async logout(actor: Actor, token: { jti: string; exp: number } | undefined): Promise<void> {

        await User.transaction(this.deps.knex, async (trx) => {

            if (token) {
                await this.deps.revocations.revoke(trx, { jti: token.jti, userId: actor.id, expiresAt: new Date(token.exp * 1000) });
            }

            await this.deps.audit.record(trx, actor, { action: 'auth.logout', entity_type: 'user', entity_id: actor.id });
        });

        if (token) {
            await this.deps.revocations.publish({ jti: token.jti, expiresAt: new Date(token.exp * 1000) });
        }
    }

    // Every earlier token of the user stops working (token_version); the caller gets a fresh session. The current
    // password is guessed no faster here than at the login: both count against the same throttle.
    async changePassword(actor: Actor, input: { current_password: string; new_password: string }): Promise<Session> {

        const user = await User.query(this.deps.knex).findById(actor.id!).throwIfNotFound();
        const account = internals.account(user.username);
        const address = internals.address(actor);
        await this.deps.throttle.consume(account, address);
        if (!user.password_hash || !await verifyPassword(user.password_hash, input.current_password)) {
            await this.deps.audit.record(this.deps.knex, actor, { action: 'auth.change_password', entity_type: 'user', entity_id: user.id, outcome: 'failure' });
            throw new ValidationError('The current password is wrong', ['current_password'], 'invalid_current_password');
        }

        await this.deps.throttle.succeeded(account, address);

        if (input.new_password === input.current_password) {
            throw new ValidationError('The new password must differ from the current one', ['new_password'], 'password_reused');
        }

        checkPasswordPolicy(input.new_password, user);
        const passwordHash = await hashPassword(input.new_password);

        return await User.transaction(this.deps.knex, async (trx) => {

            const updated = await user.$patchReturning(trx, { password_hash: passwordHash, must_change_password: false, token_version: user.token_version + 1 });
            await this.deps.audit.record(trx, actor, { action: 'auth.change_password', entity_type: 'user', entity_id: user.id });
            return this.issue(updated);
        });
    }

    private keyRefusal(key: ApiKey | undefined, now: number): 'unknown' | 'revoked' | 'expired' | 'inactive_owner' | null {

        if (!key) {
            return 'unknown';
        }

        if (key.revoked_at) {
            return 'revoked';
        }

        if (key.expires_at.getTime() <= now || key.created_at.getTime() <= now - this.deps.apiKeys.maxLifetimeDays * 86_400_000) {
            return 'expired';
        }

        return key.user?.is_active ? null : 'inactive_owner';
    }

    // last_used_at, written at most once a minute per key and never per request: skipped while the row or this
    // process's memo says it was stamped within the minute, and conditional, so that several instances write it once.
    private async stampUse(key: ApiKey, now: number): Promise<void> {

        const stamped = Math.max(key.last_used_at?.getTime() ?? 0, this.keyUse.get(key.id) ?? 0);
        if (stamped > now - internals.keyUseInterval) {
            return;
        }

        if (this.keyUse.size >= internals.keyUseRemembered) {
            for (const [id, at] of this.keyUse) {
                if (at <= now - internals.keyUseInterval) {
                    this.keyUse.delete(id);
                }
            }
        }

        this.keyUse.set(key.id, now);
        await this.deps.knex.raw(`update api_keys set last_used_at = now() where id = ? and (last_used_at is null or last_used_at < now() - interval '1 minute')`, [key.id])
            .catch(() => this.keyUse.delete(key.id));           // a usage stamp never fails the request
    }
}


export const hashApiKey = (raw: string): string => Crypto.createHash('sha256').update(raw).digest('hex');
