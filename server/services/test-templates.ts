import type { Knex } from 'knex';

import { parseAtomicsDirectory, type AtomicTest } from '../../integrations/atomic';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { Test, TestTemplate, type Priority } from '../models';
import { canSeeTest, everyReader, hidesRedFrom, Role, type Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404 } from './changes';
import { likePattern, page, type ListQuery, type Page } from './lists';


export interface TemplateFields {
    name?: string;
    description?: string | null;
    objective?: string | null;
    procedure?: string | null;
    expected_outcome?: string | null;
    expected_detection?: string | null;
    technique_ids?: string[];
    platforms?: string[];
    tags?: string[];
    priority?: Priority;
    tool?: string | null;
    command?: string | null;
    cleanup_command?: string | null;
}

export interface TemplateCreate extends TemplateFields {
    source_test_id?: string;
}

export interface TemplateFilters extends ListQuery {
    technique_id?: string;
    platform?: string;
    source?: 'manual' | 'test' | 'atomic';
    tag?: string;
    search?: string;
}


const internals = {
    batch: 200,

    fromAtomic: (atomic: AtomicTest) => ({
        name: atomic.name.slice(0, 300),
        description: atomic.description || null,
        objective: `Execute ${atomic.technique_id} as Atomic Red Team test "${atomic.name}"`.slice(0, 10_000),
        procedure: atomic.executor.command ?? atomic.executor.steps,
        expected_outcome: null,
        expected_detection: null,
        technique_ids: [atomic.technique_id],
        platforms: [...new Set(atomic.platforms)],
        tags: ['atomic-red-team'],
        priority: 'medium',
        tool: atomic.executor.name,
        command: atomic.executor.command,
        cleanup_command: atomic.executor.cleanup_command,
        executor: JSON.stringify({ ...atomic.executor, dependency_executor_name: atomic.dependency_executor_name, dependencies: atomic.dependencies, atomic_platforms: atomic.atomic_platforms }),
        input_arguments: JSON.stringify(atomic.input_arguments),
        source: 'atomic',
        source_ref: atomic.atomic_guid
    })
};


