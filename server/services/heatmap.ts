import type { Knex } from 'knex';

import { NotFoundError, ValidationError } from '../errors';
import { type AttackDomainName, type CoverageStatusName } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import type { CoverageFigure } from './coverage';
import { buildNavigatorLayer, parseNavigatorLayer, type LayerTechnique, type NavigatorLayer } from './navigator-layer';
import type { TechniquesService } from './techniques';
import { visibleTestCounts } from './test-counts';


export interface HeatmapFilters {
    domain?: AttackDomainName;
    platform?: string;
    threat_actor_id?: string;
    include_subtechniques?: boolean;
}

export interface LayerImport {
    layer: Record<string, unknown>;
    reason?: string;
}

export interface TestCounts {
    total: number;
    validated: number;
}

export interface HeatmapCell {
    technique_id: string;
    name: string;
    coverage_status: CoverageStatusName;
    score: number | null;
    own_coverage_status: CoverageStatusName;
    own_score: number | null;
    needs_review: boolean;
    tests: TestCounts;
    rollup: CoverageFigure & { tests: TestCounts };
    subtechniques: Omit<HeatmapCell, 'subtechniques' | 'rollup'>[];
}

export interface Heatmap {
    domain: AttackDomainName;
    attack_version: string | null;
    filters: { platform: string | null; threat_actor_id: string | null };
    tactics: { id: string | null; shortname: string; name: string; order: number | null; techniques: HeatmapCell[] }[];
    summary: { techniques: number; subtechniques: number; by_status: Record<CoverageStatusName, number> };
}


// The colours of coverage in the Navigator layer (and its legend)
export const coverageColors: Record<Exclude<CoverageStatusName, 'untested'>, string> = {
    covered: '#8ec843',
    partial: '#ffe766',
    not_covered: '#ff6666'
};


interface TechniqueRow {
    mitre_id: string;
    name: string;
    is_subtechnique: boolean;
    parent_id: string | null;
    coverage_status: CoverageStatusName;
    score: number | null;
    own_coverage_status: CoverageStatusName;
    own_score: number | null;
    needs_review: boolean;
    tactic_ids: string[] | null;
}


const internals = {
    isWrapped: (body: LayerImport | Record<string, unknown>): body is LayerImport => body.layer !== null && typeof body.layer === 'object' && !Array.isArray(body.layer)
};


