import type { Knex } from 'knex';

import { renderMail, type MailMessage } from '../../integrations/mail';
import { ConflictError, NotFoundError } from '../errors';
import type { Queue } from '../jobs';
import { dateOnly } from '../models/test';
import { Alert, AlertRule, User, type AlertRuleType, type AlertSeverity, type AlertStatus, type AlertSubjectType } from '../models';
import { Role, type Actor } from '../policy';
import { alertRuleTypes, alertSeverities, alertStatuses, ruleParameters } from '../schemas/alerts';

import type { AuditService } from './audit';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import type { EventsService, StoredEvent } from './events';
import { page, type ListQuery, type Page } from './lists';
import type { MailService } from './mail';
import type { RiskSource } from './risk';
import { overdueSql } from './campaign-lifecycle';
import { wantsEmail, type NotificationsService } from './notifications';


export interface AlertRuleCreate {
    name: string;
    description?: string | null;
    rule_type: AlertRuleType;
    parameters?: Record<string, unknown>;
    severity?: AlertSeverity;
    enabled?: boolean;
}

export type AlertRuleUpdate = Partial<Omit<AlertRuleCreate, 'rule_type'>>;

export interface AlertRuleFilters extends ListQuery {
    rule_type?: AlertRuleType;
    severity?: AlertSeverity;
    enabled?: boolean;
}

export interface AlertFilters extends ListQuery {
    status?: AlertStatus;
    severity?: AlertSeverity;
    rule_type?: AlertRuleType;
    rule_id?: string;
    subject_type?: AlertSubjectType;
    technique_id?: string;
}

export interface AlertSummary {
    total: number;
    by_status: Record<AlertStatus, number>;
    by_severity: Record<AlertSeverity, number>;
    by_rule_type: Record<AlertRuleType, number>;
    active_by_severity: Record<AlertSeverity, number>;
}

// What the condition of a rule holds for, now: one per subject
export interface AlertMatch {
    subject_type: AlertSubjectType;
    subject_id: string;
    technique_id: string | null;
    test_ids: string[];
    title: string;
    details: Record<string, unknown>;
}

// Which subjects an evaluation looks at: all of them, or those of some techniques (the events of a validation); and
// which rules: all the enabled ones, or those of some types (a risk recompute evaluates the risk_threshold rules)
export interface EvaluationScope {
    techniques?: string[];
    ruleTypes?: AlertRuleType[];
}

export interface EvaluationResult {
    rules: number;
    fired: number;
    resolved: number;
}


// The life of an instance, as a table: each action, the states it leaves and the state it reaches. An instance whose
// condition clears is resolved by the evaluation itself (resolveCleared), from open or acknowledged.
export const alertTransitions = {
    acknowledge: { from: ['open'], to: 'acknowledged', at: 'acknowledged_at', by: 'acknowledged_by' },
    resolve: { from: ['open', 'acknowledged'], to: 'resolved', at: 'resolved_at', by: 'resolved_by' },
    dismiss: { from: ['open', 'acknowledged'], to: 'dismissed', at: 'dismissed_at', by: 'dismissed_by' }
} as const satisfies Record<string, { from: readonly AlertStatus[]; to: AlertStatus; at: keyof Alert; by: keyof Alert }>;

export type AlertAction = keyof typeof alertTransitions;

export const alertActions = Object.keys(alertTransitions) as AlertAction[];


// Outcomes, strongest first (domain.md): the rank a regression is measured in
export const outcomeRank: Record<string, number> = { prevented: 3, alerted: 2, logged: 1, not_detected: 0 };


