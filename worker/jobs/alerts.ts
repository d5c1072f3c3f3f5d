import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// alerts.evaluate: every enabled alert rule over everything (the scheduled run and POST /alerts/evaluate); the
// events of a validation evaluate their technique at once through the alerts consumer.
export const defineAlertJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['alerts.evaluate']>('alerts.evaluate', async (job) => {

        const result = await services.alerts.evaluate(systemActor);
        options.logger?.info({ job: 'alerts.evaluate', reason: job.attrs.data?.reason, ...result }, 'alert rules evaluated');
    }, { concurrency: 1, lockLifetime: 10 * 60_000 });
};


// Every 15 minutes: what no event announces (a due date passing, a validation growing old) is caught within that
export const scheduleAlertJobs = async (agenda: Agenda) => {

    await agenda.every('15 minutes', 'alerts.evaluate', { reason: 'schedule' });
};
