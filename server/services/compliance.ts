import type { Knex } from 'knex';

import { ConflictError, NotFoundError } from '../errors';
import { LockKey } from '../locks';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { matchTechnique, readComplianceFolder, type KnownTechnique, type ParsedFramework } from './compliance-mapping';
import { rollUp, type CoverageStatus } from './coverage';
import { pageOfQuery, type ListQuery, type Page } from './lists';


export type ControlStatus = CoverageStatus | 'no_techniques';

export interface ControlFilters extends ListQuery {
    family?: string;
    status?: ControlStatus;
}

export interface UnmatchedFilters extends ListQuery {
    reason?: 'unknown' | 'deprecated' | 'revoked';
}

interface ControlFields {
    id: string;
    framework_id: string;
    control_id: string;
    family: string;
    family_name: string | null;
    name: string;
    mappable: boolean;
}

export interface ControlView extends ControlFields {
    status: ControlStatus;
    techniques: number;
    covered: number;
    coverage_percent: number | null;
    uncovered_techniques: { technique_id: string; coverage_status: CoverageStatus }[];
}

export interface ImportSummary {
    key: string;
    framework_id: string;
    controls: number;
    mappings: number;
    exact: number;
    revoked: number;
    unmatched: number;
}


interface ControlRow extends ControlFields {
    technique_ids: string[] | null;
    statuses: CoverageStatus[] | null;
}


const internals = {
    statuses: ['covered', 'partial', 'not_covered', 'untested', 'no_techniques'] as ControlStatus[],

    percent: (part: number, whole: number) => (whole ? Math.round(part / whole * 1000) / 10 : null),

    // A control's status from its techniques' stored coverage, by the roll-up rule of coverage.ts (the control standing
    // in for a parent without a result of its own): covered when all are, untested when none is tested, not_covered
    // when every tested one is not covered, partial otherwise
    statusOf: (statuses: CoverageStatus[]): ControlStatus => (statuses.length ?
        rollUp({ coverage_status: 'untested', score: null }, statuses.map((status) => ({ coverage_status: status, score: null }))).coverage_status :
        'no_techniques'),

    view: (row: ControlRow): ControlView => {

        const ids = row.technique_ids ?? [];
        const statuses = row.statuses ?? [];
        const covered = statuses.filter((status) => status === 'covered').length;
        return {
            id: row.id,
            framework_id: row.framework_id,
            control_id: row.control_id,
            family: row.family,
            family_name: row.family_name,
            name: row.name,
            mappable: row.mappable,
            status: internals.statusOf(statuses),
            techniques: ids.length,
            covered,
            coverage_percent: internals.percent(covered, ids.length),
            uncovered_techniques: ids.map((id, i) => ({ technique_id: id, coverage_status: statuses[i]! })).filter((item) => item.coverage_status !== 'covered')
        };
    },

    window: <T>(items: T[], list: ListQuery): Page<T> => {

        const limit = list.limit ?? 50;
        const offset = list.offset ?? 0;
        return { items: items.slice(offset, offset + limit), total: items.length, limit, offset };
    },

    frameworkColumns: ['id', 'key', 'name', 'version', 'attack_version', 'attack_domain', 'source_file', 'provenance', 'licence', 'mapping_updated', 'imported_at', 'imported_by', 'created_at', 'updated_at']
};