const internals = {
    live: ['open', 'acknowledged'] as AlertStatus[],
    counted: ['prevented', 'alerted', 'logged', 'not_detected'],

    // The leads of the side a rule type concerns: detection is the blue team's, retesting and risk both teams'
    leads: {
        coverage_regression: [Role.blueLead],
        detection_failure: [Role.blueLead],
        stale_validation: [Role.redLead, Role.blueLead],
        risk_threshold: [Role.redLead, Role.blueLead],
        sla_breach: [Role.blueLead]
    } as Record<AlertRuleType, Role[]>,

    // The note an instance gets when the evaluation finds its condition gone
    cleared: {
        coverage_regression: 'Resolved by evaluation: the latest validated outcome is no longer worse than the one before it in its retest chain',
        stale_validation: 'Resolved by evaluation: the technique was validated again within the allowed age',
        detection_failure: 'Resolved by evaluation: the test is no longer its technique\'s latest validation with a failed detection',
        risk_threshold: 'Resolved by evaluation: the technique\'s risk is no longer above the threshold',
        sla_breach: 'Resolved by evaluation: the remediation is resolved, accepted or no longer past due'
    } as Record<AlertRuleType, string>,

    // ... and for a campaign past its end date (sla_breach, subject campaign)
    campaignCleared: 'Resolved by evaluation: the campaign is completed or no longer past its end date',

    // A campaign past its end date is the red lead's to complete (RL, A): its instances notify the red leads too
    leadsOf: (type: AlertRuleType, subjectType: AlertSubjectType): Role[] => (subjectType === 'campaign' ? [...new Set([...internals.leads[type]!, Role.redLead])] : internals.leads[type]!),

    key: (item: { subject_type: string; subject_id: string }) => `${item.subject_type}:${item.subject_id}`,

    // The techniques a rule looks at: its own list, narrowed to the evaluation's scope; null for all of them
    techniques: (parameters: Record<string, unknown>, scope: EvaluationScope): string[] | null => {

        const own = parameters.technique_ids as string[] | undefined;
        if (!scope.techniques) {
            return own ?? null;
        }

        return own ? own.filter((id) => scope.techniques!.includes(id)) : scope.techniques;
    },

    zeros: <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>,

    // node-postgres reads a DATE as local midnight: the calendar date it holds
    day: (value: Date) => dateOnly(value)
};


// The e-mail of a fired instance: what the in-app notification says, with its facts
const mailOf = (alert: Alert): Pick<MailMessage, 'subject' | 'text' | 'html'> => renderMail({
    subject: `[Aegis] ${alert.severity} alert: ${alert.title}`,
    heading: alert.title,
    paragraphs: [`An alert rule fired (${alert.rule_type}). Acknowledge, resolve or dismiss it in Aegis: it resolves itself when its condition clears.`],
    facts: [['Severity', alert.severity], ['Rule type', alert.rule_type], ['Subject', `${alert.subject_type} ${alert.subject_id}`], ['Fired at', new Date(alert.fired_at).toISOString()], ['Alert id', alert.id]]
});


// The condition of each rule type, as one query over the stored coverage and the tests (docs/alerts.md)
// `whole` is false when the evaluation is narrowed to an event's techniques: subjects that belong to no technique (a
// campaign) are then left alone.
type Matcher = (knex: Knex | Knex.Transaction, parameters: Record<string, unknown>, techniques: string[] | null, risk: RiskSource, whole: boolean) => Promise<AlertMatch[]>;

