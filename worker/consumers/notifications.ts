import type { Services } from '../../server/services';
import type { Consumer } from '../relay';


// In-app notifications to the users who act next, from each test state change. Idempotent by construction: the
// notifications are written in the relay's transaction, which commits them with the consumer's cursor past the event.
export const notificationsConsumer = (services: Services): Consumer<'test.state_changed'> => ({
    name: 'notifications',
    events: ['test.state_changed'],
    handle: (event, trx) => services.tests.announce(trx, event)
});
