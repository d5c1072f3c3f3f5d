import { BaseModel } from './base';


// A delivery of a domain event to one consumer that failed at least once: retried with back-off while `pending`,
// parked as `failed` after the last attempt, `processed` once a retry succeeded (docs/architecture.md).
export class EventDelivery extends BaseModel {

    static override tableName = 'event_deliveries';

    declare id: string;
    declare consumer: string;
    declare event_id: string;
    declare status: 'pending' | 'failed' | 'processed';
    declare attempts: number;
    declare next_attempt_at: Date | null;
    declare last_error: string | null;
}
