import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';
import type { Consumer } from '../relay';


// One webhook delivery per event and subscription, written in the relay's transaction (so exactly once, with the
// cursor); the worker's sender POSTs them afterwards. Starts at the horizon: a new install does not replay history.
export const webhooksConsumer = (services: Services): Consumer<'test.validated' | 'test.state_changed' | 'campaign.completed' | 'alert.fired' | 'coverage.changed'> => ({
    name: 'webhooks',
    events: ['test.validated', 'test.state_changed', 'campaign.completed', 'alert.fired', 'coverage.changed'],
    from: 'now',
    handle: async (event, trx) => {

        await services.webhooks.enqueue(systemActor, event, trx);
    }
});
