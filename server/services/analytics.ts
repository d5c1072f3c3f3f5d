import type { Knex } from 'knex';

import { ValidationError } from '../errors';
import { Test } from '../models';
import type { Actor } from '../policy';


export interface Period {
    from?: Date;
    to?: Date;
}

export type TimeToDetectGroup = 'none' | 'tactic' | 'tool' | 'technique' | 'week' | 'asset';
export type OutcomeGroup = 'none' | 'tactic' | 'tool';
export type RateGroup = 'none' | 'week';

export interface TimeToDetect {
    key: string;
    label: string;
    tests: number;
    mean_seconds: number;
    median_seconds: number;
    p90_seconds: number;
}

export interface Window {
    from: Date;
    to: Date;
}


const internals = {
    maxDays: 366,
    defaultDays: 90,

    // executed_at -> detected_at of a validated test, in seconds (domain.md: time_to_detect_seconds)
    seconds: 'extract(epoch from (tests.detected_at - tests.executed_at))',

    week: (column: string) => `to_char(date_trunc('week', ${column} at time zone 'UTC'), 'YYYY-MM-DD')`,

    round: (value: unknown) => Math.round(Number(value) * 10) / 10
};


// The period of an analytics request: `to` defaults to now, `from` to 90 days before it, at most 366 days long
export const windowOf = (period: Period, now = new Date()): Window => {

    const to = period.to ?? now;
    const from = period.from ?? new Date(to.getTime() - internals.defaultDays * 86_400_000);
    if (from >= to) {
        throw new ValidationError('"from" must be before "to"', ['from']);
    }

    if (to.getTime() - from.getTime() > internals.maxDays * 86_400_000) {
        throw new ValidationError(`The period may be at most ${internals.maxDays} days: move "from" closer to "to"`, ['from']);
    }

    return { from, to };
};


// Analytics over the tests the actor may see (docs/dashboards.md "Analytics"). Every figure reads one period through
// an index (validated_at, created_at, the timeline's created_at), never every test.
export class AnalyticsService {

    constructor(private readonly deps: { knex: Knex }) { }

    // Time to detect of the tests validated in the period: mean, median and 90th percentile (PostgreSQL's
    // percentile_cont: linear interpolation between the two nearest values), per group. A test counts when it has
    // both times and was detected at or after its execution.
    async timeToDetect(actor: Actor, period: Period & { group_by?: TimeToDetectGroup }): Promise<Window & { group_by: TimeToDetectGroup; items: TimeToDetect[] }> {

        const { knex } = this.deps;
        const window = windowOf(period);
        const groupBy = period.group_by ?? 'none';
        // Per detection asset, each asset's own time: from the execution to its first detection of the test
        const seconds = groupBy === 'asset' ? 'extract(epoch from (gd.detected_at - tests.executed_at))' : internals.seconds;
        const query = this.validated(actor, window).whereNotNull('tests.executed_at')
            .select(knex.raw('count(*) as tests'))
            .select(knex.raw(`avg(${seconds}) as mean`))
            .select(knex.raw(`percentile_cont(0.5) within group (order by ${seconds}) as median`))
            .select(knex.raw(`percentile_cont(0.9) within group (order by ${seconds}) as p90`));

        if (groupBy === 'asset') {
            query.joinRaw(`join lateral (select d.asset_id, min(d.detected_at) as detected_at from test_detections d
                    where d.test_id = tests.id and d.asset_id is not null and d.detected_at is not null and d.outcome in ('prevented', 'alerted', 'logged')
                    group by d.asset_id) gd on gd.detected_at >= tests.executed_at`)
                .join('detection_assets as ga', 'ga.id', 'gd.asset_id')
                .select(knex.raw('ga.id::text as key'), 'ga.name as label').groupBy('ga.id', 'ga.name');
        }
        else {
            query.whereNotNull('tests.detected_at').whereRaw('tests.detected_at >= tests.executed_at');
            this.group(query, groupBy);
        }

        const rows: { key: string; label: string; tests: string; mean: string; median: string; p90: string }[] = await query;
        // Without a group, an empty period still answers one row of aggregates over nothing: no item
        const items = rows.filter((row) => Number(row.tests) > 0).map((row) => ({
            key: row.key,
            label: row.label,
            tests: Number(row.tests),
            mean_seconds: internals.round(row.mean),
            median_seconds: internals.round(row.median),
            p90_seconds: internals.round(row.p90)
        }));

        return { ...window, group_by: groupBy, items: items.sort((a, b) => a.key.localeCompare(b.key)) };
    }

