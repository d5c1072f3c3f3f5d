import { createRuntime } from '../../server/runtime';
import { systemActor } from '../../server/policy';

import type { Command } from '.';


// `npm run aegis -- import-compliance [dir]`: the Mappings Explorer files of <dir> (default COMPLIANCE_SOURCE) into
// frameworks, controls and mappings, matched to today's techniques; what cannot be matched is counted and listed by
// GET /compliance/frameworks/{id}/unmatched.
export const importCompliance: Command = {
    description: 'Import compliance frameworks and their ATT&CK mappings from <dir> (default COMPLIANCE_SOURCE)',
    run: async ({ config, logger, args }) => {

        const dir = args.find((arg) => !arg.startsWith('--')) ?? config.compliance.source;
        if (!dir) {
            process.stderr.write('Usage: npm run aegis -- import-compliance <folder of mapping files> (or set COMPLIANCE_SOURCE)\n');
            return 64;
        }

        const runtime = await createRuntime(config, { name: 'aegis-cli', logger });
        try {
            const result = await runtime.services.compliance.importFolder(systemActor, dir);
            for (const framework of result.frameworks) {
                process.stdout.write(`${framework.key}: ${framework.controls} controls, ${framework.mappings} mappings (${framework.exact} exact, ${framework.revoked} through a revocation, ${framework.unmatched} unmatched)\n`);
            }

            return 0;
        }
        finally {
            await runtime.close();
        }
    }
};
