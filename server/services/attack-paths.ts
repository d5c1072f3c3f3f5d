import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { AttackPath, AttackPathExecution, AttackPathStep, ExecutionStep, Test, TestTemplate, type ExecutionState, type StepOutcome } from '../models';
import { Access, type Actor, type Role } from '../policy';

import type { AuditService } from './audit';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import { likePattern, page, type ListQuery, type Page } from './lists';
import { knownTechniques } from './technique-refs';
import type { TestsService } from './tests';


export interface StepFields {
    technique_id?: string;
    notes?: string | null;
    template_id?: string | null;
}

export interface StepCreate extends StepFields {
    technique_id: string;
    position?: number;
}

export interface StepUpdate extends StepFields {
    position?: number;
}

export interface AttackPathCreate {
    name: string;
    description?: string | null;
    tags?: string[];
    steps?: Omit<StepCreate, 'position'>[];
}

export interface AttackPathUpdate {
    name?: string;
    description?: string | null;
    tags?: string[];
}

export interface AttackPathFilters extends ListQuery {
    technique_id?: string;
    tag?: string;
    search?: string;
}

export interface ExecutionFilters extends ListQuery {
    state?: ExecutionState;
}

export interface StepRecord {
    outcome: StepOutcome;
    notes?: string | null;
    executed_at?: Date | null;
    test_id?: string | null;
}


// The execution state machine as one declarative table: which states each action leaves from, where it goes, who may
// take it. Routes read their roles from it; the service applies it; docs/attack-paths.md renders it.
export const executionActions = ['start', 'record-step', 'complete', 'abort'] as const;
export type ExecutionAction = typeof executionActions[number];

export interface ExecutionTransition {
    from: readonly ExecutionState[];
    to: ExecutionState | 'same';
    roles: readonly Role[];
    description: string;
}

export const executionLifecycle = {
    'start': { from: ['pending'], to: 'running', roles: Access.allExceptViewer, description: 'Begin the execution: started_at is set' },
    'record-step': { from: ['running'], to: 'same', roles: Access.allExceptViewer, description: 'Record (or correct) a step\'s outcome, notes, time and proving test' },
    'complete': { from: ['running'], to: 'completed', roles: Access.allExceptViewer, description: 'Finish: refused (409 steps_unrecorded) while a step has no outcome; mark it skipped instead' },
    'abort': { from: ['pending', 'running'], to: 'aborted', roles: Access.leads, description: 'Stop the execution for good, with an optional reason' }
} as const satisfies Record<ExecutionAction, ExecutionTransition>;


export interface ProvingTest {
    id: string;
    title: string;
    state: string;
    technique_id: string;
    detection_outcome: string | null;
}

export type PathStepView = Pick<AttackPathStep, 'id' | 'position' | 'technique_id' | 'notes' | 'template_id' | 'created_at' | 'updated_at'> & { technique_name: string };
export type PathView = AttackPath & { step_count: number; execution_count: number; steps?: PathStepView[] };
export type ExecutionStepView = Omit<ExecutionStep, 'execution_id' | 'created_at' | 'updated_at'> & { test: ProvingTest | null };
export type ExecutionView = AttackPathExecution & { steps: ExecutionStepView[] };


const internals = {
    counts: (knex: Knex) => [
        knex.raw('(select count(*)::int from attack_path_steps s where s.path_id = attack_paths.id) as step_count'),
        knex.raw('(select count(*)::int from attack_path_executions e where e.path_id = attack_paths.id) as execution_count')
    ],

    transition: (action: ExecutionAction, execution: AttackPathExecution): void => {

        const rule: ExecutionTransition = executionLifecycle[action];
        if (!rule.from.includes(execution.state)) {
            throw new ConflictError(`Cannot ${action} an execution in state ${execution.state} (allowed from: ${rule.from.join(', ')})`, 'invalid_state_transition', { action, state: execution.state });
        }
    },

    // A test proves a step of its technique or of one of its sub-techniques
    proves: (testTechnique: string, stepTechnique: string) => testTechnique === stepTechnique || testTechnique.startsWith(`${stepTechnique}.`)
};


