import * as Fs from 'fs';
import * as Path from 'path';

import type { Knex } from 'knex';

import {
    displaySource, isUrl, openSource, parseAttackBundle, parseD3fendOntology, SourceError, toSourceError, type AttackBundle, type AttackDomain, type D3fendData
} from '../../integrations/attack';
import type { OutboundHttp } from '../../integrations/http';
import type { Queue } from '../jobs';
import { LockKey } from '../locks';
import { AttackImport } from '../models';
import type { Actor } from '../policy';

import { attackSteps, d3fendCountermeasures, d3fendMappings, detectionColumns, detectionRows, type IdMap } from './attack-mapping';
import type { AuditService } from './audit';
import { changedRows, chunks, emptyCounts, recordsetDefinition, syncLinks, upsertRows, type WriteCounts } from './bulk-upsert';
import type { CoverageService } from './coverage';
import { analyzeChanged, recordImportRun } from './import-runs';


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

export type { WriteCounts } from './bulk-upsert';

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


// The D3FEND tactics in D3FEND's display order.
export const d3fendTactics = ['Model', 'Harden', 'Detect', 'Isolate', 'Deceive', 'Evict', 'Restore'];


const internals = {
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
        const result = await recordImportRun(this.deps.knex, actor, { kind: 'attack', source: shown }, async (importId) => {

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
                    action: 'attack.import', entity_type: 'attack_import', entity_id: importId,
                    details: { domain: bundle.domain, attack_version: bundle.attack_version, source: shown, changed: changedRows(counts), coverage_changed: rolledUp }
                });
                return counts;
            });

            const outcome: AttackImportResult = {
                import_id: importId,
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
                changed: changedRows(written),
                warnings: bundle.warnings,
                duration_ms: Date.now() - started
            };

            await analyzeChanged(this.deps.knex, written);
            const { warnings, ...counts } = outcome;
            return { result: outcome, finished: { domain: bundle.domain, attack_version: bundle.attack_version, counts: { ...counts, warnings: warnings.slice(0, 50) } } };
        });

        progress({ phase: 'done', objects: result.bundle.objects, step: null, percent: 100 });
        return result;
    }

    // D3FEND: the ontology in Turtle (a URL, a .ttl or .ttl.gz file, or a folder holding one), with its ATT&CK mappings
    // derived by D3FEND's inference rule (integrations/attack/d3fend.ts).
    async importD3fend(actor: Actor, source: string): Promise<D3fendImportResult> {

        const started = Date.now();
        const shown = displaySource(source);
        return await recordImportRun(this.deps.knex, actor, { kind: 'd3fend', source: shown }, async (importId) => {

            const data = await internals.loadD3fend(source, this.deps.outbound);
            const written = await this.deps.knex.transaction(async (trx) => {

                await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.attackImport]);
                const counts = await this.writeD3fend(trx, data);
                await this.deps.audit.record(trx, actor, { action: 'd3fend.import', entity_type: 'attack_import', entity_id: importId, details: { source: shown, changed: changedRows(counts) } });
                return counts;
            });

            const result: D3fendImportResult = {
                import_id: importId,
                source: shown,
                d3fend_version: data.d3fend_version,
                countermeasures: data.countermeasures.length,
                mappings: data.mappings.length,
                written,
                changed: changedRows(written),
                duration_ms: Date.now() - started
            };

            await analyzeChanged(this.deps.knex, written);
            return { result, finished: { counts: { ...result, warnings: data.warnings.slice(0, 50) } } };
        });
    }

    private async writeBundle(trx: Knex.Transaction, bundle: AttackBundle, step: (name: string, index: number, total: number) => void): Promise<Record<string, WriteCounts>> {

        const written: Record<string, WriteCounts> = {};
        const ids: IdMap = new Map();
        const steps = attackSteps(bundle);
        const total = steps.length + 1;
        for (const [index, current] of steps.entries()) {
            step(current.name, index, total);
            if (current.kind === 'links') {
                written[current.name] = await syncLinks(trx, current.spec, current.rows(ids), current.left(ids), current.right(ids));
                continue;
            }

            const rows = current.rows(ids);
            written[current.name] = await upsertRows(trx, current.spec, rows);
            for (const chunk of chunks(rows.map((row) => row.stix_id as string), 5000)) {
                const found = await trx(current.spec.table).select('stix_id', `${current.key} as key`).whereIn('stix_id', chunk);
                for (const row of found as { stix_id: string; key: string }[]) {
                    ids.set(row.stix_id, row.key);
                }
            }
        }

        step('technique_data_components', steps.length, total);
        written.technique_data_components = await this.detection(trx, bundle, ids);
        return written;
    }

    // Detection links are only added by their key, and deleted when the bundle no longer derives them
    private async detection(trx: Knex.Transaction, bundle: AttackBundle, ids: IdMap): Promise<WriteCounts> {

        const valid = detectionRows(bundle, ids);
        const columns = detectionColumns;
        const counts = emptyCounts();
        for (const chunk of chunks(valid)) {
            const result = await trx.raw(`insert into technique_data_components (??) select ?? from jsonb_to_recordset(?::jsonb) as x(${recordsetDefinition(columns)}) on conflict do nothing returning 1`,
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

        const countermeasures = await upsertRows(trx, d3fendCountermeasures.spec, d3fendCountermeasures.rows(data));
        const { rows, known } = d3fendMappings.rows(data);
        const mappings = await syncLinks(trx, d3fendMappings.spec, rows, known, null);
        return { d3fend_countermeasures: countermeasures, d3fend_mappings: mappings };
    }
}
