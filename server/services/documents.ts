import * as Crypto from 'crypto';
import { Readable } from 'stream';

import type { Knex } from 'knex';

import type { ObjectStore } from '../../integrations/storage';
import { NotFoundError, UnavailableError, UpstreamError, ValidationError } from '../errors';
import type { Queue } from '../jobs';
import { ReportRender, Technique, Test, type DocumentKind } from '../models';
import { isAdmin, type Actor } from '../policy';

import type { AuditService } from './audit';
import { renderDocument } from './document-templates';


// Report documents (issue 13): the data of each document, gathered with the caller's visibility; one set of templates
// renders it as HTML, and the worker prints that HTML as a PDF. See docs/documents.md.

export type DocumentFormat = 'json' | 'html' | 'pdf';

export interface DocumentParams {
    from?: string;                  // executive-summary: YYYY-MM-DD (default: 30 days before `to`)
    to?: string;                    // executive-summary: YYYY-MM-DD, inclusive (default: today, UTC)
    quarter?: string;               // quarterly-summary: YYYY-Qn (default: the current quarter)
    id?: string;                    // technique: its MITRE id
}

type Status = 'covered' | 'partial' | 'not_covered' | 'untested';
type Outcome = 'prevented' | 'alerted' | 'logged' | 'not_detected' | 'not_applicable';

export interface Activity {
    tests_created: number;
    tests_executed: number;
    tests_validated: number;
    detected: number;               // validated tests whose outcome was prevented, alerted or logged
}

export interface TimeToDetect {
    count: number;
    median_seconds: number | null;
    mean_seconds: number | null;
    p90_seconds: number | null;
    buckets: { label: string; count: number }[];
    previous?: { count: number; median_seconds: number | null } | undefined;
}

export interface DocumentTest {
    id: string;
    title: string;
    technique_id: string;
    state: string;
    attack_result: string | null;
    detection_outcome: string | null;
    time_to_detect_seconds: number | null;
    remediation_status: string;
    validated_at: string | null;
    evidence: { name: string; sha256: string }[];
}

// The purple-campaign document's own section: the campaign's scope and its progress over the tests the reader may open
export interface DocumentCampaign {
    id: string;
    name: string;
    type: string;
    status: string;
    description: string | null;
    start_date: string | null;
    end_date: string | null;
    threat_actor: string | null;
    techniques: string[];
    progress: { total: number; validated: number; percent: number; by_state: Record<string, number> };
}

export interface DocumentData {
    kind: DocumentKind;
    title: string;
    subtitle: string;
    generated_at: string;
    params: DocumentParams;
    period: { from: string; to: string; previous_from: string; previous_to: string } | null;
    scope: { techniques: number; tested: number; tests: number };
    coverage: { percent: number; by_status: Record<Status, number>; by_tactic: { tactic_id: string | null; name: string; total: number; by_status: Record<Status, number>; percent: number }[] };
    activity: { current: Activity; previous: Activity } | null;
    outcomes: Record<Outcome, number>;
    time_to_detect: TimeToDetect;
    trend: { week: string; validated: number; detected: number }[];
    gaps: { technique_id: string; name: string; coverage_status: Status; score: number | null; impact: number | null; likelihood: number | null; actors: number; risk: number | null; band: string | null }[];
    remediation: { by_status: Record<'open' | 'in_progress' | 'awaiting_retest' | 'resolved' | 'accepted_risk', number>; overdue: number };
    technique?: { mitre_id: string; name: string; tactics: string[]; platforms: string[]; coverage_status: Status; score: number | null; description: string | null };
    campaign?: DocumentCampaign;
    tests?: DocumentTest[];
    tests_truncated?: boolean;
}

export interface RenderStatus {
    id: string;
    kind: DocumentKind;
    status: ReportRender['status'];
    file_name: string;
    size: number | null;
    error: string | null;
    location: string;
    created_at: Date;
    finished_at: Date | null;
}

export type Generated =
    | { format: 'json'; data: DocumentData }
    | { format: 'html'; html: string; file_name: string }
    | { format: 'pdf'; file: Readable; size: number; file_name: string }
    | { format: 'pending' | 'ready'; render: RenderStatus };

export interface PdfPrinter {
    pdf(html: string, options?: { title?: string }): Promise<Buffer>;
}


