import { attack } from './attack';
import { events } from './events';
import { foundation } from './foundation';
import { tests } from './tests';
// attack paths and knowledge (issue 10)
import { attackPaths } from './attack-paths';


export interface Suite {
    description: string;
    run: () => Promise<void>;
}


// Every benchmark suite, in one explicit list: a suite is a file in this folder plus a line here.
export const suites: Record<string, Suite> = {
    foundation,
    attack,
    tests,
    events,
    // attack paths and knowledge (issue 10)
    'attack-paths': attackPaths
};
