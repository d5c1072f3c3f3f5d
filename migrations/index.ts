import type { Knex } from 'knex';

import * as Foundation from './20261128000001_foundation';
import * as Attack from './20261128000002_attack';
import * as Tests from './20261128000003_tests';
import * as EventRelay from './20261206000500_event_relay';


export interface Migration {
    name: string;
    up: (knex: Knex) => Promise<void>;
    down: (knex: Knex) => Promise<void>;
}


// The explicit, ordered list of migrations: a new migration is a file plus a line here.
export const migrations: Migration[] = [
    Foundation,
    Attack,
    Tests,
    EventRelay
];
