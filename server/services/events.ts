import type { Knex } from 'knex';

import type { Actor } from '../policy';


export type DomainEventType = 'test.validated' | 'test.state_changed' | 'campaign.completed' | 'alert.fired' | 'coverage.changed';


export interface DomainEvent {
    type: DomainEventType;
    entity_type: string;
    entity_id: string;
    payload: Record<string, unknown>;
}


// The outbox: an event is a row written in the transaction of the change it describes, so it exists exactly when
// the change does. The worker relays pending rows to webhooks and alerts after commit.
export class EventsService {

    async emit(trx: Knex.Transaction, actor: Actor, events: DomainEvent[]): Promise<void> {

        if (!events.length) {
            return;
        }

        await trx('domain_events').insert(events.map((event) => ({ ...event, actor_id: actor.id })));
    }
}
