import { ConfigError, loadConfig, type Config } from './config';
import type { Logger } from './logger';


// What both process entries share: a configuration or an exit naming the bad variables (EX_CONFIG), one shutdown on
// the first SIGTERM or SIGINT, logs flushed before the exit, and a failed start reported without a stack in the log.

export const configOrExit = (): Readonly<Config> => {

    try {
        return loadConfig();
    }
    catch (err) {
        if (err instanceof ConfigError) {
            process.stderr.write(`${err.message}\n`);
            process.exit(78);
        }

        throw err;
    }
};


export const onShutdown = (logger: Logger, shutdown: (signal: string) => Promise<void>): void => {

    let stopping = false;
    const stop = async (signal: string) => {

        if (stopping) {
            return;
        }

        stopping = true;
        await shutdown(signal);
        await new Promise<void>((resolve) => logger.flush(() => resolve()));
        process.exit(0);
    };

    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
};


export const run = (name: string, main: () => Promise<void>): void => {

    main().catch((err) => {

        process.stderr.write(`${name} failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
    });
};
