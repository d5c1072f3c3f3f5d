import * as Crypto from 'crypto';

import type { Knex } from 'knex';

import { NotFoundError, ValidationError } from '../errors';
import { ApiKey, type ApiKeyScope } from '../models';
import { ownsOrAdmin, type Actor } from '../policy';

import type { AuditService } from './audit';
import { apiKeyPrefix, hashApiKey } from './auth';
import { page, type ListQuery, type Page } from './lists';


export interface ApiKeyCreate {
    name: string;
    scope: ApiKeyScope;
    expires_at?: Date;
}


export class ApiKeysService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; maxLifetimeDays: number }) { }

    list(actor: Actor, list: ListQuery & { include_revoked?: boolean }): Promise<Page<ApiKey>> {

        const query = ApiKey.query(this.deps.knex).where('user_id', actor.id!);
        if (!list.include_revoked) {
            query.whereNull('revoked_at');
        }

        return page(query, list, { sort: 'created_at', order: 'desc' });
    }

    // 256 random bits; only the SHA-256 of the key is stored, the key itself is answered once. Every key expires: at
    // the time asked for, at most the maximum lifetime from now, which is also the default.
    async create(actor: Actor, input: ApiKeyCreate): Promise<ApiKey & { key: string }> {

        const latest = new Date(Date.now() + this.deps.maxLifetimeDays * 86_400_000);
        if (input.expires_at && input.expires_at > latest) {
            throw new ValidationError(`An API key lives at most ${this.deps.maxLifetimeDays} days`, ['expires_at'], 'lifetime_exceeded');
        }

        const raw = `${apiKeyPrefix}${Crypto.randomBytes(32).toString('hex')}`;
        return await ApiKey.transaction(this.deps.knex, async (trx) => {

            const key = await ApiKey.insertReturning(trx, {
                user_id: actor.id!,
                name: input.name,
                scope: input.scope,
                prefix: raw.slice(0, 14),
                key_hash: hashApiKey(raw),
                expires_at: input.expires_at ?? latest,
                created_by: actor.id
            });

            await this.deps.audit.record(trx, actor, { action: 'api_key.create', entity_type: 'api_key', entity_id: key.id, details: { name: key.name, scope: key.scope, expires_at: key.expires_at } });
            return Object.assign(key, { key: raw });
        });
    }

    async revoke(actor: Actor, id: string): Promise<void> {

        await ApiKey.transaction(this.deps.knex, async (trx) => {

            const key = await ApiKey.query(trx).findById(id).whereNull('revoked_at').forUpdate();

            // Someone else's key answers exactly like a missing one (SEC-05)
            if (!key || !ownsOrAdmin(actor, key.user_id)) {
                throw new NotFoundError('API key');
            }

            await key.$query(trx).patch({ revoked_at: new Date() });
            await this.deps.audit.record(trx, actor, { action: 'api_key.revoke', entity_type: 'api_key', entity_id: key.id });
        });
    }
}
