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


// The list envelope of conventions.md. `sort` has already been checked against the route's allowlist by joi.
// `plain` answers the rows as PostgreSQL returns them, without model instances: for hot lists whose query selects
// exactly the public columns (hydrating and serialising models costs more than the query itself).
export const page = async <M extends Model>(query: QueryBuilder<M, M[]>, list: ListQuery, defaults: { sort: string; order: 'asc' | 'desc'; plain?: boolean }): Promise<Page<M>> => {

    const limit = list.limit ?? 50;
    const offset = list.offset ?? 0;
    const sort = list.sort ?? defaults.sort;
    const order = list.order ?? defaults.order;
    const tableName = (query.modelClass() as typeof Model).tableName;

    const items = query.clone().orderBy(`${tableName}.${sort}`, order).orderBy(`${tableName}.id`, order).limit(limit).offset(offset);
    const [rows, total] = await Promise.all([
        defaults.plain ? items.toKnexQuery() as unknown as Promise<M[]> : items,
        query.clone().resultSize()
    ]);

    return { items: rows, total, limit, offset };
};


// LIKE patterns built from user input: the wildcards and the escape character are literal.
export const likePattern = (text: string): string => `%${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
