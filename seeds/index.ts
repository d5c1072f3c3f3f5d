import type { Logger } from 'pino';

import type { Config } from '../server/config';
import type { Services } from '../server/services';

import { admin } from './admin';


// What a fresh install needs before anyone can use it, created by the API at every start where it is missing. Each
// seed is idempotent and safe when several API instances start at once; they run in this order, after the
// migrations. Reference data comes from elsewhere: the ATT&CK knowledge base from the worker's first-start sync
// (docs/attack.md), test templates from `aegis import-atomics` (docs/tests.md).
export interface SeedContext {
    services: Services;
    config: Pick<Config, 'admin'>;
    logger: Logger;
}


export interface Seed {
    name: string;
    run: (context: SeedContext) => Promise<void>;
}


export const seeds: Seed[] = [admin];


export const runSeeds = async (context: SeedContext): Promise<void> => {

    for (const seed of seeds) {
        await seed.run(context);
    }
};