const matchers: Record<AlertRuleType, Matcher> = {

    // A technique's latest validated test (the one its coverage comes from), in a retest chain, with an outcome worse
    // by at least min_drop levels than the chain's validation before it (by validated_at, then id). A chain is
    // coalesce(retest_root_id, id), kept by a trigger (migrations/20261209120000_retest_chains.ts), so the validation
    // before is one backward step of tests_retest_chain_index per technique: the cost follows the techniques, not the
    // tests nor the length of the chains.
    coverage_regression: async (knex, parameters, techniques) => {

        const { rows } = await knex.raw<{ rows: { technique_id: string; test_id: string; outcome: string; validated_at: Date; previous_id: string; previous_outcome: string; previous_validated_at: Date }[] }>(`
            select t.mitre_id as technique_id, x.id as test_id, x.detection_outcome as outcome, x.validated_at,
                p.id as previous_id, p.detection_outcome as previous_outcome, p.validated_at as previous_validated_at
            from techniques t
            join tests x on x.id = t.latest_validated_test_id
            join lateral (
                select m.id, m.detection_outcome, m.validated_at from tests m
                where coalesce(m.retest_root_id, m.id) = coalesce(x.retest_root_id, x.id) and m.state = 'validated'
                  and (m.validated_at, m.id) < (x.validated_at, x.id) and m.detection_outcome = any(?)
                order by coalesce(m.retest_root_id, m.id) desc, m.validated_at desc, m.id desc
                limit 1
            ) p on true
            where not t.revoked and not t.deprecated and (?::text[] is null or t.mitre_id = any(?::text[]))
              and x.state = 'validated' and x.detection_outcome = any(?)`, [internals.counted, techniques, techniques, internals.counted]);

        const minDrop = parameters.min_drop as number;
        return rows.filter((row) => outcomeRank[row.previous_outcome]! - outcomeRank[row.outcome]! >= minDrop).map((row) => ({
            subject_type: 'technique',
            subject_id: row.technique_id,
            technique_id: row.technique_id,
            test_ids: [row.test_id, row.previous_id],
            title: `Coverage regression on ${row.technique_id}: ${row.previous_outcome} before, ${row.outcome} now`,
            details: {
                test_id: row.test_id, outcome: row.outcome, validated_at: row.validated_at,
                previous_test_id: row.previous_id, previous_outcome: row.previous_outcome, previous_validated_at: row.previous_validated_at,
                drop: outcomeRank[row.previous_outcome]! - outcomeRank[row.outcome]!
            }
        }));
    },

    // A tested technique whose latest validation is older than max_age_days
    stale_validation: async (knex, parameters, techniques) => {

        const { rows } = await knex.raw<{ rows: { mitre_id: string; latest_validated_at: Date; age_days: number }[] }>(`
            select mitre_id, latest_validated_at, floor(extract(epoch from now() - latest_validated_at) / 86400)::int as age_days
            from techniques
            where latest_validated_at < now() - make_interval(days => ?) and not revoked and not deprecated
              and (?::text[] is null or mitre_id = any(?::text[]))`, [parameters.max_age_days as number, techniques, techniques]);

        return rows.map((row) => ({
            subject_type: 'technique',
            subject_id: row.mitre_id,
            technique_id: row.mitre_id,
            test_ids: [],
            title: `${row.mitre_id} was last validated ${row.age_days} days ago (more than ${String(parameters.max_age_days)})`,
            details: { latest_validated_at: row.latest_validated_at, age_days: row.age_days, max_age_days: parameters.max_age_days }
        }));
    },

    // A test that is its technique's latest validation and whose detection failed (not_detected, or logged when asked)
    detection_failure: async (knex, parameters, techniques) => {

        const { rows } = await knex.raw<{ rows: { mitre_id: string; test_id: string; outcome: string; validated_at: Date }[] }>(`
            select t.mitre_id, x.id as test_id, x.detection_outcome as outcome, x.validated_at
            from techniques t join tests x on x.id = t.latest_validated_test_id
            where x.detection_outcome = any(?) and not t.revoked and not t.deprecated
              and (?::text[] is null or t.mitre_id = any(?::text[]))`, [parameters.outcomes as string[], techniques, techniques]);

        return rows.map((row) => ({
            subject_type: 'test',
            subject_id: row.test_id,
            technique_id: row.mitre_id,
            test_ids: [row.test_id],
            title: `Detection failed on ${row.mitre_id}: the latest validated test was ${row.outcome}`,
            details: { test_id: row.test_id, outcome: row.outcome, validated_at: row.validated_at }
        }));
    },

    risk_threshold: async (knex, parameters, techniques, risk) => {

        const rows = await risk(knex, parameters.min_risk as number, techniques);
        return rows.map((row) => ({
            subject_type: 'technique',
            subject_id: row.technique_id,
            technique_id: row.technique_id,
            test_ids: [],
            title: `Risk of ${row.technique_id} is ${row.risk} (above ${String(parameters.min_risk)})`,
            details: { ...row, min_risk: parameters.min_risk }
        }));
    },

    // What is past due (and grace_days): the remediation of a test, open or in progress ('remediation'); an active
    // campaign past its end date ('campaign': the campaigns module's overdueSql), whatever techniques the rule watches
    sla_breach: async (knex, parameters, techniques, risk, whole) => {

        const subjects = parameters.subjects as string[];
        const matches: AlertMatch[] = [];
        if (subjects.includes('remediation')) {
            const { rows } = await knex.raw<{ rows: { id: string; technique_id: string; remediation_due: Date; remediation_status: string; days_late: number }[] }>(`
                select id, technique_id, remediation_due, remediation_status, (current_date - remediation_due)::int as days_late
                from tests
                where remediation_status in ('open', 'in_progress') and remediation_due < current_date - ?::int
                  and (?::text[] is null or technique_id = any(?::text[]))`, [parameters.grace_days as number, techniques, techniques]);

            matches.push(...rows.map((row) => ({
                subject_type: 'test' as const,
                subject_id: row.id,
                technique_id: row.technique_id,
                test_ids: [row.id],
                title: `Remediation past due on a test of ${row.technique_id}: due ${internals.day(row.remediation_due)}, ${row.days_late} days late`,
                details: { test_id: row.id, remediation_due: internals.day(row.remediation_due), remediation_status: row.remediation_status, days_late: row.days_late, grace_days: parameters.grace_days }
            })));
        }

        if (subjects.includes('campaign') && whole) {
            const { rows } = await knex.raw<{ rows: { id: string; name: string; end_date: string; days_late: number }[] }>(`
                select campaigns.id, campaigns.name, to_char(campaigns.end_date, 'YYYY-MM-DD') as end_date, ((now() at time zone 'utc')::date - campaigns.end_date)::int as days_late
                from campaigns
                where ${overdueSql} and campaigns.end_date < (now() at time zone 'utc')::date - ?::int`, [parameters.grace_days as number]);

            matches.push(...rows.map((row) => ({
                subject_type: 'campaign' as const,
                subject_id: row.id,
                technique_id: null,
                test_ids: [],
                title: `Campaign "${row.name}" is past its end date: ended ${row.end_date}, ${row.days_late} days late`,
                details: { campaign_id: row.id, end_date: row.end_date, days_late: row.days_late, grace_days: parameters.grace_days }
            })));
        }

        return matches;
    }
};


