import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// snapshots.daily: a scheduled posture snapshot, then the scheduled ones older than SNAPSHOT_RETENTION_DAYS deleted
export const dailySnapshot = async (services: Services, logger?: Logger) => {

    const result = await services.snapshots.daily(systemActor);
    logger?.info({ job: 'snapshots.daily', ...result }, 'posture snapshot taken');
    return result;
};


export const defineSnapshotJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['snapshots.daily']>('snapshots.daily', async () => {

        await dailySnapshot(services, options.logger);
    }, { concurrency: 1 });
};


// Daily, and once when first scheduled
export const scheduleSnapshotJobs = async (agenda: Agenda) => {

    await agenda.every('1 day', 'snapshots.daily');
};
