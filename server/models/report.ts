import { BaseModel } from './base';


export type DocumentKind = 'coverage-summary' | 'executive-summary' | 'quarterly-summary' | 'technique' | 'purple-campaign';


// A PDF render: queued by the API, printed by the worker, its file in object storage
export class ReportRender extends BaseModel {

    static override tableName = 'report_renders';
    static override jsonAttributes = ['params'];

    declare id: string;
    declare kind: DocumentKind;
    declare params: Record<string, unknown>;
    declare content_sha256: string;
    declare html: string;
    declare file_name: string;
    declare status: 'queued' | 'running' | 'done' | 'failed';
    declare storage_key: string | null;
    declare size: string | number | null;
    declare error: string | null;
    declare render_ms: number | null;
    declare readers: string[];
    declare requested_by: string | null;
    declare finished_at: Date | null;
}


export class ReportSchedule extends BaseModel {

    static override tableName = 'report_schedules';
    static override jsonAttributes = ['params'];

    declare id: string;
    declare name: string;
    declare owner_id: string;
    declare kind: DocumentKind;
    declare params: Record<string, unknown>;
    declare cron: string | null;
    declare period: 'daily' | 'weekly' | 'monthly' | 'quarterly' | null;
    declare timezone: string;
    declare recipient_user_ids: string[];
    declare recipient_emails: string[];
    declare enabled: boolean;
    declare next_run_at: Date | null;
}


export class ReportScheduleRun extends BaseModel {

    static override tableName = 'report_schedule_runs';

    declare id: string;
    declare schedule_id: string;
    declare period_key: string;
    declare status: 'running' | 'sent' | 'failed';
    declare attempts: number;
    declare error: string | null;
    declare recipients: number;
    declare sent_to: string[];
    declare in_flight: string | null;          // the address a message was being sent to (internal: never answered)
    declare unconfirmed: string[];              // addresses in flight when a worker died: not sent again
    declare started_at: Date;
    declare finished_at: Date | null;
}
