import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Net from 'net';
import * as Os from 'os';
import * as Path from 'path';
import { Readable, Writable } from 'stream';
import { pipeline } from 'stream/promises';

import { expect } from '@hapi/code';
import * as Lab from '@hapi/lab';
// @ts-expect-error -- s3rver ships no type declarations
import S3rver from 's3rver';

import {
    contentDisposition,
    createObjectStore,
    hashingStream,
    InvalidObjectKeyError,
    isValidKey,
    knownContentTypes,
    LocalFileStore,
    ObjectNotFoundError,
    ObjectSizeMismatchError,
    PayloadTooLargeError,
    sanitizeFileName,
    sniffContentType,
    type ObjectStore,
    type SniffedContentType
} from '../../integrations/storage';
import { MinioStore } from '../../integrations/storage/minio';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


interface S3rverServer {
    run(): Promise<{ port: number }>;
    close(): Promise<void>;
}


const internals = {
    mib: 1024 * 1024,
    s3rverCredentials: { accessKey: 'S3RVER', secretKey: 'S3RVER' },

    sha256: (data: Buffer): string => Crypto.createHash('sha256').update(data).digest('hex'),

    chunks(data: Buffer, size = 64 * 1024): Readable {

        const parts: Buffer[] = [];
        for (let i = 0; i < data.length; i += size) {
            parts.push(data.subarray(i, i + size));
        }

        return Readable.from(parts);
    },

    // Emits `bytes` bytes, then fails, as a client connection cut half-way does.
    failing(bytes: number): Readable {

        let sent = false;
        return new Readable({
            read() {

                if (sent) {
                    this.destroy(new Error('connection reset'));
                    return;
                }

                sent = true;
                this.push(Crypto.randomBytes(bytes));
            }
        });
    },

    async read(stream: Readable): Promise<Buffer> {

        const parts: Buffer[] = [];
        for await (const part of stream) {
            parts.push(part as Buffer);
        }

        return Buffer.concat(parts);
    },

    async collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {

        const items: T[] = [];
        for await (const item of iterable) {
            items.push(item);
        }

        return items;
    },

    prefix: (): string => `t/${Crypto.randomUUID()}`,

    unsafeKeys: ['', '/abs', '../x', 'a/../b', 'a/./b', 'a//b', 'a/', '.hidden', 'a/.tmp', 'a b', 'a\\b', 'ü', 'a\u0000b', 'a?b', 'x'.repeat(513)],

    // The same behaviour is required of every driver: the services only know ObjectStore.
    storeSuite(name: string, store: () => ObjectStore): void {

        describe(name, () => {

            it('round-trips a few MB byte for byte', async () => {

                const data = Crypto.randomBytes(3 * internals.mib + 17);
                const key = `${internals.prefix()}/evidence.bin`;

                const put = await store().put(key, internals.chunks(data), { size: data.length, contentType: 'application/octet-stream' });
                expect(put).to.equal({ size: data.length });

                const back = await internals.read(await store().get(key));
                expect(back.length).to.equal(data.length);
                expect(internals.sha256(back)).to.equal(internals.sha256(data));
            });

            it('reports stat and exists, and forgets a deleted object', async () => {

                const key = `${internals.prefix()}/a.txt`;
                expect(await store().stat(key)).to.be.null();
                expect(await store().exists(key)).to.be.false();

                await store().put(key, Readable.from([Buffer.from('hello')]), { size: 5, contentType: 'text/plain' });
                const stat = await store().stat(key);
                expect(stat!.size).to.equal(5);
                expect(stat!.lastModified).to.be.a.date();
                expect(await store().exists(key)).to.be.true();

                await store().delete(key);
                expect(await store().exists(key)).to.be.false();
                await expect(store().get(key)).to.reject(ObjectNotFoundError);
            });

            it('deletes a missing object without error', async () => {

                await expect(store().delete(`${internals.prefix()}/never`)).to.not.reject();
            });

            it('answers object_not_found when reading a missing object', async () => {

                const err = await expect(store().get(`${internals.prefix()}/missing`)).to.reject(ObjectNotFoundError);
                expect(err.code).to.equal('object_not_found');
            });

            it('replaces an object as a whole on a second put', async () => {

                const key = `${internals.prefix()}/k`;
                await store().put(key, Readable.from([Buffer.from('first version')]), { size: 13, contentType: 'text/plain' });
                await store().put(key, Readable.from([Buffer.from('second')]), { size: 6, contentType: 'text/plain' });
                expect((await internals.read(await store().get(key))).toString()).to.equal('second');
            });

            it('lists the objects under a prefix with their size and date', async () => {

                const prefix = internals.prefix();
                const keys = [`${prefix}/a/1`, `${prefix}/a/2`, `${prefix}/ab`, `${prefix}/b/1`];
                for (const [i, key] of keys.entries()) {
                    await store().put(key, Readable.from([Buffer.alloc(i + 1)]), { size: i + 1, contentType: 'text/plain' });
                }

                const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key);
                const all = (await internals.collect(store().list(`${prefix}/`))).sort(byKey);
                expect(all.map(({ key, size }) => ({ key, size }))).to.equal(keys.map((key, i) => ({ key, size: i + 1 })));
                for (const item of all) {
                    expect(item.lastModified).to.be.a.date();
                }

                const partial = (await internals.collect(store().list(`${prefix}/a`))).map(({ key }) => key).sort();
                expect(partial).to.equal([`${prefix}/a/1`, `${prefix}/a/2`, `${prefix}/ab`]);

                const folder = (await internals.collect(store().list(`${prefix}/a/`))).map(({ key }) => key).sort();
                expect(folder).to.equal([`${prefix}/a/1`, `${prefix}/a/2`]);

                expect(await internals.collect(store().list(`${prefix}/none/`))).to.equal([]);
            });

            it('rejects unsafe keys on every operation', async () => {

                for (const key of internals.unsafeKeys) {
                    const body = Readable.from([Buffer.from('x')]);
                    const err = await expect(store().put(key, body, { size: 1, contentType: 'text/plain' })).to.reject(InvalidObjectKeyError);
                    expect(err.code).to.equal('invalid_object_key');
                    await expect(store().get(key)).to.reject(InvalidObjectKeyError);
                    await expect(store().stat(key)).to.reject(InvalidObjectKeyError);
                    await expect(store().exists(key)).to.reject(InvalidObjectKeyError);
                    await expect(store().delete(key)).to.reject(InvalidObjectKeyError);
                }

                for (const prefix of ['../', '/', 'a//', '.tmp', 'a/../']) {
                    await expect(internals.collect(store().list(prefix))).to.reject(InvalidObjectKeyError);
                }
            });

            it('leaves no object when the body fails half-way', async () => {

                const key = `${internals.prefix()}/cut`;
                await expect(store().put(key, internals.failing(256 * 1024), { size: 1024 * 1024, contentType: 'application/octet-stream' })).to.reject('connection reset');
                expect(await store().exists(key)).to.be.false();
            });

            it('refuses a body whose length differs from the declared size, and stores nothing', async () => {

                const longer = `${internals.prefix()}/longer`;
                const err = await expect(store().put(longer, Readable.from([Buffer.alloc(10)]), { size: 9, contentType: 'text/plain' })).to.reject(ObjectSizeMismatchError);
                expect(err.code).to.equal('object_size_mismatch');
                expect(await store().exists(longer)).to.be.false();

                const shorter = `${internals.prefix()}/shorter`;
                await expect(store().put(shorter, Readable.from([Buffer.alloc(8)]), { size: 9, contentType: 'text/plain' })).to.reject(ObjectSizeMismatchError);
                expect(await store().exists(shorter)).to.be.false();
            });

            it('stores an empty body declared as empty, and refuses bytes declared as none', async () => {

                const key = `${internals.prefix()}/empty`;
                expect(await store().put(key, Readable.from([]), { size: 0, contentType: 'text/plain' })).to.equal({ size: 0 });
                expect(await store().stat(key)).to.include({ size: 0 });
                expect(await internals.read(await store().get(key))).to.equal(Buffer.alloc(0));

                const lying = `${internals.prefix()}/lying`;
                await expect(store().put(lying, Readable.from([Buffer.from('x')]), { size: 0, contentType: 'text/plain' })).to.reject(ObjectSizeMismatchError);
                expect(await store().exists(lying)).to.be.false();
            });

            it('answers ping', async () => {

                await expect(store().ping()).to.not.reject();
            });
        });
    }
};


