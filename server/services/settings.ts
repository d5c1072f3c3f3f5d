import type { Knex } from 'knex';

import type { OutboundError, OutboundHttp } from '../../integrations/http';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { Setting } from '../models';
import type { Actor } from '../policy';
import { settingDefinitions, settingKeys, type SettingDefinition, type SettingKey, type SettingValues } from '../settings';

import type { AuditService } from './audit';
import type { Page } from './lists';
import { SecretBox } from './secret-box';


// A setting as the API answers it: secret fields as { set }, never their value.
export interface SettingView {
    key: SettingKey;
    description: string;
    value: unknown;
    is_default: boolean;
    updated_by: string | null;
    updated_at: Date | null;
}


type Fields = Record<string, unknown>;


const internals = {
    isObject: (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value),

    // The value without its secret fields, and the secret fields alone
    split: (definition: SettingDefinition, value: unknown): { plain: unknown; secrets: Fields } => {

        if (!definition.secrets.length || !internals.isObject(value)) {
            return { plain: value, secrets: {} };
        }

        const plain: Fields = {};
        const secrets: Fields = {};
        for (const [field, item] of Object.entries(value)) {
            (definition.secrets.includes(field) ? secrets : plain)[field] = item;
        }

        return { plain, secrets };
    }
};


// The typed run-time settings store (server/settings.ts lists the keys). Every change is one transaction with its
// audit row, which names the secret fields changed but never their values.
export class SettingsService {

    private readonly box: SecretBox;

    constructor(private readonly deps: { knex: Knex; audit: AuditService; outbound: OutboundHttp; secretKey: Buffer }) {

        this.box = new SecretBox(deps.secretKey);
    }

    // The effective value, secrets decrypted, for the code that uses it (never for an API answer).
    async get<K extends SettingKey>(key: K): Promise<SettingValues[K] | null> {

        const row = await Setting.query(this.deps.knex).findById(key);
        if (!row) {
            return settingDefinitions[key].default as SettingValues[K] | null;
        }

        const secrets = this.readableSecrets(row);
        return (Object.keys(secrets).length ? { ...(row.value as Fields), ...secrets } : row.value) as SettingValues[K];
    }

    // In the registry's order, or by key with sort=key
    async list(actor: Actor, { limit, offset, sort, order }: { limit: number; offset: number; sort?: 'key'; order?: 'asc' | 'desc' }): Promise<Page<SettingView>> {

        const rows = new Map((await Setting.query(this.deps.knex)).map((row) => [row.key, row]));
        const keys = sort ? [...settingKeys].sort() : settingKeys;
        const items = (order === 'desc' ? [...keys].reverse() : keys).map((key) => this.view(key, rows.get(key)));
        return { items: items.slice(offset, offset + limit), total: items.length, limit, offset };
    }

    async describe(actor: Actor, key: string): Promise<SettingView> {

        const known = this.definition(key);
        return this.view(known, await Setting.query(this.deps.knex).findById(known));
    }

    async set(actor: Actor, key: string, input: unknown): Promise<SettingView> {

        const known = this.definition(key);
        const definition = settingDefinitions[known];
        const { error, value } = definition.schema.required().validate(input, { abortEarly: false, errors: { wrap: { label: false } } });
        if (error) {
            throw new ValidationError(error.details.map((detail) => detail.message).join('; '), error.details.map((detail) => ['value', ...detail.path].join('.')));
        }

        // Save-time SSRF check of every URL field (checked again at each call); check() throws only OutboundErrors
        for (const field of definition.urls) {
            // sso (issue 15): an optional URL field left out or null has nothing to check
            if ((value as Fields)[field] === undefined || (value as Fields)[field] === null) {
                continue;
            }

            try {
                (value as Fields)[field] = await this.deps.outbound.check((value as Fields)[field] as string);
            }
            catch (err) {
                throw new ValidationError(`${field}: ${(err as OutboundError).message}`, [`value.${field}`], 'url_not_allowed');
            }
        }

        const { plain, secrets: changes } = internals.split(definition, value);
        return await this.deps.knex.transaction(async (trx) => {

            const current = await Setting.query(trx).findById(known).forUpdate();
            // Secret fields left out keep their value; when every one is replaced, the old ones need not be readable
            const secrets: Fields = current && Object.keys(changes).length < definition.secrets.length ? this.readableSecrets(current) : {};
            for (const [field, item] of Object.entries(changes)) {
                if (item === null) {
                    delete secrets[field];
                }
                else {
                    secrets[field] = item;
                }
            }

            const sealed = Object.keys(secrets).length ? this.box.seal(known, JSON.stringify(secrets)) : null;
            const row = {
                key: known,
                value: JSON.stringify(plain),
                secret_ciphertext: sealed?.ciphertext ?? null,
                secret_iv: sealed?.iv ?? null,
                secret_tag: sealed?.tag ?? null,
                secret_key_id: sealed?.key_id ?? null,
                updated_by: actor.id,
                updated_at: trx.fn.now()
            };

            const [saved] = await trx('settings').insert(row).onConflict('key').merge().returning('*');
            await this.deps.audit.record(trx, actor, {
                action: 'settings.update', entity_type: 'setting', entity_id: known,
                details: { value: plain, write_only_changed: Object.keys(changes) }
            });

            return this.view(known, Setting.fromDatabaseJson(saved));
        });
    }

    // Back to the default: the row and its secrets are deleted.
    async reset(actor: Actor, key: string): Promise<SettingView> {

        const known = this.definition(key);
        return await this.deps.knex.transaction(async (trx) => {

            const deleted = await Setting.query(trx).deleteById(known);
            if (deleted) {
                await this.deps.audit.record(trx, actor, { action: 'settings.reset', entity_type: 'setting', entity_id: known });
            }

            return this.view(known, undefined);
        });
    }

    private definition(key: string): SettingKey {

        if (!Object.hasOwn(settingDefinitions, key)) {
            throw new NotFoundError('Setting', { key });
        }

        return key as SettingKey;
    }

    private view(key: SettingKey, row: Setting | undefined): SettingView {

        const definition = settingDefinitions[key];
        let value = row ? row.value : definition.default;
        if (definition.secrets.length && internals.isObject(value)) {
            const set = Boolean(row?.secret_ciphertext);
            const secrets = set ? this.secretsOf(row!) : {};
            value = { ...value };
            for (const field of definition.secrets) {
                // Unreadable (another key): still set, until set again
                (value as Fields)[field] = { set: set && (secrets === undefined || field in secrets) };
            }
        }

        return { key, description: definition.description, value, is_default: !row, updated_by: row?.updated_by ?? null, updated_at: row?.updated_at ?? null };
    }

    private secretsOf(row: Setting): Fields | undefined {

        if (!row.secret_ciphertext) {
            return {};
        }

        const text = this.box.open(row.key, { ciphertext: row.secret_ciphertext, iv: row.secret_iv!, tag: row.secret_tag!, key_id: row.secret_key_id! });
        return text === undefined ? undefined : JSON.parse(text) as Fields;
    }

    private readableSecrets(row: Setting): Fields {

        const secrets = this.secretsOf(row);
        if (secrets === undefined) {
            throw new ConflictError(`The secrets of the setting ${row.key} cannot be decrypted (encrypted under another AEGIS_SECRET_KEY, or altered): set them again`, 'secret_unreadable', { key: row.key });
        }

        return secrets;
    }
}
