import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// jira (issue 14), docs/jira.md. jira.sync: one queued run (POST /jira/sync, the inbound webhook). jira.sync-due,
// every minute: a poll when one is due (poll_minutes, doubled after each failed poll, never before Jira's
// Retry-After), then the comments owed to Jira.
export const defineJiraJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['jira.sync']>('jira.sync', async (job) => {

        const run = await services.jira.runSync(systemActor, job.attrs.data.run_id);
        options.logger?.info({ job: 'jira.sync', run_id: run.id, status: run.status, seen: run.issues_seen, changed: run.issues_changed, failed: run.issues_failed }, run.error ? `jira sync failed: ${run.error}` : 'jira sync finished');
    }, { concurrency: 1, lockLifetime: 30 * 60_000 });

    agenda.define<Jobs['jira.sync-due']>('jira.sync-due', async () => {

        const { run, comments } = await services.jira.syncDue(systemActor);
        if (run || comments) {
            options.logger?.info({ job: 'jira.sync-due', run_id: run?.id ?? null, status: run?.status ?? null, comments }, run?.error ? `jira sync failed: ${run.error}` : 'jira pass finished');
        }
    }, { concurrency: 1, lockLifetime: 30 * 60_000 });
};


export const scheduleJiraJobs = async (agenda: Agenda) => {

    await agenda.every('1 minute', 'jira.sync-due', {}, { skipImmediate: true });
};
