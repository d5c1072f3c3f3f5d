import type { Agenda } from 'agenda';

import type { Config } from '../../server/config';
import type { Logger } from '../../server/logger';
import type { Services } from '../../server/services';

import { defineAttackJobs, scheduleAttackJobs } from './attack';
import { defineCoverageJobs, scheduleCoverageJobs } from './coverage';
import { defineSystemJobs, scheduleSystemJobs } from './system';
import { defineTestJobs, scheduleTestJobs } from './tests';


export interface JobOptions {
    attack: Config['attack'];
    logger?: Logger;
}


// Every job family, in one explicit list: define the handlers, then the recurring schedules.
export const defineJobs = (agenda: Agenda, services: Services, options: JobOptions) => {

    defineSystemJobs(agenda, services);
    defineAttackJobs(agenda, services, options);
    defineTestJobs(agenda, services, options);
    defineCoverageJobs(agenda, services, options);
};


export const scheduleJobs = async (agenda: Agenda, services: Services) => {

    await scheduleSystemJobs(agenda);
    await scheduleAttackJobs(agenda, services);
    await scheduleTestJobs(agenda);
    await scheduleCoverageJobs(agenda);
};
