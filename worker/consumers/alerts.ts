import type { Services } from '../../server/services';
import type { Consumer } from '../relay';


// A validation or a coverage change evaluates the alert rules on its technique, in the relay's transaction: the
// instances, their alert.fired events and the leads' notifications commit with the cursor, exactly once.
export const alertsConsumer = (services: Services): Consumer<'coverage.changed' | 'test.validated'> => ({
    name: 'alerts',
    events: ['coverage.changed', 'test.validated'],
    from: 'now',
    handle: (event, trx) => services.alerts.onEvent(trx, event)
});


// The e-mail of a fired alert to the leads who asked for it, after the commit (at least once)
export const alertMailConsumer = (services: Services): Consumer<'alert.fired'> => ({
    name: 'alert-mail',
    events: ['alert.fired'],
    from: 'now',
    handle: async (event) => {

        await services.alerts.mailFired(event);
    }
});
