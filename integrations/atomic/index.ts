import * as Fs from 'fs';
import * as Path from 'path';

import { CORE_SCHEMA, floatCoreTag, intCoreTag, load, Schema, YAMLException } from 'js-yaml';


export type AttackPlatform = 'Windows' | 'Linux' | 'macOS' | 'ESXi' | 'IaaS' | 'SaaS' | 'Office Suite' | 'Identity Provider' |
    'Containers' | 'Network Devices' | 'PRE';

export type AtomicExecutorName = 'powershell' | 'command_prompt' | 'sh' | 'bash' | 'manual';

export interface AtomicExecutor {
    name: AtomicExecutorName;
    command: string | null;                             // null only for `manual`, which has `steps` instead
    steps: string | null;
    elevation_required: boolean;
    cleanup_command: string | null;
}

export interface AtomicInputArgument {
    description: string;
    type: string;                                       // lower-cased: path, string, url, integer, float
    default: string | null;                             // as written in the file: `16.0` stays "16.0"
}

export interface AtomicDependency {
    description: string;
    prereq_command: string;
    get_prereq_command: string | null;
}

export interface AtomicTest {
    technique_id: string;
    atomic_guid: string;
    name: string;
    description: string;
    platforms: AttackPlatform[];
    atomic_platforms: string[];                         // as written in the file, e.g. `iaas:aws`
    executor: AtomicExecutor;
    input_arguments: Record<string, AtomicInputArgument>;
    dependency_executor_name: AtomicExecutorName | null;
    dependencies: AtomicDependency[];
}


export class AtomicFormatError extends Error {

    readonly code = 'atomic_format';

    constructor(readonly source: string, readonly path: string, message: string) {

        super(`${source}: ${path}: ${message}`);
        this.name = 'AtomicFormatError';
    }
}


type Node = Record<string, unknown>;


const internals = {

    // The core schema without number resolution: input defaults are substituted into commands, where `16.0` (an
    // Office version in a registry path) must not become `16`. No custom tags, no aliases.
    schema: new Schema(CORE_SCHEMA.tags.filter((tag) => tag !== intCoreTag && tag !== floatCoreTag)),
    maxBytes: 1024 * 1024,

    techniqueId: /^T\d{4}(\.\d{3})?$/,
    guid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    argumentName: /^[A-Za-z0-9][A-Za-z0-9_-]*$/,            // never __proto__
    executors: new Set<string>(['powershell', 'command_prompt', 'sh', 'bash', 'manual']),

    platforms: new Map<string, AttackPlatform>([
        ['windows', 'Windows'],
        ['linux', 'Linux'],
        ['macos', 'macOS'],
        ['esxi', 'ESXi'],
        ['iaas', 'IaaS'],
        ['iaas:aws', 'IaaS'],
        ['iaas:azure', 'IaaS'],
        ['iaas:gcp', 'IaaS'],
        ['saas', 'SaaS'],
        ['containers', 'Containers'],
        ['network-devices', 'Network Devices'],
        ['pre', 'PRE'],

        // Renamed in ATT&CK v15: Azure AD became Identity Provider, Office 365 and Google Workspace became Office Suite
        ['azure-ad', 'Identity Provider'],
        ['identity-provider', 'Identity Provider'],
        ['office-365', 'Office Suite'],
        ['google-workspace', 'Office Suite'],
        ['office-suite', 'Office Suite']
    ]),

    parseTest(reader: Reader, techniqueId: string, value: unknown, path: string): AtomicTest {

        const test = reader.object(value, path);

        const guid = reader.text(test.auto_generated_guid, `${path}.auto_generated_guid`).toLowerCase();
        if (!internals.guid.test(guid)) {
            reader.fail(`${path}.auto_generated_guid`, 'expected a UUID');
        }

        const atomicPlatforms = reader.array(test.supported_platforms, `${path}.supported_platforms`)
            .map((platform, i) => reader.text(platform, `${path}.supported_platforms[${i}]`).toLowerCase());

        const platforms = new Set<AttackPlatform>();
        for (const [i, platform] of atomicPlatforms.entries()) {
            platforms.add(internals.platforms.get(platform) ?? reader.fail(`${path}.supported_platforms[${i}]`, `unknown platform ${JSON.stringify(platform)}`));
        }

        return {
            technique_id: techniqueId,
            atomic_guid: guid,
            name: reader.text(test.name, `${path}.name`),
            description: reader.text(test.description, `${path}.description`),
            platforms: [...platforms],
            atomic_platforms: atomicPlatforms,
            executor: internals.parseExecutor(reader, test.executor, `${path}.executor`),
            input_arguments: internals.parseArguments(reader, test.input_arguments, `${path}.input_arguments`),
            dependency_executor_name: test.dependency_executor_name === undefined ? null : reader.executorName(test.dependency_executor_name, `${path}.dependency_executor_name`),
            dependencies: (test.dependencies === undefined ? [] : reader.array(test.dependencies, `${path}.dependencies`)).map((item, i) => {

                const dependency = reader.object(item, `${path}.dependencies[${i}]`);
                return {
                    description: reader.text(dependency.description, `${path}.dependencies[${i}].description`),
                    prereq_command: reader.text(dependency.prereq_command, `${path}.dependencies[${i}].prereq_command`),
                    get_prereq_command: reader.optionalText(dependency.get_prereq_command, `${path}.dependencies[${i}].get_prereq_command`)
                };
            })
        };
    },

    parseExecutor(reader: Reader, value: unknown, path: string): AtomicExecutor {

        const executor = reader.object(value, path);
        const name = reader.executorName(executor.name, `${path}.name`);
        const elevation = executor.elevation_required ?? false;
        if (typeof elevation !== 'boolean') {
            reader.fail(`${path}.elevation_required`, 'expected true or false');
        }

        return {
            name,
            command: name === 'manual' ? reader.optionalText(executor.command, `${path}.command`) : reader.text(executor.command, `${path}.command`),
            steps: name === 'manual' ? reader.text(executor.steps, `${path}.steps`) : reader.optionalText(executor.steps, `${path}.steps`),
            elevation_required: elevation,
            cleanup_command: reader.optionalText(executor.cleanup_command, `${path}.cleanup_command`)
        };
    },

    parseArguments(reader: Reader, value: unknown, path: string): Record<string, AtomicInputArgument> {

        if (value === undefined || value === null) {
            return {};
        }

        return Object.fromEntries(Object.entries(reader.object(value, path)).map(([name, item]) => {

            const argumentPath = `${path}.${name}`;
            if (!internals.argumentName.test(name)) {
                reader.fail(argumentPath, 'invalid argument name');
            }

            const argument = reader.object(item, argumentPath);
            const fallback = argument.default;
            if (fallback !== null &&
                fallback !== undefined &&
                typeof fallback !== 'string' &&
                typeof fallback !== 'boolean') {

                reader.fail(`${argumentPath}.default`, 'expected a scalar');
            }

            return [name, {
                description: reader.text(argument.description, `${argumentPath}.description`),
                type: reader.text(argument.type, `${argumentPath}.type`).toLowerCase(),
                default: fallback === null || fallback === undefined ? null : String(fallback)
            }];
        }));
    }
};


