import type { Readable } from 'stream';

import type { Knex } from 'knex';

import { Test, type AttackDomainName, type CoverageStatusName, type RemediationStatus } from '../models';
import type { Actor } from '../policy';

import { streamCsv, type CsvColumn } from './csv';
import { pageOfQuery, type ListQuery, type Page } from './lists';
import type { DetectionOutcome, TestState } from './test-lifecycle';


export type ReportFormat = 'json' | 'csv';

export interface CoverageFilters {
    domain?: AttackDomainName;
    platform?: string;
}

export interface TestResultFilters extends ListQuery {
    date_from?: string;                 // executed on or after (YYYY-MM-DD, UTC)
    date_to?: string;                   // executed on or before
    tactic?: string;                    // a tactic's shortname (execution) or MITRE id (TA0002)
    technique_id?: string;
    outcome?: DetectionOutcome;
    state?: TestState;
    campaign_id?: string;               // a member of this campaign (campaign_tests)
    format?: ReportFormat;
}

export interface RemediationFilters extends ListQuery {
    remediation_status?: RemediationStatus;
    owner_id?: string;
    overdue?: boolean;
    tactic?: string;
    technique_id?: string;
    format?: ReportFormat;
}

export interface CoverageCounts {
    techniques: number;
    untested: number;
    not_covered: number;
    partial: number;
    covered: number;
    coverage_percent: number;
}

export interface CoverageSummary {
    generated_at: Date;
    domain: string;
    totals: CoverageCounts & { average_score: number | null };
    by_tactic: (CoverageCounts & { tactic_id: string | null; shortname: string; name: string })[];
    tests: { total: number; validated: number };
}

export interface TestResultRow {
    id: string;
    title: string;
    technique_id: string;
    technique_name: string;
    tactics: string | null;
    state: TestState;
    priority: string;
    data_classification: string;
    platform: string | null;
    attack_result: string | null;
    detection_outcome: DetectionOutcome | null;
    executed_at: Date | null;
    detected_at: Date | null;
    time_to_detect_seconds: number | null;
    validated_at: Date | null;
    red_assignee_id: string | null;
    blue_assignee_id: string | null;
    remediation_status: RemediationStatus;
    created_at: Date;
}

export interface RemediationRow {
    id: string;
    title: string;
    technique_id: string;
    technique_name: string;
    state: TestState;
    detection_outcome: DetectionOutcome | null;
    remediation_status: RemediationStatus;
    remediation_owner_id: string | null;
    remediation_due: string | null;
    overdue: boolean;
    jira_issue_key: string | null;
    validated_at: Date | null;
    updated_at: Date;
}


const internals = {
    statuses: ['untested', 'not_covered', 'partial', 'covered'] as CoverageStatusName[],

    // covered counts whole, partial half: (covered + partial / 2) / techniques, as a percentage with one decimal
    percent: (counts: Omit<CoverageCounts, 'coverage_percent'>) => (counts.techniques ? Math.round(1000 * (counts.covered + counts.partial / 2) / counts.techniques) / 10 : 0),

    columns: (keys: string[]): CsvColumn[] => keys.map((key) => ({ key, header: key })),

    testResultColumns: ['id', 'title', 'technique_id', 'technique_name', 'tactics', 'state', 'priority', 'data_classification', 'platform', 'attack_result', 'detection_outcome',
        'executed_at', 'detected_at', 'time_to_detect_seconds', 'validated_at', 'red_assignee_id', 'blue_assignee_id', 'remediation_status', 'created_at'],

    remediationColumns: ['id', 'title', 'technique_id', 'technique_name', 'state', 'detection_outcome', 'remediation_status', 'remediation_owner_id', 'remediation_due', 'overdue', 'jira_issue_key', 'validated_at', 'updated_at'],

    coverageColumns: ['technique_id', 'name', 'is_subtechnique', 'parent_id', 'tactics', 'platforms', 'coverage_status', 'score', 'own_coverage_status', 'own_score', 'needs_review',
        'latest_validated_at', 'tests_total', 'tests_validated'],

    tactics: `(select string_agg(ta.shortname, ';' order by ta.matrix_order, ta.shortname) from technique_tactics tt join tactics ta on ta.id = tt.tactic_id where tt.technique_id = tests.technique_id)`
};


