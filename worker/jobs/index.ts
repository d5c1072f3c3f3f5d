import type { Agenda } from 'agenda';

import type { Services } from '../../server/services';

import { defineSystemJobs, scheduleSystemJobs } from './system';


// Every job family, in one explicit list: define the handlers, then the recurring schedules.
export const defineJobs = (agenda: Agenda, services: Services) => {

    defineSystemJobs(agenda, services);
};


export const scheduleJobs = async (agenda: Agenda) => {

    await scheduleSystemJobs(agenda);
};