// Templates keep the technique ids they name even when the knowledge base does not know them yet (an atomic can be
// newer than the ATT&CK release imported): they are checked when a test is created from the template.
export class TestTemplatesService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService }) { }

    list(actor: Actor, filters: TemplateFilters): Promise<Page<TestTemplate>> {

        const query = TestTemplate.query(this.deps.knex).modify('visibleTo', actor);
        if (filters.technique_id) {
            query.whereRaw('technique_ids @> ?::text[]', [[filters.technique_id]]);
        }

        if (filters.platform) {
            query.whereRaw('platforms @> ?::text[]', [[filters.platform]]);
        }

        if (filters.tag) {
            query.whereRaw('tags @> ?::text[]', [[filters.tag]]);
        }

        if (filters.source) {
            query.where('source', filters.source);
        }

        if (filters.search) {
            query.whereILike('name', likePattern(filters.search));
        }

        return page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    async get(actor: Actor, id: string): Promise<TestTemplate> {

        const template = await TestTemplate.query(this.deps.knex).findById(id).modify('visibleTo', actor);
        if (!template) {
            throw new NotFoundError('Test template');
        }

        return template;
    }

    async create(actor: Actor, input: TemplateCreate): Promise<TestTemplate> {

        return await TestTemplate.transaction(this.deps.knex, async (trx) => {

            const { source_test_id: sourceTestId, ...fields } = input;
            let base: TemplateFields = {};
            if (sourceTestId) {
                const test = await Test.query(trx).findById(sourceTestId).modify('visibleTo', actor);
                if (!test) {
                    throw new ValidationError('The source test does not exist', ['source_test_id'], 'invalid_reference');
                }

                // Every role reads templates: a copy of a test some of them may not see would hand them its procedure
                if (!canSeeTest(everyReader, test)) {
                    throw new ConflictError(`A template is readable by every role; a ${test.data_classification} test cannot be its source`, 'classified_source', { data_classification: test.data_classification });
                }

                // campaigns (issue 10): nor may it hand a blind test's red procedure to the blue team before submit-red
                if (hidesRedFrom({ id: null, role: Role.blueTech }, test)) {
                    throw new ConflictError('A template is readable by every role; a test of a blind campaign cannot be its source before red submits', 'blind_source');
                }

                base = {
                    name: test.title, description: test.description, objective: test.objective, procedure: test.procedure,
                    expected_outcome: test.expected_outcome, technique_ids: [test.technique_id], platforms: test.platform ? [test.platform] : [],
                    tags: test.tags, priority: test.priority, tool: test.tool, command: test.command
                };
            }

            const row = { ...base, ...fields };
            if (!row.name) {
                throw new ValidationError('A template needs a name', ['name']);
            }

            if (!row.technique_ids?.length) {
                throw new ValidationError('A template needs at least one technique', ['technique_ids']);
            }

            const template = await TestTemplate.insertReturning(trx, { ...row, source: sourceTestId ? 'test' : 'manual', source_test_id: sourceTestId ?? null, created_by: actor.id } as Partial<TestTemplate>);
            await this.deps.audit.record(trx, actor, { action: 'test_template.create', entity_type: 'test_template', entity_id: template.id, details: { source_test_id: sourceTestId ?? null } });
            return template;
        });
    }

    async update(actor: Actor, id: string, input: TemplateFields): Promise<TestTemplate> {

        return await TestTemplate.transaction(this.deps.knex, async (trx) => {

            const template = await lockOr404(TestTemplate.query(trx).findById(id), 'Test template');

            const updated = await template.$patchReturning(trx, input as Partial<TestTemplate>);
            await this.deps.audit.record(trx, actor, { action: 'test_template.update', entity_type: 'test_template', entity_id: id, details: { fields: Object.keys(input) } });
            return updated;
        });
    }

    // Tests made from the template keep their copy; their template_id is cleared by the foreign key
    async remove(actor: Actor, id: string): Promise<void> {

        await TestTemplate.transaction(this.deps.knex, async (trx) => {

            const deleted = await TestTemplate.query(trx).deleteById(id);
            if (!deleted) {
                throw new NotFoundError('Test template');
            }

            await this.deps.audit.record(trx, actor, { action: 'test_template.delete', entity_type: 'test_template', entity_id: id });
        });
    }

    // Idempotent on the atomic GUID: a second import updates the templates in place
    async importAtomics(actor: Actor, dir: string, onProgress?: (count: number) => void | Promise<void>): Promise<{ imported: number; techniques: number }> {

        let imported = 0;
        const techniques = new Set<string>();
        let batch: ReturnType<typeof internals.fromAtomic>[] = [];
        const flush = async () => {

            if (!batch.length) {
                return;
            }

            const rows = batch;
            batch = [];
            await this.deps.knex.transaction(async (trx) => {

                await trx('test_templates').insert(rows.map((row) => ({ ...row, created_by: actor.id })))
                    .onConflict(['source', 'source_ref'])
                    .merge(['name', 'description', 'objective', 'procedure', 'technique_ids', 'platforms', 'tool', 'command', 'cleanup_command', 'executor', 'input_arguments', 'updated_at']);
            });

            imported += rows.length;
            await onProgress?.(imported);
        };

        for await (const atomic of parseAtomicsDirectory(dir)) {
            techniques.add(atomic.technique_id);
            batch.push({ ...internals.fromAtomic(atomic), updated_at: new Date() } as ReturnType<typeof internals.fromAtomic>);
            if (batch.length >= internals.batch) {
                await flush();
            }
        }

        await flush();
        await this.deps.audit.record(this.deps.knex, actor, { action: 'test_template.import_atomics', entity_type: 'test_template', details: { imported, techniques: techniques.size } });
        return { imported, techniques: techniques.size };
    }
}
