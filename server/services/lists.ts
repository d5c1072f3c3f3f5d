import type { Knex } from 'knex';
import type { Model, QueryBuilder } from 'objection';


export interface ListQuery {
    limit?: number;
    offset?: number;
    sort?: string;
    order?: 'asc' | 'desc';
}


export interface Page<T> {
    items: T[];
    total: number;
    limit: number;
    offset: number;
}


// The column that carries the total beside each row of a page
export const totalColumn = '__total';


const internals = {
    window: (list: ListQuery) => ({ limit: list.limit ?? 50, offset: list.offset ?? 0 }),

    // The number of rows of the filtered query, as a scalar subquery or a query of its own
    total: (knex: Knex, filtered: Knex.QueryBuilder) => knex.count('*').from(filtered.as('counted'))
};


// The list envelope of conventions.md. `sort` has already been checked against the route's allowlist by joi.
//
// One round trip: the total rides along with the page as an uncorrelated scalar subquery (PostgreSQL evaluates it
// once, as an InitPlan), counted over the filtered query the way objection's resultSize() counts it. Only a page past
// the end has no row to carry it, and costs a second query.
//
// `plain` answers the rows as PostgreSQL returns them, without model instances: for hot lists whose query selects
// exactly the public columns (hydrating and serialising models costs more than the query itself).
//
// `count`, when given, answers the total instead of counting the filtered rows: a cached or maintained count (the
// unfiltered test list reads the test counters, services/test-counts.ts), for a list too large to count per request.
export const page = async <M extends Model>(query: QueryBuilder<M, M[]>, list: ListQuery, defaults: { sort: string; order: 'asc' | 'desc'; plain?: boolean; count?: () => Promise<number> }): Promise<Page<M>> => {

    const { limit, offset } = internals.window(list);
    const sort = list.sort ?? defaults.sort;
    const order = list.order ?? defaults.order;
    const tableName = (query.modelClass() as typeof Model).tableName;

    const filtered = query.clone().clear(/^(orderBy|limit|offset)$/).toKnexQuery();
    const total = internals.total(query.knex(), filtered);

    const items = query.clone().orderBy(`${tableName}.${sort}`, order).orderBy(`${tableName}.id`, order).limit(limit).offset(offset);
    if (!items.has('select')) {
        items.select(`${tableName}.*`);
    }

    if (defaults.count) {
        const [rows, counted] = await Promise.all([defaults.plain ? items.toKnexQuery() as unknown as Promise<M[]> : items, defaults.count()]);
        return { items: rows, total: counted, limit, offset };
    }

    items.select(total.as(totalColumn));
    const rows = await (defaults.plain ? items.toKnexQuery() as unknown as Promise<M[]> : items);
    return await pageOfRows(rows, { limit, offset }, () => query.clone().resultSize());
};


// page() for a list that is not one model's rows (joins, computed columns, an order of its own): `items` selects and
// orders the rows, `filtered` is the filtered query whose rows the total counts. The same single round trip.
export const pageOfQuery = async <T extends object>(knex: Knex, items: Knex.QueryBuilder, filtered: Knex.QueryBuilder, list: ListQuery): Promise<Page<T>> => {

    const window = internals.window(list);
    const rows = await items.clone().select(internals.total(knex, filtered.clone()).as(totalColumn)).limit(window.limit).offset(window.offset);
    return await pageOfRows(rows as T[], window, async () => {

        const [counted] = await internals.total(knex, filtered.clone());
        return Number((counted as { count: string | number }).count);
    });
};


// The envelope around rows that carry the total in `totalColumn`; `count` answers it when no row came back.
export const pageOfRows = async <T extends object>(rows: T[], window: { limit: number; offset: number }, count: () => Promise<number>): Promise<Page<T>> => {

    let total = 0;
    for (const row of rows as (T & { [totalColumn]?: string | number })[]) {
        total = Number(row[totalColumn]);
        delete row[totalColumn];
    }

    if (!rows.length && window.offset > 0) {
        total = await count();
    }

    return { items: rows, total, limit: window.limit, offset: window.offset };
};


// LIKE patterns built from user input: the wildcards and the escape character are literal.
export const likePattern = (text: string): string => `%${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;


// detection (issue 11): the equality filters of a list, each applied when given (`table.field = value`)
export const whereEquals = <Q extends { where: (column: string, value: unknown) => unknown }, F extends object>(query: Q, filters: F, fields: readonly (keyof F & string)[], table: string): Q => {

    for (const field of fields) {
        if (filters[field] !== undefined && filters[field] !== null && filters[field] !== '') {
            query.where(`${table}.${field}`, filters[field]);
        }
    }

    return query;
};
