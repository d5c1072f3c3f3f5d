import type { QueryBuilder } from 'objection';

import { testAccess, type Actor, type Classification } from '../policy';
import { timerReading, type Detection, type DetectionOutcome, type TestState } from '../services/test-lifecycle';

import { BaseModel } from './base';


export type Priority = 'low' | 'medium' | 'high' | 'critical';
export type DataClassification = Classification;
export type AttackResult = 'succeeded' | 'partially_succeeded' | 'failed' | 'blocked';
export type RemediationStatus = 'none' | 'open' | 'in_progress' | 'awaiting_retest' | 'resolved' | 'accepted_risk';


// node-postgres reads a DATE as local midnight; the API answers the calendar date it holds
export const dateOnly = (value: Date): string => `${value.getFullYear()}-${String(value.getMonth() + 1).padStart(2, '0')}-${String(value.getDate()).padStart(2, '0')}`;


export class Test extends BaseModel {

    static override tableName = 'tests';

    declare id: string;
    declare title: string;
    declare objective: string | null;
    declare description: string | null;
    declare technique_id: string;
    declare platform: string | null;
    declare priority: Priority;
    declare tags: string[];
    declare red_assignee_id: string | null;
    declare blue_assignee_id: string | null;
    declare data_classification: DataClassification;
    declare template_id: string | null;
    declare retest_of_id: string | null;
    declare expected_outcome: string | null;
    declare expected_detection_asset_ids: string[];
    declare state: TestState;
    declare campaign_ids: string[];
    declare blind: boolean;

    declare procedure: string | null;
    declare tool: string | null;
    declare command: string | null;
    declare target_host: string | null;
    declare executed_at: Date | null;
    declare attack_result: AttackResult | null;
    declare red_notes: string | null;

    declare detections: Detection[];
    declare blue_notes: string | null;
    declare detection_outcome: DetectionOutcome | null;
    declare detected_at: Date | null;

    declare red_approved: boolean | null;
    declare red_validated_by: string | null;
    declare red_validated_at: Date | null;
    declare red_validation_comment: string | null;
    declare blue_approved: boolean | null;
    declare blue_validated_by: string | null;
    declare blue_validated_at: Date | null;
    declare blue_validation_comment: string | null;
    declare validated_at: Date | null;
    declare rejected_at: Date | null;

    declare red_seconds: number;
    declare blue_seconds: number;
    declare timer_started_at: Date | null;
    declare timer_paused: boolean;

    declare remediation_status: RemediationStatus;
    declare remediation_notes: string | null;
    declare remediation_owner_id: string | null;
    declare remediation_due: string | null;
    declare jira_issue_key: string | null;

    declare version: number;
    declare created_by: string | null;

    static override get jsonAttributes() {

        return ['detections'];
    }

    static override modifiers = {
        // The visibility rule of policy.ts (testAccess) in SQL: every read of tests, or of what hangs off a test, goes through it
        visibleTo(query: QueryBuilder<Test>, actor: Actor) {

            const access = testAccess(actor);
            if (!access) {
                return;
            }

            const table = Test.tableName;
            query.where((q) => {

                q.whereIn(`${table}.data_classification`, access.classifications);
                if (access.assignee) {
                    const assignee = access.assignee;
                    q.orWhere((r) => r.where(`${table}.data_classification`, 'restricted').where((s) => s.where(`${table}.red_assignee_id`, assignee).orWhere(`${table}.blue_assignee_id`, assignee)));
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

    // What every reader gets besides the columns: the timer as of now and time to detect (campaign_ids is a column,
    // kept by triggers on campaign_tests)
    override $formatJson(json: Record<string, unknown>) {

        // retest_root_id is the alert evaluation's index key (migrations/20261209120000_retest_chains.ts), not an API field
        const { retest_root_id: _root, ...formatted } = super.$formatJson(json);
        const timer = timerReading(this, new Date());
        const ttd = this.detected_at && this.executed_at ? Math.round((new Date(this.detected_at).getTime() - new Date(this.executed_at).getTime()) / 1000) : null;
        return { ...formatted, ...timer, time_to_detect_seconds: ttd };
    }
}
