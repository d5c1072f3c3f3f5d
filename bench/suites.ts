import { attack } from './attack';
import { events } from './events';
import { foundation } from './foundation';
import { tests } from './tests';
// reports
import { reports } from './reports';


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
    // reports
    reports
};