    // Detection outcomes of the tests validated in the period, per group
    async outcomes(actor: Actor, period: Period & { group_by?: OutcomeGroup }): Promise<Window & { group_by: OutcomeGroup; items: { key: string; label: string; tests: number; outcomes: Record<string, number> }[] }> {

        const { knex } = this.deps;
        const window = windowOf(period);
        const groupBy = period.group_by ?? 'none';
        const query = this.validated(actor, window).select(knex.raw('coalesce(tests.detection_outcome, \'none\') as outcome')).select(knex.raw('count(*) as n'));
        this.group(query, groupBy).groupByRaw('coalesce(tests.detection_outcome, \'none\')');

        const rows: { key: string; label: string; outcome: string; n: string }[] = await query;
        const groups = new Map<string, { key: string; label: string; tests: number; outcomes: Record<string, number> }>();
        for (const row of rows) {
            const group = groups.get(row.key) ?? { key: row.key, label: row.label, tests: 0, outcomes: { prevented: 0, alerted: 0, logged: 0, not_detected: 0, not_applicable: 0, none: 0 } };
            group.tests += Number(row.n);
            group.outcomes[row.outcome] = Number(row.n);
            groups.set(row.key, group);
        }

        return { ...window, group_by: groupBy, items: [...groups.values()].sort((a, b) => a.key.localeCompare(b.key)) };
    }

    // Per ISO week (Monday, UTC): tests created, and verdicts given (validated, rejected) from the timeline
    async testsPerWeek(actor: Actor, period: Period): Promise<Window & { items: { week: string; created: number; validated: number; rejected: number }[] }> {

        const { knex } = this.deps;
        const window = windowOf(period);
        const [created, verdicts] = await Promise.all([
            Test.query(knex).modify('visibleTo', actor).where('tests.created_at', '>=', window.from).where('tests.created_at', '<', window.to)
                .select(knex.raw(`${internals.week('tests.created_at')} as week`)).count('* as n').groupBy('week').toKnexQuery() as unknown as Promise<{ week: string; n: string }[]>,
            this.verdicts(actor, window).select(knex.raw(`${internals.week('test_timeline.created_at')} as week`)).groupBy('week') as unknown as Promise<{ week: string; validated: string; rejected: string }[]>
        ]);

        const weeks = new Map<string, { week: string; created: number; validated: number; rejected: number }>();
        const at = (week: string) => weeks.get(week) ?? weeks.set(week, { week, created: 0, validated: 0, rejected: 0 }).get(week)!;
        for (const row of created) {
            at(row.week).created = Number(row.n);
        }

        for (const row of verdicts) {
            Object.assign(at(row.week), { validated: Number(row.validated), rejected: Number(row.rejected) });
        }

        return { ...window, items: [...weeks.values()].sort((a, b) => a.week.localeCompare(b.week)) };
    }

    // Validation rate: of the verdicts given in the period, the share that validated the test (validated /
    // (validated + rejected)); null when no verdict was given
    async validationRate(actor: Actor, period: Period & { group_by?: RateGroup }): Promise<Window & { group_by: RateGroup; items: { key: string; validated: number; rejected: number; rate: number | null }[] }> {

        const { knex } = this.deps;
        const window = windowOf(period);
        const groupBy = period.group_by ?? 'none';
        const query = this.verdicts(actor, window);
        if (groupBy === 'week') {
            query.select(knex.raw(`${internals.week('test_timeline.created_at')} as key`)).groupBy('key');
        }
        else {
            query.select(knex.raw('\'all\' as key'));
        }

        const rows: { key: string; validated: string; rejected: string }[] = await query;
        const items = rows.map((row) => {

            const validated = Number(row.validated);
            const rejected = Number(row.rejected);
            return { key: row.key, validated, rejected, rate: validated + rejected ? Math.round(validated / (validated + rejected) * 1000) / 1000 : null };
        });

        return { ...window, group_by: groupBy, items: items.sort((a, b) => a.key.localeCompare(b.key)) };
    }

