import * as Fs from 'fs';
import * as Path from 'path';

import type { Knex } from 'knex';

import {
    detectionLinks, displaySource, isUrl, openSource, parseAttackBundle, parseD3fendOntology, SourceError, toSourceError,
    type AttackBundle, type AttackDomain, type AttackObjectRecord, type AttackRecord, type D3fendData
} from '../../integrations/attack';
import type { OutboundHttp } from '../../integrations/http';
import type { Queue } from '../jobs';
import { LockKey } from '../locks';
import { AttackImport } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import type { CoverageService } from './coverage';


export interface ImportProgress {
    phase: 'fetch' | 'parse' | 'write' | 'done';
    objects: number;
    step: string | null;
    percent: number;                    // 0-100, for agenda's job.touch(progress) and the CLI's bar
}

export interface ImportOptions {
    source?: string;                    // what attack_imports records (a path or URL); defaults to the input's description
    onProgress?: (progress: ImportProgress) => void;
}

export interface WriteCounts {
    inserted: number;
    updated: number;
    deleted: number;
}

export interface AttackImportResult {
    import_id: string;
    domain: AttackDomain;
    attack_version: string | null;
    source: string;
    bundle: {
        objects: number;
        techniques: number;
        subtechniques: number;
        tactics: number;
        groups: number;
        software: number;
        campaigns: number;
        mitigations: number;
        data_components: number;
        relationships: number;
        by_type: Record<string, number>;
    };
    written: Record<string, WriteCounts>;
    changed: number;                    // rows inserted, updated or deleted, all tables together (0 on a re-import)
    warnings: string[];
    duration_ms: number;
}

export interface D3fendImportResult {
    import_id: string;
    source: string;
    d3fend_version: string | null;
    countermeasures: number;
    mappings: number;
    written: Record<string, WriteCounts>;
    changed: number;
    duration_ms: number;
}


type SqlType = 'text' | 'text[]' | 'uuid' | 'boolean' | 'integer' | 'smallint' | 'timestamptz' | 'jsonb';

interface Column {
    name: string;
    type: SqlType;
}

interface TableSpec {
    table: string;
    conflict: string;
    columns: Column[];                  // written on insert; compared and rewritten on update (minus insertOnly)
    insertOnly?: string[];              // e.g. domain: the first domain an object came from
    guard?: string;                     // an extra condition on the existing row for an update to happen
}

interface LinkSpec {
    table: string;
    left: Column;
    right: Column;
    extra?: Column[];                   // compared and rewritten on conflict
    scope?: string;                     // rows of the table the sync owns (manual links are left alone)
}

type Row = Record<string, unknown>;


// The D3FEND tactics in D3FEND's display order.
export const d3fendTactics = ['Model', 'Harden', 'Detect', 'Isolate', 'Deceive', 'Evict', 'Restore'];