// The data reports (docs/reports.md): coverage, test results and remediation, as JSON or CSV. Every row that shows a
// test's fields comes through the visibility rule (Test.visibleTo), so a report never holds a test its reader could
// not open; coverage figures are the organisation's (as on the heatmap), the test counts beside them the reader's.
// The documents (PDF, HTML) reuse these queries: `testResultsQuery`, `remediationQuery`, `coverageSummary`.
export class ReportsService {

    constructor(private readonly deps: { knex: Knex }) { }

    async coverageSummary(actor: Actor, filters: CoverageFilters): Promise<CoverageSummary> {

        const { knex } = this.deps;
        const domain = filters.domain ?? 'enterprise-attack';
        const counts = internals.statuses.map((status) => knex.raw('count(*) filter (where t.coverage_status = ?)::int as ??', [status, status]));
        const techniques = () => {

            const query = knex('techniques as t').where({ 't.domain': domain, 't.revoked': false, 't.deprecated': false, 't.is_subtechnique': false });
            if (filters.platform) {
                query.whereRaw('t.platforms @> array[?]::text[]', [filters.platform]);
            }

            return query;
        };

        const tests = Test.query(knex).modify('visibleTo', actor).join('techniques', 'techniques.mitre_id', 'tests.technique_id').where('techniques.domain', domain)
            .select(knex.raw('count(*)::int as total'), knex.raw(`count(*) filter (where tests.state = 'validated')::int as validated`)).toKnexQuery();
        if (filters.platform) {
            tests.whereRaw('techniques.platforms @> array[?]::text[]', [filters.platform]);
        }

        const [totals, byTactic, testCounts] = await Promise.all([
            techniques().select(knex.raw('count(*)::int as techniques'), ...counts, knex.raw('round(avg(t.score)::numeric, 1)::float8 as average_score')).first(),
            techniques().join('technique_tactics as tt', 'tt.technique_id', 't.mitre_id').join('tactics as ta', 'ta.id', 'tt.tactic_id')
                .groupBy('ta.id', 'ta.mitre_id', 'ta.shortname', 'ta.name', 'ta.matrix_order')
                .select('ta.mitre_id as tactic_id', 'ta.shortname', 'ta.name', knex.raw('count(*)::int as techniques'), ...counts)
                .orderBy([{ column: 'ta.matrix_order' }, { column: 'ta.mitre_id' }]),
            tests
        ]);

        return {
            generated_at: new Date(),
            domain,
            totals: { ...totals, coverage_percent: internals.percent(totals), average_score: totals.average_score ?? null },
            by_tactic: byTactic.map((row: CoverageSummary['by_tactic'][number]) => ({ ...row, coverage_percent: internals.percent(row) })),
            tests: (testCounts as unknown as CoverageSummary['tests'][])[0]!
        };
    }

    // Every technique of the domain (sub-techniques included) with its coverage; the test counts are the reader's
    coverageCsv(actor: Actor, filters: CoverageFilters): Promise<Readable> {

        const { knex } = this.deps;
        const counted = (validated: boolean) => {

            const query = Test.query(knex).modify('visibleTo', actor).whereRaw('tests.technique_id = t.mitre_id').count('*');
            return (validated ? query.where('tests.state', 'validated') : query).toKnexQuery();
        };

        const query = knex('techniques as t')
            .where({ 't.domain': filters.domain ?? 'enterprise-attack', 't.revoked': false, 't.deprecated': false })
            .select('t.mitre_id as technique_id', 't.name', 't.is_subtechnique', 't.parent_id')
            .select(knex.raw(`(select string_agg(ta.shortname, ';' order by ta.matrix_order, ta.shortname) from technique_tactics tt join tactics ta on ta.id = tt.tactic_id where tt.technique_id = t.mitre_id) as tactics`))
            .select(knex.raw(`array_to_string(t.platforms, ';') as platforms`))
            .select('t.coverage_status', 't.score', 't.own_coverage_status', 't.own_score', 't.needs_review', 't.latest_validated_at')
            .select(counted(false).as('tests_total'), counted(true).as('tests_validated'))
            .orderBy('t.mitre_id');

        if (filters.platform) {
            query.whereRaw('t.platforms @> array[?]::text[]', [filters.platform]);
        }

        return streamCsv(knex, query, internals.columns(internals.coverageColumns));
    }

