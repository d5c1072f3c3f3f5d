import { attack } from './attack';
import { events } from './events';
import { foundation } from './foundation';
// dashboards (issue 12)
import { posture } from './posture';
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
// attack paths and knowledge (issue 10)
import { attackPaths } from './attack-paths';
// detection (issue 11)
import { detection } from './detection';
// performance of uploads (issue 16)
import { perfUploadsSuite } from './perf-uploads';
// osint (issue 14): the OSINT half of `integrations`
import { integrationsOsint } from './integrations-osint';
// perf (issue 16)
import { perf, perfPaths } from './perf';
// jira (issue 14): `integrations` runs both halves of issue 14
import { integrations } from './integrations';
import { integrationsJiraSuite } from './integrations-jira';


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
    documents,
    // attack paths and knowledge (issue 10)
    'attack-paths': attackPaths,
    // dashboards (issue 12)
    posture,
    // detection (issue 11)
    detection,
    // performance of uploads (issue 16)
    'perf-uploads': perfUploadsSuite,
    // osint (issue 14)
    'integrations-osint': integrationsOsint,
    // perf (issue 16)
    perf,
    // the read and write rows of issue 16 alone, without the uploads
    'perf-paths': perfPaths,
    // jira (issue 14)
    'integrations-jira': integrationsJiraSuite,
    integrations
};
