import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// detection-rules.import-sigma: Sigma rules from a folder into detection rules, idempotent on each rule's own id
export const defineDetectionJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['detection-rules.import-sigma']>('detection-rules.import-sigma', async (job) => {

        const result = await services.detectionRules.importSigma(systemActor, job.attrs.data.dir, (count) => job.touch(Math.min(99, Math.floor(count / 10))).catch(() => undefined));
        for (const skipped of result.skipped) {
            options.logger?.warn({ job: 'detection-rules.import-sigma', file: skipped.file }, `Sigma rule skipped: ${skipped.error}`);
        }

        options.logger?.info({ job: 'detection-rules.import-sigma', ...result, skipped: result.skipped.length }, 'sigma import finished');
    }, { concurrency: 1, lockLifetime: 10 * 60_000 });
};
