import * as Path from 'path';

import { createRuntime } from '../../server/runtime';
import { systemActor } from '../../server/policy';
import type { ImportProgress } from '../../server/services/attack-import';

import type { Command } from '.';


const internals = {
    // One line on stderr, redrawn in place on a terminal, one line per phase change otherwise
    bar: () => {

        let lastPhase = '';
        return (progress: ImportProgress) => {

            const width = 30;
            const filled = Math.round(progress.percent / 100 * width);
            const label = `${progress.phase}${progress.step ? ` ${progress.step}` : ''}`;
            const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(progress.percent).padStart(3)}% ${label} (${progress.objects} objects)`;
            if (process.stderr.isTTY) {
                process.stderr.write(`\r${line.padEnd(100)}${progress.phase === 'done' ? '\n' : ''}`);
            }
            else if (label !== lastPhase) {
                process.stderr.write(`${line}\n`);
            }

            lastPhase = label;
        };
    }
};


// `npm run aegis -- import-attack <file|url>`: an ATT&CK STIX 2.1 bundle (.json or .json.gz; Enterprise, Mobile or ICS)
export const importAttack: Command = {
    description: 'Import an ATT&CK STIX 2.1 bundle (<file or URL>, .json or .json.gz) into the knowledge base',
    run: async ({ config, logger, args }) => {

        const source = args.find((arg) => !arg.startsWith('--'));
        if (!source) {
            process.stderr.write('Usage: npm run aegis -- import-attack <bundle file or URL>\n');
            return 64;
        }

        const runtime = await createRuntime(config, { name: 'aegis-cli', logger });
        try {
            const input = /^https?:\/\//i.test(source) ? source : Path.resolve(source);
            const result = await runtime.services.attackImport.importAttack(systemActor, input, { onProgress: internals.bar() });
            const written = Object.entries(result.written).filter(([, counts]) => counts.inserted + counts.updated + counts.deleted)
                .map(([table, counts]) => `  ${table}: ${counts.inserted} inserted, ${counts.updated} updated, ${counts.deleted} deleted`);
            process.stdout.write(`ATT&CK ${result.attack_version ?? '(unknown version)'} ${result.domain}: ${result.bundle.techniques} techniques, ${result.bundle.subtechniques} sub-techniques, ${result.bundle.groups} groups, ${result.bundle.relationships} relationships in ${result.duration_ms} ms\n`);
            process.stdout.write(result.changed ? `${written.join('\n')}\n` : 'Nothing changed\n');
            return 0;
        }
        finally {
            await runtime.close();
        }
    }
};


// `npm run aegis -- import-d3fend <file|dir|url>`: D3FEND countermeasures and their ATT&CK mappings, from the ontology
export const importD3fend: Command = {
    description: 'Import D3FEND countermeasures and ATT&CK mappings from the D3FEND ontology (<.ttl or .ttl.gz file, a folder holding one, or URL>)',
    run: async ({ config, logger, args }) => {

        const source = args.find((arg) => !arg.startsWith('--'));
        if (!source) {
            process.stderr.write('Usage: npm run aegis -- import-d3fend <d3fend.ttl(.gz) file, folder or URL>\n');
            return 64;
        }

        const runtime = await createRuntime(config, { name: 'aegis-cli', logger });
        try {
            const result = await runtime.services.attackImport.importD3fend(systemActor, /^https?:\/\//i.test(source) ? source : Path.resolve(source));
            process.stdout.write(`D3FEND ${result.d3fend_version ?? ''}: ${result.countermeasures} countermeasures, ${result.mappings} mappings; ${result.changed} rows changed in ${result.duration_ms} ms\n`);
            return 0;
        }
        finally {
            await runtime.close();
        }
    }
};
