import type { Agenda } from 'agenda';

import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


export interface RetentionOptions {
    retentionDays: number;
    consumers: string[];                // the relay's consumers: only their cursors count
}


// events.prune: domain events older than RELAY_RETENTION_DAYS that every consumer has been handed (and none still
// owes a retry or waits parked) are deleted.
export const defineSystemJobs = (agenda: Agenda, services: Services, options: { relay: RetentionOptions; logger?: Logger | undefined }) => {

    agenda.define('system.prune-revocations', async () => {

        await services.system.pruneRevocations(systemActor);
    }, { concurrency: 1 });

    agenda.define('events.prune', async () => {

        const olderThan = new Date(Date.now() - options.relay.retentionDays * 86_400_000);
        const deleted = await services.events.prune(systemActor, { consumers: options.relay.consumers, olderThan });
        options.logger?.info({ job: 'events.prune', deleted }, 'domain events pruned');
    }, { concurrency: 1, lockLifetime: 30 * 60_000 });
};


export const scheduleSystemJobs = async (agenda: Agenda) => {

    await agenda.every('1 hour', 'system.prune-revocations');
    await agenda.every('1 day', 'events.prune', {}, { skipImmediate: true });
};
