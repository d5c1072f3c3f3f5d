import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// osint (issue 14, docs/osint.md). osint.import: one queued feed import (asked by POST /osint/feeds/{id}/run or by
// the schedule). osint.schedules: every minute, a queued import for each enabled feed whose time has come.
export const defineOsintJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['osint.import']>('osint.import', async (job) => {

        const result = await services.osint.runImport(systemActor, job.attrs.data.import_id);
        options.logger?.info({ job: 'osint.import', import_id: result.id, feed_id: result.feed_id, status: result.status, added: result.added, updated: result.updated, unchanged: result.unchanged, removed: result.removed, rejected: result.rejected }, 'osint feed imported');
    }, { concurrency: 1, lockLifetime: 30 * 60_000 });

    agenda.define<Jobs['osint.schedules']>('osint.schedules', async () => {

        const queued = await services.osint.tick(systemActor);
        if (queued) {
            options.logger?.info({ job: 'osint.schedules', queued }, 'osint feed imports queued');
        }
    }, { concurrency: 1 });
};


export const scheduleOsintJobs = async (agenda: Agenda) => {

    await agenda.every('1 minute', 'osint.schedules');
};
