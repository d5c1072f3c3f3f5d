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
export const page = async <M extends Model>(query: QueryBuilder<M, M[]>, list: ListQuery, defaults: { sort: string; order: 'asc' | 'desc' }): Promise<Page<M>> => {

    const limit = list.limit ?? 50;
    const offset = list.offset ?? 0;
    const sort = list.sort ?? defaults.sort;
    const order = list.order ?? defaults.order;
    const tableName = (query.modelClass() as typeof Model).tableName;

    const [items, total] = await Promise.all([
        query.clone().orderBy(`${tableName}.${sort}`, order).orderBy(`${tableName}.id`, order).limit(limit).offset(offset),
        query.clone().resultSize()
    ]);

    return { items, total, limit, offset };
};


// LIKE patterns built from user input: the wildcards and the escape character are literal.
export const likePattern = (text: string): string => `%${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