export class HeatmapService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; techniques: TechniquesService }) { }

    // Test counts are of the tests the actor may see; coverage is the organisation's, whoever looks
    async matrix(actor: Actor, filters: HeatmapFilters): Promise<Heatmap> {

        const { knex } = this.deps;
        const domain = filters.domain ?? 'enterprise-attack';

        if (filters.threat_actor_id && !(await knex('threat_actors').where('id', filters.threat_actor_id).first('id'))) {
            throw new NotFoundError('Threat actor');
        }

        const techniques = knex('techniques as t')
            .select('t.mitre_id', 't.name', 't.is_subtechnique', 't.parent_id', 't.coverage_status', 't.score', 't.own_coverage_status', 't.own_score', 't.needs_review')
            .select(knex.raw('(select array_agg(tt.tactic_id) from technique_tactics tt where tt.technique_id = t.mitre_id) as tactic_ids'))
            .where('t.domain', domain).where('t.revoked', false).where('t.deprecated', false);
        if (filters.platform) {
            techniques.whereRaw('t.platforms @> array[?]::text[]', [filters.platform]);
        }

        const [tactics, rows, counts, used, version] = await Promise.all([
            knex('tactics').where({ domain, revoked: false, deprecated: false }).orderBy([{ column: 'matrix_order' }, { column: 'mitre_id' }]).select('id', 'mitre_id', 'shortname', 'name', 'matrix_order'),
            techniques as unknown as Promise<TechniqueRow[]>,
            visibleTestCounts(knex, actor),
            filters.threat_actor_id ? knex('threat_actor_techniques').where('threat_actor_id', filters.threat_actor_id).pluck('technique_id') as Promise<string[]> : null,
            knex('attack_imports').where({ kind: 'attack', status: 'succeeded', domain }).orderBy('finished_at', 'desc').first('attack_version')
        ]);

        // From the test counters (services/test-counts.ts), not the tests: the heatmap reads no test row
        const testsOf = new Map<string, TestCounts>();
        for (const row of counts) {
            const sum = testsOf.get(row.technique_id) ?? { total: 0, validated: 0 };
            testsOf.set(row.technique_id, { total: sum.total + row.count, validated: sum.validated + (row.state === 'validated' ? row.count : 0) });
        }

        const usedSet = used ? new Set(used) : null;
        const cell = (row: TechniqueRow) => ({
            technique_id: row.mitre_id,
            name: row.name,
            coverage_status: row.coverage_status,
            score: row.score,
            own_coverage_status: row.own_coverage_status,
            own_score: row.own_score,
            needs_review: row.needs_review,
            tests: testsOf.get(row.mitre_id) ?? { total: 0, validated: 0 }
        });

        const subsOf = new Map<string, TechniqueRow[]>();
        for (const row of rows) {
            if (row.is_subtechnique && row.parent_id) {
                subsOf.set(row.parent_id, [...subsOf.get(row.parent_id) ?? [], row]);
            }
        }

        const parents = rows.filter((row) => !row.is_subtechnique).sort((a, b) => a.name.localeCompare(b.name));
        const byStatus: Record<CoverageStatusName, number> = { untested: 0, not_covered: 0, partial: 0, covered: 0 };
        const seen = new Set<string>();
        let subtechniqueCount = 0;
        const matrix = tactics.map((tactic: { id: string; mitre_id: string | null; shortname: string; name: string; matrix_order: number | null }) => {

            const cells: HeatmapCell[] = [];
            for (const parent of parents) {
                if (!parent.tactic_ids?.includes(tactic.id)) {
                    continue;
                }

                const allSubs = (subsOf.get(parent.mitre_id) ?? []).sort((a, b) => a.mitre_id.localeCompare(b.mitre_id));
                const subs = usedSet ? allSubs.filter((sub) => usedSet.has(sub.mitre_id)) : allSubs;
                if (usedSet && !usedSet.has(parent.mitre_id) && !subs.length) {
                    continue;
                }

                // The stored figure is already the roll-up (CoverageService); the test counts add up here
                const own = cell(parent);
                const tests = allSubs.map(cell).reduce((sum, sub) => ({ total: sum.total + sub.tests.total, validated: sum.validated + sub.tests.validated }), own.tests);
                cells.push({ ...own, rollup: { coverage_status: own.coverage_status, score: own.score, tests }, subtechniques: filters.include_subtechniques === false ? [] : subs.map(cell) });

                for (const item of [parent, ...subs]) {
                    if (!seen.has(item.mitre_id)) {
                        seen.add(item.mitre_id);
                        byStatus[item.coverage_status]++;
                        subtechniqueCount += item.is_subtechnique ? 1 : 0;
                    }
                }
            }

            return { id: tactic.mitre_id, shortname: tactic.shortname, name: tactic.name, order: tactic.matrix_order, techniques: cells };
        });

        return {
            domain,
            attack_version: version?.attack_version ?? null,
            filters: { platform: filters.platform ?? null, threat_actor_id: filters.threat_actor_id ?? null },
            tactics: matrix,
            summary: { techniques: seen.size - subtechniqueCount, subtechniques: subtechniqueCount, by_status: byStatus }
        };
    }

    // The heatmap as an ATT&CK Navigator layer (format 4.5): one entry per technique and tactic, parents scored by
    // their roll-up, untested techniques left unscored and uncoloured.
    async layer(actor: Actor, filters: HeatmapFilters): Promise<NavigatorLayer> {

        const heatmap = await this.matrix(actor, { ...filters, include_subtechniques: true });
        const entries: LayerTechnique[] = [];
        const entry = (id: string, tactic: string, figure: CoverageFigure, tests: TestCounts, showSubtechniques: boolean): LayerTechnique => ({
            techniqueID: id,
            tactic,
            ...figure.score === null ? {} : { score: figure.score },
            color: figure.coverage_status === 'untested' ? '' : coverageColors[figure.coverage_status],
            comment: `Coverage: ${figure.coverage_status}. Tests: ${tests.total} total, ${tests.validated} validated.`,
            enabled: true,
            metadata: [{ name: 'coverage_status', value: figure.coverage_status }, { name: 'tests_total', value: String(tests.total) }, { name: 'tests_validated', value: String(tests.validated) }],
            showSubtechniques
        });

        for (const tactic of heatmap.tactics) {
            for (const cell of tactic.techniques) {
                entries.push(entry(cell.technique_id, tactic.shortname, cell.rollup, cell.rollup.tests, false));
                for (const sub of cell.subtechniques) {
                    entries.push(entry(sub.technique_id, tactic.shortname, sub, sub.tests, false));
                }
            }
        }

        return buildNavigatorLayer({
            name: 'Aegis detection coverage',
            description: `Detection coverage from validated purple-team tests (${new Date().toISOString()})`,
            domain: heatmap.domain,
            attackVersion: heatmap.attack_version,
            platforms: filters.platform ? [filters.platform] : [],
            techniques: entries,
            legend: [
                { label: 'Covered (alerted or prevented)', color: coverageColors.covered },
                { label: 'Partial (logged)', color: coverageColors.partial },
                { label: 'Not covered (not detected)', color: coverageColors.not_covered }
            ],
            metadata: [
                { name: 'generated_by', value: 'Aegis' },
                { name: 'techniques', value: String(heatmap.summary.techniques + heatmap.summary.subtechniques) },
                ...Object.entries(heatmap.summary.by_status).map(([status, count]) => ({ name: status, value: String(count) })),
                ...filters.threat_actor_id ? [{ name: 'threat_actor_id', value: filters.threat_actor_id }] : []
            ]
        });
    }

    // Marks every enabled technique of a Navigator layer for review (e.g. a threat report's layer). The body is the
    // layer file as the Navigator exports it, or the older { layer, reason } wrapper.
    async importLayer(actor: Actor, body: LayerImport | Record<string, unknown>, options: { reason?: string | undefined } = {}) {

        const wrapped = internals.isWrapped(body);
        const parsed = parseNavigatorLayer(wrapped ? body.layer : body, wrapped ? ['layer'] : []);
        const named = new Set(parsed.techniques.map((technique) => technique.technique_id));

        // No layer names more techniques than the catalogue of its domain holds
        const [catalogue] = await this.deps.knex('techniques').where('domain', parsed.domain).count('* as count');
        const size = Number(catalogue?.count ?? 0);
        if (named.size > size) {
            throw new ValidationError(`The layer names ${named.size} techniques; the ${parsed.domain} catalogue holds ${size}`, [wrapped ? 'layer.techniques' : 'techniques'], 'layer_too_large');
        }

        const ids = [...new Set(parsed.techniques.filter((technique) => technique.enabled).map((technique) => technique.technique_id))];
        const reason = (wrapped ? body.reason : undefined) ?? options.reason ?? `Listed in the ATT&CK Navigator layer "${parsed.name || 'unnamed'}"`;

        return await this.deps.knex.transaction(async (trx) => {

            const marked = await this.deps.techniques.markForReview(trx, ids, reason, actor);
            const known = new Set(marked);
            await this.deps.audit.record(trx, actor, { action: 'heatmap.layer_import', entity_type: 'technique', details: { layer: parsed.name, domain: parsed.domain, marked: marked.length } });
            return {
                layer: { name: parsed.name, domain: parsed.domain, layer_version: parsed.layer_version, attack_version: parsed.attack_version },
                reason,
                marked: marked.sort(),
                unknown: ids.filter((id) => !known.has(id)).sort(),
                skipped_disabled: parsed.techniques.filter((technique) => !technique.enabled).length
            };
        });
    }
}
