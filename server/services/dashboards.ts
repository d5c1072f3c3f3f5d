import type { Knex } from 'knex';

import { Test, type PostureSummary } from '../models';
import type { Actor } from '../policy';

import { windowOf, type AnalyticsService, type Window } from './analytics';
import { overdueSql } from './campaign-lifecycle';
import { pageOfQuery, type ListQuery, type Page } from './lists';
import { coverageRank, emptySummary, livePosture, type EvolutionPoint, type SnapshotsService } from './snapshots';
import { visibleTestCounts } from './test-counts';


export interface DomainFilter {
    domain?: string;
}

export interface TestFigures {
    total: number;
    by_state: Record<string, number>;
    validated_outcomes: Record<string, number>;
    validation_rate: number | null;
}

export interface Kpis {
    domain: string;
    techniques: PostureSummary;
    tests: TestFigures;
    campaigns: CampaignFigures;
    computed_at: Date;
}

export interface TacticCoverage {
    tactic_id: string | null;
    shortname: string;
    name: string;
    techniques: number;
    by_status: Record<string, number>;
    covered_percent: number;
    tests: { total: number; validated: number };
}

export interface ActivityFilters extends ListQuery {
    days?: number;
    type?: 'test' | 'validation' | 'campaign';
}

export interface ActivityItem {
    id: string;
    type: 'test' | 'validation' | 'campaign';
    action: string;
    at: Date;
    actor_id: string | null;
    from_state: string | null;
    to_state: string | null;
    test: { id: string; title: string; technique_id: string; state: string } | null;
    campaign: { id: string; name: string; status: string } | null;
}

export interface CampaignFigures {
    total: number;
    draft: number;
    active: number;
    completed: number;
    overdue: number;
}

export interface Sentence {
    key: string;
    text: string;
    figures: Record<string, number | null>;
    dates: Record<string, string>;              // YYYY-MM-DD
}

export interface Executive {
    domain: string;
    period: Window;
    previous: Window;
    figures: Record<string, number | null>;
    sentences: Sentence[];
}


