import { Eta } from 'eta';

import { columns, lines, stackedBars } from './document-charts';
import type { DocumentData } from './documents';


// The one set of templates every document is written with (issue 13): the JSON format is the data they are given,
// the HTML format their output, the PDF that output printed. Eta escapes every `<%= %>` by default; the charts are
// SVG this server drew (`<%~ %>`, document-charts.ts escapes their labels).

const internals = {
    eta: new Eta({ autoEscape: true, autoTrim: false, cache: true, useWith: false }),

    style: `
        body { font-family: Helvetica, Arial, sans-serif; font-size: 11px; color: #212121; margin: 0; }
        h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 22px 0 6px; border-bottom: 1px solid #ccc; padding-bottom: 3px; }
        .meta { color: #555; margin-bottom: 12px; } table { border-collapse: collapse; width: 100%; margin: 6px 0; }
        th, td { border: 1px solid #ddd; padding: 3px 5px; text-align: left; vertical-align: top; } th { background: #f2f2f2; }
        td.n, th.n { text-align: right; } .kpis { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
        .kpi { border: 1px solid #ddd; padding: 6px 10px; min-width: 120px; } .kpi b { display: block; font-size: 18px; }
        .hash { font-family: monospace; font-size: 8px; word-break: break-all; } .note { color: #666; font-size: 9px; }
        tr { page-break-inside: avoid; } svg { display: block; margin: 8px 0; }`,

    templates: {
        '@document': `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title><%= it.data.title %></title><style><%~ it.style %></style></head>
<body>
<h1><%= it.data.title %></h1>
<div class="meta"><%= it.data.subtitle %> · generated <%= it.data.generated_at %><% if (it.data.period) { %> · period <%= it.data.period.from %> to <%= it.data.period.to %> (compared with <%= it.data.period.previous_from %> to <%= it.data.period.previous_to %>)<% } %></div>

<h2>Scope</h2>
<div class="kpis">
<div class="kpi">Techniques in scope<b><%= it.data.scope.techniques %></b></div>
<div class="kpi">Techniques tested<b><%= it.data.scope.tested %></b></div>
<div class="kpi">Coverage<b><%= it.data.coverage.percent %>%</b></div>
<div class="kpi">Tests<b><%= it.data.scope.tests %></b></div>
</div>
<% if (it.data.activity) { %>
<h2>What was tested</h2>
<table><tr><th>Activity</th><th class="n">This period</th><th class="n">Previous period</th><th class="n">Change</th></tr>
<% for (const row of it.activityRows) { %><tr><td><%= row[0] %></td><td class="n"><%= row[1] %></td><td class="n"><%= row[2] %></td><td class="n"><%= row[3] %></td></tr><% } %>
</table>
<% } %>

<h2>Coverage</h2>
<table><tr><th>Status</th><th class="n">Techniques</th></tr>
<% for (const status of ['covered', 'partial', 'not_covered', 'untested']) { %><tr><td><%= status.replace('_', ' ') %></td><td class="n"><%= it.data.coverage.by_status[status] %></td></tr><% } %>
</table>
<% if (it.data.coverage.by_tactic.length) { %><%~ it.charts.byTactic %><% } %>

<h2>What was detected</h2>
<%~ it.charts.outcomes %>
<table><tr><th>Outcome</th><th class="n">Validated tests</th></tr>
<% for (const [outcome, count] of Object.entries(it.data.outcomes)) { %><tr><td><%= outcome.replace('_', ' ') %></td><td class="n"><%= count %></td></tr><% } %>
</table>

<h2>How fast</h2>
<div class="kpis">
<div class="kpi">Detections timed<b><%= it.data.time_to_detect.count %></b></div>
<div class="kpi">Median time to detect<b><%= it.duration(it.data.time_to_detect.median_seconds) %></b></div>
<div class="kpi">Mean<b><%= it.duration(it.data.time_to_detect.mean_seconds) %></b></div>
<div class="kpi">90th percentile<b><%= it.duration(it.data.time_to_detect.p90_seconds) %></b></div>
<% if (it.data.time_to_detect.previous) { %><div class="kpi">Median, previous period<b><%= it.duration(it.data.time_to_detect.previous.median_seconds) %></b></div><% } %>
</div>
<% if (it.charts.ttd) { %><%~ it.charts.ttd %><% } %>

<% if (it.data.trend.length) { %>
<h2>Trend</h2>
<%~ it.charts.trend %>
<% } %>

<% if (it.data.gaps.length) { %>
<h2>Gaps ranked by risk</h2>
<table><tr><th>#</th><th>Technique</th><th>Coverage</th><th class="n">Score</th><th class="n">Likelihood</th><th class="n">Impact</th><th class="n">Actors</th><th class="n">Risk</th></tr>
<% it.data.gaps.forEach((gap, index) => { %><tr><td><%= index + 1 %></td><td><%= gap.technique_id %> <%= gap.name %></td><td><%= gap.coverage_status.replace('_', ' ') %></td><td class="n"><%= gap.score === null ? '-' : gap.score %></td><td class="n"><%= gap.likelihood === null ? '-' : gap.likelihood %></td><td class="n"><%= gap.impact === null ? '-' : gap.impact %></td><td class="n"><%= gap.actors %></td><td class="n"><%= gap.risk === null ? '-' : gap.risk %></td></tr><% }) %>
</table>
<div class="note">Risk (0-25) = likelihood × impact × (1 − score/100), as stored by the last risk recompute: likelihood from the tracked threat actors, impact the technique's own or its tactics' default, score decayed and weighted by detection confidence, 0 while untested. A technique without a risk profile yet shows no risk and comes last.</div>
<% } %>

<h2>Remediation status</h2>
<table><tr><th>Status</th><th class="n">Tests</th></tr>
<% for (const [status, count] of Object.entries(it.data.remediation.by_status)) { %><tr><td><%= status.replace('_', ' ') %></td><td class="n"><%= count %></td></tr><% } %>
<tr><td>overdue (open or in progress past due)</td><td class="n"><%= it.data.remediation.overdue %></td></tr>
</table>

<% if (it.data.technique) { %>
<h2>Technique <%= it.data.technique.mitre_id %></h2>
<table>
<tr><th>Name</th><td><%= it.data.technique.name %></td></tr>
<tr><th>Tactics</th><td><%= it.data.technique.tactics.join(', ') %></td></tr>
<tr><th>Platforms</th><td><%= it.data.technique.platforms.join(', ') %></td></tr>
<tr><th>Coverage</th><td><%= it.data.technique.coverage_status.replace('_', ' ') %><% if (it.data.technique.score !== null) { %> (score <%= it.data.technique.score %>)<% } %></td></tr>
</table>
<% } %>

<% if (it.data.campaign) { %>
<h2>Campaign</h2>
<table>
<tr><th>Name</th><td><%= it.data.campaign.name %></td></tr>
<tr><th>Type</th><td><%= it.data.campaign.type.replace('_', ' ') %></td></tr>
<tr><th>Status</th><td><%= it.data.campaign.status %></td></tr>
<tr><th>Schedule</th><td><%= it.data.campaign.start_date || '-' %> to <%= it.data.campaign.end_date || '-' %></td></tr>
<% if (it.data.campaign.threat_actor) { %><tr><th>Threat actor</th><td><%= it.data.campaign.threat_actor %></td></tr><% } %>
<% if (it.data.campaign.description) { %><tr><th>Description</th><td><%= it.data.campaign.description %></td></tr><% } %>
<tr><th>Techniques</th><td><%= it.data.campaign.techniques.join(', ') || '-' %></td></tr>
<tr><th>Progress</th><td><%= it.data.campaign.progress.validated %> of <%= it.data.campaign.progress.total %> tests validated (<%= it.data.campaign.progress.percent %>%)</td></tr>
</table>
<table><tr><th>State</th><th class="n">Tests</th></tr>
<% for (const [state, count] of Object.entries(it.data.campaign.progress.by_state)) { %><tr><td><%= state.replace('_', ' ') %></td><td class="n"><%= count %></td></tr><% } %>
</table>
<% } %>

<% if (it.data.tests) { %>
<h2>Tests</h2>
<table><tr><th>Test</th><th>Technique</th><th>State</th><th>Attack</th><th>Detection</th><th class="n">Time to detect</th><th>Remediation</th><th>Evidence (SHA-256)</th></tr>
<% for (const test of it.data.tests) { %><tr><td><%= test.title %></td><td><%= test.technique_id %></td><td><%= test.state %></td><td><%= test.attack_result || '-' %></td><td><%= test.detection_outcome || '-' %></td><td class="n"><%= it.duration(test.time_to_detect_seconds) %></td><td><%= test.remediation_status %></td>
<td><% for (const item of test.evidence) { %><div><%= item.name %><div class="hash"><%= item.sha256 %></div></div><% } %></td></tr><% } %>
</table>
<% if (it.data.tests_truncated) { %><div class="note">The first <%= it.data.tests.length %> tests are listed.</div><% } %>
<% } %>
</body></html>`
    },

    duration: (seconds: number | null | undefined): string => {

        if (seconds === null || seconds === undefined) {
            return '-';
        }

        if (seconds < 60) {
            return `${seconds} s`;
        }

        if (seconds < 3600) {
            return `${Math.round(seconds / 60)} min`;
        }

        return `${Math.round(seconds / 360) / 10} h`;
    },

    change: (current: number, previous: number): string => (previous === 0 ? (current === 0 ? '0' : 'new') : `${current >= previous ? '+' : ''}${Math.round((current - previous) / previous * 100)}%`)
};


