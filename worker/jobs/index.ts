import type { Agenda } from 'agenda';

import type { Config } from '../../server/config';
import type { Logger } from '../../server/logger';
import type { Services } from '../../server/services';

import { defineAttackJobs, scheduleAttackJobs } from './attack';
import { defineCoverageJobs, scheduleCoverageJobs } from './coverage';
import { defineSystemJobs, scheduleSystemJobs, type RetentionOptions } from './system';
import { defineTestJobs, scheduleTestJobs } from './tests';
// scores (issue 12: scores, risk, compliance)
import { defineRiskJobs, scheduleRiskJobs } from './risk';
// alerts
import { defineAlertJobs, scheduleAlertJobs } from './alerts';
// documents (issue 13)
import { defineDocumentJobs, scheduleDocumentJobs } from './documents';
import type { PdfPrinter } from '../../server/services/documents';
// dashboards (issue 12)
import { defineSnapshotJobs, scheduleSnapshotJobs } from './snapshots';
// detection (issue 11)
import { defineDetectionJobs } from './detection';
// osint (issue 14)
import { defineOsintJobs, scheduleOsintJobs } from './osint';
// jira (issue 14)
import { defineJiraJobs, scheduleJiraJobs } from './jira';


export interface JobOptions {
    attack: Config['attack'];
    relay: RetentionOptions;
    logger?: Logger;
    // documents (issue 13): the worker's one browser
    documents?: { printer: PdfPrinter; timeoutMs: number };
}


// Every job family, in one explicit list: define the handlers, then the recurring schedules.
export const defineJobs = (agenda: Agenda, services: Services, options: JobOptions) => {

    defineSystemJobs(agenda, services, options);
    defineAttackJobs(agenda, services, options);
    defineTestJobs(agenda, services, options);
    defineCoverageJobs(agenda, services, options);
    // scores (issue 12)
    defineRiskJobs(agenda, services, options);
    // alerts
    defineAlertJobs(agenda, services, options);
    // documents (issue 13)
    if (options.documents) {
        defineDocumentJobs(agenda, services, { ...options.documents, logger: options.logger });
    }

    // dashboards (issue 12)
    defineSnapshotJobs(agenda, services, options);
    // detection (issue 11)
    defineDetectionJobs(agenda, services, options);
    // osint (issue 14)
    defineOsintJobs(agenda, services, options);
    // jira (issue 14)
    defineJiraJobs(agenda, services, options);
};


// What the worker says of its own jobs (agenda re-emits other processes' events with remote = true: not ours). A
// failure's reason is the message itself, so that a terminal shows what failed and what to do in one line.
export const logJobEvents = (agenda: Agenda, logger: Logger) => {

    agenda.on('start', (job, remote?: boolean) => !remote && logger.info({ job: job.attrs.name, id: String(job.attrs._id) }, 'job started'));
    agenda.on('success', (job, remote?: boolean) => !remote && logger.info({ job: job.attrs.name, id: String(job.attrs._id) }, 'job succeeded'));
    agenda.on('fail', (err: Error | string, job, remote?: boolean) => !remote && logger.error({ job: job.attrs.name, id: String(job.attrs._id) }, `${job.attrs.name} failed: ${err instanceof Error ? err.message : err}`));
};


export const scheduleJobs = async (agenda: Agenda, services: Services) => {

    await scheduleSystemJobs(agenda);
    await scheduleAttackJobs(agenda, services);
    await scheduleTestJobs(agenda);
    await scheduleCoverageJobs(agenda);
    // scores (issue 12)
    await scheduleRiskJobs(agenda);
    // alerts
    await scheduleAlertJobs(agenda);
    // documents (issue 13)
    await scheduleDocumentJobs(agenda);
    // dashboards (issue 12)
    await scheduleSnapshotJobs(agenda);
    // osint (issue 14)
    await scheduleOsintJobs(agenda);
    // jira (issue 14)
    await scheduleJiraJobs(agenda);
};
