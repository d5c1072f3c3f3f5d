import * as ChildProcess from 'child_process';
import * as Path from 'path';

import { startEmbeddedPostgres, type EmbeddedPostgres } from '../integrations/embedded-postgres';
import { apiNodeFlags, ConfigError, defaultLogFormat } from '../server/config';


// `npm start`: the API and the worker as two child processes, on an embedded PostgreSQL unless DATABASE_URL is set.


const internals = {
    entries: {
        api: Path.join(__dirname, '..', 'server', 'index.js'),
        worker: Path.join(__dirname, '..', 'worker', 'index.js')
    },
    drainTimeout: 30_000,
    killTimeout: 5_000,

    log: (message: string): void => {

        console.log(`[aegis] ${message}`);
    },

    exited: (child: ChildProcess.ChildProcess, timeout: number): Promise<boolean> => {

        return new Promise((resolve) => {

            if (child.exitCode !== null || child.signalCode !== null) {
                return resolve(true);
            }

            const onExit = (): void => {

                clearTimeout(timer);
                resolve(true);
            };

            const timer = setTimeout(() => {

                child.off('exit', onExit);
                resolve(false);
            }, timeout);

            child.once('exit', onExit);
        });
    },

    stop: async (name: string, child: ChildProcess.ChildProcess): Promise<void> => {

        child.kill('SIGTERM');
        if (await internals.exited(child, internals.drainTimeout)) {
            return;
        }

        internals.log(`${name} did not exit within ${internals.drainTimeout} ms: killing it`);
        child.kill('SIGKILL');
        await internals.exited(child, internals.killTimeout);
    }
};


const main = async (): Promise<void> => {

    // The log format is decided once, here, for both children, by this process's stdout: both then log alike whatever
    // their own stdout is
    const env = { ...process.env };
    env.LOG_FORMAT ||= defaultLogFormat(env.NODE_ENV, Boolean(process.stdout.isTTY));
    // The API's heap bound (API_HEAP_MB) is a node flag, so it is given here; the worker keeps V8's default, its ATT&CK
    // import and PDF renders being the large ones
    const nodeFlags: Record<string, string[]> = { api: apiNodeFlags(env), worker: [] };
    const children = new Map<string, ChildProcess.ChildProcess>();
    let stopping: Promise<void> | undefined;

    const database: Promise<EmbeddedPostgres> | undefined = env.DATABASE_URL ? undefined : startEmbeddedPostgres({
        dataDir: env.AEGIS_DATA_DIR || './.data',
        log: (message) => internals.log(`postgres: ${message}`)
    });

    // The children first, so that they drain while the database is still up; then the database.
    const shutdown = (code: number, reason: string): Promise<void> => {

        stopping ??= (async () => {

            internals.log(reason);
            await Promise.all([...children].map(([name, child]) => internals.stop(name, child)));
            const embedded = await database?.catch(() => undefined);
            await embedded?.stop().catch((err: Error) => internals.log(`postgres did not stop cleanly: ${err.message}`));
            process.exit(code);
        })();

        return stopping;
    };

    const onSignal = (signal: NodeJS.Signals): void => {

        if (!stopping) {
            void shutdown(0, `${signal}: stopping`);
            return;
        }

        // A second Ctrl-C does not wait for the drain.
        internals.log(`${signal} again: killing the API and the worker`);
        for (const child of children.values()) {
            child.kill('SIGKILL');
        }
    };

    const start = (name: string, entry: string): void => {

        // Detached: a terminal's Ctrl-C reaches only this process, so each child gets exactly one SIGTERM and drains.
        const child = ChildProcess.spawn(process.execPath, [...nodeFlags[name] ?? [], entry], { env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
        children.set(name, child);
        child.once('error', (err) => {

            void shutdown(1, `the ${name} could not be started: ${err.message}`);
        });

        child.once('exit', (code, signal) => {

            if (!stopping) {
                void shutdown(code || 1, `the ${name} exited unexpectedly (${signal ?? `code ${code}`}): stopping`);
            }
        });
    };

    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        process.on(signal, onSignal);
    }

    // Whatever ends this process, no child outlives it.
    process.on('exit', () => {

        for (const child of children.values()) {
            child.kill('SIGKILL');
        }
    });

    if (database) {
        try {
            env.DATABASE_URL = (await database).url;
        }
        catch (err) {
            return shutdown(1, `the embedded PostgreSQL did not start: ${(err as Error).message}`);
        }
    }

    if (stopping) {
        return;
    }

    for (const [name, entry] of Object.entries(internals.entries)) {
        start(name, entry);
    }
};


main().catch((err: unknown) => {

    if (err instanceof ConfigError) {
        console.error(err.message);
        process.exit(78);
    }

    console.error(err);
    process.exit(1);
});