const internals = {
    statuses: ['covered', 'partial', 'not_covered', 'untested'] as Status[],
    outcomes: ['prevented', 'alerted', 'logged', 'not_detected', 'not_applicable'] as Outcome[],
    detected: ['prevented', 'alerted', 'logged'],
    titles: { 'coverage-summary': 'Coverage summary', 'executive-summary': 'Executive summary', 'quarterly-summary': 'Quarterly review', technique: 'Technique report', 'purple-campaign': 'Purple-team campaign report' } as Record<DocumentKind, string>,
    maxTests: 500,
    day: 86_400_000,

    iso: (date: Date): string => date.toISOString().slice(0, 10),

    parseDay: (value: string, field: string): Date => {

        const date = new Date(`${value}T00:00:00Z`);
        if (Number.isNaN(date.getTime()) || internals.iso(date) !== value) {
            throw new ValidationError(`"${field}" is not a calendar date (YYYY-MM-DD)`, [field]);
        }

        return date;
    },

    zero: <K extends string>(keys: K[]): Record<K, number> => Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>,

    percentile: (sorted: number[], p: number): number | null => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : null),

    // Median: the middle value, or the mean of the two middle values rounded to the second
    median: (sorted: number[]): number | null => {

        if (!sorted.length) {
            return null;
        }

        const middle = Math.floor(sorted.length / 2);
        return sorted.length % 2 ? sorted[middle]! : Math.round((sorted[middle - 1]! + sorted[middle]!) / 2);
    },

    ttdBuckets: [[0, 300, '< 5 min'], [300, 3600, '5-60 min'], [3600, 4 * 3600, '1-4 h'], [4 * 3600, 24 * 3600, '4-24 h'], [24 * 3600, Infinity, '> 24 h']] as [number, number, string][]
};




// Median, mean (rounded) and 90th percentile (nearest rank) of times to detect, in seconds
export const timeToDetect = (values: number[]): Omit<TimeToDetect, 'previous'> => {

    const sorted = [...values].sort((a, b) => a - b);
    return {
        count: sorted.length,
        median_seconds: internals.median(sorted),
        mean_seconds: sorted.length ? Math.round(sorted.reduce((sum, value) => sum + value, 0) / sorted.length) : null,
        p90_seconds: internals.percentile(sorted, 0.9),
        buckets: internals.ttdBuckets.map(([low, high, label]) => ({ label, count: sorted.filter((value) => value >= low && value < high).length }))
    };
};


// The period of a document: [from, to] inclusive calendar days (UTC), and the previous period of the same length
export const periodOf = (kind: DocumentKind, params: DocumentParams, now: Date): DocumentData['period'] => {

    let from: Date;
    let to: Date;
    if (kind === 'quarterly-summary') {
        const match = /^(\d{4})-Q([1-4])$/.exec(params.quarter ?? `${now.getUTCFullYear()}-Q${Math.floor(now.getUTCMonth() / 3) + 1}`)!;
        const year = Number(match[1]);
        const quarter = Number(match[2]);
        from = new Date(Date.UTC(year, (quarter - 1) * 3, 1));
        to = new Date(Date.UTC(year, quarter * 3, 1) - internals.day);
        const previousFrom = new Date(Date.UTC(year, (quarter - 2) * 3, 1));
        return { from: internals.iso(from), to: internals.iso(to), previous_from: internals.iso(previousFrom), previous_to: internals.iso(new Date(from.getTime() - internals.day)) };
    }

    if (kind !== 'executive-summary') {
        return null;
    }

    to = params.to ? internals.parseDay(params.to, 'to') : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    from = params.from ? internals.parseDay(params.from, 'from') : new Date(to.getTime() - 29 * internals.day);
    if (from > to) {
        throw new ValidationError('"from" must not be after "to"', ['from']);
    }

    if (to.getTime() - from.getTime() > 3 * 366 * internals.day) {
        throw new ValidationError('The period is longer than three years: choose a shorter one', ['from']);
    }

    const days = Math.round((to.getTime() - from.getTime()) / internals.day) + 1;
    return { from: internals.iso(from), to: internals.iso(to), previous_from: internals.iso(new Date(from.getTime() - days * internals.day)), previous_to: internals.iso(new Date(from.getTime() - internals.day)) };
};