describe('integrations/storage', () => {

    describe('LocalFileStore', () => {

        let root: string;
        let local: LocalFileStore;

        before(async () => {

            root = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-local-store-'));
            local = createObjectStore({ driver: 'local', root: Path.join(root, 'objects') }) as LocalFileStore;
            await local.init();
        });

        after(async () => {

            await Fs.promises.rm(root, { recursive: true, force: true });
        });

        internals.storeSuite('shared behaviour', () => local);

        it('streams a body of unknown size', async () => {

            const data = Crypto.randomBytes(5 * internals.mib);
            const key = `${internals.prefix()}/unknown-size`;
            expect(await local.put(key, internals.chunks(data), { contentType: 'application/octet-stream' })).to.equal({ size: data.length });
            expect(internals.sha256(await internals.read(await local.get(key)))).to.equal(internals.sha256(data));
        });

        it('keeps a failed write out of the final path and cleans its temporary file', async () => {

            const key = `${internals.prefix()}/cut`;
            await expect(local.put(key, internals.failing(512 * 1024), { contentType: 'application/octet-stream' })).to.reject('connection reset');

            expect(Fs.existsSync(Path.join(local.root, ...key.split('/')))).to.be.false();
            expect(await Fs.promises.readdir(Path.join(local.root, '.tmp'))).to.equal([]);
        });

        it('never exposes a half-written object while a write is in flight', async () => {

            const key = `${internals.prefix()}/slow`;
            const body = new Readable({ read() { } });
            body.push(Buffer.alloc(1024, 1));
            const put = local.put(key, body, { size: 2048, contentType: 'application/octet-stream' });

            const tmp = Path.join(local.root, '.tmp');
            while ((await Fs.promises.readdir(tmp)).length === 0) {
                await new Promise((resolve) => setTimeout(resolve, 5));
            }

            expect(await local.exists(key)).to.be.false();
            expect(await internals.collect(local.list(key))).to.equal([]);

            body.push(Buffer.alloc(1024, 2));
            body.push(null);
            expect(await put).to.equal({ size: 2048 });
            expect(await local.stat(key)).to.include({ size: 2048 });
        });

        describe('write-behind flushing', () => {

            // FileHandle is not exported: its prototype is reached through an open handle
            const fileHandlePrototype = async (): Promise<{ datasync: () => Promise<void>; sync: () => Promise<void> }> => {

                const handle = await Fs.promises.open(__filename, 'r');
                await handle.close();
                return Object.getPrototypeOf(handle) as { datasync: () => Promise<void>; sync: () => Promise<void> };
            };

            const spy = async (method: 'datasync' | 'sync', replacement?: () => Promise<void>) => {

                const prototype = await fileHandlePrototype();
                const original = prototype[method];
                const calls = { count: 0, restore: () => (prototype[method] = original) };
                prototype[method] = function (this: unknown) {

                    calls.count++;
                    return replacement ? replacement() : original.call(this);
                };

                return calls;
            };

            it('flushes in the background while the body streams, then once more at the end, byte for byte', async () => {

                const store = new LocalFileStore({ root: Path.join(root, 'behind'), syncEveryBytes: 64 * 1024 });
                await store.init();
                const data = Crypto.randomBytes(2 * internals.mib + 5);
                const key = `${internals.prefix()}/behind.bin`;
                const datasync = await spy('datasync');
                const sync = await spy('sync');
                try {
                    expect(await store.put(key, internals.chunks(data, 16 * 1024), { size: data.length, contentType: 'application/octet-stream' })).to.equal({ size: data.length });
                }
                finally {
                    datasync.restore();
                    sync.restore();
                }

                expect(datasync.count).to.be.at.least(1);       // one at a time: a slow disk may take the whole body in one
                expect(sync.count).to.equal(2);                 // the file, then its folder
                expect(internals.sha256(await internals.read(await store.get(key)))).to.equal(internals.sha256(data));
                expect(await Fs.promises.readdir(Path.join(store.root, '.tmp'))).to.equal([]);
            });

            it('flushes only at the end when syncEveryBytes is 0', async () => {

                const store = new LocalFileStore({ root: Path.join(root, 'at-end'), syncEveryBytes: 0 });
                await store.init();
                const data = Crypto.randomBytes(internals.mib);
                const key = `${internals.prefix()}/end.bin`;
                const datasync = await spy('datasync');
                try {
                    await store.put(key, internals.chunks(data), { contentType: 'application/octet-stream' });
                }
                finally {
                    datasync.restore();
                }

                expect(datasync.count).to.equal(0);
                expect(internals.sha256(await internals.read(await store.get(key)))).to.equal(internals.sha256(data));
            });

            it('fails the write when a background flush fails, and leaves no object and no temporary file', async () => {

                const store = new LocalFileStore({ root: Path.join(root, 'failing-flush'), syncEveryBytes: 64 * 1024 });
                await store.init();
                const key = `${internals.prefix()}/eio.bin`;
                const datasync = await spy('datasync', () => Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
                try {
                    await expect(store.put(key, internals.chunks(Crypto.randomBytes(internals.mib), 16 * 1024), { contentType: 'application/octet-stream' })).to.reject(/EIO/);
                }
                finally {
                    datasync.restore();
                }

                expect(datasync.count).to.be.at.least(1);
                expect(await store.exists(key)).to.be.false();
                expect(await Fs.promises.readdir(Path.join(store.root, '.tmp'))).to.equal([]);
            });

            it('refuses a body longer or shorter than declared while flushing behind', async () => {

                const store = new LocalFileStore({ root: Path.join(root, 'sizes'), syncEveryBytes: 64 * 1024 });
                await store.init();
                const data = Crypto.randomBytes(internals.mib);
                const longer = `${internals.prefix()}/longer`;
                const shorter = `${internals.prefix()}/shorter`;
                const errLonger = await expect(store.put(longer, internals.chunks(data, 16 * 1024), { size: data.length - 1, contentType: 'application/octet-stream' })).to.reject(ObjectSizeMismatchError);
                expect(errLonger.message).to.contain(`declared size of ${data.length - 1} bytes`);
                await expect(store.put(shorter, internals.chunks(data, 16 * 1024), { size: data.length + 1, contentType: 'application/octet-stream' })).to.reject(ObjectSizeMismatchError);

                expect(await store.exists(longer)).to.be.false();
                expect(await store.exists(shorter)).to.be.false();
                expect(await Fs.promises.readdir(Path.join(store.root, '.tmp'))).to.equal([]);
            });
        });

        it('does not list temporary files, and init() sweeps only stale ones', async () => {

            const tmp = Path.join(local.root, '.tmp');
            await Fs.promises.writeFile(Path.join(tmp, 'stale.part'), 'x');
            await Fs.promises.writeFile(Path.join(tmp, 'fresh.part'), 'x');
            const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
            await Fs.promises.utimes(Path.join(tmp, 'stale.part'), old, old);

            const keys = (await internals.collect(local.list(''))).map(({ key }) => key);
            expect(keys.some((key) => key.includes('.part'))).to.be.false();

            await local.init();
            expect(await Fs.promises.readdir(tmp)).to.equal(['fresh.part']);
            await Fs.promises.rm(Path.join(tmp, 'fresh.part'));
        });

        it('treats a key that names a folder of other keys as missing', async () => {

            const prefix = internals.prefix();
            await local.put(`${prefix}/inner/file`, Readable.from([Buffer.from('x')]), { contentType: 'text/plain' });

            expect(await local.stat(`${prefix}/inner`)).to.be.null();
            await expect(local.get(`${prefix}/inner`)).to.reject(ObjectNotFoundError);
            await expect(local.delete(`${prefix}/inner`)).to.not.reject();
            expect(await local.exists(`${prefix}/inner/file`)).to.be.true();
        });

        it('fails ping when the root is gone', async () => {

            const gone = new LocalFileStore({ root: Path.join(root, 'never-created') });
            await expect(gone.ping()).to.reject();
        });
    });

    describe('MinioStore against s3rver', () => {

        let directory: string;
        let server: S3rverServer;
        let port: number;
        let s3: MinioStore;

        const connection = () => ({ endPoint: '127.0.0.1', port, useSSL: false, ...internals.s3rverCredentials });

        before(async () => {

            directory = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-s3rver-'));
            server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory }) as S3rverServer;
            ({ port } = await server.run());

            s3 = createObjectStore({ driver: 's3', ...connection(), bucket: 'aegis-evidence', partSize: 16 * internals.mib }) as MinioStore;
            await s3.init();
        });

        after(async () => {

            await server.close();
            await Fs.promises.rm(directory, { recursive: true, force: true });
        });

        internals.storeSuite('shared behaviour', () => s3);

        it('creates its bucket on init, once', async () => {

            const store = new MinioStore({ ...connection(), bucket: 'created-on-init' });
            expect(await store.client.bucketExists('created-on-init')).to.be.false();
            await expect(store.ping()).to.reject(/does not exist/);

            await store.init();
            await store.init();
            expect(await store.client.bucketExists('created-on-init')).to.be.true();
            await expect(store.ping()).to.not.reject();
        });

        it('keeps the content type', async () => {

            const key = `${internals.prefix()}/report.pdf`;
            await s3.put(key, Readable.from([Buffer.from('%PDF-1.7\n')]), { size: 9, contentType: 'application/pdf' });
            expect(await s3.stat(key)).to.include({ size: 9, contentType: 'application/pdf' });
        });

        it('signs a short-lived download URL that forces an attachment and a fixed type', async () => {

            const key = `${internals.prefix()}/evidence`;
            const data = Crypto.randomBytes(4096);
            await s3.put(key, internals.chunks(data), { size: data.length, contentType: 'application/octet-stream' });

            const url = await s3.presignedGetUrl(key, 60, { filename: 'capture été.pcap', contentType: 'application/vnd.tcpdump.pcap' });
            expect(url).to.contain('X-Amz-Expires=60');

            const res = await fetch(url);
            expect(res.status).to.equal(200);
            expect(res.headers.get('content-disposition')).to.equal(contentDisposition('capture été.pcap'));
            expect(res.headers.get('content-type')).to.equal('application/vnd.tcpdump.pcap');
            expect(internals.sha256(Buffer.from(await res.arrayBuffer()))).to.equal(internals.sha256(data));
        });

        it('reports an unreachable server as an error, never as a missing object', async () => {

            const probe = Net.createServer();
            await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
            const closedPort = (probe.address() as Net.AddressInfo).port;
            await new Promise((resolve) => probe.close(resolve));

            const down = new MinioStore({ ...connection(), port: closedPort, bucket: 'aegis-evidence' });
            await expect(down.stat('a/b')).to.reject(/ECONNREFUSED/);
            await expect(down.get('a/b')).to.reject(/ECONNREFUSED/);
            await expect(down.ping()).to.reject(/ECONNREFUSED/);
        });

        // s3rver answers NotImplemented to multipart uploads, which the client uses for any body above partSize
        // or of unknown size: this is why partSize is configurable (docs/storage.md).
        it('needs the size and an object below partSize against s3rver', async () => {

            const small = new MinioStore({ ...connection(), bucket: 'aegis-evidence', partSize: 5 * internals.mib });
            const data = Crypto.randomBytes(6 * internals.mib);
            const key = `${internals.prefix()}/big`;
            await expect(small.put(key, internals.chunks(data), { size: data.length, contentType: 'application/octet-stream' })).to.reject(/not implemented/);
            await expect(small.put(key, internals.chunks(Buffer.from('x')), { contentType: 'text/plain' })).to.reject(/not implemented/);
            expect(await small.exists(key)).to.be.false();
        });
    });

    describe('isValidKey()', () => {

        it('accepts server-generated keys and refuses anything that could escape or hide', () => {

            for (const key of [`evidence/${Crypto.randomUUID()}/${Crypto.randomUUID()}`, 'reports/2026-01/r_1.pdf', 'a', 'A-b_c.d/e']) {
                expect(isValidKey(key), key).to.be.true();
            }

            for (const key of internals.unsafeKeys) {
                expect(isValidKey(key), key).to.be.false();
            }
        });
    });

    describe('hashingStream()', () => {

        it('passes data through while computing its SHA-256, size and head', async () => {

            const data = Crypto.randomBytes(internals.mib + 3);
            const hashing = hashingStream(2 * internals.mib);
            const out: Buffer[] = [];
            await pipeline(internals.chunks(data, 1000), hashing, new Writable({
                write(chunk: Buffer, encoding, callback) {

                    out.push(chunk);
                    callback();
                }
            }));

            expect(hashing.bytes).to.equal(data.length);
            expect(hashing.sha256).to.equal(internals.sha256(data));
            expect(hashing.head).to.equal(data.subarray(0, 4096));
            expect(Buffer.concat(out)).to.equal(data);
        });

        it('fails with PayloadTooLargeError as soon as the limit is crossed', async () => {

            let pulled = 0;
            const endless = new Readable({
                read() {

                    pulled += 1024;
                    this.push(Buffer.alloc(1024));
                }
            });

            const hashing = hashingStream(10 * 1024);
            const err = await expect(pipeline(endless, hashing, new Writable({ write: (chunk, encoding, callback) => callback() }))).to.reject(PayloadTooLargeError);
            expect(err.code).to.equal('payload_too_large');
            expect(err.limitBytes).to.equal(10 * 1024);
            expect(hashing.bytes).to.equal(10 * 1024);
            expect(pulled).to.be.below(64 * 1024);
            expect(() => hashing.sha256).to.throw();
        });

        it('accepts a body of exactly the limit', async () => {

            const hashing = hashingStream(4);
            await pipeline(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), hashing, new Writable({ write: (chunk, encoding, callback) => callback() }));
            expect(hashing.bytes).to.equal(4);
            expect(hashing.sha256).to.equal(internals.sha256(Buffer.from('abcd')));
        });
    });

    describe('sniffContentType()', () => {

        const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : Buffer.from(part))));

        it('recognises binary formats by their magic bytes', () => {

            const pcapLe = Buffer.alloc(24);
            pcapLe.writeUInt32LE(0xa1b2c3d4, 0);
            pcapLe.writeUInt16LE(2, 4);
            pcapLe.writeUInt16LE(4, 6);
            pcapLe.writeUInt32LE(65535, 16);
            pcapLe.writeUInt32LE(1, 20);

            const pcapBe = Buffer.from(pcapLe);
            pcapBe.writeUInt32BE(0xa1b2c3d4, 0);

            const pcapng = Buffer.alloc(28);
            pcapng.writeUInt32LE(0x0a0d0d0a, 0);
            pcapng.writeUInt32LE(28, 4);
            pcapng.writeUInt32LE(0x1a2b3c4d, 8);

            const cases: [Buffer, string, SniffedContentType][] = [
                [bytes([0x89], 'PNG\r\n\x1a\n', [0, 0, 0, 13], 'IHDR'), 'shot.png', { name: 'png', contentType: 'image/png', extension: 'png' }],
                [bytes([0xff, 0xd8, 0xff, 0xe0, 0, 16], 'JFIF'), 'photo.jpeg', { name: 'jpeg', contentType: 'image/jpeg', extension: 'jpeg' }],
                [bytes([0xff, 0xd8, 0xff, 0xe1]), 'photo', { name: 'jpeg', contentType: 'image/jpeg', extension: 'jpg' }],
                [bytes('GIF89a', [1, 0, 1, 0]), 'anim.gif', { name: 'gif', contentType: 'image/gif', extension: 'gif' }],
                [bytes('RIFF', [36, 0, 0, 0], 'WEBPVP8 '), 'x.webp', { name: 'webp', contentType: 'image/webp', extension: 'webp' }],
                [bytes('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n'), 'report.pdf', { name: 'pdf', contentType: 'application/pdf', extension: 'pdf' }],
                [bytes('PK\x03\x04', [20, 0, 0, 0]), 'logs.zip', { name: 'zip', contentType: 'application/zip', extension: 'zip' }],
                [bytes('PK\x03\x04', [20, 0, 6, 0], '[Content_Types].xml'), 'Findings.DOCX', { name: 'docx', contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', extension: 'docx' }],
                [bytes('PK\x03\x04', [20, 0, 6, 0]), 'sheet.xlsx', { name: 'xlsx', contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', extension: 'xlsx' }],
                [bytes([0x1f, 0x8b, 0x08, 0]), 'logs.tgz', { name: 'gzip', contentType: 'application/gzip', extension: 'tgz' }],
                [bytes([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4]), 'a.7z', { name: '7z', contentType: 'application/x-7z-compressed', extension: '7z' }],
                [pcapLe, 'capture.pcap', { name: 'pcap', contentType: 'application/vnd.tcpdump.pcap', extension: 'pcap' }],
                [pcapBe, 'capture.cap', { name: 'pcap', contentType: 'application/vnd.tcpdump.pcap', extension: 'cap' }],
                [bytes([0x4d, 0x3c, 0xb2, 0xa1, 2, 0]), 'ns.pcap', { name: 'pcap', contentType: 'application/vnd.tcpdump.pcap', extension: 'pcap' }],
                [pcapng, 'capture.pcapng', { name: 'pcapng', contentType: 'application/x-pcapng', extension: 'pcapng' }],
                [bytes('ElfFile\x00', [0, 0, 0, 0]), 'Security.evtx', { name: 'evtx', contentType: 'application/x-ms-evtx', extension: 'evtx' }]
            ];

            for (const [sample, fileName, expected] of cases) {
                expect(sniffContentType(sample, fileName), fileName).to.equal(expected);
            }
        });

        it('recognises the text family, using the name where the bytes cannot tell', () => {

            expect(sniffContentType(Buffer.from('<?xml version="1.0"?>\n<Events><Event/></Events>'), 'export.txt')).to.equal({ name: 'xml', contentType: 'application/xml', extension: 'xml' });
            expect(sniffContentType(Buffer.from('<Events/>'), 'export.xml')).to.equal({ name: 'xml', contentType: 'application/xml', extension: 'xml' });
            expect(sniffContentType(Buffer.from('<Event><Object>x</Object><Body/><Data Name="CommandLine">&lt;script&gt;</Data></Event>'), 'sysmon.xml')).to.equal({ name: 'xml', contentType: 'application/xml', extension: 'xml' });
            expect(sniffContentType(Buffer.from('<Notes>plain</Notes>'), 'notes.txt')).to.equal({ name: 'text', contentType: 'text/plain; charset=utf-8', extension: 'txt' });
            expect(sniffContentType(Buffer.from(' {"alerts": []}'), 'alerts.json')).to.equal({ name: 'json', contentType: 'application/json', extension: 'json' });
            expect(sniffContentType(Buffer.from('host,port\nsrv1,443\n'), 'hosts.csv')).to.equal({ name: 'csv', contentType: 'text/csv; charset=utf-8', extension: 'csv' });
            expect(sniffContentType(Buffer.from('[2026-01-01 10:00] started ✓\n'), 'run.log')).to.equal({ name: 'log', contentType: 'text/plain; charset=utf-8', extension: 'log' });
            expect(sniffContentType(Buffer.from('not json at all\n'), 'run.json')).to.equal({ name: 'text', contentType: 'text/plain; charset=utf-8', extension: 'txt' });
            expect(sniffContentType(Buffer.from('#!/bin/sh\necho pwned\n'), 'payload.sh')).to.equal({ name: 'text', contentType: 'text/plain; charset=utf-8', extension: 'txt' });
            expect(sniffContentType(Buffer.from('GET /?q=<script>alert(1)</script>\n'), 'access.log')).to.equal({ name: 'log', contentType: 'text/plain; charset=utf-8', extension: 'log' });
        });

        it('accepts UTF-16 text with a byte order mark and a sample cut inside a character', () => {

            const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Get-Process lsass\r\n', 'utf16le')]);
            expect(sniffContentType(utf16, 'out.txt')).to.equal({ name: 'text', contentType: 'text/plain; charset=utf-16le', extension: 'txt' });

            const cut = Buffer.from('résumé é').subarray(0, -1);
            expect(sniffContentType(cut, 'notes.txt')).to.equal({ name: 'text', contentType: 'text/plain; charset=utf-8', extension: 'txt' });
        });

        it('refuses executables, binary data, HTML and SVG', () => {

            const elf = bytes([0x7f], 'ELF', [2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0]);
            const pe = bytes('MZ', [0x90, 0, 3, 0, 0, 0, 4, 0]);
            const textElf = Buffer.from('\x7fELF looks like text');

            expect(sniffContentType(elf, 'report.pdf')).to.be.null();
            expect(sniffContentType(pe, 'tool.exe')).to.be.null();
            expect(sniffContentType(textElf, 'a.txt')).to.be.null();
            expect(sniffContentType(bytes([0xca, 0xfe, 0xba, 0xbe]), 'a.class')).to.be.null();
            expect(sniffContentType(Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe]), 'data.bin')).to.be.null();
            expect(sniffContentType(Buffer.from('text with a \u0000 byte'), 'a.txt')).to.be.null();
            expect(sniffContentType(Buffer.from([0xc3, 0x28, 0x41]), 'bad-utf8.txt')).to.be.null();
            expect(sniffContentType(Buffer.alloc(0), 'empty.txt')).to.be.null();
            expect(sniffContentType(Buffer.from('<!DOCTYPE html><html><body>hi</body></html>'), 'page.txt')).to.be.null();
            expect(sniffContentType(Buffer.from('  <html><script>alert(1)</script>'), 'page.html')).to.be.null();
            expect(sniffContentType(Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'), 'a.xml')).to.be.null();
            expect(sniffContentType(Buffer.from('<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><a/>'), 'a.xml')).to.be.null();
            expect(sniffContentType(Buffer.from('<Root><x:html xmlns:x="http://www.w3.org/1999/xhtml"/></Root>'), 'a.xml')).to.be.null();
            expect(sniffContentType(Buffer.from('<div onclick="x()">hi</div>'), 'fragment.txt')).to.be.null();
            expect(sniffContentType(Buffer.from('<!-- note --><p>hi'), 'a.txt')).to.be.null();
            expect(sniffContentType(Buffer.from('<svg onload="x()">'), 'a.svg')).to.be.null();
        });

        it('exports the known types with their names', () => {

            const names = knownContentTypes.map(({ name }) => name);
            expect(names).to.equal(['png', 'jpeg', 'gif', 'webp', 'pdf', 'zip', 'docx', 'xlsx', 'pptx', 'gzip', '7z', 'pcap', 'pcapng', 'evtx', 'xml', 'json', 'csv', 'log', 'text']);
            for (const type of knownContentTypes) {
                expect(type.contentType).to.not.contain('html');
                expect(type.extensions).to.not.be.empty();
            }
        });
    });

    describe('sanitizeFileName()', () => {

        it('strips paths, control and bidi characters and reserved characters', () => {

            expect(sanitizeFileName('../../etc/passwd')).to.equal('passwd');
            expect(sanitizeFileName('C:\\Users\\me\\Desktop\\dump.pcap')).to.equal('dump.pcap');
            expect(sanitizeFileName('a\u202Eexe.pdf')).to.equal('aexe.pdf');
            expect(sanitizeFileName('in\u2066voice\u2069\u200B.txt')).to.equal('invoice.txt');
            expect(sanitizeFileName('line\r\nbreak\u0000.log')).to.equal('linebreak.log');
            expect(sanitizeFileName('what<>:"|?*.txt')).to.equal('what_______.txt');
            expect(sanitizeFileName('  many   spaces  .txt ')).to.equal('many spaces .txt');
            expect(sanitizeFileName('.bashrc')).to.equal('bashrc');
            expect(sanitizeFileName('trailing dots...')).to.equal('trailing dots');
            expect(sanitizeFileName('CON.txt')).to.equal('_CON.txt');
            expect(sanitizeFileName('e\u0301te\u0301.txt')).to.equal('été.txt');
            expect(sanitizeFileName('bad\uD800surrogate.txt')).to.equal('badsurrogate.txt');
        });

        it('never returns an empty name', () => {

            for (const name of ['', '   ', '..', '../', '/', '\u202E', '...', '\u0000']) {
                expect(sanitizeFileName(name), JSON.stringify(name)).to.equal('file');
            }
        });

        it('caps the length at 200 bytes and keeps the extension', () => {

            const long = sanitizeFileName(`${'a'.repeat(300)}.pcapng`);
            expect(long).to.equal(`${'a'.repeat(193)}.pcapng`);

            const wide = sanitizeFileName(`${'日'.repeat(100)}.txt`);
            expect(Buffer.byteLength(wide)).to.be.at.most(200);
            expect(wide).to.equal(`${'日'.repeat(65)}.txt`);

            const emoji = sanitizeFileName('😀'.repeat(60));
            expect(emoji).to.equal('😀'.repeat(50));
        });
    });

    describe('contentDisposition()', () => {

        it('produces an RFC 6266 attachment with an ASCII fallback and the UTF-8 name', () => {

            expect(contentDisposition('report.pdf')).to.equal(`attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
            expect(contentDisposition('capture été.pcap')).to.equal(`attachment; filename="capture ete.pcap"; filename*=UTF-8''capture%20%C3%A9t%C3%A9.pcap`);
            expect(contentDisposition('отчёт (финал).docx')).to.equal(`attachment; filename="_ (_).docx"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82%20%28%D1%84%D0%B8%D0%BD%D0%B0%D0%BB%29.docx`);
            expect(contentDisposition('it\'s 100%.txt')).to.equal(`attachment; filename="it's 100_.txt"; filename*=UTF-8''it%27s%20100%25.txt`);
        });

        it('sanitises the name before encoding it', () => {

            expect(contentDisposition('../../a\u202E"b.txt')).to.equal(`attachment; filename="a_b.txt"; filename*=UTF-8''a_b.txt`);
            expect(contentDisposition('')).to.equal(`attachment; filename="file"; filename*=UTF-8''file`);
        });
    });
});
