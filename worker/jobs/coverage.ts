import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// coverage.mark-stale: techniques whose latest validation is older than COVERAGE_STALENESS_DAYS need review.
export const markStale = async (services: Services, logger?: Logger) => {

    const flagged = await services.coverage.markStale(systemActor);
    logger?.info({ job: 'coverage.mark-stale', flagged: flagged.length }, 'stale coverage marked for review');
    return flagged;
};


export const defineCoverageJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['coverage.mark-stale']>('coverage.mark-stale', async () => {

        await markStale(services, options.logger);
    }, { concurrency: 1 });
};


// Daily, and once when first scheduled (a worker started after a long stop catches up at once)
export const scheduleCoverageJobs = async (agenda: Agenda) => {

    await agenda.every('1 day', 'coverage.mark-stale');
};
