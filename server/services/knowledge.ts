import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { Lesson, Playbook, PlaybookVersion, lessonSeverities, playbookTypes, type LessonSeverity, type LessonStatus, type PlaybookType } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import { likePattern, page, type ListQuery, type Page } from './lists';
import { knownTechniques } from './technique-refs';
import type { TestsService } from './tests';


export interface PlaybookContent {
    title: string;
    type: PlaybookType;
    technique_ids: string[];
    body: string;
    tags: string[];
}

export type PlaybookCreate = Pick<PlaybookContent, 'title' | 'type'> & Partial<PlaybookContent>;

// `version`: the version the client edited; when given and no longer the latest, the update is refused (409)
export type PlaybookUpdate = Partial<PlaybookContent> & { version?: number };

export interface PlaybookFilters extends ListQuery {
    technique_id?: string;
    type?: PlaybookType;
    tag?: string;
    search?: string;
}

export interface LessonFields {
    title?: string;
    severity?: LessonSeverity;
    status?: LessonStatus;
    technique_id?: string | null;
    campaign_id?: string | null;
    test_id?: string | null;
    body?: string;
}

export type LessonCreate = LessonFields & { title: string; severity: LessonSeverity };

export interface LessonFilters extends ListQuery {
    severity?: LessonSeverity;
    status?: LessonStatus;
    technique_id?: string;
    campaign_id?: string;
    test_id?: string;
    search?: string;
}

export type VersionSummary = Pick<PlaybookVersion, 'version' | 'title' | 'author_id' | 'restored_from' | 'created_at'>;
export type PlaybookView = Playbook & { versions: VersionSummary[] };

export interface KnowledgeStats {
    playbooks_by_type: Record<PlaybookType, number>;
    lessons_by_severity: Record<LessonSeverity, number>;
    techniques_without_playbook: { total: number; items: { mitre_id: string; name: string }[] };
}


const internals = {
    // How many of the newest versions a playbook's detail lists (`/versions` pages through all of them)
    versionsShown: 50,

    // How many techniques without a playbook the stats name (the total counts them all)
    uncoveredSample: 100,

    content: (source: PlaybookContent): PlaybookContent => ({ title: source.title, type: source.type, technique_ids: source.technique_ids, body: source.body, tags: source.tags }),

    zeroes: <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>
};