export class AttackPathsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; tests: TestsService }) { }

    async list(actor: Actor, filters: AttackPathFilters): Promise<Page<PathView>> {

        const query = AttackPath.query(this.deps.knex).select('attack_paths.*', ...internals.counts(this.deps.knex));
        if (filters.technique_id) {
            query.whereExists(AttackPathStep.query().whereColumn('attack_path_steps.path_id', 'attack_paths.id').where('attack_path_steps.technique_id', filters.technique_id));
        }

        if (filters.tag) {
            query.whereRaw('attack_paths.tags @> ?::text[]', [[filters.tag]]);
        }

        if (filters.search) {
            query.where('attack_paths.name', 'ilike', likePattern(filters.search));
        }

        return await page(query, filters, { sort: 'created_at', order: 'desc' }) as Page<PathView>;
    }

    async get(actor: Actor, id: string, db: Knex | Knex.Transaction = this.deps.knex): Promise<PathView> {

        const path = await AttackPath.query(db).findById(id).select('attack_paths.*', ...internals.counts(this.deps.knex)) as PathView | undefined;
        if (!path) {
            throw new NotFoundError('Attack path');
        }

        const steps = await AttackPathStep.query(db).where('path_id', id).orderBy('position');
        const names = await knownTechniques(db, steps.map((step) => step.technique_id), 'technique_id');
        const templates = await this.visibleTemplates(actor, steps.map((step) => step.template_id), db);
        path.steps = steps.map((step) => ({
            id: step.id, position: step.position, technique_id: step.technique_id, technique_name: names.get(step.technique_id)!, notes: step.notes,
            template_id: step.template_id && templates.has(step.template_id) ? step.template_id : null, created_at: step.created_at, updated_at: step.updated_at
        }));
        return path;
    }

    create(actor: Actor, input: AttackPathCreate, options: ChangeOptions = {}): Promise<PathView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const steps = input.steps ?? [];
            await this.checkStepRefs(trx, actor, steps);
            const path = await AttackPath.insertReturning(trx, { name: input.name, description: input.description || null, tags: input.tags ?? [], created_by: actor.id });
            if (steps.length) {
                await AttackPathStep.query(trx).insert(steps.map((step, index) => ({ path_id: path.id, position: index + 1, technique_id: step.technique_id, notes: step.notes || null, template_id: step.template_id ?? null, created_by: actor.id })));
            }

            await this.deps.audit.record(trx, actor, { action: 'attack_path.create', entity_type: 'attack_path', entity_id: path.id, details: { steps: steps.length } });
            return await this.get(actor, path.id, trx);
        });
    }

    update(actor: Actor, id: string, input: AttackPathUpdate, options: ChangeOptions = {}): Promise<PathView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const path = await lockOr404(AttackPath.query(trx).findById(id), 'Attack path');
            await path.$patchReturning(trx, { ...input, ...(input.description === '' ? { description: null } : {}) });
            await this.deps.audit.record(trx, actor, { action: 'attack_path.update', entity_type: 'attack_path', entity_id: id, details: { fields: Object.keys(input) } });
            return await this.get(actor, id, trx);
        });
    }

    // Executions outlive their path: they keep its name and their own copy of its steps (path_id becomes null)
    remove(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const path = await lockOr404(AttackPath.query(trx).findById(id), 'Attack path');
            const executions = await AttackPathExecution.query(trx).where('path_id', id).resultSize();
            await path.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'attack_path.delete', entity_type: 'attack_path', entity_id: id, details: { name: path.name, executions_kept: executions } });
        });
    }

    // Every change of the steps locks the path row first: changes of one path serialise, and positions stay 1..n
    addStep(actor: Actor, id: string, input: StepCreate, options: ChangeOptions = {}): Promise<PathView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const path = await lockOr404(AttackPath.query(trx).findById(id), 'Attack path');
            await this.checkStepRefs(trx, actor, [input]);
            const count = await AttackPathStep.query(trx).where('path_id', id).resultSize();
            const position = input.position ?? count + 1;
            if (position > count + 1) {
                throw new ValidationError(`position must be between 1 and ${count + 1}`, ['position'], 'invalid_position');
            }

            await AttackPathStep.query(trx).where('path_id', id).where('position', '>=', position).increment('position', 1);
            const step = await AttackPathStep.insertReturning(trx, { path_id: id, position, technique_id: input.technique_id, notes: input.notes || null, template_id: input.template_id ?? null, created_by: actor.id });
            await path.$query(trx).patch({});
            await this.deps.audit.record(trx, actor, { action: 'attack_path.step_add', entity_type: 'attack_path', entity_id: id, details: { step_id: step.id, position, technique_id: input.technique_id } });
            return await this.get(actor, id, trx);
        });
    }

    updateStep(actor: Actor, id: string, stepId: string, input: StepUpdate, options: ChangeOptions = {}): Promise<PathView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const path = await lockOr404(AttackPath.query(trx).findById(id), 'Attack path');
            const step = await lockOr404(AttackPathStep.query(trx).findById(stepId).where('path_id', id), 'Step');
            await this.checkStepRefs(trx, actor, [input]);
            const { position, ...fields } = input;
            if (position !== undefined && position !== step.position) {
                const count = await AttackPathStep.query(trx).where('path_id', id).resultSize();
                if (position > count) {
                    throw new ValidationError(`position must be between 1 and ${count}`, ['position'], 'invalid_position');
                }

                // Move the steps in between by one, towards the place the step leaves
                const between = AttackPathStep.query(trx).where('path_id', id).whereNot('id', stepId);
                await (position < step.position ?
                    between.whereBetween('position', [position, step.position - 1]).increment('position', 1) :
                    between.whereBetween('position', [step.position + 1, position]).decrement('position', 1));
            }

            await step.$query(trx).patch({ ...fields, ...(fields.notes === '' ? { notes: null } : {}), ...(position === undefined ? {} : { position }) });
            await path.$query(trx).patch({});
            await this.deps.audit.record(trx, actor, { action: 'attack_path.step_update', entity_type: 'attack_path', entity_id: id, details: { step_id: stepId, fields: Object.keys(input), from: step.position, to: position ?? step.position } });
            return await this.get(actor, id, trx);
        });
    }

    removeStep(actor: Actor, id: string, stepId: string, options: ChangeOptions = {}): Promise<PathView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const path = await lockOr404(AttackPath.query(trx).findById(id), 'Attack path');
            const step = await lockOr404(AttackPathStep.query(trx).findById(stepId).where('path_id', id), 'Step');
            await step.$query(trx).delete();
            await AttackPathStep.query(trx).where('path_id', id).where('position', '>', step.position).decrement('position', 1);
            await path.$query(trx).patch({});
            await this.deps.audit.record(trx, actor, { action: 'attack_path.step_remove', entity_type: 'attack_path', entity_id: id, details: { step_id: stepId, position: step.position, technique_id: step.technique_id } });
            return await this.get(actor, id, trx);
        });
    }

    async listExecutions(actor: Actor, id: string, filters: ExecutionFilters): Promise<Page<AttackPathExecution>> {

        if (!await AttackPath.query(this.deps.knex).findById(id).select('id')) {
            throw new NotFoundError('Attack path');
        }

        const query = AttackPathExecution.query(this.deps.knex).where('path_id', id);
        if (filters.state) {
            query.where('state', filters.state);
        }

        return await page(query, filters, { sort: 'created_at', order: 'desc' });
    }

    // The execution copies the path's steps as they are now: later edits of the path leave it as it was
    createExecution(actor: Actor, id: string, input: { notes?: string | null }, options: ChangeOptions = {}): Promise<ExecutionView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const path = await lockOr404(AttackPath.query(trx).findById(id), 'Attack path');
            const steps = await AttackPathStep.query(trx).where('path_id', id).orderBy('position');
            if (!steps.length) {
                throw new ConflictError('The attack path has no step: add steps before executing it', 'path_empty');
            }

            const execution = await AttackPathExecution.insertReturning(trx, { path_id: id, path_name: path.name, state: 'pending', notes: input.notes || null, created_by: actor.id });
            await ExecutionStep.query(trx).insert(steps.map((step) => ({
                execution_id: execution.id, path_step_id: step.id, position: step.position, technique_id: step.technique_id, step_notes: step.notes, template_id: step.template_id
            })));
            await this.deps.audit.record(trx, actor, { action: 'attack_path.execution_create', entity_type: 'attack_path_execution', entity_id: execution.id, details: { path_id: id, steps: steps.length } });
            return await this.getExecution(actor, execution.id, trx);
        });
    }

    async getExecution(actor: Actor, id: string, db: Knex | Knex.Transaction = this.deps.knex): Promise<ExecutionView> {

        const execution = await AttackPathExecution.query(db).findById(id);
        if (!execution) {
            throw new NotFoundError('Execution');
        }

        const steps = await ExecutionStep.query(db).where('execution_id', id).orderBy('position');
        const testIds = [...new Set(steps.map((step) => step.test_id).filter((testId): testId is string => testId !== null))];
        // The visibility rule: a test hidden from the reader is neither shown nor named
        const tests = testIds.length ? await Test.query(db).whereIn('tests.id', testIds).modify('visibleTo', actor).select('tests.id', 'tests.title', 'tests.state', 'tests.technique_id', 'tests.detection_outcome') : [];
        const visible = new Map<string, ProvingTest>(tests.map((test) => [test.id, { id: test.id, title: test.title, state: test.state, technique_id: test.technique_id, detection_outcome: test.detection_outcome ?? null }]));
        const templates = await this.visibleTemplates(actor, steps.map((step) => step.template_id), db);

        return Object.assign(execution, {
            steps: steps.map((step) => {

                const test = step.test_id ? visible.get(step.test_id) ?? null : null;
                return {
                    id: step.id, path_step_id: step.path_step_id, position: step.position, technique_id: step.technique_id, step_notes: step.step_notes,
                    template_id: step.template_id && templates.has(step.template_id) ? step.template_id : null,
                    outcome: step.outcome, notes: step.notes, executed_at: step.executed_at, test_id: test ? test.id : null, test,
                    recorded_by: step.recorded_by, recorded_at: step.recorded_at
                } as ExecutionStepView;
            })
        });
    }

    start(actor: Actor, id: string, options: ChangeOptions = {}): Promise<ExecutionView> {

        return this.change(actor, id, 'start', options, async (trx, execution) => {

            await execution.$query(trx).patch({ state: 'running', started_at: new Date(), started_by: actor.id });
        });
    }

    recordStep(actor: Actor, id: string, stepId: string, input: StepRecord, options: ChangeOptions = {}): Promise<ExecutionView> {

        return this.change(actor, id, 'record-step', options, async (trx, execution) => {

            const step = await lockOr404(ExecutionStep.query(trx).findById(stepId).where('execution_id', execution.id), 'Execution step');
            if (input.test_id) {
                // The proving test must be one the actor may see (404 otherwise, as for an unknown one)
                const test = await this.deps.tests.get(actor, input.test_id);
                if (!internals.proves(test.technique_id, step.technique_id)) {
                    throw new ValidationError(`The test is of technique ${test.technique_id}, not of the step's ${step.technique_id}`, ['test_id'], 'technique_mismatch');
                }
            }

            await step.$query(trx).patch({
                outcome: input.outcome, notes: input.notes || null, executed_at: input.executed_at ?? new Date(), test_id: input.test_id ?? null,
                recorded_by: actor.id, recorded_at: new Date()
            });
            return { step_id: stepId, position: step.position, outcome: input.outcome, test_id: input.test_id ?? null };
        });
    }

    complete(actor: Actor, id: string, input: { notes?: string | null }, options: ChangeOptions = {}): Promise<ExecutionView> {

        return this.change(actor, id, 'complete', options, async (trx, execution) => {

            const unrecorded = (await ExecutionStep.query(trx).where('execution_id', id).whereNull('outcome').orderBy('position').select('position')).map((step) => step.position);
            if (unrecorded.length) {
                throw new ConflictError(`Steps ${unrecorded.join(', ')} have no outcome: record them, or mark them skipped`, 'steps_unrecorded', { positions: unrecorded });
            }

            await execution.$query(trx).patch({ state: 'completed', completed_at: new Date(), ...(input.notes ? { notes: input.notes } : {}) });
        });
    }

    abort(actor: Actor, id: string, input: { reason?: string | null }, options: ChangeOptions = {}): Promise<ExecutionView> {

        return this.change(actor, id, 'abort', options, async (trx, execution) => {

            await execution.$query(trx).patch({ state: 'aborted', aborted_at: new Date(), abort_reason: input.reason || null });
            return { reason: input.reason || null };
        });
    }

    // One execution change: lock or 404, the table's rule, the write, the audit row, the execution as it now is
    private change(actor: Actor, id: string, action: ExecutionAction, options: ChangeOptions, work: (trx: Knex.Transaction, execution: AttackPathExecution) => Promise<Record<string, unknown> | void>): Promise<ExecutionView> {

        return withTransaction(this.deps.knex, options.trx, async (trx) => {

            const execution = await lockOr404(AttackPathExecution.query(trx).findById(id), 'Execution');
            internals.transition(action, execution);
            const details = await work(trx, execution);
            const rule: ExecutionTransition = executionLifecycle[action];
            await this.deps.audit.record(trx, actor, { action: `attack_path.execution_${action.replace('-', '_')}`, entity_type: 'attack_path_execution', entity_id: id, details: { from: execution.state, to: rule.to === 'same' ? execution.state : rule.to, ...details } });
            return await this.getExecution(actor, id, trx);
        });
    }

    // The techniques exist, and each template is one the actor may see
    private async checkStepRefs(trx: Knex.Transaction, actor: Actor, steps: StepFields[]): Promise<void> {

        await knownTechniques(trx, steps.flatMap((step) => (step.technique_id ? [step.technique_id] : [])), 'technique_id');
        const wanted = [...new Set(steps.flatMap((step) => (step.template_id ? [step.template_id] : [])))];
        const visible = await this.visibleTemplates(actor, wanted, trx);
        if (wanted.some((templateId) => !visible.has(templateId))) {
            throw new NotFoundError('Test template');
        }
    }

    private async visibleTemplates(actor: Actor, ids: (string | null)[], db: Knex | Knex.Transaction): Promise<Set<string>> {

        const wanted = [...new Set(ids.filter((id): id is string => id !== null))];
        if (!wanted.length) {
            return new Set();
        }

        return new Set((await TestTemplate.query(db).whereIn('id', wanted).modify('visibleTo', actor).select('test_templates.id')).map((template) => template.id));
    }
}
