import { BaseModel } from './base';


export const webhookEventTypes = ['test.validated', 'test.state_changed', 'campaign.completed', 'alert.fired', 'coverage.changed'] as const;

export type WebhookEventType = typeof webhookEventTypes[number];


// An admin's subscription. The signing secret is sealed (SecretBox, the webhook's id as context) and never leaves
// the model: $formatJson drops the sealed columns, so no answer or log of a webhook can carry it.
export class Webhook extends BaseModel {

    static override tableName = 'webhooks';

    declare id: string;
    declare name: string;
    declare url: string;
    declare events: WebhookEventType[];
    declare description: string | null;
    declare enabled: boolean;
    declare disabled_reason: string | null;
    declare failing_since: Date | null;
    declare secret_ciphertext: Buffer;
    declare secret_iv: Buffer;
    declare secret_tag: Buffer;
    declare secret_key_id: string;
    declare created_by: string | null;

    override $formatJson(json: Record<string, unknown>) {

        const { secret_ciphertext: ciphertext, secret_iv: iv, secret_tag: tag, secret_key_id: keyId, ...rest } = super.$formatJson(json);
        return rest;
    }
}


export class WebhookDelivery extends BaseModel {

    static override tableName = 'webhook_deliveries';

    declare id: string;
    declare webhook_id: string;
    declare event_id: string | null;
    declare event_type: string;
    declare body: string;
    declare status: 'pending' | 'delivered' | 'failed';
    declare attempts: number;
    declare next_attempt_at: Date | null;
    declare retry_until: Date;
    declare last_status_code: number | null;
    declare last_latency_ms: number | null;
    declare last_error: string | null;
    declare delivered_at: Date | null;
}


export class WebhookAttempt extends BaseModel {

    static override tableName = 'webhook_attempts';

    declare id: string;
    declare delivery_id: string;
    declare attempt: number;
    declare status_code: number | null;
    declare latency_ms: number;
    declare error: string | null;
}