    // The rows of the test-results report, filtered and visible to the actor, in no order (callers order and page)
    testResultsQuery(actor: Actor, filters: Omit<TestResultFilters, keyof ListQuery | 'format'>): Knex.QueryBuilder {

        const { knex } = this.deps;
        const query = this.tests(actor, filters)
            .select('tests.id', 'tests.title', 'tests.technique_id', 'techniques.name as technique_name', knex.raw(`${internals.tactics} as tactics`), 'tests.state', 'tests.priority',
                'tests.data_classification', 'tests.platform', 'tests.attack_result', 'tests.detection_outcome', 'tests.executed_at', 'tests.detected_at',
                knex.raw('(extract(epoch from tests.detected_at - tests.executed_at))::int as time_to_detect_seconds'),
                'tests.validated_at', 'tests.red_assignee_id', 'tests.blue_assignee_id', 'tests.remediation_status', 'tests.created_at');

        if (filters.date_from) {
            query.where('tests.executed_at', '>=', knex.raw(`?::date::timestamp at time zone 'UTC'`, [filters.date_from]));
        }

        if (filters.date_to) {
            query.where('tests.executed_at', '<', knex.raw(`(?::date + 1)::timestamp at time zone 'UTC'`, [filters.date_to]));
        }

        if (filters.outcome) {
            query.where('tests.detection_outcome', filters.outcome);
        }

        if (filters.state) {
            query.where('tests.state', filters.state);
        }

        if (filters.campaign_id) {
            query.whereExists(knex('campaign_tests').select(knex.raw('1')).whereRaw('campaign_tests.test_id = tests.id').where('campaign_tests.campaign_id', filters.campaign_id));
        }

        return query;
    }

    async testResults(actor: Actor, filters: TestResultFilters): Promise<Page<TestResultRow> & { summary: { by_state: Record<string, number>; by_outcome: Record<string, number> } }> {

        const { format, limit, offset, sort, order, ...rest } = filters;
        const filtered = this.testResultsQuery(actor, rest);
        const items = filtered.clone().orderBy(`tests.${sort ?? 'executed_at'}`, order ?? 'desc', 'last').orderBy('tests.id', order ?? 'desc');
        const [result, groups] = await Promise.all([
            pageOfQuery<TestResultRow>(this.deps.knex, items, filtered, { limit, offset }),
            this.deps.knex.from(filtered.clone().as('r')).select('r.state', 'r.detection_outcome').count('* as count').groupBy('r.state', 'r.detection_outcome') as unknown as Promise<{ state: string; detection_outcome: string | null; count: string }[]>
        ]);

        const summary = { by_state: {} as Record<string, number>, by_outcome: {} as Record<string, number> };
        for (const group of groups) {
            const outcome = group.detection_outcome ?? 'none';
            summary.by_state[group.state] = (summary.by_state[group.state] ?? 0) + Number(group.count);
            summary.by_outcome[outcome] = (summary.by_outcome[outcome] ?? 0) + Number(group.count);
        }

        return { ...result, summary };
    }

    testResultsCsv(actor: Actor, filters: TestResultFilters): Promise<Readable> {

        const { format, limit, offset, sort, order, ...rest } = filters;
        const query = this.testResultsQuery(actor, rest).orderBy(`tests.${sort ?? 'executed_at'}`, order ?? 'desc', 'last').orderBy('tests.id', order ?? 'desc');
        return streamCsv(this.deps.knex, query, internals.columns(internals.testResultColumns));
    }

