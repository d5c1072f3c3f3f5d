import * as Fs from 'fs';
import * as Path from 'path';

import * as Yaml from 'js-yaml';
import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { DetectionRule, DetectionRuleEvaluation, TestTemplate, type RuleLanguage, type RuleSeverity, type RuleStatus } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404, withTransaction, type ChangeOptions } from './changes';
import { likePattern, page, whereEquals, type ListQuery, type Page } from './lists';
import { hasNul, isUuid } from './sql';
import type { Detection } from './test-lifecycle';
import type { TestsService } from './tests';


export interface RuleInput {
    name: string;
    language: RuleLanguage;
    query: string;
    description?: string | null;
    technique_ids?: string[];
    platforms?: string[];
    asset_id?: string | null;
    status?: RuleStatus;
    severity?: RuleSeverity;
    author?: string | null;
    license?: string | null;
}

export interface RuleFilters extends ListQuery {
    language?: RuleLanguage;
    status?: RuleStatus;
    severity?: RuleSeverity;
    technique_id?: string;
    asset_id?: string;
    source?: 'manual' | 'sigma';
    search?: string;
    expected_for_test?: string;
}

export interface EvaluationInput {
    rule_id: string;
    test_id: string;
    fired: boolean;
    notes?: string | null;
}

export interface SigmaImportResult {
    files: number;
    imported: number;
    created: number;
    updated: number;
    techniques: number;
    skipped: { file: string; error: string }[];
}


// A Sigma rule as Aegis keeps it (pure: no database), or why it cannot be imported
export interface SigmaRule {
    source_ref: string;
    name: string;
    description: string | null;
    query: string;
    technique_ids: string[];
    platforms: string[];
    status: RuleStatus;
    severity: RuleSeverity;
    author: string | null;
    license: string;
    atomic_refs: string[];
}


// The licence of SigmaHQ's rules, kept with each imported rule and shown with it
export const sigmaLicense = 'DRL-1.1 (Detection Rule License 1.1, https://github.com/SigmaHQ/Detection-Rule-License)';


const internals = {
    batch: 100,
    maxBytes: 512 * 1024,
    license: sigmaLicense,
    tag: /^attack\.(t\d{4}(?:\.\d{3})?)$/i,
    statuses: ['stable', 'test', 'experimental', 'deprecated', 'unsupported'],
    levels: ['informational', 'low', 'medium', 'high', 'critical'],

    // Sigma's logsource.product to the ATT&CK platform names templates carry (integrations/atomic)
    platforms: new Map<string, string>([
        ['windows', 'Windows'], ['linux', 'Linux'], ['macos', 'macOS'],
        ['aws', 'IaaS'], ['azure', 'IaaS'], ['gcp', 'IaaS'],
        ['m365', 'Office Suite'], ['okta', 'Identity Provider'], ['kubernetes', 'Containers'],
        ['github', 'SaaS'], ['bitbucket', 'SaaS'], ['cisco', 'Network Devices'], ['fortigate', 'Network Devices']
    ]),

    text: (value: unknown): string | null => (typeof value === 'string' && value.trim() ? value.trim() : null),

    yamlFiles: async function* walk(dir: string): AsyncIterable<string> {

        const entries = (await Fs.promises.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
        for (const entry of entries) {
            const path = Path.join(dir, entry.name);
            if (entry.isDirectory()) {
                yield* walk(path);
            }
            else if (entry.isFile() && /\.ya?ml$/i.test(entry.name)) {
                yield path;
            }
        }
    }
};


// One Sigma file to one rule, or an Error saying what is wrong with it. YAML is read with js-yaml's core schema
// (no custom tags, no code), one document only.
export const parseSigmaRule = (text: string): SigmaRule | Error => {

    let doc: unknown;
    try {
        doc = Yaml.load(text, { schema: Yaml.CORE_SCHEMA, json: true });
    }
    catch (err) {
        return new Error(`invalid YAML: ${(err as Error).message.split('\n')[0]}`);
    }

    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
        return new Error('not a Sigma rule (a YAML mapping is expected)');
    }

    // PostgreSQL text cannot hold NUL: in the file (the rule's query is its text) or in a value YAML decodes ("\0")
    if (text.includes('\u0000') || hasNul(doc)) {
        return new Error('contains a NUL character, which a rule cannot store');
    }

    const rule = doc as Record<string, unknown>;
    const id = internals.text(rule.id);
    const title = internals.text(rule.title);
    if (!id || !isUuid(id)) {
        return new Error('id is missing or not a UUID');
    }

    if (!title) {
        return new Error('title is missing');
    }

    if (!rule.detection || typeof rule.detection !== 'object') {
        return new Error('detection is missing');
    }

    if (!rule.logsource || typeof rule.logsource !== 'object') {
        return new Error('logsource is missing');
    }

    const tags = Array.isArray(rule.tags) ? rule.tags.filter((tag): tag is string => typeof tag === 'string') : [];
    const techniques = [...new Set(tags.map((tag) => internals.tag.exec(tag)?.[1]?.toUpperCase()).filter((tag): tag is string => Boolean(tag)))].sort();
    const status = internals.text(rule.status) ?? 'experimental';
    if (!internals.statuses.includes(status)) {
        return new Error(`status ${status} is not one of ${internals.statuses.join(', ')}`);
    }

    const level = internals.text(rule.level) ?? 'medium';
    if (!internals.levels.includes(level)) {
        return new Error(`level ${level} is not one of ${internals.levels.join(', ')}`);
    }

    const product = internals.text((rule.logsource as Record<string, unknown>).product)?.toLowerCase();
    const platform = product ? internals.platforms.get(product) : undefined;
    const simulation = Array.isArray(rule.simulation) ? rule.simulation : [];
    const atomics = simulation.map((item) => internals.text((item as Record<string, unknown> | null)?.atomic_guid)).filter((guid): guid is string => Boolean(guid && isUuid(guid)));

    return {
        source_ref: id.toLowerCase(),
        name: title.slice(0, 500),
        description: internals.text(rule.description),
        query: text,
        technique_ids: techniques,
        platforms: platform ? [platform] : [],
        status: status as RuleStatus,
        severity: level as RuleSeverity,
        author: internals.text(rule.author),
        license: internals.text(rule.license) ?? internals.license,          // Sigma's optional `license` (SPDX), else SigmaHQ's
        atomic_refs: [...new Set(atomics.map((guid) => guid.toLowerCase()))]
    };
};


