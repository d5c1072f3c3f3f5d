import type { Agenda } from 'agenda';

import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


// risk-recompute (issue 12, docs/posture.md): every technique's score and risk into risk_profiles. Asked by
// POST /risk/compute, by the `risk` consumer a few seconds after coverage changes (debounced), and nightly.
export const defineRiskJobs = (agenda: Agenda, services: Services, options: { logger?: Logger | undefined }) => {

    agenda.define<Jobs['risk-recompute']>('risk-recompute', async (job) => {

        await recomputeRisk(services, job.attrs.data, options.logger);
    }, { concurrency: 1, lockLifetime: 10 * 60_000 });
};


// The recompute, then the risk_threshold rules on the risks it stored: the recompute is the event that moves a risk
// (docs/alerts.md), so a risk crossing a rule's threshold fires (or clears) here, not 15 minutes later
export const recomputeRisk = async (services: Services, data: Jobs['risk-recompute'], logger?: Logger) => {

    const result = await services.risk.recompute(systemActor);
    const alerts = await services.alerts.evaluate(systemActor, { ruleTypes: ['risk_threshold'] });
    logger?.info({ job: 'risk-recompute', reason: data.reason, requested_by: data.requested_by ?? null, profiles: result.profiles, alerts }, 'risk recomputed');
    return { ...result, alerts };
};


// Nightly (the decay moves with time even when nothing else does), and once when first scheduled
export const scheduleRiskJobs = async (agenda: Agenda) => {

    await agenda.every('1 day', 'risk-recompute', { reason: 'schedule' });
};
