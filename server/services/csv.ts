import { pipeline, type Readable } from 'stream';

import { stringify, type Options } from 'csv-stringify';
import type { Knex } from 'knex';
import QueryStream from 'pg-query-stream';


export interface CsvColumn {
    key: string;
    header: string;
}


// OWASP CSV injection / ASVS 5.0 1.2.10 (SEC-16): a text cell that a spreadsheet would read as a formula or a
// control sequence gets a leading apostrophe. csv-stringify's own escape_formulas leaves out LF and NUL.
export const neutralise = (value: string): string => (/^[=+\-@\t\r\n\0]/.test(value) ? `'${value}` : value);


// RFC 4180: every field quoted (quotes doubled), CRLF between records, a header row; UTF-8. Dates as ISO 8601 UTC,
// booleans as true/false, null as an empty (quoted) field.
export const csvOptions = (columns: CsvColumn[]): Options => ({
    header: true,
    columns,
    quoted: true,
    quoted_empty: true,
    record_delimiter: 'windows',
    cast: {
        string: neutralise,
        boolean: (value: boolean) => (value ? 'true' : 'false'),
        date: (value: Date) => value.toISOString(),
        object: (value: object) => neutralise(JSON.stringify(value))
    }
});


// A query's rows as CSV, streamed: a server-side cursor on a connection of the pool (pg-query-stream), read a batch
// at a time as the client takes the bytes (backpressure through pipeline), so memory stays flat whatever the size.
// The connection goes back to the pool when the stream ends, fails, or the client goes away.
export const streamCsv = async (knex: Knex, query: Knex.QueryBuilder, columns: CsvColumn[], options: { batchSize?: number } = {}): Promise<Readable> => {

    const { sql, bindings } = query.toSQL().toNative();
    const connection = await knex.client.acquireConnection();
    const rows = connection.query(new QueryStream(sql, bindings as unknown[], { batchSize: options.batchSize ?? 500 })) as Readable;
    const csv = stringify(csvOptions(columns));
    let released = false;
    const release = () => {

        if (!released) {
            released = true;
            knex.client.releaseConnection(connection);
        }
    };

    return pipeline(rows, csv, release);
};