const internals = {
    batchSize: 1000,

    stix: [
        { name: 'stix_id', type: 'text' }, { name: 'mitre_id', type: 'text' }, { name: 'domain', type: 'text' }, { name: 'domains', type: 'text[]' },
        { name: 'name', type: 'text' }, { name: 'description', type: 'text' }, { name: 'url', type: 'text' }, { name: 'version', type: 'text' },
        { name: 'revoked', type: 'boolean' }, { name: 'deprecated', type: 'boolean' }, { name: 'modified', type: 'timestamptz' }, { name: 'attack_version', type: 'text' }
    ] as Column[],

    // The columns never compared: a new ATT&CK release alone does not rewrite an unchanged object
    uncompared: new Set(['attack_version']),

    chunks<T>(items: T[], size: number): T[][] {

        const chunks: T[][] = [];
        for (let i = 0; i < items.length; i += size) {
            chunks.push(items.slice(i, i + size));
        }

        return chunks;
    },

    // Objects shared by several bundles list their domains; relationships and older objects list none
    domainsOf(record: AttackRecord, domain: AttackDomain): AttackDomain[] {

        return record.domains.length ? record.domains : [domain];
    },

    base(record: AttackObjectRecord, domain: AttackDomain, version: string | null): Row {

        return {
            stix_id: record.stix_id,
            mitre_id: record.mitre_id,
            domain,
            domains: internals.domainsOf(record, domain),
            name: record.name,
            description: record.description,
            url: record.url,
            version: record.version,
            revoked: record.revoked,
            deprecated: record.deprecated,
            modified: record.modified || null,
            attack_version: version
        };
    },

    active(record: AttackRecord): boolean {

        return !record.revoked && !record.deprecated;
    },

    empty: (): WriteCounts => ({ inserted: 0, updated: 0, deleted: 0 }),

    // x(?? text, ?? text[], ...): the column definition list of jsonb_to_recordset; the names are bound, the types are constants
    definition: (columns: Column[]) => columns.map((column) => `?? ${column.type}`).join(', '),

    changed: (written: Record<string, WriteCounts>) => Object.values(written).reduce((sum, counts) => sum + counts.inserted + counts.updated + counts.deleted, 0),

    // The D3FEND ontology in Turtle: MITRE's d3fend.ttl (a URL), a local .ttl or .ttl.gz, or a folder holding one
    ontologyFiles: ['d3fend.ttl', 'd3fend.ttl.gz', 'd3fend-protege.ttl', 'd3fend-protege.ttl.gz'],

    async loadD3fend(source: string, outbound: OutboundHttp): Promise<D3fendData> {

        let file = source;
        if (!isUrl(source) && (await Fs.promises.stat(source).catch(() => null))?.isDirectory()) {
            const names = new Set(await Fs.promises.readdir(source));
            const name = internals.ontologyFiles.find((candidate) => names.has(candidate));
            if (!name) {
                throw new SourceError(source, `is a folder without the D3FEND ontology (${internals.ontologyFiles.join(', ')})`);
            }

            file = Path.join(source, name);
        }

        const input = await openSource(file, outbound, { maxBytes: 64 * 1024 * 1024 });
        return await parseD3fendOntology(input).catch((err: unknown) => {

            throw toSourceError(err, file, { otherwise: 'is not the D3FEND ontology in Turtle' });
        });
    }
};


