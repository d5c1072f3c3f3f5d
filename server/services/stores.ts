import type { Knex } from 'knex';
import { RateLimiterPostgres, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

import type { Redis } from '../../integrations/redis';
import { RateLimitedError, UnavailableError } from '../errors';
import { RevokedToken } from '../models';

import { runStatement, type Statement } from './sql';


// Revoked JWT ids. PostgreSQL is the durable record in every configuration; with Redis configured, Redis answers
// the per-request check and is refilled from PostgreSQL whenever it comes back empty (a restart of a Redis that
// keeps nothing on disk), so a revocation survives a Redis restart (SEC-03).
export interface RevocationStore {
    isRevoked(jti: string): Promise<boolean>;
    // The user row behind a token, or null when the token is revoked or the user is gone: the per-request lookup,
    // in as few round trips as the store allows
    userUnlessRevoked(userId: string, jti: string): Promise<Record<string, unknown> | null>;
    revoke(trx: Knex.Transaction, entry: { jti: string; userId: string | null; expiresAt: Date }): Promise<void>;
    // Called after the transaction that revoked commits.
    publish(entry: { jti: string; expiresAt: Date }): Promise<void>;
    ping(): Promise<void>;
}


// Password attempts (logins and password changes), counted before the password is checked.
export interface LoginThrottle {
    // Counts the attempt for the account+address pair, then for the account and the address; throws
    // RateLimitedError when one of them is over its limit, UnavailableError when the store cannot answer.
    consume(account: string, address: string): Promise<void>;
    // The password was right: the attempt was no failure
    succeeded(account: string, address: string): Promise<void>;
}


export interface LoginLimits {
    maxFailuresPerUser: number;
    maxFailuresPerIp: number;
    maxFailuresPerPair: number;
    windowSeconds: number;
}


// The per-request lookups of the token's user: one statement answers the user and, without Redis, the revocation too
export const userLookup = {
    unlessRevoked: (userId: string, jti: string): Statement => ({ text: 'select u.* from users u where u.id = $1 and not exists (select 1 from revoked_tokens r where r.jti = $2)', values: [userId, jti] }),
    byId: (userId: string): Statement => ({ text: 'select u.* from users u where u.id = $1', values: [userId] })
};


// Where the Redis store keeps revocations: a marker that the set was loaded from PostgreSQL, and one key per jti
export const revocationKeys = {
    loaded: 'aegis:revocations:loaded',
    revoked: (jti: string) => `aegis:revoked:${jti}`
};


export class PgRevocationStore implements RevocationStore {

    constructor(protected readonly knex: Knex) { }

    async isRevoked(jti: string): Promise<boolean> {

        const row = await this.knex('revoked_tokens').select('jti').where({ jti }).first();
        return Boolean(row);
    }

    // One statement answers both questions
    async userUnlessRevoked(userId: string, jti: string): Promise<Record<string, unknown> | null> {

        const rows = await runStatement(this.knex, userLookup.unlessRevoked(userId, jti));
        return rows[0] ?? null;
    }

    async revoke(trx: Knex.Transaction, entry: { jti: string; userId: string | null; expiresAt: Date }): Promise<void> {

        await RevokedToken.query(trx).insert({ jti: entry.jti, user_id: entry.userId, expires_at: entry.expiresAt }).onConflict('jti').ignore();
    }

    async publish(entry: { jti: string; expiresAt: Date }): Promise<void> { }

    async ping(): Promise<void> {

        await this.knex.raw('select 1');
    }
}


export class RedisRevocationStore extends PgRevocationStore {

    constructor(knex: Knex, private readonly redis: Redis) {

        super(knex);

        // A reconnect may follow a restart or a lost write: rebuild the set from PostgreSQL on the next check.
        redis.on('ready', () => {

            redis.del(revocationKeys.loaded).catch(() => undefined);
        });
    }

    override async isRevoked(jti: string): Promise<boolean> {

        try {
            const [loaded, revoked] = await this.redis.mget(revocationKeys.loaded, revocationKeys.revoked(jti));
            if (!loaded) {
                await this.reload();
                return Boolean(await this.redis.exists(revocationKeys.revoked(jti)));
            }

            return Boolean(revoked);
        }
        catch {
            throw new UnavailableError('Authentication is temporarily unavailable');
        }
    }

    // Redis answers the revocation, PostgreSQL the user, both at once
    override async userUnlessRevoked(userId: string, jti: string): Promise<Record<string, unknown> | null> {

        const [revoked, rows] = await Promise.all([
            this.isRevoked(jti),
            runStatement(this.knex, userLookup.byId(userId))
        ]);

        return revoked ? null : rows[0] ?? null;
    }

    override async publish(entry: { jti: string; expiresAt: Date }): Promise<void> {

        const ttl = Math.ceil((entry.expiresAt.getTime() - Date.now()) / 1000);
        if (ttl > 0) {
            await this.redis.set(revocationKeys.revoked(entry.jti), '1', 'EX', ttl).catch(() => this.redis.del(revocationKeys.loaded).catch(() => undefined));
        }
    }

    override async ping(): Promise<void> {

        await this.redis.ping();
    }

    private async reload(): Promise<void> {

        const now = Date.now();
        const rows = await RevokedToken.query(this.knex).select('jti', 'expires_at').where('expires_at', '>', new Date(now));
        const pipeline = this.redis.pipeline();
        for (const row of rows) {
            pipeline.set(revocationKeys.revoked(row.jti), '1', 'PX', Math.max(1, row.expires_at.getTime() - now));
        }

        pipeline.set(revocationKeys.loaded, String(now));
        const results = await pipeline.exec();
        const failed = results?.find(([err]) => err);
        if (failed) {
            throw failed[0];
        }
    }
}


// rate-limiter-flexible's atomic counters in fixed windows: Redis (INCR in a script) when configured, PostgreSQL
// (INSERT … ON CONFLICT DO UPDATE … RETURNING, the login_attempts table of a migration) otherwise, so that every API
// instance shares the counts and concurrent attempts cannot all pass a check made before they are counted.
export class RateLimiterLoginThrottle implements LoginThrottle {

    private readonly pair: RateLimiterAbstract;
    private readonly account: RateLimiterAbstract;
    private readonly address: RateLimiterAbstract;

    constructor(store: { redis: Redis } | { knex: Knex }, limits: LoginLimits) {

        const limiter = (name: string, points: number, sweeps = false): RateLimiterAbstract => {

            const options = { keyPrefix: `aegis:login:${name}`, points, duration: limits.windowSeconds };
            return 'redis' in store ?
                new RateLimiterRedis({ ...options, storeClient: store.redis }) :
                new RateLimiterPostgres({ ...options, storeClient: store.knex, storeType: 'knex', tableName: 'login_attempts', tableCreated: true, clearExpiredByTimeout: sweeps });
        };

        // One of the three sweeps the shared table of expired windows (every 5 minutes, unref'd)
        this.pair = limiter('pair', limits.maxFailuresPerPair, true);
        this.account = limiter('user', limits.maxFailuresPerUser);
        this.address = limiter('ip', limits.maxFailuresPerIp);
    }

    async consume(account: string, address: string): Promise<void> {

        // The pair first: an address over its limit for this account adds nothing to the account's count, so that one
        // address alone cannot lock the account for everyone else
        await this.run([this.pair.consume(pairKey(account, address))]);
        await this.run([this.account.consume(account), this.address.consume(address)]);
    }

    async succeeded(account: string, address: string): Promise<void> {

        await Promise.all([this.pair.delete(pairKey(account, address)), this.account.reward(account), this.address.reward(address)]).catch(() => undefined);
    }

    private async run(attempts: Promise<unknown>[]): Promise<void> {

        const refused = (await Promise.allSettled(attempts)).filter((result) => result.status === 'rejected').map((result) => result.reason as unknown);
        if (refused.some((reason) => !(reason instanceof RateLimiterRes))) {
            throw new UnavailableError('Authentication is temporarily unavailable');
        }

        if (refused.length) {
            const wait = Math.max(...refused.map((reason) => (reason as RateLimiterRes).msBeforeNext));
            throw new RateLimitedError(Math.max(1, Math.ceil(wait / 1000)));
        }
    }
}


// Where the throttle keeps an account+address pair (both parts are bounded: usernames ≤ 128, addresses ≤ 45)
export const pairKey = (account: string, address: string): string => `${address}/${account}`;
