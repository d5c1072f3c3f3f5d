import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Path from 'path';
import { type Readable } from 'stream';
import { pipeline } from 'stream/promises';

import {
    assertValidKey,
    assertValidPrefix,
    ByteCounter,
    ObjectNotFoundError,
    type ObjectListing,
    type ObjectStat,
    type ObjectStore,
    type PutOptions
} from './object-store';


const internals = {
    tempDir: '.tmp',
    defaultTempMaxAgeMs: 24 * 60 * 60 * 1000,
    missing: new Set(['ENOENT', 'ENOTDIR']),

    isMissing(err: unknown): boolean {

        return internals.missing.has((err as NodeJS.ErrnoException | null)?.code ?? '');
    },

    // Without it a power loss right after the rename may forget the new directory entry.
    async syncDirectory(dir: string): Promise<void> {

        let handle: Fs.promises.FileHandle | undefined;
        try {
            handle = await Fs.promises.open(dir, 'r');
            await handle.sync();
        }
        catch {
            // Some platforms and filesystems refuse fsync on a directory; the rename itself has happened.
        }
        finally {
            await handle?.close();
        }
    },

    async *walk(root: string, dir: string, prefix: string): AsyncGenerator<ObjectListing> {

        let entries: Fs.Dirent[];
        try {
            entries = await Fs.promises.readdir(Path.join(root, ...(dir ? dir.split('/') : [])), { withFileTypes: true });
        }
        catch (err) {
            if (internals.isMissing(err)) {
                return;
            }

            throw err;
        }

        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const entry of entries) {
            if (entry.name.startsWith('.')) {
                continue;
            }

            const key = dir ? `${dir}/${entry.name}` : entry.name;
            if (entry.isDirectory()) {
                if (key.startsWith(prefix) ||
                    prefix.startsWith(`${key}/`)) {

                    yield* internals.walk(root, key, prefix);
                }

                continue;
            }

            if (entry.isFile() &&
                key.startsWith(prefix)) {

                const stat = await Fs.promises.stat(Path.join(root, ...key.split('/'))).catch(() => null);
                if (stat) {
                    yield { key, size: stat.size, lastModified: stat.mtime };
                }
            }
        }
    }
};


export interface LocalFileStoreOptions {
    root: string;
    tempMaxAgeMs?: number;
}


// Objects are plain files under `root`, one per key. A write goes to `root/.tmp` (same filesystem), is flushed to
// disk, then renamed over its final path: readers see the whole old object or the whole new one, never a part.
// Keys cannot start a segment with a dot, so `.tmp` never collides with a key.
export class LocalFileStore implements ObjectStore {

    readonly driver = 'local';
    readonly root: string;
    private readonly tempRoot: string;
    private readonly tempMaxAgeMs: number;

    constructor(options: LocalFileStoreOptions) {

        this.root = Path.resolve(options.root);
        this.tempRoot = Path.join(this.root, internals.tempDir);
        this.tempMaxAgeMs = options.tempMaxAgeMs ?? internals.defaultTempMaxAgeMs;
    }

    // Leftovers of writes interrupted by a crash are removed once old enough that no live process can own them
    // (the API and the worker may share the root).
    async init(): Promise<void> {

        await Fs.promises.mkdir(this.tempRoot, { recursive: true });

        const cutoff = Date.now() - this.tempMaxAgeMs;
        for (const name of await Fs.promises.readdir(this.tempRoot)) {
            const path = Path.join(this.tempRoot, name);
            const stat = await Fs.promises.stat(path).catch(() => null);
            if (stat?.isFile() &&
                stat.mtimeMs < cutoff) {

                await Fs.promises.rm(path, { force: true });
            }
        }
    }

    async put(key: string, body: Readable, options: PutOptions): Promise<{ size: number }> {

        assertValidKey(key);

        const target = this.pathOf(key);
        const temp = Path.join(this.tempRoot, `${Crypto.randomUUID()}.part`);
        const counter = new ByteCounter(options.size);

        let writer: Fs.WriteStream | undefined;
        try {
            await Fs.promises.mkdir(this.tempRoot, { recursive: true });
            writer = Fs.createWriteStream(temp, { flags: 'wx', flush: true });
            await pipeline(body, counter, writer);
            await Fs.promises.mkdir(Path.dirname(target), { recursive: true });
            await Fs.promises.rename(temp, target);
        }
        catch (err) {
            // The stream may still be opening its file when the body fails: let it close first, or the file
            // would appear after the removal
            if (writer && !writer.closed) {
                await new Promise<void>((resolve) => writer!.once('close', () => resolve()).destroy());
            }

            await Fs.promises.rm(temp, { force: true });
            throw err;
        }

        await internals.syncDirectory(Path.dirname(target));
        return { size: counter.bytes };
    }

    async get(key: string): Promise<Readable> {

        assertValidKey(key);

        let handle: Fs.promises.FileHandle;
        try {
            handle = await Fs.promises.open(this.pathOf(key), 'r');
        }
        catch (err) {
            throw internals.isMissing(err) ? new ObjectNotFoundError(key) : err;
        }

        const stat = await handle.stat();
        if (!stat.isFile()) {
            await handle.close();
            throw new ObjectNotFoundError(key);
        }

        return handle.createReadStream();
    }

    async stat(key: string): Promise<ObjectStat | null> {

        assertValidKey(key);

        try {
            const stat = await Fs.promises.stat(this.pathOf(key));
            return stat.isFile() ? { size: stat.size, lastModified: stat.mtime } : null;
        }
        catch (err) {
            if (internals.isMissing(err)) {
                return null;
            }

            throw err;
        }
    }

    async exists(key: string): Promise<boolean> {

        return (await this.stat(key)) !== null;
    }

    async delete(key: string): Promise<void> {

        assertValidKey(key);

        try {
            await Fs.promises.unlink(this.pathOf(key));
        }
        catch (err) {
            // A key that names a directory (a prefix of other keys) is not an object: nothing to delete.
            const code = (err as NodeJS.ErrnoException).code;
            if (!internals.isMissing(err) &&
                code !== 'EISDIR' &&
                code !== 'EPERM') {

                throw err;
            }
        }
    }

    async *list(prefix: string): AsyncIterable<ObjectListing> {

        assertValidPrefix(prefix);

        const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
        yield* internals.walk(this.root, base, prefix);
    }

    async ping(): Promise<void> {

        await Fs.promises.access(this.tempRoot, Fs.constants.R_OK | Fs.constants.W_OK);
        await Fs.promises.access(this.root, Fs.constants.R_OK | Fs.constants.W_OK);
    }

    private pathOf(key: string): string {

        return Path.join(this.root, ...key.split('/'));
    }
}

