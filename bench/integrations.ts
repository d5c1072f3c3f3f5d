import { integrationsJira } from './integrations-jira';
import { osintBench } from './integrations-osint';
import type { Suite } from './suites';


// Issue 14's bench: the two integrations the worker runs against systems outside Aegis, each half next to its own
// baseline measured in the same run (`integrations-jira` and `integrations-osint` run one half alone)
export const integrations: Suite = {
    description: 'Jira sync of 1,000 linked issues against a local Jira-compatible server, and the real MISP galaxy imported over HTTP, each next to a baseline in the same run',
    run: async () => {

        await integrationsJira();
        await osintBench();
    }
};