// Playbooks keep every version whole and immutable; lessons learned are as visible as the test they were drawn from.
export class KnowledgeService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; tests: TestsService }) { }

    listPlaybooks(actor: Actor, filters: PlaybookFilters): Promise<Page<Playbook>> {

        const query = Playbook.query(this.deps.knex);
        if (filters.technique_id) {
            query.whereRaw('technique_ids @> ?::text[]', [[filters.technique_id]]);
        }

        if (filters.tag) {
            query.whereRaw('tags @> ?::text[]', [[filters.tag]]);
        }

        if (filters.type) {
            query.where('type', filters.type);
        }

        if (filters.search) {
            query.where((q) => q.where('title', 'ilike', likePattern(filters.search!)).orWhere('body', 'ilike', likePattern(filters.search!)));
        }

        return page(query, filters, { sort: 'updated_at', order: 'desc' });
    }

    async getPlaybook(actor: Actor, id: string, db: Knex | Knex.Transaction = this.deps.knex): Promise<PlaybookView> {

        const playbook = await Playbook.query(db).findById(id);
        if (!playbook) {
            throw new NotFoundError('Playbook');
        }

        const versions = await PlaybookVersion.query(db).where('playbook_id', id).orderBy('version', 'desc').limit(internals.versionsShown).select('version', 'title', 'author_id', 'restored_from', 'created_at');
        return Object.assign(playbook, { versions: versions.map((row) => ({ version: row.version, title: row.title, author_id: row.author_id, restored_from: row.restored_from, created_at: row.created_at })) });
    }

    async versions(actor: Actor, id: string, list: ListQuery): Promise<Page<PlaybookVersion>> {

        if (!await Playbook.query(this.deps.knex).findById(id).select('id')) {
            throw new NotFoundError('Playbook');
        }

        return await page(PlaybookVersion.query(this.deps.knex).where('playbook_id', id), list, { sort: 'version', order: 'desc' });
    }

    createPlaybook(actor: Actor, input: PlaybookCreate, options: ChangeOptions = {}): Promise<PlaybookView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const content: PlaybookContent = { technique_ids: [], body: '', tags: [], ...input };
            await knownTechniques(trx, content.technique_ids, 'technique_ids');
            const playbook = await Playbook.insertReturning(trx, { ...content, version: 1, created_by: actor.id, updated_by: actor.id });
            await PlaybookVersion.query(trx).insert({ ...content, playbook_id: playbook.id, version: 1, author_id: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'playbook.create', entity_type: 'playbook', entity_id: playbook.id, details: { type: content.type, version: 1 } });
            return await this.getPlaybook(actor, playbook.id, trx);
        });
    }

    // Concurrent updates serialise on the playbook row; each writes the next version. A client that sends the
    // version it edited is refused (409 stale_version) when another update came first.
    updatePlaybook(actor: Actor, id: string, input: PlaybookUpdate, options: ChangeOptions = {}): Promise<PlaybookView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const playbook = await lockOr404(Playbook.query(trx).findById(id), 'Playbook');
            const { version: expected, ...changes } = input;
            if (!Object.keys(changes).length) {
                throw new ValidationError('Nothing to change: send at least one of title, type, technique_ids, body, tags', ['title', 'type', 'technique_ids', 'body', 'tags']);
            }

            this.checkVersion(playbook, expected);
            if (changes.technique_ids) {
                await knownTechniques(trx, changes.technique_ids, 'technique_ids');
            }

            const written = await this.writeVersion(trx, actor, playbook, { ...internals.content(playbook), ...changes }, null);
            await this.deps.audit.record(trx, actor, { action: 'playbook.update', entity_type: 'playbook', entity_id: id, details: { fields: Object.keys(changes), version: written } });
            return await this.getPlaybook(actor, id, trx);
        });
    }

    // The old content becomes the newest version; history is never rewritten
    restorePlaybook(actor: Actor, id: string, version: number, input: { version?: number }, options: ChangeOptions = {}): Promise<PlaybookView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const playbook = await lockOr404(Playbook.query(trx).findById(id), 'Playbook');
            this.checkVersion(playbook, input.version);
            const old = await PlaybookVersion.query(trx).where({ playbook_id: id, version }).first();
            if (!old) {
                throw new NotFoundError('Playbook version');
            }

            const written = await this.writeVersion(trx, actor, playbook, internals.content(old), version);
            await this.deps.audit.record(trx, actor, { action: 'playbook.restore', entity_type: 'playbook', entity_id: id, details: { restored_from: version, version: written } });
            return await this.getPlaybook(actor, id, trx);
        });
    }

    removePlaybook(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const playbook = await lockOr404(Playbook.query(trx).findById(id), 'Playbook');
            await playbook.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'playbook.delete', entity_type: 'playbook', entity_id: id, details: { title: playbook.title, versions: playbook.version } });
        });
    }

    listLessons(actor: Actor, filters: LessonFilters): Promise<Page<Lesson>> {

        const query = Lesson.query(this.deps.knex).modify('visibleTo', actor);
        for (const field of ['severity', 'status', 'technique_id', 'campaign_id', 'test_id'] as const) {
            if (filters[field]) {
                query.where(`lessons.${field}`, filters[field]);
            }
        }

        if (filters.search) {
            query.where((q) => q.where('lessons.title', 'ilike', likePattern(filters.search!)).orWhere('lessons.body', 'ilike', likePattern(filters.search!)));
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async getLesson(actor: Actor, id: string): Promise<Lesson> {

        const lesson = await Lesson.query(this.deps.knex).findById(id).modify('visibleTo', actor);
        if (!lesson) {
            throw new NotFoundError('Lesson');
        }

        return lesson;
    }

    createLesson(actor: Actor, input: LessonCreate, options: ChangeOptions = {}): Promise<Lesson> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            await this.checkLessonRefs(trx, actor, input);
            const lesson = await Lesson.insertReturning(trx, { ...input, body: input.body ?? '', created_by: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'lesson.create', entity_type: 'lesson', entity_id: lesson.id, details: { severity: lesson.severity, test_id: lesson.test_id } });
            return lesson;
        });
    }

    updateLesson(actor: Actor, id: string, input: LessonFields, options: ChangeOptions = {}): Promise<Lesson> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const lesson = await lockOr404(Lesson.query(trx).findById(id).modify('visibleTo', actor), 'Lesson');
            await this.checkLessonRefs(trx, actor, input);
            const updated = await lesson.$patchReturning(trx, input);
            await this.deps.audit.record(trx, actor, { action: 'lesson.update', entity_type: 'lesson', entity_id: id, details: { fields: Object.keys(input) } });
            return updated;
        });
    }

    removeLesson(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const lesson = await lockOr404(Lesson.query(trx).findById(id).modify('visibleTo', actor), 'Lesson');
            await lesson.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'lesson.delete', entity_type: 'lesson', entity_id: id, details: { title: lesson.title } });
        });
    }

    async stats(actor: Actor): Promise<KnowledgeStats> {

        const { knex } = this.deps;
        const byType = await Playbook.query(knex).select('type').count('* as count').groupBy('type') as unknown as { type: PlaybookType; count: string }[];
        const bySeverity = await Lesson.query(knex).modify('visibleTo', actor).select('lessons.severity').count('* as count').groupBy('lessons.severity') as unknown as { severity: LessonSeverity; count: string }[];

        // Techniques in use (neither revoked nor deprecated) that no playbook names
        const uncovered = knex('techniques as t').where({ 't.revoked': false, 't.deprecated': false })
            .whereNotExists(knex('playbooks as p').whereRaw('p.technique_ids @> array[t.mitre_id]'));
        const [total] = await uncovered.clone().count('* as count') as { count: string }[];
        const items = await uncovered.clone().select('t.mitre_id', 't.name').orderBy('t.mitre_id').limit(internals.uncoveredSample) as { mitre_id: string; name: string }[];

        return {
            playbooks_by_type: { ...internals.zeroes(playbookTypes), ...Object.fromEntries(byType.map((row) => [row.type, Number(row.count)])) },
            lessons_by_severity: { ...internals.zeroes(lessonSeverities), ...Object.fromEntries(bySeverity.map((row) => [row.severity, Number(row.count)])) },
            techniques_without_playbook: { total: Number(total!.count), items }
        };
    }

    private checkVersion(playbook: Playbook, expected: number | undefined): void {

        if (expected !== undefined && expected !== playbook.version) {
            throw new ConflictError(`The playbook is at version ${playbook.version}, not ${expected}: reload it and apply your change again`, 'stale_version', { version: playbook.version });
        }
    }

    private async writeVersion(trx: Knex.Transaction, actor: Actor, playbook: Playbook, content: PlaybookContent, restoredFrom: number | null): Promise<number> {

        const version = playbook.version + 1;
        await PlaybookVersion.query(trx).insert({ ...content, playbook_id: playbook.id, version, restored_from: restoredFrom, author_id: actor.id });
        await playbook.$query(trx).patch({ ...content, version, updated_by: actor.id });
        return version;
    }

    private async checkLessonRefs(trx: Knex.Transaction, actor: Actor, input: LessonFields): Promise<void> {

        if (input.technique_id) {
            await knownTechniques(trx, [input.technique_id], 'technique_id');
        }

        if (input.campaign_id && !await trx('campaigns').where('id', input.campaign_id).first('id')) {
            throw new ValidationError(`Unknown campaign: ${input.campaign_id} (create the campaign first, or leave campaign_id out)`, ['campaign_id'], 'unknown_campaign');
        }

        if (input.test_id) {
            // Only a test the author may see (404 otherwise, as for an unknown one)
            await this.deps.tests.get(actor, input.test_id);
        }
    }
}
