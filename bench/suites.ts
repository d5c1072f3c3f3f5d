import { attack } from './attack';
import { events } from './events';
import { foundation } from './foundation';
// dashboards (issue 12)
import { posture } from './posture';
import { tests } from './tests';


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
    // dashboards (issue 12)
    posture
};
