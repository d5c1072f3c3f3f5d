import type { Agenda } from 'agenda';

import type { Config } from '../../server/config';
import type { Logger } from '../../server/logger';
import type { Services } from '../../server/services';

import { defineAttackJobs, scheduleAttackJobs } from './attack';
import { defineSystemJobs, scheduleSystemJobs, type RetentionOptions } from './system';
import { defineTestJobs, scheduleTestJobs } from './tests';


export interface JobOptions {
    attack: Config['attack'];
    relay: RetentionOptions;
    logger?: Logger;
}


// Every job family, in one explicit list: define the handlers, then the recurring schedules.
export const defineJobs = (agenda: Agenda, services: Services, options: JobOptions) => {

    defineSystemJobs(agenda, services, options);
    defineAttackJobs(agenda, services, options);
    defineTestJobs(agenda, services, options);
};


export const scheduleJobs = async (agenda: Agenda, services: Services) => {

    await scheduleSystemJobs(agenda);
    await scheduleAttackJobs(agenda, services);
    await scheduleTestJobs(agenda);
};
