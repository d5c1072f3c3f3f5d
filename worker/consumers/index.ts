import type { DomainEventType } from '../../server/services/events';
import type { Services } from '../../server/services';
import type { Consumer } from '../relay';

import { notificationsConsumer } from './notifications';
// scores (issue 12: scores, risk, compliance)
import { riskConsumer } from './risk';
// alerts
import { alertMailConsumer, alertsConsumer } from './alerts';
// webhooks
import { webhooksConsumer } from './webhooks';
// jira (issue 14)
import { jiraCommentsConsumer, retestLoopConsumer } from './jira';


// A consumer typed by its event types, into the one list the relay runs (as route() does for routes): the handler's
// event is typed by what it subscribes to; the list holds consumers of every type.
const consumer = <T extends DomainEventType>(definition: Consumer<T>): Consumer => definition as unknown as Consumer;


// Every consumer of domain events, in one explicit list: a consumer is a file in this folder plus a line here. A name
// is its cursor in `event_consumers`: renaming one starts it again from the oldest event kept.
export const consumers = (services: Services): Consumer[] => [
    consumer(notificationsConsumer(services)),
    // scores (issue 12: scores, risk, compliance)
    consumer(riskConsumer(services)),
    // alerts
    consumer(alertsConsumer(services)),
    consumer(alertMailConsumer(services)),
    // webhooks
    consumer(webhooksConsumer(services)),
    // jira (issue 14)
    consumer(jiraCommentsConsumer(services)),
    consumer(retestLoopConsumer(services))
];