for (const [name, template] of Object.entries(internals.templates)) {
    internals.eta.loadTemplate(name, template);
}


export const duration = internals.duration;


export const renderDocument = (data: DocumentData): string => {

    const outcomes = Object.entries(data.outcomes).map(([label, value]) => ({ label: label.replace('_', ' '), value }));
    const charts = {
        byTactic: stackedBars(data.coverage.by_tactic.map((row) => ({ label: row.name, parts: row.by_status })), ['covered', 'partial', 'not_covered', 'untested'], { title: 'Coverage by tactic' }),
        outcomes: columns(outcomes, { title: 'Outcome distribution' }),
        ttd: data.time_to_detect.buckets.some((bucket) => bucket.count) ? columns(data.time_to_detect.buckets.map((bucket) => ({ label: bucket.label, value: bucket.count, colour: '#1565c0' })), { title: 'Time to detect' }) : '',
        trend: lines(data.trend.map((row) => row.week.slice(5)), [{ name: 'validated', values: data.trend.map((row) => row.validated) }, { name: 'detected', values: data.trend.map((row) => row.detected) }], { title: 'Validated tests per week' })
    };

    const activity = data.activity;
    const activityRows = activity ? (['tests_created', 'tests_executed', 'tests_validated', 'detected'] as const).map((key) => [key.replace('_', ' '), activity.current[key], activity.previous[key], internals.change(activity.current[key], activity.previous[key])]) : [];

    return internals.eta.render('@document', { data, charts, activityRows, style: internals.style, duration: internals.duration });
};
