import type { Knex } from 'knex';


// Set-based writes of many rows from an outside source (ATT&CK and D3FEND today, OSINT feeds next): every statement
// one batch of rows passed as one jsonb parameter, an unchanged row never rewritten, and counts of what changed.

export type SqlType = 'text' | 'text[]' | 'uuid' | 'boolean' | 'integer' | 'smallint' | 'timestamptz' | 'jsonb';

export interface Column {
    name: string;
    type: SqlType;
}

export interface TableSpec {
    table: string;
    conflict: string;
    columns: Column[];                  // written on insert; compared and rewritten on update (minus insertOnly)
    insertOnly?: string[];              // e.g. domain: the first domain an object came from
    uncompared?: string[];              // rewritten with a changed row, but no reason alone to rewrite it (a release tag)
    union?: string;                     // a text[] column merged with the existing value rather than replaced
    guard?: string;                     // an extra condition on the existing row for an update to happen
}

export interface LinkSpec {
    table: string;
    left: Column;
    right: Column;
    extra?: Column[];                   // compared and rewritten on conflict
    scope?: string;                     // rows of the table the sync owns (manual links are left alone)
}

export interface WriteCounts {
    inserted: number;
    updated: number;
    deleted: number;
}

export type Row = Record<string, unknown>;


const internals = {
    batchSize: 1000
};


export const emptyCounts = (): WriteCounts => ({ inserted: 0, updated: 0, deleted: 0 });


export const changedRows = (written: Record<string, WriteCounts>): number => {

    return Object.values(written).reduce((sum, counts) => sum + counts.inserted + counts.updated + counts.deleted, 0);
};


export const chunks = <T>(items: T[], size = internals.batchSize): T[][] => {

    const result: T[][] = [];
    for (let i = 0; i < items.length; i += size) {
        result.push(items.slice(i, i + size));
    }

    return result;
};


// x(?? text, ?? text[], ...): the column definition list of jsonb_to_recordset; the names are bound, the types are constants
export const recordsetDefinition = (columns: Column[]): string => columns.map((column) => `?? ${column.type}`).join(', ');


// insert ... on conflict do update ... where the row really differs: an unchanged row is not rewritten
export const upsertRows = async (trx: Knex.Transaction, spec: TableSpec, rows: Row[]): Promise<WriteCounts> => {

    const names = spec.columns.map((column) => column.name);
    const updated = names.filter((name) => name !== spec.conflict && !spec.insertOnly?.includes(name));
    const compared = updated.filter((name) => name !== spec.union && !spec.uncompared?.includes(name));
    const set = updated.map((name) => (name === spec.union ?
        '?? = array(select distinct unnest(?? || excluded.??) order by 1)' :
        '?? = excluded.??'));
    const setBindings = updated.flatMap((name) => (name === spec.union ? [name, `${spec.table}.${name}`, name] : [name, name]));
    const distinct = `(${compared.map(() => '??').join(', ')}) is distinct from (${compared.map(() => 'excluded.??').join(', ')})`;
    const union = spec.union !== undefined && names.includes(spec.union) ? spec.union : null;
    const condition = union ? `(${distinct} or not (?? @> excluded.??))` : `(${distinct})`;
    const conditionBindings = [...compared.map((name) => `${spec.table}.${name}`), ...compared, ...(union ? [`${spec.table}.${union}`, union] : [])];

    const sql = `insert into ?? (??) select ?? from jsonb_to_recordset(?::jsonb) as x(${recordsetDefinition(spec.columns)})
        on conflict (??) do update set ${set.join(', ')}, "updated_at" = now()
        where ${condition}${spec.guard ? ` and ${spec.guard}` : ''}
        returning (xmax = 0) as inserted`;

    const counts = emptyCounts();
    for (const chunk of chunks(rows)) {
        const result = await trx.raw(sql, [spec.table, names, names, JSON.stringify(chunk), ...names, spec.conflict, ...setBindings, ...conditionBindings]);
        for (const row of result.rows as { inserted: boolean }[]) {
            counts[row.inserted ? 'inserted' : 'updated']++;
        }
    }

    return counts;
};


// The links between objects of one source: add the missing ones, update changed extras, and delete those of the
// sync's own scope whose two ends are in the source (the universes) but which the source no longer has.
export const syncLinks = async (trx: Knex.Transaction, spec: LinkSpec, rows: Row[], leftUniverse: string[], rightUniverse: string[] | null): Promise<WriteCounts> => {

    const left = spec.left.name;
    const right = spec.right.name;
    const seen = new Set<string>();
    const valid = rows.filter((row) => {

        const key = `${row[left]}\u0000${row[right]}`;
        if (!row[left] || !row[right] || seen.has(key)) {
            return false;
        }

        seen.add(key);
        return true;
    });

    const columns = [spec.left, spec.right, ...spec.extra ?? []];
    const names = columns.map((column) => column.name);
    const extras = (spec.extra ?? []).map((column) => column.name);
    const onConflict = extras.length ?
        `do update set ${extras.map(() => '?? = excluded.??').join(', ')} where (${extras.map(() => '??').join(', ')}) is distinct from (${extras.map(() => 'excluded.??').join(', ')})${spec.scope ? ` and ${spec.table}.${spec.scope}` : ''}` :
        'do nothing';
    const conflictBindings = extras.length ? [...extras.flatMap((name) => [name, name]), ...extras.map((name) => `${spec.table}.${name}`), ...extras] : [];

    const counts = emptyCounts();
    for (const chunk of chunks(valid)) {
        const result = await trx.raw(`insert into ?? (??) select ?? from jsonb_to_recordset(?::jsonb) as x(${recordsetDefinition(columns)}) on conflict (??, ??) ${onConflict} returning (xmax = 0) as inserted`,
            [spec.table, names, names, JSON.stringify(chunk), ...names, left, right, ...conflictBindings]);
        for (const row of result.rows as { inserted: boolean }[]) {
            counts[row.inserted ? 'inserted' : 'updated']++;
        }
    }

    const pairs = JSON.stringify(valid.map((row) => ({ [left]: row[left], [right]: row[right] })));
    const universe = rightUniverse ? ` and t.?? = any(?::${spec.right.type}[])` : '';
    const result = await trx.raw(`delete from ?? as t where t.?? = any(?::${spec.left.type}[])${universe}${spec.scope ? ` and t.${spec.scope}` : ''}
        and not exists (select 1 from jsonb_to_recordset(?::jsonb) as d(?? ${spec.left.type}, ?? ${spec.right.type}) where d.?? = t.?? and d.?? = t.??)`,
    [spec.table, left, leftUniverse, ...rightUniverse ? [right, rightUniverse] : [], pairs, left, right, left, left, right, right]);
    counts.deleted = result.rowCount ?? 0;
    return counts;
};
