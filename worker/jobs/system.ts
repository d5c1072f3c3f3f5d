import type { Agenda } from 'agenda';

import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


export const defineSystemJobs = (agenda: Agenda, services: Services) => {

    agenda.define('system.prune-revocations', async () => {

        await services.system.pruneRevocations(systemActor);
    }, { concurrency: 1 });
};


export const scheduleSystemJobs = async (agenda: Agenda) => {

    await agenda.every('1 hour', 'system.prune-revocations');
};
