import * as Fs from 'fs';

import { createRuntime } from '../../server/runtime';
import { systemActor } from '../../server/policy';
import { sigmaLicense } from '../../server/services/detection-rules';

import type { Command } from '.';


// `npm run aegis -- import-sigma <dir> [--queue]`: Sigma rules (a folder of .yml files, searched recursively) into
// detection rules, idempotent on each rule's own id. Malformed files are listed and skipped. --queue hands the import
// to the worker instead.
export const importSigma: Command = {
    description: 'Import Sigma rules from <dir> into detection rules (--queue: let the worker do it)',
    run: async ({ config, logger, args }) => {

        const dir = args.find((arg) => !arg.startsWith('--'));
        if (!dir || !Fs.existsSync(dir) || !Fs.statSync(dir).isDirectory()) {
            process.stderr.write('Usage: npm run aegis -- import-sigma <sigma rules directory> [--queue]\n');
            return 64;
        }

        const runtime = await createRuntime(config, { name: 'aegis-cli', logger });
        try {
            if (args.includes('--queue')) {
                await runtime.agenda.start();
                await runtime.queue.enqueue('detection-rules.import-sigma', { dir: Fs.realpathSync(dir) });
                process.stdout.write('Import queued for the worker\n');
                return 0;
            }

            const result = await runtime.services.detectionRules.importSigma(systemActor, dir);
            for (const skipped of result.skipped) {
                process.stderr.write(`Skipped ${skipped.file}: ${skipped.error}\n`);
            }

            process.stdout.write(`Imported ${result.imported} Sigma rules of ${result.files} files (${result.created} new, ${result.updated} updated, ${result.skipped.length} skipped) covering ${result.techniques} techniques\n`);
            // The Detection Rule License asks that the licence and the authors go with the rules
            process.stdout.write(`Each rule keeps its author and its licence (its own license field, else ${sigmaLicense}), shown with the rule (GET /api/v1/detection-rules/{id})\n`);
            return 0;
        }
        finally {
            await runtime.close();
        }
    }
};
