import type { QueryBuilder } from 'objection';

import { isLead, type Actor } from '../policy';
import { timerReading, type Detection, type DetectionOutcome, type TestState } from '../services/test-lifecycle';

import { BaseModel } from './base';


export type Priority = 'low' | 'medium' | 'high' | 'critical';
export type DataClassification = 'public' | 'internal' | 'confidential' | 'restricted';
export type AttackResult = 'succeeded' | 'partially_succeeded' | 'failed' | 'blocked';
export type RemediationStatus = 'none' | 'open' | 'in_progress' | 'resolved' | 'accepted_risk';


// node-postgres reads a DATE as local midnight; the API answers the calendar date it holds
export const dateOnly = (value: Date): string => `${value.getFullYear()}-${String(value.getMonth() + 1).padStart(2, '0')}-${String(value.getDate()).padStart(2, '0')}`;


export class Test extends BaseModel {

    static override tableName = 'tests';

    id!: string;
    title!: string;
    objective!: string | null;
    description!: string | null;
    technique_id!: string;
    platform!: string | null;
    priority!: Priority;
    tags!: string[];
    red_assignee_id!: string | null;
    blue_assignee_id!: string | null;
    data_classification!: DataClassification;
    template_id!: string | null;
    retest_of_id!: string | null;
    expected_outcome!: string | null;
    expected_detection_asset_ids!: string[];
    state!: TestState;

    procedure!: string | null;
    tool!: string | null;
    command!: string | null;
    target_host!: string | null;
    executed_at!: Date | null;
    attack_result!: AttackResult | null;
    red_notes!: string | null;

    detections!: Detection[];
    blue_notes!: string | null;
    detection_outcome!: DetectionOutcome | null;
    detected_at!: Date | null;

    red_approved!: boolean | null;
    red_validated_by!: string | null;
    red_validated_at!: Date | null;
    red_validation_comment!: string | null;
    blue_approved!: boolean | null;
    blue_validated_by!: string | null;
    blue_validated_at!: Date | null;
    blue_validation_comment!: string | null;
    validated_at!: Date | null;
    rejected_at!: Date | null;

    red_seconds!: number;
    blue_seconds!: number;
    timer_started_at!: Date | null;
    timer_paused!: boolean;

    remediation_status!: RemediationStatus;
    remediation_notes!: string | null;
    remediation_owner_id!: string | null;
    remediation_due!: string | null;
    jira_issue_key!: string | null;

    version!: number;
    created_by!: string | null;

    static override get jsonAttributes() {

        return ['detections'];
    }

    static override modifiers = {
        // domain.md Decisions: restricted tests only for A, the leads and the test's assignees; confidential hidden from V
        visibleTo(query: QueryBuilder<Test>, actor: Actor) {

            if (isLead(actor)) {
                return;
            }

            const table = Test.tableName;
            query.where((q) => {

                q.whereIn(`${table}.data_classification`, actor.role === 'viewer' ? ['public', 'internal'] : ['public', 'internal', 'confidential']);
                if (actor.id) {
                    q.orWhere((r) => r.where(`${table}.data_classification`, 'restricted').where((s) => s.where(`${table}.red_assignee_id`, actor.id!).orWhere(`${table}.blue_assignee_id`, actor.id!)));
                }
            });
        }
    };

    override $parseDatabaseJson(json: Record<string, unknown>) {

        const parsed = super.$parseDatabaseJson(json);
        if (parsed.remediation_due instanceof Date) {
            parsed.remediation_due = dateOnly(parsed.remediation_due);
        }

        return parsed;
    }

    // What every reader gets besides the columns: the timer as of now, time to detect, and the campaigns (none until
    // the campaigns module exists)
    override $formatJson(json: Record<string, unknown>) {

        const formatted = super.$formatJson(json);
        const timer = timerReading(this, new Date());
        const ttd = this.detected_at && this.executed_at ? Math.round((new Date(this.detected_at).getTime() - new Date(this.executed_at).getTime()) / 1000) : null;
        return { ...formatted, ...timer, time_to_detect_seconds: ttd, campaign_ids: [] };
    }
}
