import type { Config } from '../../server/config';
import type { Logger } from '../../server/logger';

import { importAtomics } from './import-atomics';
import { importAttack, importD3fend } from './import-attack';
// scores (issue 12)
import { importCompliance } from './import-compliance';
// detection (issue 11)
import { importSigma } from './import-sigma';


export interface CommandContext {
    config: Config;
    logger: Logger;
    args: string[];
}


export interface Command {
    description: string;
    run: (context: CommandContext) => Promise<number>;
}


// Every operator command, in one explicit list: a command is a file in this folder plus a line here.
export const commands: Record<string, Command> = {
    'import-atomics': importAtomics,
    'import-attack': importAttack,
    'import-d3fend': importD3fend,
    // scores (issue 12)
    'import-compliance': importCompliance,
    // detection (issue 11)
    'import-sigma': importSigma
};
