import * as Crypto from 'crypto';
import * as Os from 'os';
import * as Path from 'path';

import { CronExpressionParser } from 'cron-parser';
import type { Knex } from 'knex';
import { UniqueViolationError } from 'objection';

import { OutboundError, type OutboundHttp } from '../../integrations/http';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import type { Queue } from '../jobs';
import { LockKey } from '../locks';
import { OsintFeed, OsintImport, type OsintAuthType, type OsintFeedKind, type OsintRejection } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { upsertRows, type TableSpec, type WriteCounts } from './bulk-upsert';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import { analyzeChanged } from './import-runs';
import { likePattern, page, pageOfQuery, type ListQuery, type Page } from './lists';
import { FeedFormatError, parseMispGalaxy, parseStixBundle, rejectionCap, type FeedActor, type FeedContent, type FeedUsage } from './osint-mapping';
import { prevalenceOf, type Prevalence } from './osint-prevalence';
import { confinedPath, FeedReader, FeedReadError, type FeedCredential } from './osint-sources';
import { SecretBox } from './secret-box';


export interface OsintFeedCreate {
    name: string;
    kind: OsintFeedKind;
    url?: string | null;
    file_path?: string | null;
    collection?: string | null;
    auth_type?: OsintAuthType;
    username?: string | null;
    api_key_header?: string | null;
    secret?: string | null;
    cron?: string | null;
    interval_minutes?: number | null;
    enabled?: boolean;
}

export type OsintFeedUpdate = Partial<OsintFeedCreate>;

export interface OsintFeedFilters extends ListQuery {
    kind?: OsintFeedKind;
    enabled?: boolean;
    search?: string;
}

export interface OsintImportFilters extends ListQuery {
    feed_id?: string;
    status?: OsintImport['status'];
}

export interface PrevalenceFilters extends ListQuery {
    technique_id?: string;
    min_prevalence?: number;
}

export interface ImportCounts {
    added: number;
    updated: number;
    unchanged: number;
    removed: number;
    rejected: number;
}

export type PrevalenceRow = Prevalence & { computed_at: Date };


interface ActorCandidate {
    id: string;
    source: string;
    mitre_id: string | null;
    stix_id: string | null;
    name: string;
    aliases: string[];
    revoked: boolean;
}


