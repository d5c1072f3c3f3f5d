import type { Services } from '../../server/services';
import type { Consumer } from '../relay';


// Scores and risk follow coverage: each change (a new status, or a validation that moved a score without changing the
// status) asks for one debounced risk-recompute job. Idempotent: a burst of events is one job.
export const riskConsumer = (services: Services): Consumer<'coverage.changed' | 'test.validated'> => ({
    name: 'risk',
    events: ['coverage.changed', 'test.validated'],
    from: 'now',
    handle: async () => {

        await services.risk.coverageChanged();
    }
});
