import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// risk-recompute (issue 12, docs/posture.md): every technique's score and risk into risk_profiles. Asked by
// POST /risk/compute, by the `risk` consumer a few seconds after coverage changes (debounced), and nightly.
export const defineRiskJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['risk-recompute']>('risk-recompute', async (job) => {

        const result = await services.risk.recompute(systemActor);
        options.logger?.info({ job: 'risk-recompute', reason: job.attrs.data.reason, requested_by: job.attrs.data.requested_by ?? null, profiles: result.profiles }, 'risk recomputed');
    }, { concurrency: 1, lockLifetime: 10 * 60_000 });
};


// Nightly (the decay moves with time even when nothing else does), and once when first scheduled
export const scheduleRiskJobs = async (agenda: Agenda) => {

    await agenda.every('1 day', 'risk-recompute', { reason: 'schedule' });
};
