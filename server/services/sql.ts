import type { Knex } from 'knex';


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