    // The tests with a remediation under way or decided (remediation_status other than none, unless asked for)
    remediationQuery(actor: Actor, filters: Omit<RemediationFilters, keyof ListQuery | 'format'>): Knex.QueryBuilder {

        const { knex } = this.deps;
        const overdue = `(tests.remediation_due < current_date and tests.remediation_status in ('open', 'in_progress'))`;
        const query = this.tests(actor, filters)
            .select('tests.id', 'tests.title', 'tests.technique_id', 'techniques.name as technique_name', 'tests.state', 'tests.detection_outcome', 'tests.remediation_status',
                'tests.remediation_owner_id', knex.raw(`to_char(tests.remediation_due, 'YYYY-MM-DD') as remediation_due`), knex.raw(`coalesce(${overdue}, false) as overdue`),
                'tests.jira_issue_key', 'tests.validated_at', 'tests.updated_at');

        if (filters.remediation_status) {
            query.where('tests.remediation_status', filters.remediation_status);
        }
        else {
            query.whereNot('tests.remediation_status', 'none');
        }

        if (filters.owner_id) {
            query.where('tests.remediation_owner_id', filters.owner_id);
        }

        if (filters.overdue !== undefined) {
            query.whereRaw(filters.overdue ? overdue : `not coalesce(${overdue}, false)`);
        }

        return query;
    }

    async remediationStatus(actor: Actor, filters: RemediationFilters): Promise<Page<RemediationRow> & { summary: { by_status: Record<string, number>; overdue: number } }> {

        const { format, limit, offset, sort, order, ...rest } = filters;
        const filtered = this.remediationQuery(actor, rest);
        const items = filtered.clone().orderBy(`tests.${sort ?? 'remediation_due'}`, order ?? 'asc', 'last').orderBy('tests.id', order ?? 'asc');
        const [result, groups] = await Promise.all([
            pageOfQuery<RemediationRow>(this.deps.knex, items, filtered, { limit, offset }),
            this.deps.knex.from(filtered.clone().as('r')).select('r.remediation_status').count('* as count').select(this.deps.knex.raw('count(*) filter (where r.overdue) as overdue')).groupBy('r.remediation_status') as unknown as Promise<{ remediation_status: string; count: string; overdue: string }[]>
        ]);

        return {
            ...result,
            summary: {
                by_status: Object.fromEntries(groups.map((group) => [group.remediation_status, Number(group.count)])),
                overdue: groups.reduce((sum, group) => sum + Number(group.overdue), 0)
            }
        };
    }

    remediationCsv(actor: Actor, filters: RemediationFilters): Promise<Readable> {

        const { format, limit, offset, sort, order, ...rest } = filters;
        const query = this.remediationQuery(actor, rest).orderBy(`tests.${sort ?? 'remediation_due'}`, order ?? 'asc', 'last').orderBy('tests.id', order ?? 'asc');
        return streamCsv(this.deps.knex, query, internals.columns(internals.remediationColumns));
    }

    // The tests the actor may see, with their technique, narrowed by technique and tactic
    private tests(actor: Actor, filters: { technique_id?: string; tactic?: string }): Knex.QueryBuilder {

        const query = Test.query(this.deps.knex).modify('visibleTo', actor).join('techniques', 'techniques.mitre_id', 'tests.technique_id').toKnexQuery().clearSelect();
        if (filters.technique_id) {
            query.where('tests.technique_id', filters.technique_id);
        }

        if (filters.tactic) {
            query.whereExists((sub) => sub.select(this.deps.knex.raw('1')).from('technique_tactics as tt').join('tactics as ta', 'ta.id', 'tt.tactic_id')
                .whereRaw('tt.technique_id = tests.technique_id').where((q) => q.where('ta.shortname', filters.tactic!).orWhere('ta.mitre_id', filters.tactic!)));
        }

        return query;
    }
}