const internals = {
    context: (id: string) => `osint-feed:${id}`,
    importColumns: ['id', 'feed_id', 'trigger', 'status', 'source', 'added', 'updated', 'unchanged', 'removed', 'rejected', 'error', 'started_at', 'finished_at', 'requested_by', 'created_at', 'updated_at'],

    parsers: {
        misp_galaxy: parseMispGalaxy,
        stix_bundle: parseStixBundle,
        taxii_collection: parseStixBundle
    } as Record<OsintFeedKind, (document: unknown) => FeedContent>,

    // The provenance tables, written by the ATT&CK import's bulk upsert: an unchanged fact is not rewritten. first_seen
    // is the first import's; last_seen is the feed's own date when it gives one (then compared), else the import's
    // time, rewritten only with a changed fact (a re-import that finds nothing new writes nothing).
    actorSpec: (dated: boolean): TableSpec => ({
        table: 'osint_actor_facts',
        conflict: 'key',
        columns: [
            { name: 'key', type: 'text' }, { name: 'feed_id', type: 'uuid' }, { name: 'item_id', type: 'text' }, { name: 'threat_actor_id', type: 'uuid' },
            { name: 'name', type: 'text' }, { name: 'aliases', type: 'text[]' }, { name: 'mitre_id', type: 'text' }, { name: 'country', type: 'text' },
            { name: 'description', type: 'text' }, { name: 'first_seen', type: 'timestamptz' }, { name: 'last_seen', type: 'timestamptz' }, { name: 'removed_at', type: 'timestamptz' }
        ],
        insertOnly: ['first_seen', 'feed_id', 'item_id'],
        uncompared: dated ? [] : ['last_seen'],
        guard: 'osint_actor_facts.feed_id = excluded.feed_id'
    }),

    techniqueSpec: (dated: boolean): TableSpec => ({
        table: 'osint_technique_facts',
        conflict: 'key',
        columns: [
            { name: 'key', type: 'text' }, { name: 'feed_id', type: 'uuid' }, { name: 'item_id', type: 'text' }, { name: 'threat_actor_id', type: 'uuid' },
            { name: 'technique_id', type: 'text' }, { name: 'description', type: 'text' },
            { name: 'first_seen', type: 'timestamptz' }, { name: 'last_seen', type: 'timestamptz' }, { name: 'removed_at', type: 'timestamptz' }
        ],
        insertOnly: ['first_seen', 'feed_id', 'item_id'],
        uncompared: dated ? [] : ['last_seen'],
        guard: 'osint_technique_facts.feed_id = excluded.feed_id'
    }),

    lower: (value: string) => value.trim().toLowerCase(),

    // The actor a feed's item is: the one it already was, the ATT&CK group it names, the object whose STIX id it
    // has, an actor of the same name or alias (an ATT&CK group first, an exact name before an alias), or none yet
    resolver: (candidates: ActorCandidate[], known: Map<string, string>) => {

        const rank = (candidate: ActorCandidate) => (candidate.source === 'mitre' ? 0 : 1) + (candidate.revoked ? 2 : 0);
        const sorted = [...candidates].sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : 1));
        const groups = new Map<string, string>();
        const byMitre = new Map<string, string>();
        const byStix = new Map<string, string>();
        const byName = new Map<string, string>();
        const byAlias = new Map<string, string>();
        for (const candidate of sorted) {
            if (candidate.mitre_id && !byMitre.has(candidate.mitre_id)) {
                byMitre.set(candidate.mitre_id, candidate.id);
                if (candidate.source === 'mitre' && !candidate.revoked) {
                    groups.set(candidate.mitre_id, candidate.id);
                }
            }

            if (candidate.stix_id) {
                byStix.set(candidate.stix_id, candidate.id);
            }

            if (!byName.has(internals.lower(candidate.name))) {
                byName.set(internals.lower(candidate.name), candidate.id);
            }

            for (const alias of candidate.aliases) {
                if (!byAlias.has(internals.lower(alias))) {
                    byAlias.set(internals.lower(alias), candidate.id);
                }
            }
        }

        return (item: FeedActor): string | null => {

            // The ATT&CK group first, even over the actor the item was until now: an ATT&CK import that came after
            // the feed's first import brings the group the feed had to create an actor for
            const names = [item.name, ...item.aliases].map(internals.lower);
            return (item.mitre_id ? groups.get(item.mitre_id) : undefined) ??
                known.get(item.item_id) ??
                (item.mitre_id ? byMitre.get(item.mitre_id) : undefined) ??
                (item.stix_id ? byStix.get(item.stix_id) : undefined) ??
                names.map((name) => byName.get(name)).find(Boolean) ??
                names.map((name) => byAlias.get(name)).find(Boolean) ??
                null;
        };
    },

    outboundMessage: (err: unknown): string => (err instanceof OutboundError ? err.message : 'the URL could not be checked'),

    // What the audit rows say of a feed: never its credential
    shown: (feed: OsintFeed) => ({ name: feed.name, kind: feed.kind, url: feed.url, file_path: feed.file_path, collection: feed.collection, auth_type: feed.auth_type })
};


// OSINT threat-intelligence feeds (issue 14, docs/osint.md): feeds of threat actors and the techniques they use, read
// in the worker (`osint.import`), merged with the actors Aegis has (never duplicated), every fact kept with its
// provenance, and the prevalence per technique that the risk recompute reads.
export class OsintService {

    private readonly box: SecretBox;
    private readonly reader: FeedReader;

    readonly feedDir: string;

    constructor(private readonly deps: { knex: Knex; audit: AuditService; outbound: OutboundHttp; queue: Queue; secretKey: Buffer; feedDir?: string | undefined }) {

        this.box = new SecretBox(deps.secretKey);
        this.feedDir = deps.feedDir ?? Path.join(Os.tmpdir(), 'aegis-feeds');
        this.reader = new FeedReader({ outbound: deps.outbound, feedDir: this.feedDir });
    }

    // ---- feeds

