import type { Knex } from 'knex';

import type { Redis } from '../../integrations/redis';
import { UnavailableError } from '../errors';
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


// Failed-login counters per key in fixed windows.
export interface AttemptCounter {
    count(key: string): Promise<{ count: number; retryAfterSeconds: number }>;
    increment(key: string, windowSeconds: number): Promise<number>;
    reset(key: string): Promise<void>;
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


const internals = {
    attemptsKey: (key: string) => `aegis:attempts:${key}`,

    exec: async (multi: ReturnType<Redis['multi']>): Promise<[Error | null, unknown][]> => {

        try {
            const results = await multi.exec();
            if (!results || results.some(([err]) => err)) {
                throw new Error('redis transaction failed');
            }

            return results;
        }
        catch {
            throw new UnavailableError('Authentication is temporarily unavailable');
        }
    }
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


export class MemoryAttemptCounter implements AttemptCounter {

    private readonly counters = new Map<string, { count: number; resetAt: number }>();

    count(key: string): Promise<{ count: number; retryAfterSeconds: number }> {

        const entry = this.live(key);
        return Promise.resolve({ count: entry?.count ?? 0, retryAfterSeconds: entry ? Math.ceil((entry.resetAt - Date.now()) / 1000) : 0 });
    }

    increment(key: string, windowSeconds: number): Promise<number> {

        const entry = this.live(key) ?? { count: 0, resetAt: Date.now() + windowSeconds * 1000 };
        entry.count++;
        this.counters.set(key, entry);
        if (this.counters.size > 100_000) {
            this.sweep();
        }

        return Promise.resolve(entry.count);
    }

    reset(key: string): Promise<void> {

        this.counters.delete(key);
        return Promise.resolve();
    }

    private live(key: string) {

        const entry = this.counters.get(key);
        if (entry && entry.resetAt <= Date.now()) {
            this.counters.delete(key);
            return undefined;
        }

        return entry;
    }

    private sweep() {

        const now = Date.now();
        for (const [key, entry] of this.counters) {
            if (entry.resetAt <= now) {
                this.counters.delete(key);
            }
        }
    }
}


export class RedisAttemptCounter implements AttemptCounter {

    constructor(private readonly redis: Redis) { }

    async count(key: string): Promise<{ count: number; retryAfterSeconds: number }> {

        const [count, ttl] = await internals.exec(this.redis.multi().get(internals.attemptsKey(key)).ttl(internals.attemptsKey(key)));
        return { count: Number(count?.[1] ?? 0), retryAfterSeconds: Math.max(0, Number(ttl?.[1] ?? 0)) };
    }

    async increment(key: string, windowSeconds: number): Promise<number> {

        const [incr] = await internals.exec(this.redis.multi().incr(internals.attemptsKey(key)).expire(internals.attemptsKey(key), windowSeconds, 'NX'));
        return Number(incr?.[1] ?? 0);
    }

    async reset(key: string): Promise<void> {

        await this.redis.del(internals.attemptsKey(key));
    }
}