    // Throughput per team and week: the red team's work ends when it hands a test over (submit-red), the blue team's
    // when it submits its detections (submit-blue); with the mean working time of those hand-overs
    async throughput(actor: Actor, period: Period): Promise<Window & { items: { week: string; team: 'red' | 'blue'; tests: number; mean_working_seconds: number }[] }> {

        const { knex } = this.deps;
        const window = windowOf(period);
        const rows: { week: string; action: string; n: string; seconds: string }[] = await this.timeline(actor, window)
            .whereIn('test_timeline.action', ['submit-red', 'submit-blue'])
            .select(knex.raw(`${internals.week('test_timeline.created_at')} as week`), 'test_timeline.action')
            .select(knex.raw('count(*) as n'))
            .select(knex.raw('avg(case when test_timeline.action = \'submit-red\' then tests.red_seconds else tests.blue_seconds end) as seconds'))
            .groupBy('week', 'test_timeline.action');

        const items = rows.map((row) => ({ week: row.week, team: row.action === 'submit-red' ? 'red' as const : 'blue' as const, tests: Number(row.n), mean_working_seconds: internals.round(row.seconds) }));
        return { ...window, items: items.sort((a, b) => a.week.localeCompare(b.week) || a.team.localeCompare(b.team)) };
    }

    // The visible tests validated in the window (tests_validated_at_index)
    validated(actor: Actor, window: Window): Knex.QueryBuilder {

        return Test.query(this.deps.knex).modify('visibleTo', actor).where('tests.state', 'validated')
            .where('tests.validated_at', '>=', window.from).where('tests.validated_at', '<', window.to).toKnexQuery().clearSelect();
    }

    // Verdicts (moves to validated or rejected) given in the window, counted
    verdicts(actor: Actor, window: Window): Knex.QueryBuilder {

        const { knex } = this.deps;
        return this.timeline(actor, window).whereIn('test_timeline.to_state', ['validated', 'rejected'])
            .select(knex.raw('count(*) filter (where test_timeline.to_state = \'validated\') as validated'))
            .select(knex.raw('count(*) filter (where test_timeline.to_state = \'rejected\') as rejected'));
    }

    // Timeline rows of the window whose test the actor may see (test_timeline_created_at_index)
    private timeline(actor: Actor, window: Window): Knex.QueryBuilder {

        return Test.query(this.deps.knex).modify('visibleTo', actor).join('test_timeline', 'test_timeline.test_id', 'tests.id')
            .where('test_timeline.created_at', '>=', window.from).where('test_timeline.created_at', '<', window.to)
            .toKnexQuery().clearSelect();
    }

    // The key and label of each group. A test counts under every tactic of its technique (a sub-technique's tactics
    // are its parent's, as in the heatmap).
    private group(query: Knex.QueryBuilder, groupBy: Exclude<TimeToDetectGroup, 'asset'>): Knex.QueryBuilder {

        const { knex } = this.deps;
        switch (groupBy) {
            case 'tactic':
                return query.join('techniques as gt', 'gt.mitre_id', 'tests.technique_id')
                    .join('technique_tactics as gtt', 'gtt.technique_id', knex.raw('coalesce(gt.parent_id, gt.mitre_id)'))
                    .join('tactics as ga', 'ga.id', 'gtt.tactic_id')
                    .select(knex.raw('coalesce(ga.mitre_id, ga.shortname) as key'), 'ga.name as label').groupBy('ga.mitre_id', 'ga.shortname', 'ga.name');
            case 'tool':
                return query.select(knex.raw('coalesce(tests.tool, \'\') as key'), knex.raw('coalesce(tests.tool, \'(no tool)\') as label')).groupBy('tests.tool');
            case 'technique':
                return query.join('techniques as gt', 'gt.mitre_id', 'tests.technique_id').select('tests.technique_id as key', 'gt.name as label').groupBy('tests.technique_id', 'gt.name');
            case 'week':
                return query.select(knex.raw(`${internals.week('tests.validated_at')} as key`), knex.raw(`${internals.week('tests.validated_at')} as label`)).groupByRaw(internals.week('tests.validated_at'));
            default:
                return query.select(knex.raw('\'all\' as key'), knex.raw('\'All tests\' as label'));
        }
    }
}