    listFeeds(actor: Actor, filters: OsintFeedFilters): Promise<Page<OsintFeed>> {

        const query = OsintFeed.query(this.deps.knex);
        if (filters.kind) {
            query.where('kind', filters.kind);
        }

        if (filters.enabled !== undefined) {
            query.where('enabled', filters.enabled);
        }

        if (filters.search) {
            query.whereILike('name', likePattern(filters.search));
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async getFeed(actor: Actor, id: string): Promise<OsintFeed> {

        const feed = await OsintFeed.query(this.deps.knex).findById(id);
        if (!feed) {
            throw new NotFoundError('Feed');
        }

        return feed;
    }

    async createFeed(actor: Actor, input: OsintFeedCreate, options: ChangeOptions = {}): Promise<OsintFeed> {

        const id = Crypto.randomUUID();
        const fields = await this.checked({ auth_type: 'none', enabled: true, ...input }, id);
        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const feed = await this.named(OsintFeed.insertReturning(trx, { id, ...fields, created_by: actor.id }), input.name);
            await this.deps.audit.record(trx, actor, { action: 'osint.feed.create', entity_type: 'osint_feed', entity_id: id, details: internals.shown(feed) });
            return feed;
        });
    }

    async updateFeed(actor: Actor, id: string, input: OsintFeedUpdate, options: ChangeOptions = {}): Promise<OsintFeed> {

        const { updated: result, toggled } = await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const feed = await lockOr404(OsintFeed.query(trx).findById(id), 'Feed');
            const current: OsintFeedCreate = {
                name: feed.name, kind: feed.kind, url: feed.url, file_path: feed.file_path, collection: feed.collection, auth_type: feed.auth_type,
                username: feed.username, api_key_header: feed.api_key_header, cron: feed.cron, interval_minutes: feed.interval_minutes, enabled: feed.enabled
            };

            // Giving a location, a schedule or a kind of credential replaces the other one
            const merged: OsintFeedCreate = {
                ...current, ...input,
                ...(input.url ? { file_path: null } : {}), ...(input.file_path ? { url: null } : {}),
                ...(input.cron ? { interval_minutes: null } : {}), ...(input.interval_minutes ? { cron: null } : {})
            };
            if (input.auth_type && input.auth_type !== feed.auth_type) {
                Object.assign(merged, { username: input.username ?? null, api_key_header: input.api_key_header ?? null });
            }

            const keepsSecret = input.secret === undefined && merged.auth_type === feed.auth_type && feed.auth_type !== 'none';
            const fields = await this.checked(merged, id, keepsSecret);
            if (keepsSecret) {
                for (const column of ['secret_ciphertext', 'secret_iv', 'secret_tag', 'secret_key_id'] as const) {
                    delete (fields as Record<string, unknown>)[column];
                }
            }

            const scheduleChanged = input.cron !== undefined || input.interval_minutes !== undefined || input.enabled !== undefined;
            if (!scheduleChanged) {
                delete (fields as Record<string, unknown>).next_run_at;
            }

            // A feed switched on or off counts, or no longer counts, in prevalence (read before the patch, which sets the instance)
            const switched = input.enabled !== undefined && input.enabled !== feed.enabled;
            const updated = await this.named(feed.$patchReturning(trx, fields), merged.name);
            await this.deps.audit.record(trx, actor, { action: 'osint.feed.update', entity_type: 'osint_feed', entity_id: id, details: { fields: Object.keys(input).sort() } });
            if (switched) {
                await this.recomputePrevalence(trx);
            }

            return { updated, toggled: switched };
        });

        if (toggled) {
            await this.requestRisk(actor);
        }

        return result;
    }

    // The feed, its import history and every fact it reported go; the actors it created stay (campaigns may name
    // them), and prevalence and risk are recomputed without it
    async removeFeed(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        const changed = await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const feed = await lockOr404(OsintFeed.query(trx).findById(id), 'Feed');
            await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.osintImport]);
            const facts = await trx('osint_technique_facts').where('feed_id', id).count({ count: '*' }).first();
            await feed.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'osint.feed.delete', entity_type: 'osint_feed', entity_id: id, details: internals.shown(feed) });
            if (Number(facts?.count ?? 0)) {
                await this.recomputePrevalence(trx);
                return true;
            }

            return false;
        });

        if (changed) {
            await this.requestRisk(actor);
        }
    }

    // POST /osint/feeds/{id}/run: a queued import, run by the worker
    async runFeed(actor: Actor, id: string, options: ChangeOptions = {}): Promise<OsintImport> {

        const created = await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const feed = await lockOr404(OsintFeed.query(trx).findById(id), 'Feed');
            if (!feed.enabled) {
                throw new ConflictError('The feed is disabled: enable it (PATCH enabled: true) before running it', 'osint_feed_disabled');
            }

            const running = await OsintImport.query(trx).where('feed_id', id).whereIn('status', ['queued', 'running']).first();
            if (running) {
                throw new ConflictError('An import of this feed is already queued or running: follow it in GET /osint/imports/{id}', 'osint_import_running', { import_id: running.id });
            }

            const record = await OsintImport.insertReturning(trx, { feed_id: id, trigger: 'manual', status: 'queued', requested_by: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'osint.feed.run', entity_type: 'osint_feed', entity_id: id, details: { import_id: record.id } });
            return record;
        });

        await this.deps.queue.enqueue('osint.import', { import_id: created.id });
        return created;
    }

    // Every minute (`osint.schedules`): the enabled feeds whose time has come get a queued import, and their next time
    async tick(actor: Actor, now = new Date()): Promise<number> {

        const queued = await this.deps.knex.transaction(async (trx) => {

            const due = await OsintFeed.query(trx).where('enabled', true).where('next_run_at', '<=', now).orderBy('next_run_at').limit(100).forUpdate().skipLocked();
            const records: string[] = [];
            for (const feed of due) {
                await feed.$query(trx).patch({ next_run_at: this.nextRun(feed, now) });
                const busy = await OsintImport.query(trx).where('feed_id', feed.id).whereIn('status', ['queued', 'running']).first();
                if (!busy) {
                    records.push((await OsintImport.insertReturning(trx, { feed_id: feed.id, trigger: 'schedule', status: 'queued', requested_by: actor.id })).id);
                }
            }

            return records;
        });

        for (const id of queued) {
            await this.deps.queue.enqueue('osint.import', { import_id: id });
        }

        return queued.length;
    }

    // ---- imports

    listImports(actor: Actor, filters: OsintImportFilters): Promise<Page<OsintImport>> {

        const query = OsintImport.query(this.deps.knex).select(internals.importColumns.map((column) => `osint_imports.${column}`));
        if (filters.feed_id) {
            query.where('feed_id', filters.feed_id);
        }

        if (filters.status) {
            query.where('status', filters.status);
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async getImport(actor: Actor, id: string): Promise<OsintImport> {

        const record = await OsintImport.query(this.deps.knex).findById(id);
        if (!record) {
            throw new NotFoundError('Import');
        }

        return record;
    }

    // The worker's `osint.import`: read the feed, map it, write the facts in one transaction, record the run. A feed
    // that cannot be read or is not of its kind fails the run with the reason (nothing written); a malformed item is
    // rejected and the others imported.
    async runImport(actor: Actor, importId: string, options: { now?: Date } = {}): Promise<OsintImport> {

        const now = options.now ?? new Date();
        const record = await OsintImport.query(this.deps.knex).findById(importId);
        if (!record || record.status === 'succeeded' || record.status === 'failed') {
            throw new NotFoundError('Queued import');
        }

        const feed = await OsintFeed.query(this.deps.knex).findById(record.feed_id);
        if (!feed) {
            throw new NotFoundError('Feed');
        }

        await record.$query(this.deps.knex).patch({ status: 'running', started_at: now });
        await feed.$query(this.deps.knex).patch({ last_run_at: now });
        let content: FeedContent;
        let source: string;
        try {
            const read = await this.reader.read(feed, this.credential(feed));
            source = read.source;
            content = internals.parsers[feed.kind](read.document);
        }
        catch (err) {
            if (!(err instanceof FeedReadError) && !(err instanceof FeedFormatError)) {
                await record.$query(this.deps.knex).patch({ status: 'failed', error: 'The feed could not be read', finished_at: new Date() });
                throw err;
            }

            const message = err instanceof FeedFormatError ? `The feed ${err.message}` : err.message;
            return await record.$query(this.deps.knex).patch({ status: 'failed', error: message.slice(0, 2000), finished_at: new Date() }).returning('*') as unknown as OsintImport;
        }

        try {
            const { counts, written } = await this.deps.knex.transaction(async (trx) => {

                await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.osintImport]);
                const current = await OsintFeed.query(trx).findById(feed.id).forUpdate();
                if (!current) {
                    throw new NotFoundError('Feed');
                }

                const result = await this.write(trx, feed, content, now);
                const changed = result.counts.added + result.counts.updated + result.counts.removed;
                if (changed) {
                    await this.recomputePrevalence(trx, now);
                }

                await record.$query(trx).patch({
                    status: 'succeeded', source, ...result.counts, rejections: result.rejections, finished_at: new Date()
                });
                await current.$query(trx).patch({ last_succeeded_at: now });
                await this.deps.audit.record(trx, actor, { action: 'osint.import', entity_type: 'osint_feed', entity_id: feed.id, details: { import_id: record.id, source, ...result.counts } });
                return result;
            });

            await analyzeChanged(this.deps.knex, written);
            if (counts.added + counts.updated + counts.removed) {
                await this.requestRisk(actor);
            }

            return await this.getImport(actor, record.id);
        }
        catch (err) {
            await record.$query(this.deps.knex).patch({ status: 'failed', error: String((err as Error).message).slice(0, 2000), finished_at: new Date() }).catch(() => undefined);
            throw err;
        }
    }

    // ---- prevalence

    async listPrevalence(actor: Actor, filters: PrevalenceFilters): Promise<Page<PrevalenceRow>> {

        const filtered = this.deps.knex('osint_technique_prevalence as p');
        if (filters.technique_id) {
            filtered.where('p.technique_id', filters.technique_id);
        }

        if (filters.min_prevalence !== undefined) {
            filtered.where('p.prevalence', '>=', filters.min_prevalence);
        }

        const sort = filters.sort ?? 'prevalence';
        const order = filters.order ?? (sort === 'technique_id' ? 'asc' : 'desc');
        const items = filtered.clone().select('p.*').orderBy([{ column: `p.${sort}`, order }, { column: 'p.technique_id', order: 'asc' }]);
        const result = await pageOfQuery<PrevalenceRow>(this.deps.knex, items, filtered.clone().select('p.technique_id'), filters);
        return result;
    }

    // The whole table from the active facts of the enabled feeds, a sub-technique's reports counting for its parent too
    async recomputePrevalence(trx: Knex.Transaction, now = new Date()): Promise<number> {

        const facts: { technique_id: string; parent_id: string | null; threat_actor_id: string; feed_id: string; last_seen: Date }[] = await trx('osint_technique_facts as f')
            .join('osint_feeds as feed', 'feed.id', 'f.feed_id')
            .join('techniques as t', 't.mitre_id', 'f.technique_id')
            .join('threat_actors as a', 'a.id', 'f.threat_actor_id')
            .whereNull('f.removed_at').where('feed.enabled', true).where('a.revoked', false)
            .select('f.technique_id', 't.parent_id', 'f.threat_actor_id', 'f.feed_id', 'f.last_seen');

        const expanded = facts.flatMap((fact) => [fact, ...(fact.parent_id ? [{ ...fact, technique_id: fact.parent_id }] : [])]);
        const rows = prevalenceOf(expanded, now).map((row) => ({ ...row, computed_at: now }));
        await trx('osint_technique_prevalence').delete();
        for (let i = 0; i < rows.length; i += 1000) {
            await trx('osint_technique_prevalence').insert(rows.slice(i, i + 1000));
        }

        return rows.length;
    }

    // ---- internals

    // The facts of one read, in the import's transaction
    private async write(trx: Knex.Transaction, feed: OsintFeed, content: FeedContent, now: Date): Promise<{ counts: ImportCounts; rejections: OsintRejection[]; written: Record<string, WriteCounts> }> {

        const rejections = [...content.rejections];
        let rejected = content.rejected;
        const reject = (item: string, reason: string) => {

            ++rejected;
            if (rejections.length < rejectionCap) {
                rejections.push({ item, reason });
            }
        };

        const key = (itemId: string) => `${feed.id}/${itemId}`;
        const known = new Map<string, string>((await trx('osint_actor_facts').where('feed_id', feed.id).select('item_id', 'threat_actor_id'))
            .map((row: { item_id: string; threat_actor_id: string }) => [row.item_id, row.threat_actor_id]));

        // The actors the items may be
        const names = [...new Set(content.actors.flatMap((item) => [item.name, ...item.aliases].map(internals.lower)))];
        const groups = [...new Set(content.actors.map((item) => item.mitre_id).filter((id): id is string => id !== null))];
        const stixIds = content.actors.map((item) => item.stix_id).filter((id): id is string => id !== null);
        const candidates: ActorCandidate[] = names.length ? await trx('threat_actors')
            .where((query) => query.whereIn('mitre_id', groups).orWhereIn('stix_id', stixIds)
                .orWhereRaw('lower(name) = any(?::text[])', [names])
                .orWhereRaw('exists (select 1 from unnest(aliases) as alias where lower(alias) = any(?::text[]))', [names]))
            .select('id', 'source', 'mitre_id', 'stix_id', 'name', 'aliases', 'revoked') : [];
        const resolve = internals.resolver(candidates, known);

        // The items no actor is yet: one new actor per name (two items of the same name are one actor)
        const actorOf = new Map<string, string>();
        const created = new Map<string, FeedActor>();
        const replaced = new Set<string>();
        for (const item of content.actors) {
            const id = resolve(item);
            const before = known.get(item.item_id);
            if (before && id !== before) {
                replaced.add(before);
            }

            if (id) {
                actorOf.set(item.item_id, id);
            }
            else if (!created.has(internals.lower(item.name))) {
                created.set(internals.lower(item.name), item);
            }
        }

        if (created.size) {
            const inserted: { id: string; name: string }[] = await trx('threat_actors').insert([...created.values()].map((item) => ({
                source: feed.kind === 'misp_galaxy' ? 'misp' : 'osint',
                name: item.name,
                aliases: item.aliases,
                description: item.description,
                country: item.country,
                references: JSON.stringify([{ source_name: feed.name, external_id: item.item_id }]),
                tracked: false
            }))).returning(['id', 'name']);
            const byName = new Map(inserted.map((row) => [internals.lower(row.name), row.id]));
            for (const item of content.actors) {
                if (!actorOf.has(item.item_id)) {
                    actorOf.set(item.item_id, byName.get(internals.lower(item.name))!);
                }
            }
        }

        const dated = feed.kind !== 'misp_galaxy';
        const actorRows = content.actors.map((item) => ({
            key: key(item.item_id), feed_id: feed.id, item_id: item.item_id, threat_actor_id: actorOf.get(item.item_id),
            name: item.name, aliases: item.aliases, mitre_id: item.mitre_id, country: item.country, description: item.description,
            first_seen: item.last_seen ?? now, last_seen: item.last_seen ?? now, removed_at: null
        }));

        // Technique usage: the technique by ATT&CK id or by STIX id, among those Aegis has
        const techniqueIds = new Set<string>();
        const techniqueStix = new Map<string, string>();
        const wantedIds = content.usages.map((usage) => usage.technique.mitre_id).filter((id): id is string => id !== null);
        const wantedStix = content.usages.map((usage) => usage.technique.stix_id).filter((id): id is string => id !== null);
        if (content.usages.length) {
            const rows: { mitre_id: string; stix_id: string | null }[] = await trx('techniques').where((query) => query.whereIn('mitre_id', wantedIds).orWhereIn('stix_id', wantedStix)).select('mitre_id', 'stix_id');
            for (const row of rows) {
                techniqueIds.add(row.mitre_id);
                if (row.stix_id) {
                    techniqueStix.set(row.stix_id, row.mitre_id);
                }
            }
        }

        const usageRows: Record<string, unknown>[] = [];
        const seenPairs = new Set<string>();
        const techniqueOf = (usage: FeedUsage) => (usage.technique.mitre_id && techniqueIds.has(usage.technique.mitre_id) ? usage.technique.mitre_id : usage.technique.stix_id ? techniqueStix.get(usage.technique.stix_id) : undefined);
        for (const usage of content.usages) {
            const techniqueId = techniqueOf(usage);
            if (!techniqueId) {
                if (usage.strict) {
                    reject(usage.item_id, `names a technique Aegis does not know (${usage.technique.mitre_id ?? usage.technique.stix_id}): import ATT&CK first, or the feed is newer than it`);
                }

                continue;
            }

            const threatActorId = actorOf.get(usage.actor_item_id)!;
            if (seenPairs.has(`${threatActorId}/${techniqueId}/${usage.item_id}`)) {
                continue;
            }

            seenPairs.add(`${threatActorId}/${techniqueId}/${usage.item_id}`);
            usageRows.push({
                key: key(usage.item_id), feed_id: feed.id, item_id: usage.item_id, threat_actor_id: threatActorId, technique_id: techniqueId,
                description: usage.description, first_seen: usage.last_seen ?? now, last_seen: usage.last_seen ?? now, removed_at: null
            });
        }

        const written = {
            osint_actor_facts: await upsertRows(trx, internals.actorSpec(dated), actorRows),
            osint_technique_facts: await upsertRows(trx, internals.techniqueSpec(dated), usageRows)
        };

        // What the feed no longer reports is marked removed, never deleted nor kept as current
        let removed = 0;
        for (const [table, rows] of [['osint_actor_facts', actorRows], ['osint_technique_facts', usageRows]] as const) {
            removed += await trx(table).where('feed_id', feed.id).whereNull('removed_at')
                .whereRaw('not (key = any(?::text[]))', [rows.map((row) => row.key as string)])
                .update({ removed_at: now, updated_at: now });
        }

        // An actor this feed created and now knows to be an ATT&CK group goes, when nothing else names it
        if (replaced.size) {
            await trx('threat_actors as a').whereIn('a.id', [...replaced]).whereIn('a.source', ['misp', 'osint']).whereNull('a.created_by')
                .whereNotExists(trx('osint_actor_facts as f').whereRaw('f.threat_actor_id = a.id'))
                .whereNotExists(trx('osint_technique_facts as f').whereRaw('f.threat_actor_id = a.id'))
                .whereNotExists(trx('campaigns as c').whereRaw('c.threat_actor_id = a.id'))
                .whereNotExists(trx('threat_actor_techniques as t').whereRaw('t.threat_actor_id = a.id'))
                .delete();
        }

        const total = actorRows.length + usageRows.length;
        const added = written.osint_actor_facts.inserted + written.osint_technique_facts.inserted;
        const updated = written.osint_actor_facts.updated + written.osint_technique_facts.updated;
        const counts = { added, updated, unchanged: total - added - updated, removed, rejected };
        return { counts, rejections, written: { ...written, threat_actors: { inserted: created.size, updated: 0, deleted: 0 } } };
    }

    // Validates and normalises a feed's fields; answers the columns to write
    private async checked(input: OsintFeedCreate, id: string, keepsSecret = false): Promise<Partial<OsintFeed>> {

        const kind = input.kind;
        const url = input.url ?? null;
        const filePath = input.file_path ?? null;
        if ((url === null) === (filePath === null)) {
            throw new ValidationError('Give one of "url" (fetched through the outbound client) or "file_path" (a file under OSINT_FEED_DIR)', ['url', 'file_path'], 'osint_feed_location');
        }

        if (kind === 'taxii_collection' && (url === null || !input.collection)) {
            throw new ValidationError('A TAXII 2.1 feed needs "url" (its discovery endpoint or API root) and "collection" (the collection\'s id or title)', ['url', 'collection'], 'osint_feed_taxii');
        }

        if (kind !== 'taxii_collection' && input.collection) {
            throw new ValidationError('"collection" is for TAXII 2.1 feeds only', ['collection'], 'osint_feed_collection');
        }

        let checkedUrl: string | null = null;
        if (url !== null) {
            try {
                checkedUrl = await this.deps.outbound.check(url);
            }
            catch (err) {
                throw new ValidationError(`"url" is refused: ${internals.outboundMessage(err)}. An internal server must be added to OUTBOUND_ALLOW_HOSTS by the operator`, ['url'], 'url_not_allowed');
            }
        }

        if (filePath !== null && !confinedPath(this.feedDir, filePath)) {
            throw new ValidationError('"file_path" must name a file inside the feed directory (OSINT_FEED_DIR), given relative to it, without ".."', ['file_path'], 'path_outside_feed_dir');
        }

        const authType = input.auth_type ?? 'none';
        if (authType !== 'none' && url === null) {
            throw new ValidationError('Credentials are for a feed read by URL', ['auth_type'], 'osint_feed_credentials');
        }

        if (authType === 'basic' && !input.username) {
            throw new ValidationError('Basic authentication needs "username" and "secret" (the password)', ['username'], 'osint_feed_credentials');
        }

        if (authType !== 'none' && !keepsSecret && !input.secret) {
            throw new ValidationError(`"secret" is required with auth_type ${authType} (${authType === 'basic' ? 'the password' : 'the API key'})`, ['secret'], 'osint_feed_credentials');
        }

        if (authType === 'none' && input.secret) {
            throw new ValidationError('"secret" needs auth_type basic or api_key', ['secret'], 'osint_feed_credentials');
        }

        if (input.cron && input.interval_minutes) {
            throw new ValidationError('Give one of "cron" and "interval_minutes", not both', ['cron', 'interval_minutes'], 'osint_feed_schedule');
        }

        const schedule = { cron: input.cron ?? null, interval_minutes: input.interval_minutes ?? null };
        let nextRun: Date | null;
        try {
            nextRun = input.enabled === false ? null : this.nextRun(schedule, new Date());
        }
        catch (err) {
            throw new ValidationError(`"cron" is not a valid cron expression (five fields, UTC): ${(err as Error).message}`, ['cron'], 'osint_feed_schedule');
        }

        const sealed = authType !== 'none' && input.secret ? this.box.seal(internals.context(id), input.secret) : null;
        return {
            name: input.name,
            kind,
            url: checkedUrl,
            file_path: filePath,
            collection: kind === 'taxii_collection' ? input.collection! : null,
            auth_type: authType,
            username: authType === 'basic' ? input.username! : null,
            api_key_header: authType === 'api_key' ? input.api_key_header || 'Authorization' : null,
            secret_ciphertext: sealed?.ciphertext ?? null,
            secret_iv: sealed?.iv ?? null,
            secret_tag: sealed?.tag ?? null,
            secret_key_id: sealed?.key_id ?? null,
            ...schedule,
            enabled: input.enabled ?? true,
            next_run_at: nextRun
        };
    }

    private nextRun(schedule: Pick<OsintFeed, 'cron' | 'interval_minutes'>, after: Date): Date | null {

        if (schedule.cron) {
            return CronExpressionParser.parse(schedule.cron, { currentDate: after, tz: 'UTC' }).next().toDate();
        }

        return schedule.interval_minutes ? new Date(after.getTime() + schedule.interval_minutes * 60_000) : null;
    }

    private credential(feed: OsintFeed): FeedCredential {

        if (feed.auth_type === 'none' || !feed.secret_ciphertext) {
            return { headers: {} };
        }

        const secret = this.box.open(internals.context(feed.id), { ciphertext: feed.secret_ciphertext, iv: feed.secret_iv!, tag: feed.secret_tag!, key_id: feed.secret_key_id! });
        if (secret === undefined) {
            throw new FeedReadError('The feed\'s credential cannot be opened (AEGIS_SECRET_KEY changed): set it again with PATCH secret');
        }

        return feed.auth_type === 'basic' ?
            { headers: { authorization: `Basic ${Buffer.from(`${feed.username}:${secret}`).toString('base64')}` } } :
            { headers: { [feed.api_key_header!.toLowerCase()]: secret } };
    }

    // One risk recompute for a burst of imports and feed changes: 5 s after the last, at most a minute after the first
    private async requestRisk(actor: Actor): Promise<void> {

        await this.deps.queue.enqueueDebounced('risk-recompute', { reason: 'osint', requested_by: actor.id }, { key: 'osint', debounceMs: 5_000, maxWaitMs: 60_000 });
    }

    private async named<T>(write: PromiseLike<T>, name: string): Promise<T> {

        try {
            return await write;
        }
        catch (err) {
            if (err instanceof UniqueViolationError) {
                throw new ConflictError(`A feed named "${name}" exists already: choose another name`, 'osint_feed_name_taken');
            }

            throw err;
        }
    }
}
