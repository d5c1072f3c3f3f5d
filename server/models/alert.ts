import type { QueryBuilder } from 'objection';

import { testAccess, type Actor } from '../policy';

import { BaseModel } from './base';
import { Test } from './test';


export type AlertRuleType = 'coverage_regression' | 'stale_validation' | 'detection_failure' | 'risk_threshold' | 'sla_breach';
export type AlertSeverity = 'low' | 'medium' | 'high' | 'critical';
export type AlertStatus = 'open' | 'acknowledged' | 'resolved' | 'dismissed';
export type AlertSubjectType = 'technique' | 'test' | 'campaign';


export class AlertRule extends BaseModel {

    static override tableName = 'alert_rules';

    declare id: string;
    declare name: string;
    declare description: string | null;
    declare rule_type: AlertRuleType;
    declare parameters: Record<string, unknown>;
    declare severity: AlertSeverity;
    declare enabled: boolean;
    declare last_evaluated_at: Date | null;
    declare created_by: string | null;

    static override get jsonAttributes() {

        return ['parameters'];
    }
}


export class Alert extends BaseModel {

    static override tableName = 'alerts';

    declare id: string;
    declare rule_id: string;
    declare rule_type: AlertRuleType;
    declare severity: AlertSeverity;
    declare subject_type: AlertSubjectType;
    declare subject_id: string;
    declare technique_id: string | null;
    declare test_ids: string[];
    declare status: AlertStatus;
    declare title: string;
    declare details: Record<string, unknown>;
    declare fired_at: Date;
    declare acknowledged_at: Date | null;
    declare acknowledged_by: string | null;
    declare resolved_at: Date | null;
    declare resolved_by: string | null;
    declare dismissed_at: Date | null;
    declare dismissed_by: string | null;
    declare note: string | null;
    declare cleared_at: Date | null;

    static override get jsonAttributes() {

        return ['details'];
    }

    static override modifiers = {
        // The visibility rule of tests (policy.ts): an instance that refers to a test the actor may not see is as
        // absent as one that does not exist, whatever else it says
        visibleTo(query: QueryBuilder<Alert>, actor: Actor) {

            if (!testAccess(actor)) {
                return;
            }

            // Every test it refers to visible (counted, so that SQL's unknown never stands in for a no)
            query.where(Alert.raw('cardinality(alerts.test_ids)'), '=', Test.query().count('*').whereRaw('tests.id = any(alerts.test_ids)').modify('visibleTo', actor));
        }
    };
}