// The idempotent upsert of ATT&CK (Enterprise, Mobile, ICS) and D3FEND into the knowledge base, on top of the
// streaming parsers of integrations/attack. One transaction per import; every statement a batch.
export class AttackImportService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; coverage: CoverageService; queue: Queue; outbound: OutboundHttp }) { }

    // POST /system/sync: one attack-sync job at a time; a request while one is queued or running answers that one.
    async requestSync(actor: Actor): Promise<{ job_id: string; status: 'queued' | 'already_queued' }> {

        const pending = await this.deps.queue.pending('attack-sync');
        if (pending) {
            return { job_id: pending, status: 'already_queued' };
        }

        const id = await this.deps.queue.enqueue('attack-sync', { reason: 'manual', requested_by: actor.id });
        await this.deps.audit.record(this.deps.knex, actor, { action: 'attack.sync_requested', entity_type: 'job', entity_id: id });
        return { job_id: id, status: 'queued' };
    }

    pendingSync(): Promise<string | null> {

        return this.deps.queue.pending('attack-sync');
    }

    // The latest imports, newest first (what the sync did, and when)
    async recent(limit = 20): Promise<AttackImport[]> {

        return await AttackImport.query(this.deps.knex).orderBy('started_at', 'desc').limit(limit);
    }

    // True when no MITRE technique has been imported yet (the worker's first-start check).
    async isEmpty(): Promise<boolean> {

        const row = await this.deps.knex('techniques').where('is_custom', false).first('mitre_id');
        return !row;
    }

    async importAttack(actor: Actor, source: string, options: ImportOptions = {}): Promise<AttackImportResult> {

        const started = Date.now();
        const shown = displaySource(options.source ?? source);
        const progress = (update: Omit<ImportProgress, 'percent'> & { percent: number }) => options.onProgress?.(update);
        const record = await AttackImport.insertReturning(this.deps.knex, {
            kind: 'attack', source: shown, status: 'running', started_at: new Date(), created_by: actor.id
        });

        try {
            progress({ phase: 'fetch', objects: 0, step: null, percent: 0 });
            const input = await openSource(source, this.deps.outbound);
            const bundle = await parseAttackBundle(input, {
                progressInterval: 2000,
                onProgress: ({ objects }) => progress({ phase: 'parse', objects, step: null, percent: Math.min(39, Math.round(objects / 25_000 * 40)) })
            }).catch((err: unknown) => {

                throw toSourceError(err, source, { otherwise: 'is not a STIX 2.1 bundle' });
            });

            const objects = bundle.counts.objects;
            const written = await this.deps.knex.transaction(async (trx) => {

                // Imports (worker, CLI) write one at a time: the second waits for the first to commit, then finds nothing to change.
                // Validations wait meanwhile (they share the coverage lock), taken before any technique row is.
                await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.attackImport]);
                await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.coverage]);
                const counts = await this.writeBundle(trx, bundle, (step, index, total) => progress({ phase: 'write', objects, step, percent: 40 + Math.round(index / total * 59) }));

                // New, moved, revoked or deprecated sub-techniques change their parents' roll-up
                const rolledUp = await this.deps.coverage.refresh(trx, actor);
                await this.deps.audit.record(trx, actor, {
                    action: 'attack.import', entity_type: 'attack_import', entity_id: record.id,
                    details: { domain: bundle.domain, attack_version: bundle.attack_version, source: shown, changed: internals.changed(counts), coverage_changed: rolledUp }
                });
                return counts;
            });

            const result: AttackImportResult = {
                import_id: record.id,
                domain: bundle.domain,
                attack_version: bundle.attack_version,
                source: shown,
                bundle: {
                    objects,
                    techniques: bundle.techniques.filter((technique) => !technique.is_subtechnique).length,
                    subtechniques: bundle.techniques.filter((technique) => technique.is_subtechnique).length,
                    tactics: bundle.tactics.length,
                    groups: bundle.groups.length,
                    software: bundle.software.length,
                    campaigns: bundle.campaigns.length,
                    mitigations: bundle.mitigations.length,
                    data_components: bundle.data_components.length,
                    relationships: bundle.counts.by_type.relationship ?? 0,
                    by_type: bundle.counts.by_type
                },
                written,
                changed: internals.changed(written),
                warnings: bundle.warnings,
                duration_ms: Date.now() - started
            };

            await this.analyze(Object.keys(written).filter((table) => internals.changed({ [table]: written[table]! })));
            const { warnings, ...counts } = result;
            await record.$query(this.deps.knex).patch({
                status: 'succeeded', domain: bundle.domain, attack_version: bundle.attack_version, finished_at: new Date(),
                counts: { ...counts, warnings: warnings.slice(0, 50) }
            });

            progress({ phase: 'done', objects, step: null, percent: 100 });
            return result;
        }
        catch (err) {
            await record.$query(this.deps.knex).patch({ status: 'failed', error: String((err as Error).message).slice(0, 2000), finished_at: new Date() }).catch(() => undefined);
            throw err;
        }
    }

    // D3FEND: the ontology in Turtle (a URL, a .ttl or .ttl.gz file, or a folder holding one), with its ATT&CK mappings
    // derived by D3FEND's inference rule (integrations/attack/d3fend.ts).
    async importD3fend(actor: Actor, source: string): Promise<D3fendImportResult> {

        const started = Date.now();
        const shown = displaySource(source);
        const record = await AttackImport.insertReturning(this.deps.knex, { kind: 'd3fend', source: shown, status: 'running', started_at: new Date(), created_by: actor.id });
        try {
            const data = await internals.loadD3fend(source, this.deps.outbound);
            const written = await this.deps.knex.transaction(async (trx) => {

                await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.attackImport]);
                const counts = await this.writeD3fend(trx, data);
                await this.deps.audit.record(trx, actor, { action: 'd3fend.import', entity_type: 'attack_import', entity_id: record.id, details: { source: shown, changed: internals.changed(counts) } });
                return counts;
            });

            const result: D3fendImportResult = {
                import_id: record.id,
                source: shown,
                d3fend_version: data.d3fend_version,
                countermeasures: data.countermeasures.length,
                mappings: data.mappings.length,
                written,
                changed: internals.changed(written),
                duration_ms: Date.now() - started
            };

            await this.analyze(Object.keys(written).filter((table) => internals.changed({ [table]: written[table]! })));
            await record.$query(this.deps.knex).patch({ status: 'succeeded', finished_at: new Date(), counts: { ...result, warnings: data.warnings.slice(0, 50) } });
            return result;
        }
        catch (err) {
            await record.$query(this.deps.knex).patch({ status: 'failed', error: String((err as Error).message).slice(0, 2000), finished_at: new Date() }).catch(() => undefined);
            throw err;
        }
    }

    // Fresh planner statistics for the tables a bulk import changed: with the counts of an empty table, PostgreSQL
    // picks nested loops that turn a 30 ms gap query into seconds
    private async analyze(tables: string[]): Promise<void> {

        if (tables.length) {
            await this.deps.knex.raw(`analyze ${tables.map(() => '??').join(', ')}`, tables);
        }
    }

    private async writeBundle(trx: Knex.Transaction, bundle: AttackBundle, step: (name: string, index: number, total: number) => void): Promise<Record<string, WriteCounts>> {

        const { domain } = bundle;
        const version = bundle.attack_version;
        const written: Record<string, WriteCounts> = {};
        const steps: [string, () => Promise<void>][] = [];
        const ids = new Map<string, string>();                  // STIX id → row id (uuid, or the MITRE id of a technique)
        const add = (name: string, run: () => Promise<WriteCounts>) => steps.push([name, async () => {

            written[name] = await run();
        }]);

        const upsert = async (spec: TableSpec, rows: Row[], key = 'id') => {

            const counts = await this.upsert(trx, spec, rows);
            for (const chunk of internals.chunks(rows.map((row) => row.stix_id as string), 5000)) {
                const found = await trx(spec.table).select('stix_id', `${key} as key`).whereIn('stix_id', chunk);
                for (const row of found as { stix_id: string; key: string }[]) {
                    ids.set(row.stix_id, row.key);
                }
            }

            return counts;
        };

        const stix = (extra: Column[]): Column[] => [...internals.stix, ...extra];

        // Objects
        add('tactics', () => upsert({ table: 'tactics', conflict: 'stix_id', insertOnly: ['domain'], columns: stix([{ name: 'shortname', type: 'text' }, { name: 'matrix_order', type: 'integer' }]) },
            bundle.tactics.map((tactic) => ({ ...internals.base(tactic, domain, version), shortname: tactic.shortname, matrix_order: tactic.order }))));

        const inBundle = new Set(bundle.techniques.map((technique) => technique.mitre_id));
        const successors = new Map(bundle.revocations.filter((revocation) => revocation.object_type === 'attack-pattern').map((revocation) => [revocation.stix_id, revocation.final_mitre_id]));
        const techniques = [...bundle.techniques].filter((technique) => technique.mitre_id).sort((a, b) => Number(a.is_subtechnique) - Number(b.is_subtechnique));
        add('techniques', () => upsert({
            table: 'techniques',
            conflict: 'mitre_id',
            insertOnly: ['domain'],
            guard: 'not techniques.is_custom and (techniques.stix_id is null or techniques.stix_id = excluded.stix_id)',     // a placeholder row is adopted
            columns: stix([
                { name: 'is_subtechnique', type: 'boolean' }, { name: 'parent_id', type: 'text' }, { name: 'platforms', type: 'text[]' },
                { name: 'detection', type: 'text' }, { name: 'legacy_data_sources', type: 'text[]' }, { name: 'revoked_by_id', type: 'text' }
            ])
        }, techniques.map((technique) => ({
            ...internals.base(technique, domain, version),
            // A sub-technique whose parent is not in the bundle (the parser warns) stands alone: a flag without a parent
            // would be a row the database refuses
            is_subtechnique: Boolean(technique.parent_mitre_id && inBundle.has(technique.parent_mitre_id)),
            parent_id: technique.parent_mitre_id && inBundle.has(technique.parent_mitre_id) ? technique.parent_mitre_id : null,
            platforms: technique.platforms,
            detection: technique.detection,
            legacy_data_sources: technique.data_sources,
            revoked_by_id: successors.get(technique.stix_id) ?? null
        })), 'mitre_id'));

        add('mitigations', () => upsert({ table: 'mitigations', conflict: 'stix_id', insertOnly: ['domain'], columns: internals.stix },
            bundle.mitigations.map((mitigation) => internals.base(mitigation, domain, version))));

        add('software', () => upsert({
            table: 'software', conflict: 'stix_id', insertOnly: ['domain'],
            columns: stix([{ name: 'type', type: 'text' }, { name: 'aliases', type: 'text[]' }, { name: 'platforms', type: 'text[]' }])
        }, bundle.software.map((software) => ({ ...internals.base(software, domain, version), type: software.type, aliases: software.aliases, platforms: software.platforms }))));

        add('data_sources', () => upsert({
            table: 'data_sources', conflict: 'stix_id', insertOnly: ['domain'],
            columns: stix([{ name: 'platforms', type: 'text[]' }, { name: 'collection_layers', type: 'text[]' }])
        }, bundle.data_sources.map((source) => ({ ...internals.base(source, domain, version), platforms: source.platforms, collection_layers: source.collection_layers }))));

        // The organisation's view of a component (collected, quality, notes, assessed_*) is never in the column list
        add('data_components', () => upsert({
            table: 'data_components', conflict: 'stix_id', insertOnly: ['domain'],
            columns: stix([{ name: 'data_source_id', type: 'uuid' }, { name: 'log_sources', type: 'jsonb' }])
        }, bundle.data_components.map((component) => ({
            ...internals.base(component, domain, version),
            data_source_id: component.data_source_stix_id ? ids.get(component.data_source_stix_id) ?? null : null,
            log_sources: component.log_sources
        }))));

        add('detection_strategies', () => upsert({ table: 'detection_strategies', conflict: 'stix_id', insertOnly: ['domain'], columns: internals.stix },
            bundle.detection_strategies.map((strategy) => internals.base(strategy, domain, version))));

        const strategyOf = new Map<string, string>();
        for (const strategy of bundle.detection_strategies) {
            for (const analytic of strategy.analytic_stix_ids) {
                if (!strategyOf.has(analytic)) {
                    strategyOf.set(analytic, strategy.stix_id);
                }
            }
        }

        add('analytics', () => upsert({
            table: 'analytics', conflict: 'stix_id', insertOnly: ['domain'],
            columns: stix([{ name: 'detection_strategy_id', type: 'uuid' }, { name: 'platforms', type: 'text[]' }, { name: 'log_source_references', type: 'jsonb' }])
        }, bundle.analytics.map((analytic) => ({
            ...internals.base(analytic, domain, version),
            detection_strategy_id: ids.get(strategyOf.get(analytic.stix_id) ?? '') ?? null,
            platforms: analytic.platforms,
            log_source_references: analytic.log_source_references
        }))));

        // Groups: the organisation's columns (tracked, country, motivations) are never in the column list
        add('threat_actors', () => upsert({
            table: 'threat_actors', conflict: 'stix_id', insertOnly: ['source'],
            columns: [
                { name: 'stix_id', type: 'text' }, { name: 'mitre_id', type: 'text' }, { name: 'source', type: 'text' }, { name: 'domains', type: 'text[]' },
                { name: 'name', type: 'text' }, { name: 'aliases', type: 'text[]' }, { name: 'description', type: 'text' }, { name: 'url', type: 'text' },
                { name: 'references', type: 'jsonb' }, { name: 'revoked', type: 'boolean' }, { name: 'deprecated', type: 'boolean' },
                { name: 'modified', type: 'timestamptz' }, { name: 'attack_version', type: 'text' }
            ]
        }, bundle.groups.map((group) => ({
            stix_id: group.stix_id,
            mitre_id: group.mitre_id,
            source: 'mitre',
            domains: internals.domainsOf(group, domain),
            name: group.name,
            aliases: group.aliases,
            description: group.description,
            url: group.url,
            references: group.mitre_id ? [{ source_name: 'mitre-attack', external_id: group.mitre_id, url: group.url }] : [],
            revoked: group.revoked,
            deprecated: group.deprecated,
            modified: group.modified || null,
            attack_version: version
        }))));

        add('attack_campaigns', () => upsert({
            table: 'attack_campaigns', conflict: 'stix_id', insertOnly: ['domain'],
            columns: stix([{ name: 'aliases', type: 'text[]' }, { name: 'first_seen', type: 'text' }, { name: 'last_seen', type: 'text' }])
        }, bundle.campaigns.map((campaign) => ({ ...internals.base(campaign, domain, version), aliases: campaign.aliases, first_seen: campaign.first_seen, last_seen: campaign.last_seen }))));

        // Links, from the active relationships
        const relationships = bundle.relationships.filter(internals.active);
        const pairs = (type: string, sourceTypes: string[], targetTypes: string[]) => relationships.filter((relationship) => relationship.type === type && sourceTypes.includes(relationship.source_type) && targetTypes.includes(relationship.target_type));
        const universe = (records: { stix_id: string }[]) => records.map((item) => ids.get(item.stix_id)).filter((id): id is string => Boolean(id));
        const techniqueIds = () => universe(bundle.techniques);
        const software = ['malware', 'tool'];

        const tacticByShortname = new Map(bundle.tactics.map((tactic) => [tactic.shortname, tactic.stix_id]));
        add('technique_tactics', () => this.link(trx, { table: 'technique_tactics', left: { name: 'technique_id', type: 'text' }, right: { name: 'tactic_id', type: 'uuid' } },
            bundle.techniques.flatMap((technique) => technique.tactics.map((shortname) => ({ technique_id: ids.get(technique.stix_id), tactic_id: ids.get(tacticByShortname.get(shortname) ?? '') }))),
            techniqueIds(), universe(bundle.tactics)));

        add('technique_mitigations', () => this.link(trx, {
            table: 'technique_mitigations', left: { name: 'technique_id', type: 'text' }, right: { name: 'mitigation_id', type: 'uuid' }, extra: [{ name: 'description', type: 'text' }]
        }, pairs('mitigates', ['course-of-action'], ['attack-pattern']).map((relationship) => ({ technique_id: ids.get(relationship.target_stix_id), mitigation_id: ids.get(relationship.source_stix_id), description: relationship.description })),
        techniqueIds(), universe(bundle.mitigations)));

        add('threat_actor_techniques', () => this.link(trx, {
            table: 'threat_actor_techniques', left: { name: 'threat_actor_id', type: 'uuid' }, right: { name: 'technique_id', type: 'text' },
            extra: [{ name: 'source', type: 'text' }, { name: 'description', type: 'text' }], scope: 'source = \'mitre\''
        }, pairs('uses', ['intrusion-set'], ['attack-pattern']).map((relationship) => ({ threat_actor_id: ids.get(relationship.source_stix_id), technique_id: ids.get(relationship.target_stix_id), source: 'mitre', description: relationship.description })),
        universe(bundle.groups), techniqueIds()));

        add('software_techniques', () => this.link(trx, { table: 'software_techniques', left: { name: 'software_id', type: 'uuid' }, right: { name: 'technique_id', type: 'text' } },
            pairs('uses', software, ['attack-pattern']).map((relationship) => ({ software_id: ids.get(relationship.source_stix_id), technique_id: ids.get(relationship.target_stix_id) })),
            universe(bundle.software), techniqueIds()));

        add('threat_actor_software', () => this.link(trx, { table: 'threat_actor_software', left: { name: 'threat_actor_id', type: 'uuid' }, right: { name: 'software_id', type: 'uuid' } },
            pairs('uses', ['intrusion-set'], software).map((relationship) => ({ threat_actor_id: ids.get(relationship.source_stix_id), software_id: ids.get(relationship.target_stix_id) })),
            universe(bundle.groups), universe(bundle.software)));

        add('attack_campaign_techniques', () => this.link(trx, { table: 'attack_campaign_techniques', left: { name: 'attack_campaign_id', type: 'uuid' }, right: { name: 'technique_id', type: 'text' } },
            pairs('uses', ['campaign'], ['attack-pattern']).map((relationship) => ({ attack_campaign_id: ids.get(relationship.source_stix_id), technique_id: ids.get(relationship.target_stix_id) })),
            universe(bundle.campaigns), techniqueIds()));

        add('attack_campaign_actors', () => this.link(trx, { table: 'attack_campaign_actors', left: { name: 'attack_campaign_id', type: 'uuid' }, right: { name: 'threat_actor_id', type: 'uuid' } },
            pairs('attributed-to', ['campaign'], ['intrusion-set']).map((relationship) => ({ attack_campaign_id: ids.get(relationship.source_stix_id), threat_actor_id: ids.get(relationship.target_stix_id) })),
            universe(bundle.campaigns), universe(bundle.groups)));

        add('technique_data_components', () => this.detection(trx, bundle, ids));

        for (const [index, [name, run]] of steps.entries()) {
            step(name, index, steps.length);
            await run();
        }

        return written;
    }

    // technique ← detection strategy → analytic → data component (v18), plus legacy "Source: Component" names (older bundles)
    private async detection(trx: Knex.Transaction, bundle: AttackBundle, ids: Map<string, string>): Promise<WriteCounts> {

        const rows: Row[] = detectionLinks(bundle).map((link) => ({
            technique_id: ids.get(link.technique_stix_id),
            data_component_id: ids.get(link.data_component_stix_id),
            detection_strategy_id: ids.get(link.detection_strategy_stix_id),
            analytic_id: ids.get(link.analytic_stix_id),
            source: 'detection_strategy'
        }));

        const sourceNames = new Map(bundle.data_sources.map((source) => [source.stix_id, source.name]));
        const byName = new Map<string, string>();
        for (const component of bundle.data_components) {
            const sourceName = component.data_source_stix_id ? sourceNames.get(component.data_source_stix_id) : undefined;
            if (sourceName) {
                byName.set(`${sourceName}: ${component.name}`.toLowerCase(), component.stix_id);
            }

            byName.set(component.name.toLowerCase(), component.stix_id);
        }

        for (const technique of bundle.techniques) {
            for (const name of new Set(technique.data_sources)) {
                const component = byName.get(name.toLowerCase()) ?? byName.get(name.split(':').pop()!.trim().toLowerCase());
                if (component) {
                    rows.push({ technique_id: ids.get(technique.stix_id), data_component_id: ids.get(component), detection_strategy_id: null, analytic_id: null, source: 'legacy' });
                }
            }
        }

        const valid = rows.filter((row) => row.technique_id && row.data_component_id);
        const columns: Column[] = [
            { name: 'technique_id', type: 'text' }, { name: 'data_component_id', type: 'uuid' }, { name: 'detection_strategy_id', type: 'uuid' },
            { name: 'analytic_id', type: 'uuid' }, { name: 'source', type: 'text' }
        ];

        const counts = internals.empty();
        for (const chunk of internals.chunks(valid, internals.batchSize)) {
            const result = await trx.raw(`insert into technique_data_components (??) select ?? from jsonb_to_recordset(?::jsonb) as x(${internals.definition(columns)}) on conflict do nothing returning 1`,
                [columns.map((column) => column.name), columns.map((column) => column.name), JSON.stringify(chunk), ...columns.map((column) => column.name)]);
            counts.inserted += result.rowCount ?? 0;
        }

        const techniques = bundle.techniques.map((technique) => ids.get(technique.stix_id)).filter((id): id is string => Boolean(id));
        const components = bundle.data_components.map((component) => ids.get(component.stix_id)).filter((id): id is string => Boolean(id));
        const deleted = await trx.raw(`delete from technique_data_components t where t.technique_id = any(?::text[]) and t.data_component_id = any(?::uuid[])
            and not exists (select 1 from jsonb_to_recordset(?::jsonb) as d(technique_id text, data_component_id uuid, analytic_id uuid)
                where d.technique_id = t.technique_id and d.data_component_id = t.data_component_id and d.analytic_id is not distinct from t.analytic_id)`,
        [techniques, components, JSON.stringify(valid.map((row) => ({ technique_id: row.technique_id, data_component_id: row.data_component_id, analytic_id: row.analytic_id })))]);
        counts.deleted = deleted.rowCount ?? 0;
        return counts;
    }

    private async writeD3fend(trx: Knex.Transaction, data: D3fendData): Promise<Record<string, WriteCounts>> {

        const countermeasures = await this.upsert(trx, {
            table: 'd3fend_countermeasures',
            conflict: 'd3fend_id',
            columns: [
                { name: 'd3fend_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'tactic', type: 'text' }, { name: 'parent_id', type: 'text' },
                { name: 'level', type: 'smallint' }, { name: 'definition', type: 'text' }, { name: 'synonyms', type: 'text[]' },
                { name: 'artifact_relations', type: 'jsonb' }, { name: 'd3fend_version', type: 'text' }
            ]
        }, data.countermeasures.map((countermeasure) => ({
            d3fend_id: countermeasure.d3fend_id,
            name: countermeasure.name,
            tactic: countermeasure.tactic,
            parent_id: countermeasure.parent_d3fend_id,
            level: countermeasure.level,
            definition: countermeasure.definition,
            synonyms: countermeasure.synonyms,
            artifact_relations: countermeasure.artifact_relations,
            d3fend_version: data.d3fend_version
        })));

        const known = new Set(data.countermeasures.map((countermeasure) => countermeasure.d3fend_id));
        const mappings = await this.link(trx, {
            table: 'd3fend_mappings', left: { name: 'd3fend_id', type: 'text' }, right: { name: 'technique_id', type: 'text' }, extra: [{ name: 'inferences', type: 'jsonb' }]
        }, data.mappings.filter((mapping) => known.has(mapping.d3fend_id)).map((mapping) => ({ d3fend_id: mapping.d3fend_id, technique_id: mapping.attack_id, inferences: mapping.inferences })),
        [...known], null);

        return { d3fend_countermeasures: countermeasures, d3fend_mappings: mappings };
    }

    // insert ... on conflict do update ... where the row really differs: an unchanged object is not rewritten
    private async upsert(trx: Knex.Transaction, spec: TableSpec, rows: Row[]): Promise<WriteCounts> {

        const names = spec.columns.map((column) => column.name);
        const updated = names.filter((name) => name !== spec.conflict && !spec.insertOnly?.includes(name));
        const compared = updated.filter((name) => name !== 'domains' && !internals.uncompared.has(name));
        const set = updated.map((name) => (name === 'domains' ?
            '"domains" = array(select distinct unnest(?? || excluded."domains") order by 1)' :
            '?? = excluded.??'));
        const setBindings = updated.flatMap((name) => (name === 'domains' ? [`${spec.table}.domains`] : [name, name]));
        const changed = `((${compared.map(() => '??').join(', ')}) is distinct from (${compared.map(() => 'excluded.??').join(', ')}) or not (?? @> excluded."domains"))`;
        const hasDomains = names.includes('domains');
        const condition = hasDomains ? changed : `((${compared.map(() => '??').join(', ')}) is distinct from (${compared.map(() => 'excluded.??').join(', ')}))`;
        const conditionBindings = [...compared.map((name) => `${spec.table}.${name}`), ...compared, ...(hasDomains ? [`${spec.table}.domains`] : [])];

        const sql = `insert into ?? (??) select ?? from jsonb_to_recordset(?::jsonb) as x(${internals.definition(spec.columns)})
            on conflict (??) do update set ${set.join(', ')}, "updated_at" = now()
            where ${condition}${spec.guard ? ` and ${spec.guard}` : ''}
            returning (xmax = 0) as inserted`;

        const counts = internals.empty();
        for (const chunk of internals.chunks(rows, internals.batchSize)) {
            const result = await trx.raw(sql, [spec.table, names, names, JSON.stringify(chunk), ...names, spec.conflict, ...setBindings, ...conditionBindings]);
            for (const row of result.rows as { inserted: boolean }[]) {
                counts[row.inserted ? 'inserted' : 'updated']++;
            }
        }

        return counts;
    }

    // The links between objects of this bundle: add the missing ones, update changed extras, and delete those of
    // the sync's own scope whose two ends are in the bundle but which the bundle no longer has.
    private async link(trx: Knex.Transaction, spec: LinkSpec, rows: Row[], leftUniverse: string[], rightUniverse: string[] | null): Promise<WriteCounts> {

        const left = spec.left.name;
        const right = spec.right.name;
        const seen = new Set<string>();
        const valid = rows.filter((row) => {

            const key = `${row[left]}\u0000${row[right]}`;
            if (!row[left] || !row[right] || seen.has(key)) {
                return false;
            }

            seen.add(key);
            return true;
        });

        const columns = [spec.left, spec.right, ...spec.extra ?? []];
        const names = columns.map((column) => column.name);
        const extras = (spec.extra ?? []).map((column) => column.name);
        const onConflict = extras.length ?
            `do update set ${extras.map(() => '?? = excluded.??').join(', ')} where (${extras.map(() => '??').join(', ')}) is distinct from (${extras.map(() => 'excluded.??').join(', ')})${spec.scope ? ` and ${spec.table}.${spec.scope}` : ''}` :
            'do nothing';
        const conflictBindings = extras.length ? [...extras.flatMap((name) => [name, name]), ...extras.map((name) => `${spec.table}.${name}`), ...extras] : [];

        const counts = internals.empty();
        for (const chunk of internals.chunks(valid, internals.batchSize)) {
            const result = await trx.raw(`insert into ?? (??) select ?? from jsonb_to_recordset(?::jsonb) as x(${internals.definition(columns)}) on conflict (??, ??) ${onConflict} returning (xmax = 0) as inserted`,
                [spec.table, names, names, JSON.stringify(chunk), ...names, left, right, ...conflictBindings]);
            for (const row of result.rows as { inserted: boolean }[]) {
                counts[row.inserted ? 'inserted' : 'updated']++;
            }
        }

        const pairs = JSON.stringify(valid.map((row) => ({ [left]: row[left], [right]: row[right] })));
        const universe = rightUniverse ? ` and t.?? = any(?::${spec.right.type}[])` : '';
        const result = await trx.raw(`delete from ?? as t where t.?? = any(?::${spec.left.type}[])${universe}${spec.scope ? ` and t.${spec.scope}` : ''}
            and not exists (select 1 from jsonb_to_recordset(?::jsonb) as d(?? ${spec.left.type}, ?? ${spec.right.type}) where d.?? = t.?? and d.?? = t.??)`,
        [spec.table, left, leftUniverse, ...rightUniverse ? [right, rightUniverse] : [], pairs, left, right, left, left, right, right]);
        counts.deleted = result.rowCount ?? 0;
        return counts;
    }
}