export class DocumentsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; queue: Queue; storage: ObjectStore; waitMs: number }) { }

    // What a document shows, every test-derived figure through the caller's visibility
    async data(actor: Actor, kind: DocumentKind, params: DocumentParams, now = new Date()): Promise<DocumentData> {

        const { knex } = this.deps;
        const period = periodOf(kind, params, now);
        let technique: DocumentData['technique'];
        if (kind === 'technique') {
            technique = await this.technique(params.id ?? '');
        }

        const campaign = kind === 'purple-campaign' ? await this.campaign(params.id ?? '') : null;
        const visible = () => Test.query(knex).modify('visibleTo', actor).toKnexQuery();
        const tests = () => knex.from(visible().as('t'));
        const scoped = () => (technique ? tests().where((q) => q.where('t.technique_id', technique.mitre_id).orWhereIn('t.technique_id', knex('techniques').where('parent_id', technique.mitre_id).select('mitre_id')))
            : campaign ? tests().whereRaw('t.campaign_ids @> array[?]::uuid[]', [campaign.id]) : tests());
        const range = period ? { from: `${period.from}T00:00:00Z`, to: new Date(internals.parseDay(period.to, 'to').getTime() + internals.day).toISOString(), previousFrom: `${period.previous_from}T00:00:00Z` } : null;

        // Coverage: the stored per-technique figures, top-level techniques only (parents carry their sub-techniques' roll-up)
        // (a campaign's scope: the techniques of its tests the reader may open, sub-techniques included)
        const inScope = () => (campaign ? knex('techniques').where({ 'techniques.revoked': false, 'techniques.deprecated': false }).whereIn('techniques.mitre_id', scoped().distinct('t.technique_id'))
            : knex('techniques').where({ 'techniques.revoked': false, 'techniques.deprecated': false, 'techniques.is_subtechnique': false }).modify((q) => (technique ? q.where('techniques.mitre_id', technique.mitre_id) : q)));
        const [statusRows, tacticRows, testCount] = await Promise.all([
            inScope().groupBy('coverage_status').select('coverage_status').count('* as n') as Promise<{ coverage_status: Status; n: string }[]>,
            technique || campaign ? Promise.resolve([]) : knex('tactics').join('technique_tactics', 'technique_tactics.tactic_id', 'tactics.id')
                .join('techniques', 'techniques.mitre_id', 'technique_tactics.technique_id')
                .where({ 'techniques.revoked': false, 'techniques.deprecated': false, 'techniques.is_subtechnique': false, 'tactics.revoked': false })
                .groupBy('tactics.id', 'tactics.mitre_id', 'tactics.name', 'tactics.matrix_order', 'techniques.coverage_status')
                .orderBy([{ column: 'tactics.matrix_order', order: 'asc' }, { column: 'tactics.mitre_id', order: 'asc' }])
                .select('tactics.id as key', 'tactics.mitre_id as tactic_id', 'tactics.name', 'techniques.coverage_status').count('* as n') as Promise<{ key: string; tactic_id: string | null; name: string; coverage_status: Status; n: string }[]>,
            scoped().count('* as n').first() as Promise<{ n: string }>
        ]);

        const byStatus = internals.zero(internals.statuses);
        statusRows.forEach((row) => (byStatus[row.coverage_status] = Number(row.n)));
        const totalTechniques = internals.statuses.reduce((sum, status) => sum + byStatus[status], 0);
        const byTactic = new Map<string, DocumentData['coverage']['by_tactic'][number]>();
        for (const row of tacticRows) {
            const entry = byTactic.get(row.key) ?? { tactic_id: row.tactic_id, name: row.name, total: 0, by_status: internals.zero(internals.statuses), percent: 0 };
            entry.by_status[row.coverage_status] += Number(row.n);
            entry.total += Number(row.n);
            byTactic.set(row.key, entry);
        }

        for (const entry of byTactic.values()) {
            entry.percent = Math.round(entry.by_status.covered / entry.total * 100);
        }

        // Outcomes of the validated tests (in the period when there is one)
        const validated = () => scoped().where('t.state', 'validated').modify((q) => (range ? q.where('t.validated_at', '>=', range.from).where('t.validated_at', '<', range.to) : q));
        const outcomeRows = await validated().whereNotNull('t.detection_outcome').groupBy('t.detection_outcome').select('t.detection_outcome as outcome').count('* as n') as { outcome: Outcome; n: string }[];
        const outcomes = internals.zero(internals.outcomes);
        outcomeRows.forEach((row) => (outcomes[row.outcome] = Number(row.n)));

        // Time to detect: executed and detected tests, executed in the period
        const ttdOf = async (from: string | null, to: string | null) => (await scoped().whereNotNull('t.executed_at').whereNotNull('t.detected_at')
            .modify((q) => (from && to ? q.where('t.executed_at', '>=', from).where('t.executed_at', '<', to) : q))
            .select(knex.raw('round(extract(epoch from (t.detected_at - t.executed_at)))::bigint as s')) as { s: string }[]).map((row) => Math.max(0, Number(row.s)));
        const ttd: TimeToDetect = timeToDetect(await ttdOf(range?.from ?? null, range?.to ?? null));
        if (range) {
            const previous = timeToDetect(await ttdOf(range.previousFrom, range.from));
            ttd.previous = { count: previous.count, median_seconds: previous.median_seconds };
        }

        const activity = range ? { current: await this.activity(scoped, range.from, range.to), previous: await this.activity(scoped, range.previousFrom, range.from) } : null;

        // Trend: validated and detected tests per ISO week, over the period or the last 12 weeks
        const trendFrom = range?.from ?? new Date(now.getTime() - 12 * 7 * internals.day).toISOString();
        const trendTo = range?.to ?? now.toISOString();
        const trendRows = await knex.raw(`select to_char(w.week, 'YYYY-MM-DD') as week,
                count(t.id) as validated, count(t.id) filter (where t.detection_outcome in ('prevented', 'alerted', 'logged')) as detected
            from generate_series(date_trunc('week', ?::timestamptz at time zone 'UTC'), date_trunc('week', (?::timestamptz - interval '1 microsecond') at time zone 'UTC'), interval '1 week') as w(week)
            left join (${scoped().where('t.state', 'validated').select('t.id', 't.validated_at', 't.detection_outcome').toQuery()}) t
                on t.validated_at >= ? and t.validated_at < ? and date_trunc('week', t.validated_at at time zone 'UTC') = w.week
            group by w.week order by w.week`, [trendFrom, trendTo, trendFrom, trendTo]) as { rows: { week: string; validated: string; detected: string }[] };
        const trend = trendRows.rows.map((row) => ({ week: row.week, validated: Number(row.validated), detected: Number(row.detected) }));

        // Gaps: top-level techniques not covered, by the stored risk of docs/posture.md (risk_profiles); a technique
        // without a profile yet (created since the last recompute) has no risk and comes last. A campaign's gaps are
        // those of its scope (the techniques of its tests the reader may open)
        const gapLimit = kind === 'executive-summary' ? 10 : 20;
        const gapRows = technique ? [] : await inScope().whereNot('techniques.coverage_status', 'covered')
            .leftJoin('risk_profiles as rp', 'rp.technique_id', 'techniques.mitre_id')
            .select('techniques.mitre_id', 'techniques.name', 'techniques.coverage_status', 'rp.risk', 'rp.likelihood', 'rp.band')
            .select(knex.raw('case when rp.technique_id is null then techniques.score else rp.score end as score'), knex.raw('coalesce(rp.impact, techniques.impact) as impact'), knex.raw('coalesce(rp.actor_count, 0) as actors'))
            .orderByRaw('rp.risk desc nulls last, coalesce(rp.actor_count, 0) desc, techniques.mitre_id asc')
            .limit(gapLimit) as { mitre_id: string; name: string; coverage_status: Status; score: number | null; impact: number | null; actors: number; risk: number | null; likelihood: number | null; band: string | null }[];
        const gaps = gapRows.map((row) => ({ technique_id: row.mitre_id, name: row.name, coverage_status: row.coverage_status, score: row.score, impact: row.impact, likelihood: row.likelihood, actors: row.actors, risk: row.risk, band: row.band }));

        // Remediation: the visible tests' tracking (all of them: remediation is a state, not an event of the period)
        const remediationRows = await scoped().whereNot('t.remediation_status', 'none').groupBy('t.remediation_status').select('t.remediation_status as status').count('* as n') as { status: 'open'; n: string }[];
        const remediation = { by_status: internals.zero(['open', 'in_progress', 'awaiting_retest', 'resolved', 'accepted_risk'] as const), overdue: 0 };
        remediationRows.forEach((row) => (remediation.by_status[row.status] = Number(row.n)));
        remediation.overdue = Number(((await scoped().whereIn('t.remediation_status', ['open', 'in_progress']).where('t.remediation_due', '<', internals.iso(now)).count('* as n').first()) as { n: string }).n);

        const data: DocumentData = {
            kind,
            title: technique ? `${internals.titles[kind]}: ${technique.mitre_id} ${technique.name}` : campaign ? `${internals.titles[kind]}: ${campaign.name}` : internals.titles[kind],
            subtitle: campaign ? `Campaign ${campaign.status}${campaign.start_date || campaign.end_date ? `, ${campaign.start_date ?? '…'} to ${campaign.end_date ?? '…'}` : ''}` : period ? (kind === 'quarterly-summary' ? `Quarter ${params.quarter ?? `${period.from.slice(0, 4)}-Q${Math.floor(Number(period.from.slice(5, 7)) / 3) + 1}`}` : 'Purple-team results for the period') : 'Current detection coverage',
            generated_at: now.toISOString(),
            params,
            period,
            scope: { techniques: totalTechniques, tested: totalTechniques - byStatus.untested, tests: Number(testCount.n) },
            coverage: { percent: totalTechniques ? Math.round(byStatus.covered / totalTechniques * 100) : 0, by_status: byStatus, by_tactic: [...byTactic.values()] },
            activity,
            outcomes,
            time_to_detect: ttd,
            trend,
            gaps,
            remediation
        };

        if (technique) {
            Object.assign(data, { technique, ...await this.techniqueTests(scoped) });
        }

        if (campaign) {
            const [techniques, states] = await Promise.all([
                inScope().orderBy('mitre_id').pluck('mitre_id') as Promise<string[]>,
                scoped().groupBy('t.state').select('t.state').count('* as n') as Promise<{ state: string; n: string }[]>
            ]);
            const byState = Object.fromEntries(states.map((row) => [row.state, Number(row.n)]));
            const total = states.reduce((sum, row) => sum + Number(row.n), 0);
            const done = byState.validated ?? 0;
            const progress = { total, validated: done, percent: total ? Math.round(done / total * 1000) / 10 : 0, by_state: byState };
            Object.assign(data, { campaign: { ...campaign, techniques, progress }, ...await this.techniqueTests(scoped) });
        }

        return data;
    }

    // The document in the asked format. A PDF is printed by the worker: waited for briefly, else 202 and a render to poll.
    async generate(actor: Actor, kind: DocumentKind, params: DocumentParams, format: DocumentFormat): Promise<Generated> {

        const data = await this.data(actor, kind, params);
        if (format === 'json') {
            return { format, data };
        }

        const html = renderDocument(data);
        const fileName = `${kind}${params.id ? `-${params.id}` : ''}-${data.generated_at.slice(0, 10)}`;
        if (format === 'html') {
            return { format, html, file_name: `${fileName}.html` };
        }

        const render = await this.queueRender(actor, data, html, `${fileName}.pdf`);
        return await this.awaitRender(actor, render.id, this.deps.waitMs, false);
    }

    // GET /reports/renders/{id}: the PDF once printed, else the render's status
    async render(actor: Actor, id: string): Promise<Generated> {

        return await this.awaitRender(actor, id, 0, true);
    }

    // The worker: print a queued render and store its file. A render another worker holds is left to it, unless it has
    // been running for longer than twice the timeout (that worker died).
    async print(id: string, printer: PdfPrinter, timeoutMs: number): Promise<void> {

        const { knex, storage } = this.deps;
        const [claimed] = await ReportRender.query(knex).where('id', id)
            .where((q) => q.where('status', 'queued').orWhere((r) => r.where('status', 'running').where('updated_at', '<', new Date(Date.now() - 2 * timeoutMs))))
            .patch({ status: 'running' }).returning('*') as unknown as ReportRender[];
        if (!claimed) {
            return;
        }

        const started = Date.now();
        try {
            const pdf = await printer.pdf(claimed.html, { title: claimed.file_name });
            const key = `reports/${claimed.id}.pdf`;
            await storage.put(key, Readable.from(pdf), { size: pdf.length, contentType: 'application/pdf' });
            await ReportRender.query(knex).findById(id).patch({ status: 'done', storage_key: key, size: pdf.length, render_ms: Date.now() - started, finished_at: new Date(), html: '' });
        }
        catch (err) {
            await ReportRender.query(knex).findById(id).patch({ status: 'failed', error: (err as Error).message.slice(0, 500), render_ms: Date.now() - started, finished_at: new Date() });
        }
    }

    // Renders older than a day go, with their files
    async prune(_actor: Actor, olderThan: Date): Promise<number> {

        const old = await ReportRender.query(this.deps.knex).where('created_at', '<', olderThan).whereNot('status', 'running').select('id', 'storage_key');
        for (const render of old) {
            if (render.storage_key) {
                await this.deps.storage.delete(render.storage_key).catch(() => undefined);
            }
        }

        return old.length ? await ReportRender.query(this.deps.knex).whereIn('id', old.map((render) => render.id)).delete() : 0;
    }

    private async technique(mitreId: string): Promise<NonNullable<DocumentData['technique']>> {

        const technique = await Technique.query(this.deps.knex).findById(mitreId) as (Technique & { coverage_status: Status; score: number | null; platforms: string[]; description: string | null }) | undefined;
        if (!technique) {
            throw new NotFoundError('Technique');
        }

        const tactics = await this.deps.knex('technique_tactics').join('tactics', 'tactics.id', 'technique_tactics.tactic_id').where('technique_tactics.technique_id', mitreId).orderBy('tactics.matrix_order').pluck('tactics.name') as string[];
        return { mitre_id: technique.mitre_id, name: technique.name, tactics, platforms: technique.platforms, coverage_status: technique.coverage_status, score: technique.score, description: technique.description };
    }

    // A campaign by id (404 otherwise); campaigns are readable by every role
    private async campaign(id: string): Promise<Omit<DocumentCampaign, 'techniques' | 'progress'>> {

        const row = await this.deps.knex('campaigns as c').leftJoin('threat_actors as a', 'a.id', 'c.threat_actor_id').where('c.id', id)
            .first('c.id', 'c.name', 'c.type', 'c.status', 'c.description', this.deps.knex.raw('to_char(c.start_date, \'YYYY-MM-DD\') as start_date'), this.deps.knex.raw('to_char(c.end_date, \'YYYY-MM-DD\') as end_date'), 'a.name as threat_actor') as Omit<DocumentCampaign, 'techniques' | 'progress'> | undefined;
        if (!row) {
            throw new NotFoundError('Campaign');
        }

        return row;
    }

    private async techniqueTests(scoped: () => Knex.QueryBuilder): Promise<{ tests: DocumentTest[]; tests_truncated: boolean }> {

        const rows = await scoped().orderBy([{ column: 't.created_at', order: 'desc' }, { column: 't.id', order: 'asc' }]).limit(internals.maxTests + 1)
            .select('t.id', 't.title', 't.technique_id', 't.state', 't.attack_result', 't.detection_outcome', 't.remediation_status', 't.validated_at', 't.executed_at', 't.detected_at') as (DocumentTest & { executed_at: Date | null; detected_at: Date | null; validated_at: Date | null })[];
        const listed = rows.slice(0, internals.maxTests);
        const evidence = listed.length ? await this.deps.knex('evidence').whereIn('test_id', listed.map((row) => row.id)).orderBy([{ column: 'created_at', order: 'asc' }, { column: 'id', order: 'asc' }]).select('test_id', 'original_name', 'sha256') as { test_id: string; original_name: string; sha256: string }[] : [];
        const tests = listed.map((row) => ({
            id: row.id, title: row.title, technique_id: row.technique_id, state: row.state, attack_result: row.attack_result, detection_outcome: row.detection_outcome, remediation_status: row.remediation_status,
            validated_at: row.validated_at ? new Date(row.validated_at).toISOString() : null,
            time_to_detect_seconds: row.executed_at && row.detected_at ? Math.max(0, Math.round((new Date(row.detected_at).getTime() - new Date(row.executed_at).getTime()) / 1000)) : null,
            evidence: evidence.filter((item) => item.test_id === row.id).map((item) => ({ name: item.original_name, sha256: item.sha256 }))
        }));

        return { tests, tests_truncated: rows.length > internals.maxTests };
    }

    private async activity(scoped: () => Knex.QueryBuilder, from: string, to: string): Promise<Activity> {

        const row = await scoped().select(
            this.deps.knex.raw('count(*) filter (where t.created_at >= ? and t.created_at < ?)::int as tests_created', [from, to]),
            this.deps.knex.raw('count(*) filter (where t.executed_at >= ? and t.executed_at < ?)::int as tests_executed', [from, to]),
            this.deps.knex.raw('count(*) filter (where t.state = \'validated\' and t.validated_at >= ? and t.validated_at < ?)::int as tests_validated', [from, to]),
            this.deps.knex.raw('count(*) filter (where t.state = \'validated\' and t.validated_at >= ? and t.validated_at < ? and t.detection_outcome in (\'prevented\', \'alerted\', \'logged\'))::int as detected', [from, to])
        ).first() as Activity;
        return { tests_created: row.tests_created, tests_executed: row.tests_executed, tests_validated: row.tests_validated, detected: row.detected };
    }

    // One render per content: a request whose data is the same as a render still queued or running joins it
    private async queueRender(actor: Actor, data: DocumentData, html: string, fileName: string): Promise<ReportRender> {

        const { knex } = this.deps;
        const { generated_at: _generated, ...content } = data;
        const sha = Crypto.createHash('sha256').update(JSON.stringify(content)).digest('hex');
        const readers = actor.id ? [actor.id] : [];
        const result = await knex.raw(`insert into report_renders (kind, params, content_sha256, html, file_name, readers, requested_by)
            values (?, ?::jsonb, ?, ?, ?, ?::uuid[], ?)
            on conflict (content_sha256) where status in ('queued', 'running')
            do update set readers = (select array_agg(distinct r) from unnest(report_renders.readers || excluded.readers) r)
            returning *, (xmax = 0) as inserted`, [data.kind, JSON.stringify(data.params), sha, html, fileName, readers, actor.id]) as { rows: (ReportRender & { inserted: boolean })[] };
        const render = result.rows[0]!;
        if (render.inserted) {
            await this.deps.queue.enqueue('documents.render', { render_id: render.id });
        }

        return render;
    }

    // A printed render is opened (the renders route), or answered as ready (the generate routes send the client there)
    private async awaitRender(actor: Actor, id: string, waitMs: number, open: boolean): Promise<Generated> {

        const deadline = Date.now() + waitMs;
        let delay = 25;
        for (;;) {
            const render = await ReportRender.query(this.deps.knex).findById(id);
            if (!render || !(isAdmin(actor) || (actor.id && render.readers.includes(actor.id)))) {
                throw new NotFoundError('Render');
            }

            if (render.status === 'done' && !open) {
                return { format: 'ready', render: this.status(render) };
            }

            if (render.status === 'done') {
                const file = await this.deps.storage.get(render.storage_key!).catch((err: Error) => {

                    throw Object.assign(new UnavailableError('The report store is unavailable', 5), { cause: err });
                });
                return { format: 'pdf', file, size: Number(render.size), file_name: render.file_name };
            }

            if (render.status === 'failed') {
                throw new UpstreamError(`The PDF could not be rendered (${render.error ?? 'unknown reason'}); ask again, or use format=html`, 'render_failed');
            }

            if (Date.now() + delay > deadline) {
                return { format: 'pending', render: this.status(render) };
            }

            const pause = delay;
            await new Promise((resolve) => setTimeout(resolve, pause));
            delay = Math.min(delay * 2, 200);
        }
    }

    private status(render: ReportRender): RenderStatus {

        return {
            id: render.id, kind: render.kind, status: render.status, file_name: render.file_name, size: render.size === null ? null : Number(render.size), error: render.error,
            location: `/api/v1/reports/renders/${render.id}`, created_at: render.created_at, finished_at: render.finished_at
        };
    }
}
