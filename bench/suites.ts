import { attack } from './attack';
import { events } from './events';
import { foundation } from './foundation';
import { tests } from './tests';
// detection (issue 11)
import { detection } from './detection';


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
    // detection (issue 11)
    detection
};