// Detection rules (issue 11): hand-made or imported from Sigma, with their evaluations against tests and the
// templates that should make them fire ("run this, expect that").
export class DetectionRulesService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; tests: TestsService }) { }

    // With expected_for_test, the rules the test should fire, each with what was recorded for that test
    // (`test_evaluation`: the evaluation, or null while nobody has said whether it fired)
    async list(actor: Actor, filters: RuleFilters): Promise<Page<DetectionRule | DetectionRule & { test_evaluation: DetectionRuleEvaluation | null }>> {

        const query = DetectionRule.query(this.deps.knex);
        whereEquals(query, filters, ['language', 'status', 'severity', 'asset_id', 'source'], 'detection_rules');

        if (filters.technique_id) {
            query.whereRaw('detection_rules.technique_ids @> ?::text[]', [[filters.technique_id]]);
        }

        if (filters.search) {
            query.where((q) => q.where('detection_rules.name', 'ilike', likePattern(filters.search!)).orWhere('detection_rules.author', 'ilike', likePattern(filters.search!)));
        }

        if (filters.expected_for_test) {
            const test = await this.deps.tests.get(actor, filters.expected_for_test);
            const template = test.template_id ? await TestTemplate.query(this.deps.knex).findById(test.template_id) : undefined;
            this.expectedFor(query, { technique_ids: [test.technique_id], platforms: test.platform ? [test.platform] : template?.platforms ?? [], source_ref: template?.source === 'atomic' ? template.source_ref : null });
            const result = await page(query, filters, { sort: 'name', order: 'asc' });
            const evaluations = result.items.length ? await DetectionRuleEvaluation.query(this.deps.knex).where('test_id', test.id).whereIn('rule_id', result.items.map((item) => item.id)) : [];
            const byRule = new Map(evaluations.map((item) => [item.rule_id, item]));
            return { ...result, items: result.items.map((item) => Object.assign(item, { test_evaluation: byRule.get(item.id) ?? null })) };
        }

        return page(query, filters, { sort: 'name', order: 'asc' });
    }

    // The rule, the templates that should make it fire, and what its evaluations recorded (on tests the actor sees)
    async get(actor: Actor, id: string) {

        const rule = await DetectionRule.query(this.deps.knex).findById(id);
        if (!rule) {
            throw new NotFoundError('Detection rule');
        }

        const templates = await TestTemplate.query(this.deps.knex)
            .where((q) => {

                q.whereRaw('source = \'atomic\' and source_ref = any(?::text[])', [rule.atomic_refs]);
                if (rule.technique_ids.length && rule.platforms.length) {
                    q.orWhere((r) => r.whereRaw('technique_ids && ?::text[]', [rule.technique_ids]).whereRaw('platforms && ?::text[]', [rule.platforms]));
                }
            })
            .select('id', 'name', 'technique_ids', 'platforms', 'source', 'source_ref')
            .orderBy('name').limit(100);

        const evaluations = await DetectionRuleEvaluation.query(this.deps.knex).modify('visibleTo', actor).where('rule_id', id).orderBy('evaluated_at', 'desc').limit(100);
        return {
            ...rule.toJSON(),
            expected_templates: templates.map((template) => ({ id: template.id, name: template.name, technique_ids: template.technique_ids, platforms: template.platforms, atomic_guid: template.source === 'atomic' ? template.source_ref : null, simulated: template.source === 'atomic' && rule.atomic_refs.includes(template.source_ref!) })),
            evaluations
        };
    }

    async create(actor: Actor, input: RuleInput, options: ChangeOptions = {}) {

        const id = await withTransaction(this.deps.knex, options.trx, async (trx) => {

            await this.checkReferences(trx, input);
            const rule = await DetectionRule.insertReturning(trx, { ...input, source: 'manual', created_by: actor.id });
            await this.deps.audit.record(trx, actor, { action: 'detection_rule.create', entity_type: 'detection_rule', entity_id: rule.id, details: { name: rule.name, language: rule.language } });
            return rule.id;
        });

        return await this.get(actor, id);
    }

    async update(actor: Actor, id: string, input: Partial<RuleInput>, options: ChangeOptions = {}) {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const rule = await lockOr404(DetectionRule.query(trx).findById(id), 'Detection rule');
            await this.checkReferences(trx, input);
            await rule.$patchReturning(trx, input);
            await this.deps.audit.record(trx, actor, { action: 'detection_rule.update', entity_type: 'detection_rule', entity_id: id, details: { fields: Object.keys(input) } });
        });

        return await this.get(actor, id);
    }

    // A rule that a test's detections name stays (409): the detections are records
    async remove(actor: Actor, id: string, options: ChangeOptions = {}): Promise<void> {

        await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const rule = await lockOr404(DetectionRule.query(trx).findById(id), 'Detection rule');
            const used = await trx('test_detections').whereRaw('? = any(rule_ids)', [id]).count('* as count').first();
            if (Number(used!.count)) {
                throw new ConflictError(`${Number(used!.count)} test detections name this rule: set its status to deprecated or disabled instead`, 'rule_in_use', { detections: Number(used!.count) });
            }

            await rule.$query(trx).delete();
            await this.deps.audit.record(trx, actor, { action: 'detection_rule.delete', entity_type: 'detection_rule', entity_id: id, details: { name: rule.name } });
        });
    }

    // Records whether the rule fired for the test (one record per rule and test, the latest answer kept). While blue
    // evaluates, a rule that fired also enters the test's detections: its id on the detection of the rule's asset,
    // added as `alerted` at the evaluation time when the test has none for that asset.
    async evaluate(actor: Actor, input: EvaluationInput, options: ChangeOptions = {}): Promise<{ evaluation: DetectionRuleEvaluation; detections_updated: boolean }> {

        return await withTransaction(this.deps.knex, options.trx, async (trx) => {

            const rule = await DetectionRule.query(trx).findById(input.rule_id);
            if (!rule) {
                throw new NotFoundError('Detection rule');
            }

            const test = await this.deps.tests.get(actor, input.test_id);
            const now = new Date();
            const [evaluation] = await trx('detection_rule_evaluations')
                .insert({ rule_id: rule.id, test_id: test.id, fired: input.fired, notes: input.notes ?? null, evaluated_at: now, created_by: actor.id })
                .onConflict(['rule_id', 'test_id']).merge(['fired', 'notes', 'evaluated_at', 'created_by', 'updated_at'])
                .returning('*');

            let updated = false;
            if (input.fired && rule.asset_id && test.state === 'blue_evaluating') {
                const detections: Detection[] = test.detections.map((item) => ({ ...item }));
                const existing = detections.find((item) => item.asset_id === rule.asset_id);
                if (!existing) {
                    detections.push({ asset_id: rule.asset_id, outcome: 'alerted', detected_at: now.toISOString(), rule_ids: [rule.id] });
                    updated = true;
                }
                else if (!(existing.rule_ids ?? []).includes(rule.id)) {
                    existing.rule_ids = [...existing.rule_ids ?? [], rule.id];
                    updated = true;
                }

                if (updated) {
                    await this.deps.tests.updateBlue(actor, test.id, { detections }, { trx });
                }
            }

            await this.deps.audit.record(trx, actor, { action: 'detection_rule.evaluate', entity_type: 'detection_rule', entity_id: rule.id, details: { test_id: test.id, fired: input.fired } });
            return { evaluation: DetectionRuleEvaluation.fromJson(evaluation, { skipValidation: true }), detections_updated: updated };
        });
    }

    // Sigma rules from a folder (recursively, *.yml/*.yaml), idempotent on each rule's own id: a second import updates
    // in place. A malformed file is reported and skipped; each rule is one row, written whole or not at all.
    async importSigma(actor: Actor, dir: string, onProgress?: (count: number) => void | Promise<void>): Promise<SigmaImportResult> {

        const result: SigmaImportResult = { files: 0, imported: 0, created: 0, updated: 0, techniques: 0, skipped: [] };
        const techniques = new Set<string>();
        const seen = new Set<string>();
        let batch: (SigmaRule & { source_path: string })[] = [];
        const flush = async () => {

            if (!batch.length) {
                return;
            }

            const rows = batch;
            batch = [];
            const upsert = (part: typeof rows) => this.deps.knex('detection_rules')
                .insert(part.map((row) => ({ ...row, language: 'sigma', source: 'sigma', created_by: actor.id, updated_at: new Date() })))
                .onConflict(['source', 'source_ref'])
                .merge(['name', 'description', 'query', 'technique_ids', 'platforms', 'status', 'severity', 'author', 'license', 'atomic_refs', 'source_path', 'updated_at'])
                .returning(this.deps.knex.raw('(xmax = 0) as inserted')) as Promise<{ inserted: boolean }[]>;

            // A batch is one statement: when the database refuses it, each rule of it is written alone, so that the
            // one it refuses is reported by file and skipped and the others are imported
            let written: { inserted: boolean }[];
            try {
                written = await upsert(rows);
            }
            catch {
                written = [];
                for (const row of rows) {
                    try {
                        written.push(...await upsert([row]));
                    }
                    catch (err) {
                        result.skipped.push({ file: row.source_path, error: `refused by the database: ${(err as Error).message.split('\n')[0]}` });
                    }
                }
            }

            result.imported += written.length;
            result.created += written.filter((row) => row.inserted).length;
            result.updated += written.filter((row) => !row.inserted).length;
            await onProgress?.(result.imported);
        };

        const root = Fs.realpathSync(dir);
        for await (const file of internals.yamlFiles(root)) {
            result.files++;
            const relative = Path.relative(root, file);
            const stat = await Fs.promises.stat(file);
            const parsed = stat.size > internals.maxBytes ? new Error(`larger than ${internals.maxBytes} bytes`) : parseSigmaRule(await Fs.promises.readFile(file, 'utf8'));
            if (parsed instanceof Error) {
                result.skipped.push({ file: relative, error: parsed.message });
                continue;
            }

            if (seen.has(parsed.source_ref)) {
                result.skipped.push({ file: relative, error: `duplicate rule id ${parsed.source_ref}` });
                continue;
            }

            seen.add(parsed.source_ref);
            parsed.technique_ids.forEach((id) => techniques.add(id));
            batch.push({ ...parsed, source_path: relative });
            if (batch.length >= internals.batch) {
                await flush();
            }
        }

        await flush();
        result.skipped.sort((a, b) => a.file.localeCompare(b.file));
        result.techniques = techniques.size;
        await this.deps.audit.record(this.deps.knex, actor, { action: 'detection_rule.import_sigma', entity_type: 'detection_rule', details: { ...result, skipped: result.skipped.length } });
        return result;
    }

    // Rules that should fire for a test: same technique and platform, or named by the atomic the test came from
    private expectedFor(query: ReturnType<typeof DetectionRule.query>, target: { technique_ids: string[]; platforms: string[]; source_ref: string | null }) {

        query.where((q) => {

            q.whereRaw('detection_rules.technique_ids && ?::text[] and detection_rules.platforms && ?::text[]', [target.technique_ids, target.platforms]);
            if (target.source_ref) {
                q.orWhereRaw('? = any(detection_rules.atomic_refs)', [target.source_ref]);
            }
        });
    }

    private async checkReferences(trx: Knex.Transaction, input: Partial<RuleInput>): Promise<void> {

        const fields: string[] = [];
        if (input.asset_id && !await trx('detection_assets').where('id', input.asset_id).first('id')) {
            fields.push('asset_id');
        }

        if (input.technique_ids?.length) {
            const found = await trx('techniques').whereIn('mitre_id', input.technique_ids).pluck('mitre_id');
            if (new Set(found).size !== new Set(input.technique_ids).size) {
                fields.push('technique_ids');
            }
        }

        if (fields.length) {
            throw new ValidationError(`Unknown ${fields.join(', ')}: name an existing detection asset and existing techniques`, fields, 'unknown_reference');
        }
    }
}

