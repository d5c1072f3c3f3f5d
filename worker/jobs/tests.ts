import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// evidence.sweep: objects without a row (a crash between upload and commit) and rows whose object is missing.
// test-templates.import-atomics: Atomic Red Team atomics into templates, idempotent on the atomic GUID.
export const defineTestJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['evidence.sweep']>('evidence.sweep', async () => {

        const result = await services.evidence.sweep(systemActor);
        if (result.missing.length) {
            options.logger?.error({ job: 'evidence.sweep', missing: result.missing }, 'evidence rows whose object is missing');
        }

        options.logger?.info({ job: 'evidence.sweep', deleted: result.deleted.length, missing: result.missing.length }, 'evidence sweep finished');
    }, { concurrency: 1, lockLifetime: 30 * 60_000 });

    agenda.define<Jobs['test-templates.import-atomics']>('test-templates.import-atomics', async (job) => {

        const result = await services.testTemplates.importAtomics(systemActor, job.attrs.data.dir, (count) => job.touch(Math.min(99, Math.floor(count / 20))).catch(() => undefined));
        options.logger?.info({ job: 'test-templates.import-atomics', ...result }, 'atomic import finished');
    }, { concurrency: 1, lockLifetime: 10 * 60_000 });
};


export const scheduleTestJobs = async (agenda: Agenda) => {

    await agenda.every('1 hour', 'evidence.sweep', {}, { skipImmediate: true });
};
