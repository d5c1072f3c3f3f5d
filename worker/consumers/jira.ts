import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';
import type { Consumer } from '../relay';


// jira (issue 14): a remediation changed in Aegis owes its Jira issue a comment (an outbox row, written in the
// relay's transaction; the jira.sync-due job posts it). Starts at the horizon.
export const jiraCommentsConsumer = (services: Services): Consumer<'test.remediation_changed'> => ({
    name: 'jira-comments',
    events: ['test.remediation_changed'],
    from: 'now',
    handle: async (event, trx) => {

        await services.jira.enqueueComment(systemActor, event, trx);
    }
});


// The retest that validates closes the loop: the original's remediation is resolved (or reopened), in the relay's
// transaction, with its own timeline and audit rows
export const retestLoopConsumer = (services: Services): Consumer<'test.validated'> => ({
    name: 'remediation-retest',
    events: ['test.validated'],
    from: 'now',
    handle: async (event, trx) => {

        await services.jira.closeLoop(systemActor, event, trx);
    }
});
