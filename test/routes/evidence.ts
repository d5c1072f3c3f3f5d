import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';
import { Readable as ReadableFrom, type Readable } from 'stream';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
// @ts-expect-error -- s3rver ships no type declarations
import S3rver from 's3rver';

import { createObjectStore, LocalFileStore, type ObjectStore, type PutOptions } from '../../integrations/storage';
import { Evidence, TestTimelineEntry } from '../../server/models';
import { systemActor, type Role } from '../../server/policy';
import { createKnex } from '../../server/db';
import { NotFoundError } from '../../server/errors';
import { EvidenceService } from '../../server/services/evidence';
import { TestsService } from '../../server/services/tests';

import { json, multipartForm, technique, testRow } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    mib: 1024 * 1024,
    limit: 6 * 1024 * 1024,

    png: (size: number) => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Crypto.randomBytes(size - 8)]),

    form: multipartForm,

    keys: async (store: ObjectStore, prefix: string) => {

        const keys: string[] = [];
        for await (const object of store.list(prefix)) {
            keys.push(object.key);
        }

        return keys;
    },

    sha256: (data: Buffer) => Crypto.createHash('sha256').update(data).digest('hex')
};


const drivers = ['local', 's3'] as const;

for (const driver of drivers) {
    describe(`Evidence routes (${driver} storage)`, () => {

        let context: TestContext;
        let store: ObjectStore;
        let s3: { close(): Promise<void> } | undefined;
        let s3Dir: string | undefined;

        const upload = (role: Role, testId: string, fields: Record<string, string>, file?: { name: string; data: Buffer }) => context.server.inject({ method: 'POST', url: `/api/v1/tests/${testId}/evidence`, auth: context.as(role), ...internals.form(fields, file) });

        before(async () => {

            const env: Record<string, string> = { UPLOAD_MAX_BYTES: String(internals.limit), AEGIS_DATA_DIR: await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-evidence-')) };
            if (driver === 's3') {
                s3Dir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-s3rver-'));
                const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: s3Dir });
                const { port } = await server.run();
                s3 = server;
                Object.assign(env, { S3_ENDPOINT: '127.0.0.1', S3_PORT: String(port), S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER', S3_BUCKET: 'aegis-evidence', S3_PART_SIZE: String(16 * internals.mib) });
            }

            context = await init({ redis: false, env });
            store = createObjectStore(context.config.storage as never);
            await store.init();
            await technique(context.knex);
        });

        after(async () => {

            await context.stop();
            await s3?.close();
            if (s3Dir) {
                await Fs.promises.rm(s3Dir, { recursive: true, force: true });
            }
        });

        it('streams an upload to storage and back byte for byte, with its SHA-256, sniffed type, sanitised name, timeline and audit rows', async () => {

            const test = await testRow(context.knex, { state: 'red_executing' });
            const data = internals.png(3 * internals.mib + 123);
            const res = await upload('red_tech', test.id, { team: 'red', description: 'Screenshot of the shell' }, { name: '../../etc/evil<1>.png', data });
            expect(res.statusCode, res.payload).to.equal(201);
            const created = json(res);
            expect(created).to.equal({
                id: created.id, test_id: test.id, team: 'red', original_name: 'evil_1_.png', content_type: 'image/png', size: data.length,
                sha256: internals.sha256(data), description: 'Screenshot of the shell', uploaded_by: context.users.red_tech.id,
                created_at: created.created_at, updated_at: created.updated_at
            });

            const row = await Evidence.query(context.knex).findById(created.id);
            expect(row!.storage_key).to.match(new RegExp(`^evidence/${test.id}/[0-9a-f-]{36}$`));
            expect(await store.exists(row!.storage_key)).to.be.true();

            const download = await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${created.id}/download`, auth: context.as('viewer') });
            expect(download.statusCode).to.equal(200);
            expect(download.rawPayload.equals(data)).to.be.true();
            expect(download.headers['content-type']).to.equal('image/png');
            expect(download.headers['content-disposition']).to.equal('attachment; filename="evil_1_.png"; filename*=UTF-8\'\'evil_1_.png');
            expect(download.headers['x-content-type-options']).to.equal('nosniff');
            expect(await context.knex('audit_logs').where({ action: 'evidence.download', entity_id: created.id, actor_id: context.users.viewer.id }).first()).to.exist();
            expect(await context.knex('audit_logs').where({ action: 'evidence.upload', entity_id: created.id }).first()).to.exist();
            expect((await TestTimelineEntry.query(context.knex).where({ test_id: test.id, action: 'evidence-add' })).length).to.equal(1);

            const list = await context.server.inject({ method: 'GET', url: `/api/v1/tests/${test.id}/evidence`, auth: context.as('blue_tech') });
            expect(json(list)).to.include({ total: 1 });
            expect(json(list).items[0].sha256).to.equal(internals.sha256(data));
            const meta = await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${created.id}`, auth: context.as('viewer') });
            expect(json(meta)).to.equal(created);
        });

        it('keeps a non-ASCII name for the download and answers text with its charset', async () => {

            const test = await testRow(context.knex, { state: 'blue_evaluating' });
            const data = Buffer.from('4624 An account was successfully logged on\n'.repeat(1000));
            const res = await upload('blue_lead', test.id, { team: 'blue' }, { name: 'journal d’évènements.log', data });
            expect(res.statusCode, res.payload).to.equal(201);
            expect(json(res)).to.include({ content_type: 'text/plain; charset=utf-8', original_name: 'journal d’évènements.log' });
            const download = await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${json(res).id}/download`, auth: context.as('red_tech') });
            expect(download.rawPayload.equals(data)).to.be.true();
            expect(download.headers['content-disposition']).to.equal('attachment; filename="journal d_evenements.log"; filename*=UTF-8\'\'journal%20d%E2%80%99%C3%A9v%C3%A8nements.log');
        });

        it('applies the team, role and state rules of the table', async () => {

            const red = await testRow(context.knex, { state: 'red_executing' });
            const file = { name: 'a.png', data: internals.png(1000) };
            expect((await upload('blue_tech', red.id, { team: 'red' }, file)).statusCode).to.equal(403);
            expect((await upload('red_tech', red.id, { team: 'blue' }, file)).statusCode).to.equal(403);
            expect((await upload('viewer', red.id, { team: 'red' }, file)).statusCode).to.equal(403);
            const wrongState = await upload('blue_tech', red.id, { team: 'blue' }, file);
            expect(wrongState.statusCode).to.equal(409);
            expect(json(wrongState).code).to.equal('invalid_state_transition');
            for (const state of ['draft', 'blue_evaluating', 'in_review', 'validated', 'rejected'] as const) {
                const test = await testRow(context.knex, { state });
                expect((await upload('admin', test.id, { team: 'red' }, file)).statusCode, state).to.equal(409);
            }

            expect((await upload('admin', red.id, { team: 'red' }, file)).statusCode).to.equal(201);
            expect((await upload('red_lead', red.id, { team: 'red' }, file)).statusCode).to.equal(201);
            expect(await internals.keys(store, `evidence/${red.id}/`)).to.have.length(2);
        });

        it('answers 413 over the size limit, 415 for a refused type, 400 for an empty file or a bad form, storing nothing', async () => {

            const test = await testRow(context.knex, { state: 'red_executing' });
            const big = await upload('red_tech', test.id, { team: 'red' }, { name: 'big.png', data: internals.png(internals.limit + 1) });
            expect(big.statusCode).to.equal(413);
            const exact = await upload('red_tech', test.id, { team: 'red' }, { name: 'exact.png', data: internals.png(internals.limit) });
            expect(exact.statusCode).to.equal(201);

            const elf = await upload('red_tech', test.id, { team: 'red' }, { name: 'implant.png', data: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Crypto.randomBytes(100)]) });
            expect(elf.statusCode).to.equal(415);
            const html = await upload('red_tech', test.id, { team: 'red' }, { name: 'page.txt', data: Buffer.from('<html><script>alert(1)</script></html>') });
            expect(html.statusCode).to.equal(415);

            // The name may not contradict the bytes, nor be one a desktop opens actively; text keeps its own extension
            expect((await upload('red_tech', test.id, { team: 'red' }, { name: 'report.pdf', data: internals.png(100) })).statusCode).to.equal(415);
            expect((await upload('red_tech', test.id, { team: 'red' }, { name: 'notes.html', data: Buffer.from('plain words') })).statusCode).to.equal(415);
            expect((await upload('red_tech', test.id, { team: 'red' }, { name: 'run.exe', data: Buffer.from('plain words') })).statusCode).to.equal(415);
            expect((await upload('red_tech', test.id, { team: 'red' }, { name: 'notes.md', data: Buffer.from('# plain words') })).statusCode).to.equal(201);
            expect((await upload('red_tech', test.id, { team: 'red' }, { name: 'screenshot', data: internals.png(100) })).statusCode).to.equal(201);

            expect((await upload('red_tech', test.id, { team: 'red' }, { name: 'empty.png', data: Buffer.alloc(0) })).statusCode).to.equal(400);
            expect(json(await upload('red_tech', test.id, {}, { name: 'a.png', data: internals.png(100) }))).to.include({ fields: ['team'] });
            expect((await upload('red_tech', test.id, { team: 'purple' }, { name: 'a.png', data: internals.png(100) })).statusCode).to.equal(400);
            expect((await upload('red_tech', test.id, { team: 'red' })).statusCode).to.equal(400);
            const json415 = await context.server.inject({ method: 'POST', url: `/api/v1/tests/${test.id}/evidence`, auth: context.as('red_tech'), payload: { team: 'red' } });
            expect(json415.statusCode).to.equal(415);

            // A field after the file is refused rather than silently ignored
            const late = internals.form({}, { name: 'a.png', data: internals.png(100) });
            const payload = Buffer.concat([late.payload.subarray(0, late.payload.length - 2 - late.headers['content-type'].split('=')[1]!.length - 4), Buffer.from(`--${late.headers['content-type'].split('=')[1]}\r\nContent-Disposition: form-data; name="team"\r\n\r\nred\r\n--${late.headers['content-type'].split('=')[1]}--\r\n`)]);
            expect((await context.server.inject({ method: 'POST', url: `/api/v1/tests/${test.id}/evidence`, auth: context.as('red_tech'), payload, headers: late.headers })).statusCode).to.equal(400);

            expect(await internals.keys(store, `evidence/${test.id}/`)).to.have.length(3);
            expect(await Evidence.query(context.knex).where('test_id', test.id).resultSize()).to.equal(3);
        });

        it('deletes: the uploader or a lead, never another technician (403 when they see it, 404 when they do not), never on a validated test (409); the object goes after the commit', async () => {

            const test = await testRow(context.knex, { state: 'red_executing' });
            const first = json(await upload('red_tech', test.id, { team: 'red' }, { name: 'a.png', data: internals.png(500) }));
            const second = json(await upload('red_tech', test.id, { team: 'red' }, { name: 'b.png', data: internals.png(500) }));
            const other = await context.createUser('red_tech');
            const asOther = { strategy: 'jwt-bearer', credentials: { user: other, scope: ['red_tech'], app: {} } };

            // Issue 8: they may read the evidence, they may not delete it
            for (const auth of [asOther, context.as('blue_tech')]) {
                expect((await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${first.id}`, auth })).statusCode).to.equal(200);
                const refused = await context.server.inject({ method: 'DELETE', url: `/api/v1/evidence/${first.id}`, auth });
                expect(refused.statusCode).to.equal(403);
                expect(json(refused)).to.equal({ statusCode: 403, error: 'Forbidden', message: 'Only the uploader or a lead may delete this evidence', code: 'forbidden', request_id: json(refused).request_id });
            }

            // Once the test is restricted, the other technician does not see it: 404, as for evidence that does not exist
            await context.knex('tests').where('id', test.id).update({ data_classification: 'restricted', red_assignee_id: context.users.red_tech.id });
            expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/evidence/${first.id}`, auth: asOther })).statusCode).to.equal(404);
            expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/evidence/${Crypto.randomUUID()}`, auth: asOther })).statusCode).to.equal(404);
            expect(await Evidence.query(context.knex).findById(first.id)).to.exist();
            await context.knex('tests').where('id', test.id).update({ data_classification: 'internal' });
            expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/evidence/${first.id}`, auth: context.as('red_tech') })).statusCode).to.equal(204);
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${first.id}`, auth: context.as('red_tech') })).statusCode).to.equal(404);
            expect((await TestTimelineEntry.query(context.knex).where({ test_id: test.id, action: 'evidence-delete' })).length).to.equal(1);

            await context.knex('tests').where('id', test.id).update({ state: 'validated', timer_started_at: null, detection_outcome: 'alerted', red_approved: true, red_validated_at: new Date(), blue_approved: true, blue_validated_at: new Date(), validated_at: new Date() });
            const frozen = await context.server.inject({ method: 'DELETE', url: `/api/v1/evidence/${second.id}`, auth: context.as('admin') });
            expect(frozen.statusCode).to.equal(409);
            await context.knex('tests').where('id', test.id).update({ state: 'rejected', blue_approved: false, validated_at: null, rejected_at: new Date() });
            expect((await context.server.inject({ method: 'DELETE', url: `/api/v1/evidence/${second.id}`, auth: context.as('blue_lead') })).statusCode).to.equal(204);
            expect(await internals.keys(store, `evidence/${test.id}/`)).to.equal([]);
        });

        it('hides the evidence of restricted and confidential tests from those who may not read the test', async () => {

            const test = await testRow(context.knex, { state: 'red_executing', red_assignee_id: context.users.red_tech.id });
            const created = json(await upload('red_tech', test.id, { team: 'red' }, { name: 'a.png', data: internals.png(500) }));
            await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${test.id}/classification`, auth: context.as('admin'), payload: { data_classification: 'restricted' } });

            for (const role of ['viewer', 'blue_tech'] as const) {
                for (const url of [`/api/v1/evidence/${created.id}`, `/api/v1/evidence/${created.id}/download`, `/api/v1/tests/${test.id}/evidence`]) {
                    expect((await context.server.inject({ method: 'GET', url, auth: context.as(role) })).statusCode, `${role} ${url}`).to.equal(404);
                }
            }

            for (const role of ['red_tech', 'red_lead', 'blue_lead', 'admin'] as const) {
                expect((await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${created.id}`, auth: context.as(role) })).statusCode, role).to.equal(200);
            }

            await context.server.inject({ method: 'PATCH', url: `/api/v1/tests/${test.id}/classification`, auth: context.as('admin'), payload: { data_classification: 'confidential' } });
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${created.id}`, auth: context.as('viewer') })).statusCode).to.equal(404);
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${created.id}`, auth: context.as('blue_tech') })).statusCode).to.equal(200);
        });

        it('leaves neither object nor row when the store fails half-way, and deletes the object when the database write fails', async () => {

            const test = await testRow(context.knex, { state: 'red_executing' });

            // A store whose body breaks after 1 MiB, as a dropped connection to the store would
            const breaking: ObjectStore = Object.assign(Object.create(store), {
                put: (key: string, body: Readable, options: PutOptions) => {

                    const cut = async function* () {

                        let seen = 0;
                        for await (const chunk of body) {
                            seen += (chunk as Buffer).length;
                            if (seen > internals.mib) {
                                throw new Error('connection reset by the store');
                            }

                            yield chunk as Buffer;
                        }
                    };

                    return store.put(key, ReadableFrom.from(cut()), { contentType: options.contentType });
                }
            });

            const broken = new EvidenceService({ knex: context.knex, audit: context.services.audit, tests: context.services.tests, storage: breaking, uploads: { maxBytes: internals.limit, allowedTypes: context.config.uploads.allowedTypes, knownSizeBytes: 0 } });
            const form = internals.form({ team: 'red' }, { name: 'a.png', data: internals.png(3 * internals.mib) });
            const { Readable: ReadableStream } = await import('stream');
            await expect(broken.upload(context.actor('red_tech'), test.id, { contentType: form.headers['content-type'], body: ReadableStream.from([form.payload]) })).to.reject(driver === 'local' ? /connection reset/ : /connection reset|not implemented/);
            expect(await internals.keys(store, `evidence/${test.id}/`)).to.equal([]);
            expect(await Evidence.query(context.knex).where('test_id', test.id).resultSize()).to.equal(0);

            // The object is stored, then the row violates a real constraint (its key is taken): the object goes again
            let storedKey = '';
            const racing: ObjectStore = Object.assign(Object.create(store), {
                put: async (key: string, body: Readable, options: PutOptions) => {

                    const result = await store.put(key, body, options);
                    storedKey = key;
                    await context.knex('evidence').insert({ test_id: test.id, team: 'red', storage_key: key, original_name: 'squatter', content_type: 'image/png', size: 1, sha256: 'x' });
                    return result;
                }
            });

            const failing = new EvidenceService({ knex: context.knex, audit: context.services.audit, tests: context.services.tests, storage: racing, uploads: { maxBytes: internals.limit, allowedTypes: context.config.uploads.allowedTypes, knownSizeBytes: 0 } });
            const again = internals.form({ team: 'red' }, { name: 'a.png', data: internals.png(2000) });
            await expect(failing.upload(context.actor('red_tech'), test.id, { contentType: again.headers['content-type'], body: ReadableStream.from([again.payload]) })).to.reject();
            expect(storedKey).to.not.equal('');
            expect(await store.exists(storedKey)).to.be.false();
            expect((await Evidence.query(context.knex).where('test_id', test.id)).map((row) => row.original_name)).to.equal(['squatter']);
            expect((await TestTimelineEntry.query(context.knex).where('test_id', test.id)).length).to.equal(0);
            await context.knex('evidence').where('test_id', test.id).delete();
        });

        it('leaves neither object, temporary file nor row when the client is cut off half-way through the file, past the sniffed head', async () => {

            const test = await testRow(context.knex, { state: 'red_executing' });
            const form = internals.form({ team: 'red' }, { name: 'cut.png', data: internals.png(4 * internals.mib) });
            const half = form.payload.subarray(0, 2 * internals.mib);
            const body = new ReadableFrom({ read() { } });
            for (let i = 0; i < half.length; i += 64 * 1024) {
                body.push(half.subarray(i, i + 64 * 1024));
            }

            const uploading = context.services.evidence.upload(context.actor('red_tech'), test.id, { contentType: form.headers['content-type'], body });
            setTimeout(() => body.destroy(new Error('socket hang up')), 50);
            await expect(uploading).to.reject('socket hang up');

            expect(await internals.keys(store, `evidence/${test.id}/`)).to.equal([]);
            expect(await Evidence.query(context.knex).where('test_id', test.id).resultSize()).to.equal(0);
            expect((await TestTimelineEntry.query(context.knex).where('test_id', test.id)).length).to.equal(0);
            if (store instanceof LocalFileStore) {
                expect(await Fs.promises.readdir(Path.join(store.root, '.tmp'))).to.equal([]);
            }
        });

        it('answers 503, not 404, when the store fails while the file is read, and when the database fails while its test is checked', async () => {

            const test = await testRow(context.knex, { state: 'red_executing' });
            const created = json(await upload('red_tech', test.id, { team: 'red' }, { name: 'a.png', data: internals.png(500) }));
            const download = () => context.server.inject({ method: 'GET', url: `/api/v1/evidence/${created.id}/download`, auth: context.as('viewer') });
            expect((await download()).statusCode).to.equal(200);

            // A real failure of each store: the file's path loops on itself; the S3 server is gone
            const path = Path.join((context.config.storage as { root: string }).root ?? '', (await Evidence.query(context.knex).findById(created.id))!.storage_key);
            if (driver === 'local') {
                await Fs.promises.rm(path);
                await Fs.promises.symlink(path, path);
            }
            else {
                await s3!.close();
                s3 = undefined;
            }

            const failed = await download();
            expect(failed.statusCode).to.equal(503);
            expect(failed.headers['retry-after']).to.equal('5');
            expect(json(failed)).to.include({ code: 'service_unavailable', message: 'The evidence store is unavailable' });
            expect((await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${created.id}`, auth: context.as('viewer') })).statusCode).to.equal(200);
            if (driver === 'local') {
                await Fs.promises.rm(path);
            }

            // The test's visibility cannot be checked: the evidence is not thereby missing
            const unreachable = createKnex({ url: 'postgres://aegis:aegis@127.0.0.1:1/aegis' });
            try {
                const { audit, events, coverage, notifications } = context.services;
                const tests = new TestsService({ knex: unreachable, audit, events, coverage, notifications });
                const evidence = new EvidenceService({ knex: context.knex, audit: context.services.audit, tests, storage: store, uploads: { maxBytes: internals.limit, allowedTypes: context.config.uploads.allowedTypes, knownSizeBytes: 0 } });
                const err = await expect(evidence.get(context.actor('viewer'), created.id)).to.reject() as Error;
                expect(err).to.not.be.an.instanceof(NotFoundError);
                expect(err.message).to.match(/ECONNREFUSED|connect/);
            }
            finally {
                await unreachable.destroy();
                await context.knex('evidence').where('id', created.id).delete();
            }
        });

        if (driver === 'local') {
            it('refuses malformed and non-multipart bodies, extra files and parts, and a declared length over the limit', async () => {

                const test = await testRow(context.knex, { state: 'red_executing' });
                const url = `/api/v1/tests/${test.id}/evidence`;
                const raw = (payload: string | Buffer, headers: Record<string, string>) => context.server.inject({ method: 'POST', url, auth: context.as('red_tech'), payload, headers });

                expect((await raw('plain bytes', { 'content-type': 'application/octet-stream' })).statusCode).to.equal(415);
                expect((await context.server.inject({ method: 'POST', url, auth: context.as('red_tech') })).statusCode).to.equal(415);
                expect((await raw('x', { 'content-type': 'text/xml' })).statusCode).to.equal(415);
                expect((await raw('x', { 'content-type': 'multipart/form-data' })).statusCode).to.equal(400);
                expect((await raw('--b\r\nContent-Disposition: form-data; name="team"\r\n\r\nred\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG', { 'content-type': 'multipart/form-data; boundary=b' })).statusCode).to.equal(400);
                expect((await raw('garbage without any boundary', { 'content-type': 'multipart/form-data; boundary=b' })).statusCode).to.equal(400);

                const two = internals.form({ team: 'red' }, { name: 'a.png', data: internals.png(100) });
                const boundary = two.headers['content-type'].split('=')[1]!;
                const second = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.png"\r\n\r\nxx\r\n--${boundary}--\r\n`);
                expect((await raw(Buffer.concat([two.payload.subarray(0, two.payload.length - boundary.length - 6), second]), two.headers)).statusCode).to.equal(400);

                const misnamed = internals.form({ team: 'red' }).payload.toString().replace(/--\r\n$/, `\r\nContent-Disposition: form-data; name="attachment"; filename="a.png"\r\n\r\nxx\r\n--${boundary}--\r\n`);
                expect((await raw(misnamed.replace(/----aegis[0-9a-f]+/g, boundary), two.headers)).statusCode).to.equal(400);
                expect((await raw(internals.form({ team: 'red', team2: 'x', description: 'd'.repeat(20_000) }, { name: 'a.png', data: internals.png(100) }).payload, internals.form({}).headers)).statusCode).to.equal(400);
                const duplicate = internals.form({ team: 'red' }, { name: 'a.png', data: internals.png(100) });
                const doubled = duplicate.payload.toString('latin1').replace('name="team"\r\n\r\nred\r\n', 'name="team"\r\n\r\nred\r\n--' + duplicate.headers['content-type'].split('=')[1] + '\r\nContent-Disposition: form-data; name="team"\r\n\r\nblue\r\n');
                expect((await raw(Buffer.from(doubled, 'latin1'), duplicate.headers)).statusCode).to.equal(400);

                const declared = await context.server.inject({ method: 'POST', url, auth: context.as('red_tech'), ...internals.form({ team: 'red' }, { name: 'a.png', data: internals.png(100) }), headers: { ...internals.form({}).headers, 'content-length': String(internals.limit * 2) } });
                expect([400, 413]).to.include(declared.statusCode);
                expect(await internals.keys(store, `evidence/${test.id}/`)).to.equal([]);

                const sorted = await context.server.inject({ method: 'GET', url: `${url}?sort=size&order=desc`, auth: context.as('viewer') });
                expect(json(sorted)).to.include({ total: 0, items: [] });
                expect((await context.server.inject({ method: 'GET', url: `${url}?sort=storage_key`, auth: context.as('viewer') })).statusCode).to.equal(400);
            });

            it('sweeps objects without a row once older than the grace period and reports rows whose object is missing', async () => {

                const test = await testRow(context.knex, { state: 'red_executing' });
                const local = store as LocalFileStore;
                const { Readable: ReadableStream } = await import('stream');
                const orphan = `evidence/${test.id}/${Crypto.randomUUID()}`;
                const young = `evidence/${test.id}/${Crypto.randomUUID()}`;
                await local.put(orphan, ReadableStream.from([Buffer.from('left behind by a crash')]), { contentType: 'text/plain' });
                await local.put(young, ReadableStream.from([Buffer.from('an upload in flight')]), { contentType: 'text/plain' });
                const old = new Date(Date.now() - 2 * 3600_000);
                await Fs.promises.utimes(Path.join((context.config.storage as { root: string }).root, orphan), old, old);

                const kept = json(await upload('red_tech', test.id, { team: 'red' }, { name: 'a.png', data: internals.png(500) }));
                const keptKey = (await Evidence.query(context.knex).findById(kept.id))!.storage_key;
                await Fs.promises.utimes(Path.join((context.config.storage as { root: string }).root, keptKey), old, old);

                const lost = await context.knex('evidence').insert({ test_id: test.id, team: 'red', storage_key: `evidence/${test.id}/${Crypto.randomUUID()}`, original_name: 'lost.png', content_type: 'image/png', size: 1, sha256: 'x', created_at: old }).returning('id');

                const missingDownload = await context.server.inject({ method: 'GET', url: `/api/v1/evidence/${lost[0].id}/download`, auth: context.as('admin') });
                expect(missingDownload.statusCode).to.equal(404);

                const result = await context.services.evidence.sweep(systemActor);
                expect(result.deleted).to.include(orphan);
                expect(result.deleted).to.not.include(young);
                expect(result.deleted).to.not.include(keptKey);
                expect(result.missing).to.include(lost[0].id);
                expect(await store.exists(orphan)).to.be.false();
                expect(await store.exists(young)).to.be.true();
                expect(await store.exists(keptKey)).to.be.true();
                await context.knex('evidence').where('id', lost[0].id).delete();
            });
        }
    });
}
