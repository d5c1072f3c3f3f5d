import type { Knex } from 'knex';


// What PostgreSQL's uuid type reads: a string that is not one is refused (400, or skipped) before a statement, where it
// would fail the whole statement
export const isUuid = (value: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);


// PostgreSQL text cannot hold NUL: a string, a key or a nested value with one (a request's input, a parsed file) is
// refused before it reaches a statement. Streams and buffers are not looked into.
export const hasNul = (value: unknown, depth = 0): boolean => {

    if (typeof value === 'string') {
        return value.includes('\u0000');
    }

    if (value && typeof value === 'object' && depth < 32 && !Buffer.isBuffer(value) && typeof (value as { pipe?: unknown }).pipe !== 'function') {
        return Object.entries(value).some(([key, item]) => key.includes('\u0000') || hasNul(item, depth + 1));
    }

    return false;
};


// A parameterised statement: PostgreSQL's $1..$n placeholders and their values.
export interface Statement {
    text: string;
    values: unknown[];
}


// Runs a statement on a client of knex's pool, without knex's query builder or runner. Only for the few statements
// on every request's path (the token's user, the users list), where building and running through knex costs as much
// as PostgreSQL's answer; everything else goes through objection.
export const runStatement = async (knex: Knex, statement: Statement): Promise<Record<string, unknown>[]> => {

    const client = await knex.client.acquireConnection() as { query: (text: string, values: unknown[]) => Promise<{ rows: Record<string, unknown>[] }> };
    try {
        return (await client.query(statement.text, statement.values)).rows;
    }
    finally {
        await knex.client.releaseConnection(client);
    }
};
