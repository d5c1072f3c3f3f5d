import { loadConfig } from '../server/config';
import { createLogger } from '../server/logger';

import { commands } from './commands';


// `npm run aegis -- <command> [args]`: operator commands that run the same services as the API and the worker.
const main = async () => {

    const [name, ...args] = process.argv.slice(2);
    const command = name ? commands[name] : undefined;
    if (!command) {
        process.stderr.write(`Usage: npm run aegis -- <command> [args]\n\nCommands:\n${Object.entries(commands).map(([key, item]) => `  ${key.padEnd(20)} ${item.description}`).join('\n')}\n`);
        process.exit(name ? 64 : 0);
    }

    const config = loadConfig();
    const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'aegis-cli', format: config.logFormat });
    const code = await command.run({ config, logger, args });
    process.exit(code);
};


main().catch((err) => {

    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
});
