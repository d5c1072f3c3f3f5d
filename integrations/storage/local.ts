import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Path from 'path';
import { Writable, type Readable } from 'stream';
import { pipeline } from 'stream/promises';

import {
    assertValidKey,
    assertValidPrefix,
    ObjectNotFoundError,
    ObjectSizeMismatchError,
    type ObjectListing,
    type ObjectStat,
    type ObjectStore,
    type PutOptions
} from './object-store';


const internals = {
    tempDir: '.tmp',
    defaultTempMaxAgeMs: 24 * 60 * 60 * 1000,
    defaultSyncEveryBytes: 8 * 1024 * 1024,
    writeBufferBytes: 1024 * 1024,                      // what the writer may hold while a write is on its way
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
    syncEveryBytes?: number;                            // write-behind flush interval (0: flush only at the end)
}


// Writes a new file and flushes it to disk before it finishes. Write-behind: every `syncEvery` bytes a datasync of
// what is written so far starts in the background (one at a time) while writing goes on, so the disk works while the
// bytes still stream in and the final fsync only waits for the last stretch, not for the whole object. Buffered
// chunks go out in one writev. Counts the bytes and, when a size was declared, fails as soon as the body is longer,
// or at the end when it is shorter (as ByteCounter does), before the file is flushed.
class DurableFileWriter extends Writable {

    bytes = 0;
    private handle: Fs.promises.FileHandle | undefined;
    private unsynced = 0;
    private syncing: Promise<void> | null = null;
    private syncError: Error | null = null;

    constructor(private readonly path: string, private readonly expected: number | undefined, private readonly syncEvery: number) {

        super({ highWaterMark: internals.writeBufferBytes });
    }

    override _construct(callback: (error?: Error | null) => void): void {

        Fs.promises.open(this.path, 'wx').then((handle) => {

            this.handle = handle;
            callback();
        }, callback);
    }

    override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {

        this.writeAll([chunk]).then(() => callback(), callback);
    }

    override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {

        this.writeAll(chunks.map((item) => item.chunk)).then(() => callback(), callback);
    }

    override _final(callback: (error?: Error | null) => void): void {

        if (this.expected !== undefined &&
            this.bytes !== this.expected) {

            return callback(new ObjectSizeMismatchError(this.expected, this.bytes));
        }

        this.settle().then(() => this.handle!.sync()).then(() => callback(), callback);
    }

    override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {

        // A background datasync still holds the descriptor: close it once that is done
        const handle = this.handle;
        this.handle = undefined;
        Promise.resolve(this.syncing)
            .then(() => handle?.close())
            .then(() => callback(error), (err: Error) => callback(error ?? err));
    }

    private async writeAll(buffers: Buffer[]): Promise<void> {

        const length = buffers.reduce((total, buffer) => total + buffer.length, 0);
        if (this.expected !== undefined &&
            this.bytes + length > this.expected) {

            throw new ObjectSizeMismatchError(this.expected, this.bytes + length);
        }

        if (this.syncError) {
            throw this.syncError;
        }

        const { bytesWritten } = await this.handle!.writev(buffers);
        if (bytesWritten !== length) {
            throw new Error(`Short write: ${bytesWritten} of ${length} bytes`);
        }

        this.bytes += length;
        this.unsynced += length;
        if (this.syncEvery > 0 &&
            this.unsynced >= this.syncEvery &&
            !this.syncing) {

            this.unsynced = 0;
            this.syncing = this.handle!.datasync().then(() => {

                this.syncing = null;
            }, (err: Error) => {

                this.syncing = null;
                this.syncError ??= err;
            });
        }
    }

    private async settle(): Promise<void> {

        await this.syncing;
        if (this.syncError) {
            throw this.syncError;
        }
    }
}


// Objects are plain files under `root`, one per key. A write goes to `root/.tmp` (same filesystem), is flushed to
// disk, then renamed over its final path: readers see the whole old object or the whole new one, never a part.
// Keys cannot start a segment with a dot, so `.tmp` never collides with a key.
export class LocalFileStore implements ObjectStore {

    readonly driver = 'local';
    readonly root: string;
    private readonly tempRoot: string;
    private readonly tempMaxAgeMs: number;
    private readonly syncEveryBytes: number;

    constructor(options: LocalFileStoreOptions) {

        this.root = Path.resolve(options.root);
        this.tempRoot = Path.join(this.root, internals.tempDir);
        this.tempMaxAgeMs = options.tempMaxAgeMs ?? internals.defaultTempMaxAgeMs;
        this.syncEveryBytes = options.syncEveryBytes ?? internals.defaultSyncEveryBytes;
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

        let writer: DurableFileWriter | undefined;
        try {
            await Fs.promises.mkdir(this.tempRoot, { recursive: true });
            writer = new DurableFileWriter(temp, options.size, this.syncEveryBytes);
            await pipeline(body, writer);
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
        return { size: writer.bytes };
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