const internals = {
    states: ['draft', 'red_executing', 'blue_evaluating', 'in_review', 'validated', 'rejected'],
    outcomes: ['prevented', 'alerted', 'logged', 'not_detected', 'not_applicable'],

    duration: (seconds: number) => (seconds < 120 ? `${Math.round(seconds)} seconds` : seconds < 7200 ? `${Math.round(seconds / 60)} minutes` : seconds < 172_800 ? `${Math.round(seconds / 360) / 10} hours` : `${Math.round(seconds / 8640) / 10} days`),

    day: (date: Date) => date.toISOString().slice(0, 10),

    plural: (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`
};


// The dashboard (docs/dashboards.md "Dashboard"): coverage is the organisation's whoever looks; test figures are of
// the tests the actor may see, from the test counters, never from a scan of the tests.
export class DashboardsService {

    constructor(private readonly deps: { knex: Knex; snapshots: SnapshotsService; analytics: AnalyticsService }) { }

    async kpis(actor: Actor, filters: DomainFilter): Promise<Kpis> {

        const domain = filters.domain ?? 'enterprise-attack';
        const [posture, counts, campaigns] = await Promise.all([livePosture(this.deps.knex), visibleTestCounts(this.deps.knex, actor), this.campaigns(actor)]);

        const byState = Object.fromEntries(internals.states.map((state) => [state, 0]));
        const outcomes = Object.fromEntries(internals.outcomes.map((outcome) => [outcome, 0]));
        for (const row of counts) {
            byState[row.state] = (byState[row.state] ?? 0) + row.count;
            if (row.state === 'validated' && row.detection_outcome) {
                outcomes[row.detection_outcome] = (outcomes[row.detection_outcome] ?? 0) + row.count;
            }
        }

        const verdicts = byState.validated! + byState.rejected!;
        return {
            domain,
            techniques: posture[domain] ?? emptySummary(),
            tests: {
                total: counts.reduce((sum, row) => sum + row.count, 0),
                by_state: byState,
                validated_outcomes: outcomes,
                validation_rate: verdicts ? Math.round(byState.validated! / verdicts * 1000) / 1000 : null
            },
            campaigns,
            computed_at: new Date()
        };
    }

    async coverageByTactic(actor: Actor, filters: DomainFilter): Promise<{ domain: string; tactics: TacticCoverage[] }> {

        const { knex } = this.deps;
        const domain = filters.domain ?? 'enterprise-attack';
        const [tactics, techniques, counts] = await Promise.all([
            knex('tactics').where({ domain, revoked: false, deprecated: false }).orderBy([{ column: 'matrix_order' }, { column: 'mitre_id' }]).select('id', 'mitre_id', 'shortname', 'name') as Promise<{ id: string; mitre_id: string | null; shortname: string; name: string }[]>,
            knex('techniques as t').join('technique_tactics as tt', 'tt.technique_id', 't.mitre_id').where({ 't.domain': domain, 't.revoked': false, 't.deprecated': false, 't.is_subtechnique': false })
                .select('tt.tactic_id', 't.mitre_id', 't.coverage_status') as Promise<{ tactic_id: string; mitre_id: string; coverage_status: string }[]>,
            visibleTestCounts(knex, actor)
        ]);

        // Tests of a sub-technique count under its parent's tactics, as in the heatmap
        const parents = new Map((await knex('techniques').where('domain', domain).whereNotNull('parent_id').select('mitre_id', 'parent_id') as { mitre_id: string; parent_id: string }[]).map((row) => [row.mitre_id, row.parent_id]));
        const testsOf = new Map<string, { total: number; validated: number }>();
        for (const row of counts) {
            const id = parents.get(row.technique_id) ?? row.technique_id;
            const sum = testsOf.get(id) ?? { total: 0, validated: 0 };
            testsOf.set(id, { total: sum.total + row.count, validated: sum.validated + (row.state === 'validated' ? row.count : 0) });
        }

        return {
            domain,
            tactics: tactics.map((tactic) => {

                const members = techniques.filter((row) => row.tactic_id === tactic.id);
                const byStatus: Record<string, number> = { untested: 0, not_covered: 0, partial: 0, covered: 0 };
                const tests = { total: 0, validated: 0 };
                for (const member of members) {
                    byStatus[member.coverage_status] = (byStatus[member.coverage_status] ?? 0) + 1;
                    const counted = testsOf.get(member.mitre_id);
                    tests.total += counted?.total ?? 0;
                    tests.validated += counted?.validated ?? 0;
                }

                return {
                    tactic_id: tactic.mitre_id,
                    shortname: tactic.shortname,
                    name: tactic.name,
                    techniques: members.length,
                    by_status: byStatus,
                    covered_percent: members.length ? Math.round(byStatus.covered! / members.length * 1000) / 10 : 0,
                    tests
                };
            })
        };
    }

    // One point per day of the period (the last snapshot of each day), then today's live figure
    async postureHistory(actor: Actor, filters: DomainFilter & { days?: number }): Promise<{ domain: string; points: EvolutionPoint[] }> {

        const domain = filters.domain ?? 'enterprise-attack';
        const days = filters.days ?? 90;
        const now = new Date();
        const [{ points }, live] = await Promise.all([
            this.deps.snapshots.evolution(actor, { domain, from: new Date(now.getTime() - days * 86_400_000), to: now }),
            livePosture(this.deps.knex)
        ]);

        const daily = new Map<string, EvolutionPoint>();
        for (const point of points) {
            daily.set(internals.day(point.taken_at), point);
        }

        return { domain, points: [...daily.values(), { snapshot_id: null, taken_at: now, kind: 'live', ...live[domain] ?? emptySummary() }] };
    }

    // Test creations and state changes of the visible tests, and campaign creations and status moves (campaign_history;
    // campaigns are readable by every role), over the last `days` (30), newest first: one union, one page
    activity(actor: Actor, filters: ActivityFilters): Promise<Page<ActivityItem>> {

        const { knex } = this.deps;
        const since = new Date(Date.now() - (filters.days ?? 30) * 86_400_000);
        const filtered = Test.query(knex).modify('visibleTo', actor).join('test_timeline', 'test_timeline.test_id', 'tests.id')
            .where('test_timeline.created_at', '>=', since)
            .where((q) => q.where('test_timeline.action', 'create').orWhereRaw('test_timeline.to_state is distinct from test_timeline.from_state'))
            .toKnexQuery().clearSelect();
        if (filters.type === 'validation') {
            filtered.whereIn('test_timeline.to_state', ['validated', 'rejected']);
        }
        else if (filters.type === 'test') {
            filtered.where((q) => q.whereNull('test_timeline.to_state').orWhereNotIn('test_timeline.to_state', ['validated', 'rejected']));
        }

        // The two branches name the same columns in the same order (a union is positional)
        const tests = filtered.select('test_timeline.id', 'test_timeline.action', 'test_timeline.created_at as at', 'test_timeline.actor_id', 'test_timeline.from_state', 'test_timeline.to_state',
            'tests.id as test_id', 'tests.title', 'tests.technique_id', 'tests.state',
            knex.raw('case when test_timeline.to_state in (\'validated\', \'rejected\') then \'validation\' else \'test\' end as type'),
            knex.raw('null::uuid as campaign_id, null::text as campaign_name, null::text as campaign_status'));
        const campaigns = knex('campaign_history as ch').join('campaigns as c', 'c.id', 'ch.campaign_id')
            .where('ch.created_at', '>=', since).whereRaw('ch.to_status is distinct from ch.from_status')
            .select('ch.id', 'ch.action', 'ch.created_at as at', 'ch.actor_id', 'ch.from_status as from_state', 'ch.to_status as to_state',
                knex.raw('null::uuid as test_id, null::text as title, null::text as technique_id, null::text as state, \'campaign\' as type'),
                'c.id as campaign_id', 'c.name as campaign_name', 'c.status as campaign_status');

        const branches = filters.type === 'campaign' ? [campaigns] : filters.type ? [tests] : [tests, campaigns];
        const compiled = branches.map((branch) => branch.toSQL());
        const union = () => knex.raw(`(${compiled.map((part) => `(${part.sql})`).join(' union all ')}) as activity`, compiled.flatMap((part) => part.bindings));
        const items = knex.select('activity.*').from(union())
            .orderBy([{ column: 'activity.at', order: filters.order ?? 'desc' }, { column: 'activity.id', order: filters.order ?? 'desc' }]);

        return pageOfQuery<Record<string, unknown>>(knex, items, knex.select(1 as never).from(union()), filters).then((result) => ({
            ...result,
            items: result.items.map((row) => ({
                id: row.id as string,
                type: row.type as ActivityItem['type'],
                action: row.action as string,
                at: row.at as Date,
                actor_id: row.actor_id as string | null,
                from_state: row.from_state as string | null,
                to_state: row.to_state as string | null,
                test: row.test_id ? { id: row.test_id as string, title: row.title as string, technique_id: row.technique_id as string, state: row.state as string } : null,
                campaign: row.campaign_id ? { id: row.campaign_id as string, name: row.campaign_name as string, status: row.campaign_status as string } : null
            }))
        }));
    }

    // The executive summary: sentences from templates, each stating the figures it is built from (no free text),
    // over the last `days` (30) compared with the `days` before
    async executive(actor: Actor, filters: DomainFilter & { days?: number }): Promise<Executive> {

        const { knex, analytics, snapshots } = this.deps;
        const domain = filters.domain ?? 'enterprise-attack';
        const days = filters.days ?? 30;
        const to = new Date();
        const period = windowOf({ from: new Date(to.getTime() - days * 86_400_000), to });
        const previous = { from: new Date(period.from.getTime() - days * 86_400_000), to: period.from };

        const [kpis, start, ttdNow, ttdBefore, validatedNow, validatedBefore, notDetected] = await Promise.all([
            this.kpis(actor, { domain }),
            snapshots.before(period.from),
            analytics.timeToDetect(actor, period),
            analytics.timeToDetect(actor, previous),
            this.count(analytics.validated(actor, period)),
            this.count(analytics.validated(actor, previous)),
            this.count(analytics.validated(actor, period).where('tests.detection_outcome', 'not_detected'))
        ]);

        const posture = kpis.techniques;
        const sentences: Sentence[] = [];
        const say = (key: string, text: string, figures: Sentence['figures'], dates: Sentence['dates'] = {}) => sentences.push({ key, text, figures, dates });

        say('coverage.now', `${posture.covered_percent}% of the ${posture.techniques} techniques are covered (${posture.by_status.covered} covered, ${posture.by_status.partial} partially covered, ${posture.by_status.not_covered} not covered, ${posture.by_status.untested} untested).`,
            { covered_percent: posture.covered_percent, techniques: posture.techniques, covered: posture.by_status.covered, partial: posture.by_status.partial, not_covered: posture.by_status.not_covered, untested: posture.by_status.untested });

        const was = start?.summary[domain];
        let improved: number | null = null;
        let regressed: number | null = null;
        if (start && was) {
            const change = Math.round((posture.covered_percent - was.covered_percent) * 10) / 10;
            say('coverage.change', `Coverage ${change > 0 ? 'rose' : change < 0 ? 'fell' : 'changed'} by ${Math.abs(change)} points, from ${was.covered_percent}% on ${internals.day(start.taken_at)} to ${posture.covered_percent}%.`,
                { covered_percent_then: was.covered_percent, covered_percent: posture.covered_percent, change_points: change }, { snapshot_taken_at: internals.day(start.taken_at) });

            const moves = await knex('posture_snapshot_techniques as s').join('techniques as t', 't.mitre_id', 's.technique_id')
                .where('s.snapshot_id', start.id).where('s.domain', domain).where('s.is_subtechnique', false)
                .select('s.coverage_status as before', 't.coverage_status as after') as { before: keyof typeof coverageRank; after: keyof typeof coverageRank }[];
            improved = moves.filter((row) => coverageRank[row.after] > coverageRank[row.before]).length;
            regressed = moves.filter((row) => coverageRank[row.after] < coverageRank[row.before]).length;
            say('coverage.moves', `Since then ${internals.plural(improved, 'technique')} improved and ${internals.plural(regressed, 'technique')} regressed.`, { improved, regressed });
        }
        else {
            say('coverage.no_baseline', `No snapshot exists from on or before ${internals.day(period.from)}, so the change in coverage over the period cannot be stated.`, {}, { period_start: internals.day(period.from) });
        }

        say('tests.validated', `${internals.plural(validatedNow, 'test')} ${validatedNow === 1 ? 'was' : 'were'} validated in the last ${days} days, against ${validatedBefore} in the ${days} days before.`,
            { validated: validatedNow, validated_previous: validatedBefore, days });

        say('tests.not_detected', `${internals.plural(notDetected, 'validated test')} found no detection at all (not_detected).`, { not_detected: notDetected });

        const now = ttdNow.items[0];
        const before = ttdBefore.items[0];
        if (now) {
            say('ttd.median', `The median time to detect was ${internals.duration(now.median_seconds)} over ${internals.plural(now.tests, 'test')}${before ? `, against ${internals.duration(before.median_seconds)} in the previous period` : ''}.`,
                { median_seconds: now.median_seconds, tests: now.tests, median_seconds_previous: before?.median_seconds ?? null });
        }
        else {
            say('ttd.none', 'No validated test of the period recorded both its execution and its detection time, so no time to detect can be stated.', {});
        }

        say('review.pending', `${internals.plural(posture.needs_review, 'technique')} need${posture.needs_review === 1 ? 's' : ''} review.`, { needs_review: posture.needs_review });

        return {
            domain,
            period,
            previous,
            figures: {
                covered_percent: posture.covered_percent,
                techniques: posture.techniques,
                covered_percent_then: was?.covered_percent ?? null,
                improved,
                regressed,
                validated: validatedNow,
                validated_previous: validatedBefore,
                not_detected: notDetected,
                median_ttd_seconds: now?.median_seconds ?? null,
                median_ttd_seconds_previous: before?.median_seconds ?? null,
                needs_review: posture.needs_review,
                tests: kpis.tests.total
            },
            sentences
        };
    }

    // Campaigns by status and the overdue ones (the campaigns module's overdueSql), one query; campaigns are readable
    // by every role, so the figures are the same for all
    private async campaigns(_actor: Actor): Promise<CampaignFigures> {

        const [row] = await this.deps.knex('campaigns').select(this.deps.knex.raw(`count(*)::int as total, (count(*) filter (where status = 'draft'))::int as draft,
            (count(*) filter (where status = 'active'))::int as active, (count(*) filter (where status = 'completed'))::int as completed,
            (count(*) filter (where ${overdueSql}))::int as overdue`));
        return row as CampaignFigures;
    }

    private async count(query: Knex.QueryBuilder): Promise<number> {

        const [row] = await this.deps.knex.count('* as n').from(query.clearSelect().select(1 as never).as('q'));
        return Number((row as { n: string }).n);
    }
}
