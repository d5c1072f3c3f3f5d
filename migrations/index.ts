import type { Knex } from 'knex';

import * as Foundation from './20261128000001_foundation';


export interface Migration {
    name: string;
    up: (knex: Knex) => Promise<void>;
    down: (knex: Knex) => Promise<void>;
}


// The explicit, ordered list of migrations: a new migration is a file plus a line here.
export const migrations: Migration[] = [
    Foundation
];
