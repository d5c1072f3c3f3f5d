import type { Knex } from 'knex';

import { AuditLog, type AuditOutcome } from '../models';
import type { Actor } from '../policy';

import { tableOf } from './changes';
import { page, type ListQuery, type Page } from './lists';


export interface AuditEntry {
    action: string;
    entity_type?: string | undefined;
    entity_id?: string | null | undefined;
    outcome?: AuditOutcome;
    details?: Record<string, unknown>;
}


export interface AuditFilters extends ListQuery {
    actor_id?: string;
    action?: string;
    entity_type?: string;
    entity_id?: string;
    outcome?: AuditOutcome;
    from?: Date;
    to?: Date;
}


// Keys whose values never reach the audit table, whatever a caller passes in details.
const internals = {
    secret: /pass(word)?|secret|token|api[_-]?key|key_hash|authorization|cookie|saml/i
};


export class AuditService {

    constructor(private readonly deps: { knex: Knex }) { }

    // Always called with the transaction of the change it records, so both commit or neither does. Several entries (a
    // bulk change) are one statement.
    async record(trx: Knex.Transaction | Knex, actor: Actor, entry: AuditEntry | AuditEntry[]): Promise<void> {

        const rows = this.rows(actor, entry);
        if (rows.length) {
            await tableOf('audit_logs').query(trx).insert(rows);
        }
    }

    // The audit rows of entries, as they are written (secrets redacted, details as JSON text): `record` writes them,
    // and `writeRecords` (changes.ts) with the other rows of a change, in one statement
    rows(actor: Actor, entry: AuditEntry | AuditEntry[]): Record<string, unknown>[] {

        return [entry].flat().map((item) => ({
            actor_id: actor.id,
            actor_role: actor.role,
            action: item.action,
            entity_type: item.entity_type ?? null,
            entity_id: item.entity_id ?? null,
            outcome: item.outcome ?? 'success',
            ip: actor.ip ?? null,
            user_agent: actor.userAgent?.slice(0, 512) ?? null,
            request_id: actor.requestId ?? null,
            details: JSON.stringify(redact(item.details ?? {}))
        }));
    }

    // For events that change nothing (a refused request): its own statement, and never an error for the caller.
    async recordOutside(actor: Actor, entry: AuditEntry): Promise<void> {

        await this.record(this.deps.knex, actor, entry).catch(() => undefined);
    }

    list(actor: Actor, filters: AuditFilters): Promise<Page<AuditLog>> {

        const query = AuditLog.query(this.deps.knex);
        for (const field of ['actor_id', 'action', 'entity_type', 'entity_id', 'outcome'] as const) {
            if (filters[field] !== undefined) {
                query.where(field, filters[field]);
            }
        }

        if (filters.from) {
            query.where('created_at', '>=', filters.from);
        }

        if (filters.to) {
            query.where('created_at', '<', filters.to);
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }
}


export const redact = (details: Record<string, unknown>): Record<string, unknown> => {

    const clean: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(details)) {
        if (internals.secret.test(key)) {
            clean[key] = '[redacted]';
        }
        else if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
            clean[key] = redact(value as Record<string, unknown>);
        }
        else {
            clean[key] = value;
        }
    }

    return clean;
};
