import { BaseModel } from './base';


export const osintFeedKinds = ['misp_galaxy', 'stix_bundle', 'taxii_collection'] as const;
export type OsintFeedKind = typeof osintFeedKinds[number];

export const osintAuthTypes = ['none', 'basic', 'api_key'] as const;
export type OsintAuthType = typeof osintAuthTypes[number];


// A threat-intelligence feed (docs/osint.md). Its credential (a TAXII password or API key) is sealed (SecretBox, the
// feed's id as context) and never leaves the model: $formatJson drops the sealed columns and says only whether one is set.
export class OsintFeed extends BaseModel {

    static override tableName = 'osint_feeds';
    static override virtualAttributes = ['has_secret'];

    declare id: string;
    declare name: string;
    declare kind: OsintFeedKind;
    declare url: string | null;
    declare file_path: string | null;
    declare collection: string | null;
    declare auth_type: OsintAuthType;
    declare username: string | null;
    declare api_key_header: string | null;
    declare secret_ciphertext: Buffer | null;
    declare secret_iv: Buffer | null;
    declare secret_tag: Buffer | null;
    declare secret_key_id: string | null;
    declare cron: string | null;
    declare interval_minutes: number | null;
    declare enabled: boolean;
    declare next_run_at: Date | null;
    declare last_run_at: Date | null;
    declare last_succeeded_at: Date | null;
    declare created_by: string | null;

    get has_secret(): boolean {

        return this.secret_ciphertext !== null && this.secret_ciphertext !== undefined;
    }

    // Derived from the sealed columns: response validation writes the value back, which changes nothing
    set has_secret(_value: boolean) { }

    override $formatJson(json: Record<string, unknown>) {

        const { secret_ciphertext: ciphertext, secret_iv: iv, secret_tag: tag, secret_key_id: keyId, ...rest } = super.$formatJson(json);
        return rest;
    }
}


export interface OsintRejection {
    item: string;                       // the feed's id of the item, or its position when it has none
    reason: string;
}


export class OsintImport extends BaseModel {

    static override tableName = 'osint_imports';
    static override jsonAttributes = ['rejections'];

    declare id: string;
    declare feed_id: string;
    declare trigger: 'manual' | 'schedule';
    declare status: 'queued' | 'running' | 'succeeded' | 'failed';
    declare source: string | null;
    declare added: number;
    declare updated: number;
    declare unchanged: number;
    declare removed: number;
    declare rejected: number;
    declare rejections: OsintRejection[];
    declare error: string | null;
    declare started_at: Date | null;
    declare finished_at: Date | null;
    declare requested_by: string | null;
}
