import type { Knex } from 'knex';

import { NotFoundError } from '../errors';
import { Campaign, Worklog } from '../models';
import { isAdmin, ownsOrAdmin, type Actor } from '../policy';

import type { AuditService } from './audit';
import { page, type ListQuery, type Page } from './lists';
import type { TestsService } from './tests';


export interface WorklogCreate {
    test_id?: string;
    campaign_id?: string;
    minutes: number;
    date: string;
    note?: string | null;
}

export interface WorklogUpdate {
    minutes?: number;
    date?: string;
    note?: string | null;
}

export interface WorklogFilters extends ListQuery {
    user_id?: string;
    test_id?: string;
    campaign_id?: string;
    date_from?: string;
    date_to?: string;
}

export interface WorklogTotal {
    key: string;
    minutes: number;
    entries: number;
}


// "Any create; own or A to read": everyone logs their own time; a user reads their own entries, an admin all
export class WorklogsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; tests: TestsService }) { }

    list(actor: Actor, filters: WorklogFilters): Promise<Page<Worklog>> {

        return page(this.scoped(actor, filters), filters, { sort: 'date', order: 'desc' });
    }

    async summary(actor: Actor, filters: Omit<WorklogFilters, keyof ListQuery> & { group_by: 'test' | 'user' | 'campaign' }): Promise<{ group_by: string; items: WorklogTotal[]; total_minutes: number }> {

        const column = `${filters.group_by}_id`;
        const rows = await this.scoped(actor, filters)
            .whereNotNull(column)
            .select(`${column} as key`)
            .sum('minutes as minutes')
            .count('* as entries')
            .groupBy(column)
            .orderBy('minutes', 'desc')
            .limit(1000)
            .castTo<WorklogTotal[]>();

        const items = (rows as unknown as WorklogTotal[]).map((row) => ({ key: row.key, minutes: Number(row.minutes), entries: Number(row.entries) }));
        return { group_by: filters.group_by, items, total_minutes: items.reduce((sum, row) => sum + row.minutes, 0) };
    }

    async get(actor: Actor, id: string): Promise<Worklog> {

        const worklog = await Worklog.query(this.deps.knex).findById(id);
        if (!worklog || !ownsOrAdmin(actor, worklog.user_id)) {
            throw new NotFoundError('Worklog');
        }

        return worklog;
    }

    async create(actor: Actor, input: WorklogCreate): Promise<Worklog> {

        if (input.test_id) {
            // Time can only be logged on a test the user can see
            await this.deps.tests.get(actor, input.test_id);
        }

        // The campaign must exist (a foreign key since the campaigns module)
        if (input.campaign_id && !await Campaign.query(this.deps.knex).findById(input.campaign_id)) {
            throw new NotFoundError('Campaign');
        }

        return await Worklog.transaction(this.deps.knex, async (trx) => {

            const worklog = await Worklog.insertReturning(trx, { ...input, note: input.note || null, user_id: actor.id! });
            await this.deps.audit.record(trx, actor, { action: 'worklog.create', entity_type: 'worklog', entity_id: worklog.id, details: { test_id: input.test_id ?? null, minutes: input.minutes } });
            return worklog;
        });
    }

    async update(actor: Actor, id: string, input: WorklogUpdate): Promise<Worklog> {

        return await Worklog.transaction(this.deps.knex, async (trx) => {

            const worklog = await Worklog.query(trx).findById(id).forUpdate();
            if (!worklog || !ownsOrAdmin(actor, worklog.user_id)) {
                throw new NotFoundError('Worklog');
            }

            const updated = await worklog.$patchReturning(trx, { ...input, ...(input.note === '' ? { note: null } : {}) });
            await this.deps.audit.record(trx, actor, { action: 'worklog.update', entity_type: 'worklog', entity_id: id, details: { fields: Object.keys(input) } });
            return updated;
        });
    }

    async remove(actor: Actor, id: string): Promise<void> {

        await Worklog.transaction(this.deps.knex, async (trx) => {

            const worklog = await Worklog.query(trx).findById(id).forUpdate();
            if (!worklog || !ownsOrAdmin(actor, worklog.user_id)) {
                throw new NotFoundError('Worklog');
            }

            await worklog.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'worklog.delete', entity_type: 'worklog', entity_id: id });
        });
    }

    private scoped(actor: Actor, filters: Omit<WorklogFilters, keyof ListQuery>) {

        const query = Worklog.query(this.deps.knex);
        if (!isAdmin(actor)) {
            query.where('user_id', actor.id!);
        }
        else if (filters.user_id) {
            query.where('user_id', filters.user_id);
        }

        for (const field of ['test_id', 'campaign_id'] as const) {
            if (filters[field]) {
                query.where(field, filters[field]);
            }
        }

        if (filters.date_from) {
            query.where('date', '>=', filters.date_from);
        }

        if (filters.date_to) {
            query.where('date', '<=', filters.date_to);
        }

        return query;
    }
}