class Reader {

    constructor(readonly source: string) { }

    fail(path: string, message: string): never {

        throw new AtomicFormatError(this.source, path, message);
    }

    object(value: unknown, path: string): Node {

        if (value === null ||
            typeof value !== 'object' ||
            Array.isArray(value)) {

            return this.fail(path, 'expected a mapping');
        }

        return value as Node;
    }

    array(value: unknown, path: string): unknown[] {

        return Array.isArray(value) ? value : this.fail(path, 'expected a list');
    }

    text(value: unknown, path: string): string {

        if (typeof value !== 'string' ||
            value.trim() === '') {

            return this.fail(path, 'expected a non-empty string');
        }

        return value.trimEnd();
    }

    optionalText(value: unknown, path: string): string | null {

        return value === undefined || value === null || value === '' ? null : this.text(value, path);
    }

    executorName(value: unknown, path: string): AtomicExecutorName {

        const name = this.text(value, path);
        return internals.executors.has(name) ? name as AtomicExecutorName : this.fail(path, `unknown executor ${JSON.stringify(name)}`);
    }
}


// Parses the text of one technique file. `source` names it in errors.
export const parseAtomicDocument = (text: string, source: string): AtomicTest[] => {

    const reader = new Reader(source);
    let parsed: unknown;
    try {
        parsed = load(text, { schema: internals.schema, maxAliases: 0, filename: source });
    }
    catch (err) {
        if (err instanceof YAMLException) {
            reader.fail('$', err.message);
        }

        throw err;
    }

    const document = reader.object(parsed, '$');

    const techniqueId = reader.text(document.attack_technique, '$.attack_technique');
    if (!internals.techniqueId.test(techniqueId)) {
        reader.fail('$.attack_technique', `expected a technique id, got ${JSON.stringify(techniqueId)}`);
    }

    return reader.array(document.atomic_tests, '$.atomic_tests')
        .map((test, i) => internals.parseTest(reader, techniqueId, test, `$.atomic_tests[${i}]`));
};


export const parseAtomicFile = async (path: string): Promise<AtomicTest[]> => {

    const stat = await Fs.promises.stat(path);
    if (stat.size > internals.maxBytes) {
        throw new AtomicFormatError(path, '$', `file larger than ${internals.maxBytes} bytes`);
    }

    return parseAtomicDocument(await Fs.promises.readFile(path, 'utf8'), path);
};


// Walks `<dir>/T*/T*.yaml` (the layout of the atomic-red-team repository's `atomics/` folder) in id order.
export const parseAtomicsDirectory = async function* (dir: string): AsyncIterable<AtomicTest> {

    const entries = await Fs.promises.readdir(dir, { withFileTypes: true });
    const techniques = entries
        .filter((entry) => entry.isDirectory() && internals.techniqueId.test(entry.name))
        .map((entry) => entry.name)
        .sort();

    // The GUID is the key of an imported template: a duplicate would silently replace another test
    const guids = new Set<string>();
    for (const technique of techniques) {
        const file = Path.join(dir, technique, `${technique}.yaml`);
        const tests = await parseAtomicFile(file);
        for (const [i, test] of tests.entries()) {
            if (test.technique_id !== technique) {
                throw new AtomicFormatError(file, '$.attack_technique', `expected ${technique}, the folder name`);
            }

            if (guids.has(test.atomic_guid)) {
                throw new AtomicFormatError(file, `$.atomic_tests[${i}].auto_generated_guid`, `${test.atomic_guid} is already used by another test`);
            }

            guids.add(test.atomic_guid);
            yield test;
        }
    }
};
