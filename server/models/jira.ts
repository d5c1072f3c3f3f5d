import { BaseModel } from './base';


export const jiraSyncTriggers = ['schedule', 'manual', 'webhook'] as const;
export const jiraSyncStatuses = ['queued', 'running', 'succeeded', 'partial', 'failed'] as const;

export type JiraSyncTrigger = typeof jiraSyncTriggers[number];
export type JiraSyncStatus = typeof jiraSyncStatuses[number];


// The Jira issue linked to a test (tests.jira_issue_key holds its key) and what Jira last said of it.
export class JiraIssue extends BaseModel {

    static override tableName = 'jira_issues';
    static override idColumn = 'test_id';

    declare test_id: string;
    declare issue_key: string;
    declare issue_id: string | null;
    declare origin: 'created' | 'linked';
    declare status_name: string | null;
    declare status_category: string | null;
    declare resolution: string | null;
    declare jira_updated_at: Date | null;
    declare last_synced_at: Date | null;
    declare last_error: string | null;
    declare linked_by: string | null;
}


// One sync run: what it saw, changed and failed to apply (each failure with its issue key and reason).
export class JiraSyncRun extends BaseModel {

    static override tableName = 'jira_sync_runs';
    static override jsonAttributes = ['failures'];

    declare id: string;
    declare trigger: JiraSyncTrigger;
    declare status: JiraSyncStatus;
    declare requested_by: string | null;
    declare issue_keys: string[] | null;
    declare not_before: Date | null;
    declare since: Date | null;
    declare cursor: Date | null;
    declare issues_seen: number;
    declare issues_changed: number;
    declare issues_failed: number;
    declare failures: { issue_key: string; reason: string }[];
    declare error: string | null;
    declare started_at: Date | null;
    declare finished_at: Date | null;
}


// A comment Aegis owes a Jira issue (a remediation changed), posted by the `jira.comments` job.
export class JiraComment extends BaseModel {

    static override tableName = 'jira_comments';

    declare id: string;
    declare test_id: string;
    declare issue_key: string;
    declare event_id: string | null;
    declare body: string;
    declare status: 'pending' | 'sent' | 'failed';
    declare attempts: number;
    declare next_attempt_at: Date | null;
    declare last_error: string | null;
    declare sent_at: Date | null;
}
