import { attack } from './attack';
import { events } from './events';
import { foundation } from './foundation';
import { tests } from './tests';
// campaigns (issue 10)
import { campaigns } from './campaigns';
// scores (issue 12)
import { risk } from './risk';
// alerts
import { alerts } from './alerts-eval';
// reports
import { reports } from './reports';
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
    // campaigns (issue 10)
    campaigns,
    // scores (issue 12)
    risk,
    // alerts
    alerts,
    // reports
    reports,
    // documents (issue 13)
    documents
};