// Alert rules and their instances (docs/alerts.md). Evaluation is the worker's (job alerts.evaluate, the alerts
// consumer); the API lists, changes instances' status and manages rules.
export class AlertsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; events: EventsService; notifications: NotificationsService; mail: MailService; queue: Queue; risk: RiskSource }) { }

    // --- Rules

    listRules(actor: Actor, filters: AlertRuleFilters): Promise<Page<AlertRule>> {

        const query = AlertRule.query(this.deps.knex);
        for (const field of ['rule_type', 'severity', 'enabled'] as const) {
            if (filters[field] !== undefined) {
                query.where(field, filters[field]!);
            }
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async getRule(actor: Actor, id: string): Promise<AlertRule> {

        const rule = await AlertRule.query(this.deps.knex).findById(id);
        if (!rule) {
            throw new NotFoundError('Alert rule');
        }

        return rule;
    }

    async createRule(actor: Actor, input: AlertRuleCreate, options: ChangeOptions = {}): Promise<AlertRule> {

        const parameters = ruleParameters(input.rule_type, input.parameters);
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const rule = await AlertRule.insertReturning(trx, { ...input, description: input.description || null, parameters, created_by: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'alert_rule.create', entity_type: 'alert_rule', entity_id: rule.id, details: { rule_type: rule.rule_type, severity: rule.severity } });
            return rule;
        });
    }

    async updateRule(actor: Actor, id: string, input: AlertRuleUpdate, options: ChangeOptions = {}): Promise<AlertRule> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const rule = await lockOr404(AlertRule.query(trx).findById(id), 'Alert rule');
            const patch = { ...input, ...(input.parameters ? { parameters: ruleParameters(rule.rule_type, input.parameters) } : {}), ...(input.description === '' ? { description: null } : {}) };
            const updated = await rule.$patchReturning(trx, patch);
            await this.deps.audit.record(trx, actor, { action: 'alert_rule.update', entity_type: 'alert_rule', entity_id: id, details: { fields: Object.keys(input) } });
            return updated;
        });
    }

    // Its instances go with it (their history stays in the audit trail)
    async removeRule(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const rule = await lockOr404(AlertRule.query(trx).findById(id), 'Alert rule');
            const instances = await Alert.query(trx).where('rule_id', id).resultSize();
            await rule.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'alert_rule.delete', entity_type: 'alert_rule', entity_id: id, details: { name: rule.name, rule_type: rule.rule_type, instances } });
        });
    }

    // --- Instances

    list(actor: Actor, filters: AlertFilters): Promise<Page<Alert>> {

        const query = Alert.query(this.deps.knex).modify('visibleTo', actor);
        for (const field of ['status', 'severity', 'rule_type', 'rule_id', 'subject_type', 'technique_id'] as const) {
            if (filters[field] !== undefined) {
                query.where(field, filters[field]!);
            }
        }

        return page(query, filters, { sort: 'fired_at', order: 'desc' });
    }

    async get(actor: Actor, id: string): Promise<Alert> {

        const alert = await Alert.query(this.deps.knex).findById(id).modify('visibleTo', actor);
        if (!alert) {
            throw new NotFoundError('Alert');
        }

        return alert;
    }

    async summary(actor: Actor): Promise<AlertSummary> {

        const rows = await Alert.query(this.deps.knex).modify('visibleTo', actor)
            .select('status', 'severity', 'rule_type').count('* as count').groupBy('status', 'severity', 'rule_type')
            .castTo<{ status: AlertStatus; severity: AlertSeverity; rule_type: AlertRuleType; count: string }[]>() as unknown as { status: AlertStatus; severity: AlertSeverity; rule_type: AlertRuleType; count: string }[];

        const summary: AlertSummary = { total: 0, by_status: internals.zeros(alertStatuses), by_severity: internals.zeros(alertSeverities), by_rule_type: internals.zeros(alertRuleTypes), active_by_severity: internals.zeros(alertSeverities) };
        for (const row of rows) {
            const count = Number(row.count);
            summary.total += count;
            summary.by_status[row.status] += count;
            summary.by_severity[row.severity] += count;
            summary.by_rule_type[row.rule_type] += count;
            if (internals.live.includes(row.status)) {
                summary.active_by_severity[row.severity] += count;
            }
        }

        return summary;
    }

    async transition(actor: Actor, id: string, action: AlertAction, input: { note?: string } = {}, options: ChangeOptions = {}): Promise<Alert> {

        const rule = alertTransitions[action];
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const alert = await lockOr404(Alert.query(trx).findById(id).modify('visibleTo', actor), 'Alert');
            if (!(rule.from as readonly AlertStatus[]).includes(alert.status)) {
                throw new ConflictError(`Cannot ${action} an alert that is ${alert.status} (only from ${rule.from.join(' or ')})`, 'invalid_alert_transition', { action, status: alert.status });
            }

            const updated = await alert.$patchReturning(trx, { status: rule.to, [rule.at]: new Date(), [rule.by]: actor.id, ...(input.note ? { note: input.note } : {}) });
            await this.deps.audit.record(trx, actor, { action: `alert.${action}`, entity_type: 'alert', entity_id: id, details: { from: alert.status, to: rule.to } });
            return updated;
        });
    }

    // --- Evaluation

    // POST /alerts/evaluate: one evaluation job at a time; a request while one is queued or running answers that one
    async requestEvaluation(actor: Actor): Promise<{ job_id: string; status: 'queued' | 'already_queued' }> {

        const pending = await this.deps.queue.pending('alerts.evaluate');
        if (pending) {
            return { job_id: pending, status: 'already_queued' };
        }

        const id = await this.deps.queue.enqueue('alerts.evaluate', { reason: 'manual', requested_by: actor.id });
        await this.deps.audit.record(this.deps.knex, actor, { action: 'alerts.evaluation_requested', entity_type: 'job', entity_id: id });
        return { job_id: id, status: 'queued' };
    }

    // Every enabled rule, in id order, each in a transaction of its own (or all in the caller's: the relay's). What
    // keeps one live instance per rule and subject is the partial unique index: an evaluation running at the same time
    // waits on the other's insert and then inserts nothing.
    async evaluate(actor: Actor, scope: EvaluationScope = {}, options: ChangeOptions = {}): Promise<EvaluationResult> {

        const rules = await AlertRule.query(options.trx ?? this.deps.knex).where('enabled', true)
            .modify((query) => (scope.ruleTypes ? query.whereIn('rule_type', scope.ruleTypes) : query)).orderBy('id');
        const result: EvaluationResult = { rules: rules.length, fired: 0, resolved: 0 };
        for (const rule of rules) {
            const outcome = await withTransaction(this.deps.knex, options.trx, (trx) => this.evaluateRule(trx, actor, rule, scope));
            result.fired += outcome.fired;
            result.resolved += outcome.resolved;
        }

        return result;
    }

    // The alerts consumer: a validation or a coverage change re-evaluates the rules on its technique, in the relay's
    // transaction (what it writes commits with the consumer's cursor, exactly once)
    async onEvent(trx: Knex.Transaction, event: StoredEvent<'coverage.changed' | 'test.validated'>): Promise<void> {

        await this.evaluate({ id: null, role: 'system' }, { techniques: [event.payload.technique_id] }, { trx });
    }

    // The alert-mail consumer: the leads notified of an instance who asked for e-mail get one. At least once: a
    // failure is retried by the relay (and may resend to those already served).
    async mailFired(event: StoredEvent<'alert.fired'>): Promise<number> {

        const alert = await Alert.query(this.deps.knex).findById(event.entity_id!);
        if (!alert) {
            return 0;
        }

        const recipients = (await this.leads(this.deps.knex, internals.leadsOf(alert.rule_type, alert.subject_type))).filter((user) => user.email && wantsEmail(user.preferences?.notifications, 'alert.fired'));
        let sent = 0;
        for (const user of recipients) {
            try {
                await this.deps.mail.send({ to: user.email!, ...mailOf(alert) });
                sent++;
            }
            catch (err) {
                if ((err as ConflictError).code === 'email_not_configured') {
                    return sent;
                }

                throw err;
            }
        }

        return sent;
    }

    private async evaluateRule(trx: Knex.Transaction, actor: Actor, rule: AlertRule, scope: EvaluationScope): Promise<{ fired: number; resolved: number }> {

        const techniques = internals.techniques(rule.parameters, scope);
        if (techniques && !techniques.length) {
            return { fired: 0, resolved: 0 };
        }

        // Still there and enabled, and kept so until the commit: a rule deleted or disabled meanwhile is not evaluated
        // (KEY SHARE leaves the rule's own timestamp, a non-key update, free to another evaluation)
        const { rows: current } = await trx.raw<{ rows: unknown[] }>('select id from alert_rules where id = ? and enabled for key share', [rule.id]);
        if (!current.length) {
            return { fired: 0, resolved: 0 };
        }

        // In one order for every evaluation: concurrent inserts of the same subjects wait on each other, never cross
        const whole = !scope.techniques;
        const matches = (await matchers[rule.rule_type](trx, rule.parameters, techniques, this.deps.risk, whole)).sort((a, b) => internals.key(a).localeCompare(internals.key(b)));

        // What the rule already holds: its live instances, and the dismissed ones that keep it quiet on their subject
        // until the condition clears. Only subjects with neither are inserted; the insert still goes through the
        // index (an evaluation running at the same time may have raised the same subject since).
        const held: { id: string; subject_type: string; subject_id: string; status: AlertStatus }[] = await trx('alerts')
            .where('rule_id', rule.id)
            .where((q) => q.whereIn('status', internals.live).orWhere((r) => r.where('status', 'dismissed').whereNull('cleared_at')))
            .modify((q) => (techniques ? q.where((r) => r.whereIn('technique_id', techniques).modify((c) => (whole ? c.orWhere('subject_type', 'campaign') : c))) : q))
            .select('id', 'subject_type', 'subject_id', 'status');

        const matched = new Set(matches.map(internals.key));
        const holding = new Set(held.map(internals.key));
        const fresh = matches.filter((match) => !holding.has(internals.key(match)));
        const fired: Alert[] = [];
        for (let i = 0; i < fresh.length; i += 500) {
            const rows = fresh.slice(i, i + 500).map((match) => ({ ...match, details: JSON.stringify(match.details), rule_id: rule.id, rule_type: rule.rule_type, severity: rule.severity }));
            const { sql, bindings } = trx('alerts').insert(rows).toSQL();
            const { rows: inserted } = await trx.raw<{ rows: Alert[] }>(`${sql} on conflict (rule_id, subject_type, subject_id) where status in ('open', 'acknowledged') do nothing returning *`, bindings);
            fired.push(...inserted);
        }

        // The condition cleared: live instances resolve themselves, dismissed ones stop keeping the rule quiet
        const campaignIds = new Set(held.filter((row) => row.subject_type === 'campaign').map((row) => row.id));
        const gone = (statuses: AlertStatus[]) => held.filter((row) => statuses.includes(row.status) && !matched.has(internals.key(row))).map((row) => row.id);
        const cleared = gone(internals.live);
        let resolved = 0;
        for (const [ids, note] of [[cleared.filter((id) => !campaignIds.has(id)), internals.cleared[rule.rule_type]], [cleared.filter((id) => campaignIds.has(id)), internals.campaignCleared]] as const) {
            if (ids.length) {
                resolved += await trx('alerts').whereIn('id', ids).whereIn('status', internals.live)
                    .update({ status: 'resolved', resolved_at: trx.fn.now(), resolved_by: null, note, updated_at: trx.fn.now() });
            }
        }

        await trx('alerts').whereIn('id', gone(['dismissed'])).where('status', 'dismissed').whereNull('cleared_at').update({ cleared_at: trx.fn.now(), updated_at: trx.fn.now() });
        await trx('alert_rules').where('id', rule.id).update({ last_evaluated_at: trx.fn.now() });

        if (fired.length) {
            await this.deps.events.emit(trx, actor, fired.map((alert) => ({
                type: 'alert.fired', entity_type: 'alert', entity_id: alert.id,
                payload: { alert_id: alert.id, rule_id: rule.id, rule_type: rule.rule_type, severity: rule.severity, subject_type: alert.subject_type, subject_id: alert.subject_id, technique_id: alert.technique_id }
            })));

            const leads = await this.leads(trx, [...new Set(fired.flatMap((alert) => internals.leadsOf(rule.rule_type, alert.subject_type)))]);
            await this.deps.notifications.notify(trx, fired.flatMap((alert) => leads.filter((user) => internals.leadsOf(rule.rule_type, alert.subject_type).includes(user.role)).map((user) => ({
                user_id: user.id, type: 'alert.fired', title: `${alert.severity} alert: ${alert.title}`, body: `Rule "${rule.name}" (${rule.rule_type})`, entity_type: 'alert', entity_id: alert.id
            }))));
        }

        return { fired: fired.length, resolved };
    }

    // The active leads of the side a rule type and subject concern (only leads are notified: they see every test)
    private async leads(knex: Knex | Knex.Transaction, roles: Role[]): Promise<User[]> {

        return await User.query(knex).whereIn('role', roles).where('is_active', true).select('id', 'role', 'email', 'preferences');
    }
}

