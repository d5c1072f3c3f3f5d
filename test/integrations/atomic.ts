import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import { expect } from '@hapi/code';
import * as Lab from '@hapi/lab';

import {
    AtomicFormatError,
    parseAtomicDocument,
    parseAtomicFile,
    parseAtomicsDirectory,
    type AtomicTest
} from '../../integrations/atomic';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    atomics: Path.join(__dirname, '..', '..', '..', 'shared', 'data', 'atomic-red-team', 'atomics'),

    count<T>(items: T[], key: (item: T) => string[]): Record<string, number> {

        const counts: Record<string, number> = {};
        for (const item of items) {
            for (const value of key(item)) {
                counts[value] = (counts[value] ?? 0) + 1;
            }
        }

        return counts;
    },

    document: (test: string): string => `attack_technique: T1059.001
display_name: "Command and Scripting Interpreter: PowerShell"
atomic_tests:
${test}`,

    minimalTest: `- name: Minimal
  auto_generated_guid: 11111111-2222-4333-8444-555555555555
  description: A test.
  supported_platforms:
  - windows
  executor:
    name: powershell
    command: Get-Process`
};


describe('integrations/atomic', () => {

    let all: AtomicTest[];

    before(async () => {

        all = [];
        for await (const test of parseAtomicsDirectory(internals.atomics)) {
            all.push(test);
        }
    });

    describe('parseAtomicsDirectory()', () => {

        it('parses every technique file and every test of the pinned Atomic Red Team commit', () => {

            expect(new Set(all.map((test) => test.technique_id)).size).to.equal(333);
            expect(all.length).to.equal(1790);
            expect(new Set(all.map((test) => test.atomic_guid)).size).to.equal(1790);
        });

        it('normalises platforms to ATT&CK names and keeps the file values beside them', () => {

            expect(internals.count(all, (test) => test.atomic_platforms)).to.equal({
                'windows': 1213, 'linux': 395, 'macos': 247, 'iaas:aws': 22, 'containers': 19, 'azure-ad': 18,
                'iaas:azure': 15, 'office-365': 7, 'iaas:gcp': 6, 'google-workspace': 1
            });

            expect(internals.count(all, (test) => test.platforms)).to.equal({
                'Windows': 1213, 'Linux': 395, 'macOS': 247, 'IaaS': 43, 'Containers': 19, 'Identity Provider': 18, 'Office Suite': 8
            });
        });

        it('reads every executor', () => {

            expect(internals.count(all, (test) => [test.executor.name])).to.equal({
                powershell: 694, command_prompt: 557, sh: 398, bash: 126, manual: 15
            });

            for (const test of all) {
                if (test.executor.name === 'manual') {
                    expect(test.executor.steps).to.be.a.string();
                }
                else {
                    expect(test.executor.command).to.be.a.string();
                }
            }
        });

        it('parses one known atomic field by field', () => {

            const procdump = all.find((test) => test.atomic_guid === '0be2230c-9ab3-4ac2-8826-3199b9a0ebf8');
            expect(procdump).to.equal({
                technique_id: 'T1003.001',
                atomic_guid: '0be2230c-9ab3-4ac2-8826-3199b9a0ebf8',
                name: 'Dump LSASS.exe Memory using ProcDump',
                description: 'The memory of lsass.exe is often dumped for offline credential theft attacks. This can be achieved with Sysinternals\n' +
                    'ProcDump.\n\n' +
                    'Upon successful execution, you should see the following file created c:\\windows\\temp\\lsass_dump.dmp.\n\n' +
                    'If you see a message saying "procdump.exe is not recognized as an internal or external command", try using the  get-prereq_commands to download and install the ProcDump tool first.',
                platforms: ['Windows'],
                atomic_platforms: ['windows'],
                executor: {
                    name: 'command_prompt',
                    command: '"#{procdump_exe}" -accepteula -ma lsass.exe #{output_file}',
                    steps: null,
                    elevation_required: true,
                    cleanup_command: 'del "#{output_file}" >nul 2> nul'
                },
                input_arguments: {
                    output_file: {
                        description: 'Path where resulting dump should be placed',
                        type: 'path',
                        default: 'C:\\Windows\\Temp\\lsass_dump.dmp'
                    },
                    procdump_exe: {
                        description: 'Path of Procdump executable',
                        type: 'path',
                        default: 'PathToAtomicsFolder\\..\\ExternalPayloads\\procdump.exe'
                    }
                },
                dependency_executor_name: 'powershell',
                dependencies: [{
                    description: 'ProcDump tool from Sysinternals must exist on disk at specified location (#{procdump_exe})',
                    prereq_command: 'if (Test-Path "#{procdump_exe}") {exit 0} else {exit 1}',
                    get_prereq_command: [
                        '[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12',
                        'New-Item -Type Directory "PathToAtomicsFolder\\..\\ExternalPayloads\\" -ErrorAction Ignore -Force | Out-Null',
                        'Invoke-WebRequest "https://download.sysinternals.com/files/Procdump.zip" -OutFile "PathToAtomicsFolder\\..\\ExternalPayloads\\Procdump.zip"',
                        'Expand-Archive "PathToAtomicsFolder\\..\\ExternalPayloads\\Procdump.zip" "PathToAtomicsFolder\\..\\ExternalPayloads\\Procdump" -Force',
                        'New-Item -ItemType Directory (Split-Path "#{procdump_exe}") -Force | Out-Null',
                        'Copy-Item "PathToAtomicsFolder\\..\\ExternalPayloads\\Procdump\\Procdump.exe" "#{procdump_exe}" -Force'
                    ].join('\n')
                }]
            });
        });

        it('keeps input defaults exactly as written, so 16.0 stays 16.0 in a registry path', () => {

            const outlook = all.find((test) => test.atomic_guid === '7a91ad51-e6d2-4d43-9471-f26362f5738e')!;
            expect(outlook.input_arguments.outlook_version).to.equal({ description: 'Version of Outlook that is installed', type: 'float', default: '16.0' });
            expect(outlook.executor.command).to.contain('HKCU\\Software\\Microsoft\\Office\\#{outlook_version}\\Outlook');

            const types = internals.count(all, (test) => Object.values(test.input_arguments).map((argument) => argument.type));
            expect(types).to.equal({ path: 673, string: 1312, url: 90, integer: 54, float: 1 });

            for (const test of all) {
                for (const argument of Object.values(test.input_arguments)) {
                    expect(argument.default === null || typeof argument.default === 'string').to.be.true();
                }
            }
        });

        it('reads a manual test as steps without a command', () => {

            const manual = all.find((test) => test.atomic_guid === 'dea6c349-f1c6-44f3-87a1-1ed33a59a607')!;
            expect(manual.technique_id).to.equal('T1003.001');
            expect(manual.executor.name).to.equal('manual');
            expect(manual.executor.command).to.be.null();
            expect(manual.executor.steps!.startsWith('1. Open Task Manager:')).to.be.true();
            expect(manual.executor.elevation_required).to.be.false();
        });

        it('maps a cloud test to IaaS', () => {

            const s3 = all.find((test) => test.atomic_guid === '979356b9-b588-4e49-bba4-c35517c484f5')!;
            expect(s3.technique_id).to.equal('T1530');
            expect(s3.platforms).to.equal(['IaaS']);
            expect(s3.atomic_platforms).to.equal(['iaas:aws']);
        });

        describe('on a folder of its own', () => {

            let root: string;

            before(async () => {

                root = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-atomics-'));
            });

            after(async () => {

                await Fs.promises.rm(root, { recursive: true, force: true });
            });

            // Writes `<id>/<id>.yaml` files from the minimal test, under a new folder
            const folder = async (files: { folder: string; technique: string; guid: string }[]): Promise<string> => {

                const dir = await Fs.promises.mkdtemp(Path.join(root, 'atomics-'));
                for (const file of files) {
                    await Fs.promises.mkdir(Path.join(dir, file.folder));
                    const text = internals.document(internals.minimalTest)
                        .replace('T1059.001', file.technique)
                        .replace('11111111-2222-4333-8444-555555555555', file.guid);

                    await Fs.promises.writeFile(Path.join(dir, file.folder, `${file.folder}.yaml`), text);
                }

                return dir;
            };

            const techniques = async (dir: string): Promise<string[]> => {

                const ids: string[] = [];
                for await (const test of parseAtomicsDirectory(dir)) {
                    ids.push(test.technique_id);
                }

                return ids;
            };

            it('walks only T* folders, in id order', async () => {

                const dir = await folder([
                    { folder: 'T1059.001', technique: 'T1059.001', guid: Crypto.randomUUID() },
                    { folder: 'T1003', technique: 'T1003', guid: Crypto.randomUUID() }
                ]);

                await Fs.promises.mkdir(Path.join(dir, 'Indexes'));
                await Fs.promises.writeFile(Path.join(dir, 'README.md'), '# not a technique');

                expect(await techniques(dir)).to.equal(['T1003', 'T1059.001']);
            });

            it('refuses a file whose technique differs from its folder', async () => {

                const dir = await folder([{ folder: 'T1005', technique: 'T1059.001', guid: Crypto.randomUUID() }]);
                await expect(techniques(dir)).to.reject(AtomicFormatError, /T1005\.yaml: \$\.attack_technique: expected T1005/);
            });

            it('refuses a GUID used twice across files', async () => {

                const guid = Crypto.randomUUID();
                const dir = await folder([
                    { folder: 'T1003', technique: 'T1003', guid },
                    { folder: 'T1006', technique: 'T1006', guid }
                ]);

                await expect(techniques(dir)).to.reject(AtomicFormatError, new RegExp(`T1006\\.yaml: \\$\\.atomic_tests\\[0\\]\\.auto_generated_guid: ${guid} is already used`));
            });
        });
    });

    describe('parseAtomicFile()', () => {

        it('refuses a file over 1 MiB before reading it', async () => {

            const dir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-atomic-big-'));
            const file = Path.join(dir, 'T1000.yaml');
            await Fs.promises.writeFile(file, Buffer.alloc(1024 * 1024 + 1, 0x20));
            await expect(parseAtomicFile(file)).to.reject(AtomicFormatError, /larger than 1048576 bytes/);
            await Fs.promises.rm(dir, { recursive: true, force: true });
        });

        it('parses one technique file', async () => {

            const tests = await parseAtomicFile(Path.join(internals.atomics, 'T1003.001', 'T1003.001.yaml'));
            expect(tests.length).to.equal(all.filter((test) => test.technique_id === 'T1003.001').length);
            expect(tests[0]!.name).to.equal('Dump LSASS.exe Memory using ProcDump');
        });
    });

    describe('parseAtomicDocument()', () => {

        it('refuses YAML tags outside the core schema and aliases', () => {

            expect(() => parseAtomicDocument(internals.document(internals.minimalTest.replace('command: Get-Process', 'command: !!js/function "function () {}"')), 'x.yaml')).to.throw(AtomicFormatError, /^x\.yaml: \$: unknown scalar tag/);
            expect(() => parseAtomicDocument(internals.document(internals.minimalTest.replace('description: A test.', 'description: &d A test.\n  name2: *d')), 'x.yaml')).to.throw(AtomicFormatError, /maxAliases/);
            expect(() => parseAtomicDocument('a: [unclosed', 'x.yaml')).to.throw(AtomicFormatError);
        });

        it('names the file and the path of a malformed field', () => {

            const cases: [string, RegExp][] = [
                [internals.minimalTest.replace('  - windows', '  - amiga'), /x\.yaml: \$\.atomic_tests\[0\]\.supported_platforms\[0\]: unknown platform "amiga"/],
                [internals.minimalTest.replace('11111111-2222-4333-8444-555555555555', 'not-a-guid'), /\$\.atomic_tests\[0\]\.auto_generated_guid: expected a UUID/],
                [internals.minimalTest.replace('name: powershell', 'name: python'), /\$\.atomic_tests\[0\]\.executor\.name: unknown executor "python"/],
                [internals.minimalTest.replace('command: Get-Process', 'command: ""'), /\$\.atomic_tests\[0\]\.executor\.command: expected a non-empty string/],
                [internals.minimalTest.replace('command: Get-Process', 'command: x\n    elevation_required: maybe'), /elevation_required: expected true or false/],
                [`${internals.minimalTest}\n  input_arguments:\n    __proto__:\n      description: d\n      type: string\n      default: x`, /input_arguments\.__proto__: invalid argument name/],
                [`${internals.minimalTest}\n  input_arguments:\n    list:\n      description: d\n      type: string\n      default: [1, 2]`, /input_arguments\.list\.default: expected a scalar/],
                ['  not a list', /\$\.atomic_tests: expected a list/]
            ];

            for (const [test, message] of cases) {
                const err = expect(() => parseAtomicDocument(internals.document(test), 'x.yaml')).to.throw(AtomicFormatError, message);
                expect(err.code).to.equal('atomic_format');
            }

            expect(() => parseAtomicDocument('attack_technique: X1\natomic_tests: []', 'y.yaml')).to.throw(AtomicFormatError, /y\.yaml: \$\.attack_technique: expected a technique id, got "X1"/);
            expect(() => parseAtomicDocument('- a list', 'z.yaml')).to.throw(AtomicFormatError, /z\.yaml: \$: expected a mapping/);
        });

        it('accepts optional parts left out or empty', () => {

            const extra = [
                '    cleanup_command:',
                '    elevation_required: false',
                '  input_arguments:',
                '    flag:',
                '      description: d',
                '      type: Integer',
                '      default: true',
                '    empty:',
                '      description: d',
                '      type: String',
                '      default:',
                '  dependencies:',
                '  - description: d',
                '    prereq_command: exit 0',
                '    get_prereq_command: ""'
            ];

            const [test] = parseAtomicDocument(internals.document(`${internals.minimalTest}\n${extra.join('\n')}`), 'x.yaml');
            expect(test).to.equal({
                technique_id: 'T1059.001',
                atomic_guid: '11111111-2222-4333-8444-555555555555',
                name: 'Minimal',
                description: 'A test.',
                platforms: ['Windows'],
                atomic_platforms: ['windows'],
                executor: { name: 'powershell', command: 'Get-Process', steps: null, elevation_required: false, cleanup_command: null },
                input_arguments: {
                    flag: { description: 'd', type: 'integer', default: 'true' },
                    empty: { description: 'd', type: 'string', default: null }
                },
                dependency_executor_name: null,
                dependencies: [{ description: 'd', prereq_command: 'exit 0', get_prereq_command: null }]
            });
        });
    });
});
