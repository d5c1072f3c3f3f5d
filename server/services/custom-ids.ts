import type { Knex } from 'knex';

import type { LockKey } from '../locks';


// The next id under a reserved prefix (X0001 for techniques, XDC0001 for data components), read and then used under
// the allocator's lock for the rest of the caller's transaction: two creations never get the same id.
export const nextCustomId = async (trx: Knex.Transaction, options: { table: string; prefix: string; lock: LockKey }): Promise<string> => {

    await trx.raw('select pg_advisory_xact_lock(?)', [options.lock]);
    const row = await trx(options.table).where('is_custom', true).whereRaw('mitre_id ~ ?', [`^${options.prefix}[0-9]+$`])
        .max({ last: trx.raw('substring(mitre_id from ?::integer)::integer', [options.prefix.length + 1]) }).first();
    return `${options.prefix}${String((row?.last ?? 0) + 1).padStart(4, '0')}`;
};
