import type { Knex } from 'knex';

import { ValidationError } from '../errors';


// The techniques a payload names must exist (400 naming the field otherwise); answers their names by MITRE id
export const knownTechniques = async (db: Knex | Knex.Transaction, ids: readonly string[], field: string): Promise<Map<string, string>> => {

    const wanted = [...new Set(ids)];
    if (!wanted.length) {
        return new Map();
    }

    const rows: { mitre_id: string; name: string }[] = await db('techniques').select('mitre_id', 'name').whereIn('mitre_id', wanted);
    const unknown = wanted.filter((id) => !rows.some((row) => row.mitre_id === id));
    if (unknown.length) {
        throw new ValidationError(`Unknown technique: ${unknown.join(', ')} (import ATT&CK or create the custom technique first)`, [field], 'unknown_technique');
    }

    return new Map(rows.map((row) => [row.mitre_id, row.name]));
};
