import * as Fs from 'fs';

import { createRuntime } from '../../server/runtime';
import { systemActor } from '../../server/policy';

import type { Command } from '.';


// `npm run aegis -- import-atomics <dir> [--queue]`: Atomic Red Team atomics (the repository's atomics/ folder) into
// test templates, idempotent on each atomic's GUID. --queue hands the import to the worker instead.
export const importAtomics: Command = {
    description: 'Import Atomic Red Team atomics from <dir> into test templates (--queue: let the worker do it)',
    run: async ({ config, logger, args }) => {

        const dir = args.find((arg) => !arg.startsWith('--'));
        if (!dir || !Fs.existsSync(dir) || !Fs.statSync(dir).isDirectory()) {
            process.stderr.write('Usage: npm run aegis -- import-atomics <atomics directory> [--queue]\n');
            return 64;
        }

        const runtime = await createRuntime(config, { name: 'aegis-cli', logger });
        try {
            if (args.includes('--queue')) {
                await runtime.agenda.start();
                await runtime.queue.enqueue('test-templates.import-atomics', { dir: Fs.realpathSync(dir) });
                process.stdout.write('Import queued for the worker\n');
                return 0;
            }

            const result = await runtime.services.testTemplates.importAtomics(systemActor, dir);
            process.stdout.write(`Imported ${result.imported} atomic tests of ${result.techniques} techniques into test templates\n`);
            return 0;
        }
        finally {
            await runtime.close();
        }
    }
};
