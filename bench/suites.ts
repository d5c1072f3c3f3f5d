import { attack } from './attack';
import { events } from './events';
import { foundation } from './foundation';
import { tests } from './tests';
// documents (issue 13)
import { documents } from './documents';


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
    // documents (issue 13)
    documents
};