// Compliance (docs/compliance.md): frameworks, controls and control -> technique mappings imported from the Mappings
// Explorer files; every status is read from the techniques' stored coverage, never from the tests.
export class ComplianceService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; source?: string | undefined }) { }

    // POST /compliance/import: the folder the operator configured (COMPLIANCE_SOURCE); never a path from a request
    async importConfigured(actor: Actor): Promise<{ frameworks: ImportSummary[] }> {

        if (!this.deps.source) {
            throw new ConflictError('No compliance source is configured: set COMPLIANCE_SOURCE to the folder of the mapping files, or run `npm run aegis -- import-compliance <folder>`', 'compliance_source_unset');
        }

        return await this.importFolder(actor, this.deps.source);
    }

    // Every framework of the folder, one transaction: frameworks and controls upserted on their keys (ids stay), the
    // mappings of each framework replaced and matched to today's techniques
    async importFolder(actor: Actor, dir: string): Promise<{ frameworks: ImportSummary[] }> {

        const parsed = readComplianceFolder(dir);
        return await this.deps.knex.transaction(async (trx) => {

            await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.complianceImport]);
            const known: KnownTechnique[] = await trx('techniques').select('mitre_id', 'revoked', 'deprecated', 'revoked_by_id');
            const techniques = new Map(known.map((row) => [row.mitre_id, row]));
            const frameworks: ImportSummary[] = [];
            for (const framework of parsed) {
                frameworks.push(await this.importFramework(trx, actor, framework, techniques));
            }

            await this.deps.audit.record(trx, actor, { action: 'compliance.import', entity_type: 'compliance_framework', details: { frameworks } });
            return { frameworks };
        });
    }

    async frameworks(actor: Actor, list: ListQuery): Promise<Page<Record<string, unknown>>> {

        const rows = await this.deps.knex('compliance_frameworks').orderBy(list.sort ?? 'key', list.order ?? 'asc').select(internals.frameworkColumns);
        const items = [];
        for (const row of rows) {
            items.push({ ...row, ...await this.figures(row.id) });
        }

        return internals.window(items, list);
    }

    async framework(actor: Actor, id: string) {

        const row = await this.deps.knex('compliance_frameworks').where('id', id).first(internals.frameworkColumns);
        if (!row) {
            throw new NotFoundError('Framework');
        }

        const controls = await this.controlViews(id);
        const families = new Map<string, { family: string; family_name: string | null; controls: number; covered: number }>();
        for (const control of controls) {
            const family = families.get(control.family) ?? { family: control.family, family_name: control.family_name, controls: 0, covered: 0 };
            family.controls++;
            family.covered += control.status === 'covered' ? 1 : 0;
            families.set(control.family, family);
        }

        return { ...row, ...await this.figures(id, controls), families: [...families.values()].sort((a, b) => a.family.localeCompare(b.family)) };
    }

    async controls(actor: Actor, frameworkId: string, filters: ControlFilters): Promise<Page<ControlView>> {

        await this.exists(frameworkId);
        const controls = (await this.controlViews(frameworkId, filters.family)).filter((control) => !filters.status || control.status === filters.status);
        const sort = (filters.sort ?? 'control_id') as 'control_id' | 'family' | 'coverage_percent' | 'techniques';
        const direction = filters.order === 'desc' ? -1 : 1;
        controls.sort((a, b) => direction * (sort === 'coverage_percent' || sort === 'techniques' ? (a[sort] ?? -1) - (b[sort] ?? -1) : a[sort].localeCompare(b[sort])) || a.control_id.localeCompare(b.control_id));
        return internals.window(controls, filters);
    }

    // Controls whose techniques are not all covered, most uncovered techniques first
    async gaps(actor: Actor, frameworkId: string, filters: ControlFilters): Promise<Page<ControlView>> {

        await this.exists(frameworkId);
        const gaps = (await this.controlViews(frameworkId, filters.family))
            .filter((control) => control.uncovered_techniques.length && (!filters.status || control.status === filters.status))
            .sort((a, b) => b.uncovered_techniques.length - a.uncovered_techniques.length || a.control_id.localeCompare(b.control_id));
        return internals.window(gaps, filters);
    }

    async control(actor: Actor, id: string) {

        const [control] = await this.controlQuery().where('c.id', id);
        if (!control) {
            throw new NotFoundError('Control');
        }

        const [framework, description, mappings] = await Promise.all([
            this.deps.knex('compliance_frameworks').where('id', control.framework_id).first('id', 'key', 'name', 'version'),
            this.deps.knex('compliance_controls').where('id', id).first('description'),
            this.deps.knex('compliance_mappings as m').leftJoin('techniques as t', 't.mitre_id', 'm.technique_id').where('m.control_id', id).orderBy('m.attack_id')
                .select('m.attack_id', 'm.attack_name', 'm.mapping_type', 'm.comments', 'm.technique_id', 't.name as technique_name', 't.coverage_status', 't.score', 'm.match', 'm.unmatched_reason')
        ]);

        return {
            ...internals.view(control),
            description: description.description,
            framework,
            mappings: mappings.filter((item) => item.match !== 'unmatched').map(({ unmatched_reason: _reason, ...item }) => item),
            unmatched: mappings.filter((item) => item.match === 'unmatched').map((item) => ({ attack_id: item.attack_id, attack_name: item.attack_name, reason: item.unmatched_reason }))
        };
    }

    // The mappings that name no technique of today, and why
    async unmatched(actor: Actor, frameworkId: string, filters: UnmatchedFilters) {

        await this.exists(frameworkId);
        const filtered = this.deps.knex('compliance_mappings as m').join('compliance_controls as c', 'c.id', 'm.control_id').where('c.framework_id', frameworkId).where('m.match', 'unmatched');
        if (filters.reason) {
            filtered.where('m.unmatched_reason', filters.reason);
        }

        const items = filtered.clone().select('m.attack_id', 'm.attack_name', 'm.unmatched_reason as reason', 'c.id as control_uuid', 'c.control_id', 'c.name as control_name')
            .orderBy(filters.sort === 'control_id' ? 'c.control_id' : 'm.attack_id', filters.order ?? 'asc').orderBy('m.id');
        return await pageOfQuery(this.deps.knex, items, filtered, filters);
    }

    private async importFramework(trx: Knex.Transaction, actor: Actor, framework: ParsedFramework, techniques: Map<string, KnownTechnique>): Promise<ImportSummary> {

        const { controls, mappings, ...fields } = framework;
        const [saved] = await trx('compliance_frameworks').insert({ ...fields, imported_at: trx.fn.now(), imported_by: actor.id })
            .onConflict('key').merge({ ...fields, imported_at: trx.fn.now(), imported_by: actor.id, updated_at: trx.fn.now() }).returning('id');
        const frameworkId = (saved as { id: string }).id;

        const ids = new Map<string, string>();
        for (let i = 0; i < controls.length; i += 500) {
            const rows: { id: string; control_id: string }[] = await trx('compliance_controls').insert(controls.slice(i, i + 500).map((control) => ({ ...control, framework_id: frameworkId })))
                .onConflict(['framework_id', 'control_id']).merge(['family', 'family_name', 'name', 'description', 'mappable', 'updated_at']).returning(['id', 'control_id']);
            rows.forEach((row) => ids.set(row.control_id, row.id));
        }

        await trx('compliance_controls').where('framework_id', frameworkId).whereNotIn('control_id', controls.map((control) => control.control_id)).delete();
        await trx('compliance_mappings').whereIn('control_id', trx('compliance_controls').where('framework_id', frameworkId).select('id')).delete();

        const counts = { exact: 0, revoked: 0, unmatched: 0 };
        const rows = mappings.map((mapping) => {

            const match = matchTechnique(mapping.attack_id, techniques);
            counts[match.match]++;
            return { ...mapping, control_id: ids.get(mapping.control_id)!, ...match };
        });

        for (let i = 0; i < rows.length; i += 500) {
            await trx('compliance_mappings').insert(rows.slice(i, i + 500));
        }

        return { key: framework.key, framework_id: frameworkId, controls: controls.length, mappings: rows.length, ...counts };
    }

    private async exists(frameworkId: string): Promise<void> {

        if (!await this.deps.knex('compliance_frameworks').where('id', frameworkId).first('id')) {
            throw new NotFoundError('Framework');
        }
    }

    // Each control with its matched techniques (distinct) and their stored coverage, in the same order
    private controlQuery() {

        const knex = this.deps.knex;
        const techniques = knex('compliance_mappings as m').join('techniques as t', 't.mitre_id', 'm.technique_id').whereRaw('m.control_id = c.id').distinct('t.mitre_id', 't.coverage_status').as('x');
        return knex('compliance_controls as c').select('c.id', 'c.framework_id', 'c.control_id', 'c.family', 'c.family_name', 'c.name', 'c.mappable',
            knex.raw('(select array_agg(x.mitre_id order by x.mitre_id) from ? ) as technique_ids', [techniques]),
            knex.raw('(select array_agg(x.coverage_status order by x.mitre_id) from ? ) as statuses', [techniques]));
    }

    private async controlViews(frameworkId: string, family?: string): Promise<ControlView[]> {

        const query = this.controlQuery().where('c.framework_id', frameworkId).orderBy('c.control_id');
        if (family) {
            query.where('c.family', family);
        }

        return (await query as ControlRow[]).map(internals.view);
    }

    private async figures(frameworkId: string, known?: ControlView[]) {

        const controls = known ?? await this.controlViews(frameworkId);
        const [mappings] = await this.deps.knex('compliance_mappings as m').join('compliance_controls as c', 'c.id', 'm.control_id').where('c.framework_id', frameworkId).select(
            this.deps.knex.raw('count(*)::integer as total'),
            this.deps.knex.raw(`(count(*) filter (where m.match = 'exact'))::integer as exact`),
            this.deps.knex.raw(`(count(*) filter (where m.match = 'revoked'))::integer as revoked`),
            this.deps.knex.raw(`(count(*) filter (where m.match = 'unmatched'))::integer as unmatched`)
        );

        const withTechniques = controls.filter((control) => control.status !== 'no_techniques');
        const coveredControls = controls.filter((control) => control.status === 'covered').length;
        const techniqueRows: { techniques: number; covered: number }[] = await this.deps.knex('compliance_mappings as m').join('compliance_controls as c', 'c.id', 'm.control_id').join('techniques as t', 't.mitre_id', 'm.technique_id')
            .where('c.framework_id', frameworkId).select(this.deps.knex.raw('count(distinct t.mitre_id)::integer as techniques'), this.deps.knex.raw(`(count(distinct t.mitre_id) filter (where t.coverage_status = 'covered'))::integer as covered`));
        const techniques = techniqueRows[0]!;
        return {
            controls: controls.length,
            mappings,
            coverage: {
                controls_by_status: Object.fromEntries(internals.statuses.map((status) => [status, controls.filter((control) => control.status === status).length])),
                controls_percent_covered: internals.percent(coveredControls, withTechniques.length),
                techniques: techniques.techniques,
                techniques_covered: techniques.covered,
                techniques_percent_covered: internals.percent(techniques.covered, techniques.techniques)
            }
        };
    }
}
