import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';
import type { PdfPrinter } from '../../server/services/documents';


// documents.render: print a queued report render (one browser per worker, pages reused: integrations/pdf).
// reports.schedules: every minute, send the report e-mails whose time has come and retry the failed ones.
// documents.prune: daily, renders older than a day go with their files.
export interface DocumentJobOptions {
    printer: PdfPrinter;
    timeoutMs: number;
    logger?: Logger | undefined;
}


export const defineDocumentJobs = (agenda: Agenda, services: Services, options: DocumentJobOptions) => {

    agenda.define<Jobs['documents.render']>('documents.render', async (job) => {

        await services.documents.print(job.attrs.data.render_id, options.printer, options.timeoutMs);
    }, { concurrency: 2, lockLifetime: 3 * options.timeoutMs });

    agenda.define<Jobs['reports.schedules']>('reports.schedules', async () => {

        const result = await services.reportSchedules.tick(options.printer);
        if (result.claimed || result.retried) {
            options.logger?.info({ job: 'reports.schedules', ...result }, 'report schedules run');
        }
    }, { concurrency: 1, lockLifetime: 30 * 60_000 });

    agenda.define<Jobs['documents.prune']>('documents.prune', async () => {

        const deleted = await services.documents.prune(systemActor, new Date(Date.now() - 86_400_000));
        options.logger?.info({ job: 'documents.prune', deleted }, 'report renders pruned');
    }, { concurrency: 1 });
};


export const scheduleDocumentJobs = async (agenda: Agenda) => {

    await agenda.every('1 minute', 'reports.schedules');
    await agenda.every('1 day', 'documents.prune', {}, { skipImmediate: true });
};
