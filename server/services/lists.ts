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


// The list envelope of conventions.md. `sort` has already been checked against the route's allowlist by joi.
//
// One round trip: the total rides along with the page as an uncorrelated scalar subquery (PostgreSQL evaluates it
// once, as an InitPlan), counted over the filtered query the way objection's resultSize() counts it. Only a page past
// the end has no row to carry it, and costs a second query.
//
// `plain` answers the rows as PostgreSQL returns them, without model instances: for hot lists whose query selects
// exactly the public columns (hydrating and serialising models costs more than the query itself).
export const page = async <M extends Model>(query: QueryBuilder<M, M[]>, list: ListQuery, defaults: { sort: string; order: 'asc' | 'desc'; plain?: boolean }): Promise<Page<M>> => {

    const limit = list.limit ?? 50;
    const offset = list.offset ?? 0;
    const sort = list.sort ?? defaults.sort;
    const order = list.order ?? defaults.order;
    const tableName = (query.modelClass() as typeof Model).tableName;

    const filtered = query.clone().clear(/^(orderBy|limit|offset)$/).toKnexQuery();
    const total = query.knex().count('*').from(filtered.as('counted'));

    const items = query.clone().orderBy(`${tableName}.${sort}`, order).orderBy(`${tableName}.id`, order).limit(limit).offset(offset);
    if (!items.has('select')) {
        items.select(`${tableName}.*`);
    }

    items.select(total.as(totalColumn));
    const rows = await (defaults.plain ? items.toKnexQuery() as unknown as Promise<M[]> : items);
    return await pageOfRows(rows, { limit, offset }, () => query.clone().resultSize());
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
