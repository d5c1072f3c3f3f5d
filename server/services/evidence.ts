import * as Crypto from 'crypto';
import { finished, Readable } from 'stream';

import type { Knex } from 'knex';

import {
    hashingStream, ObjectNotFoundError, PayloadTooLargeError as StreamTooLarge, sanitizeFileName, sniffContentType, sniffLength, type ObjectStore
} from '../../integrations/storage';
import type { Config } from '../config';
import { ConflictError, ForbiddenError, NotFoundError, PayloadTooLargeError, UnavailableError, UnsupportedMediaTypeError, ValidationError } from '../errors';
import { Evidence, Test } from '../models';
import { ownsOrLead, type Actor } from '../policy';
import { evidenceFields } from '../schemas/evidence';

import type { AuditService } from './audit';
import { appendTimeline } from './changes';
import { page, type ListQuery, type Page } from './lists';
import { readMultipartFile, type MultipartFile } from './multipart';
import { edits, roleAllows } from './test-lifecycle';
import type { TestsService } from './tests';


export interface UploadSettings {
    maxBytes: number;
    allowedTypes: string[];
    // Objects up to this size are read whole before the store is called, so that their size is known (the S3
    // driver then sends one PUT instead of a multipart upload); 0 streams everything straight through
    knownSizeBytes: number;
}

export interface EvidenceDownload {
    evidence: Evidence;
    stream: Readable;
}


// The slice of the configuration the evidence service needs
export const uploadSettings = (config: Pick<Config, 'uploads' | 'storage'>): UploadSettings => ({
    maxBytes: config.uploads.maxBytes,
    allowedTypes: config.uploads.allowedTypes,
    knownSizeBytes: config.storage.driver === 's3' ? config.storage.partSize : 0
});


const internals = {
    formOverhead: 64 * 1024,

    // Reads until `bytes` are buffered or the stream ends; the returned stream gives them again, then the rest
    peek: (stream: Readable, bytes: number): Promise<{ head: Buffer; ended: boolean; body: Readable }> => new Promise((resolve, reject) => {

        // The form may have failed before anyone listened (a body cut short while the test was being loaded)
        if (stream.errored || stream.destroyed) {
            return reject(stream.errored ?? new ValidationError('The upload was interrupted', ['file'], 'upload_aborted'));
        }

        const chunks: Buffer[] = [];
        let length = 0;
        const detach = () => {

            stream.off('readable', onReadable);
            stream.off('end', onEnd);
            stream.off('error', onError);
            stream.off('close', onClose);
        };

        // The head goes back in front of the stream itself (no copy through another stream for the rest of the body);
        // a stream that has ended cannot take it back, so a short body is replayed from the head alone
        const done = (ended: boolean) => {

            detach();
            const head = Buffer.concat(chunks);
            if (ended) {
                return resolve({ head, ended, body: Readable.from([head]) });
            }

            stream.unshift(head);
            resolve({ head, ended, body: stream });
        };

        const onReadable = () => {

            let chunk: Buffer | null;
            while ((chunk = stream.read() as Buffer | null) !== null) {
                chunks.push(chunk);
                length += chunk.length;
                if (length >= bytes) {
                    return done(false);
                }
            }
        };

        const onEnd = () => done(true);
        const onError = (err: Error) => {

            detach();
            reject(err);
        };

        const onClose = () => onError(stream.errored ?? new ValidationError('The upload was interrupted', ['file'], 'upload_aborted'));

        stream.on('readable', onReadable);
        stream.once('end', onEnd);
        stream.once('error', onError);
        stream.once('close', onClose);
    }),

    baseType: (contentType: string) => contentType.split(';')[0]!.trim().toLowerCase(),

    extensionOf: (name: string) => {

        const dot = name.lastIndexOf('.');
        return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
    },

    // Types whose name may carry any extension (notes.md, capture.out): their content is inert text
    textTypes: new Set(['text', 'log', 'csv', 'json', 'xml']),

    // Names a browser renders or a desktop runs when the downloaded file is opened, whatever it contains
    activeExtensions: new Set([
        'html', 'htm', 'xhtml', 'shtml', 'svg', 'svgz', 'xht', 'mht', 'mhtml', 'hta', 'js', 'mjs', 'jse', 'vbs', 'vbe', 'wsf', 'wsh',
        'exe', 'dll', 'scr', 'com', 'pif', 'cpl', 'msi', 'msp', 'bat', 'cmd', 'lnk', 'jar', 'app', 'url', 'desktop', 'reg', 'swf'
    ])
};


export class EvidenceService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; tests: TestsService; storage: ObjectStore; uploads: UploadSettings }) { }

    async list(actor: Actor, testId: string, list: ListQuery): Promise<Page<Evidence>> {

        await this.deps.tests.get(actor, testId);
        return await page(Evidence.query(this.deps.knex).where('test_id', testId), list, { sort: 'created_at', order: 'asc' });
    }

    async get(actor: Actor, id: string): Promise<Evidence> {

        const evidence = await Evidence.query(this.deps.knex).findById(id);
        if (!evidence) {
            throw new NotFoundError('Evidence');
        }

        // Evidence is exactly as visible as its test (classification); a failing database is not a missing test
        await this.deps.tests.get(actor, evidence.test_id).catch((err: Error) => {

            throw err instanceof NotFoundError ? new NotFoundError('Evidence') : err;
        });

        return evidence;
    }

    // SEC-14/15: the file goes under a fresh server key first; the row, its timeline and audit rows commit together
    // afterwards; if anything fails after the object exists, the object is deleted again.
    async upload(actor: Actor, testId: string, request: { contentType: string; contentLength?: number | undefined; body: Readable }): Promise<Evidence> {

        const { uploads } = this.deps;
        if (!/^multipart\/form-data\s*;/i.test(request.contentType)) {
            request.body.resume();
            throw new UnsupportedMediaTypeError('Evidence is uploaded as multipart/form-data');
        }

        // A declared length far beyond the limit is refused before reading (the form's own overhead is small)
        if (request.contentLength !== undefined && request.contentLength > uploads.maxBytes + internals.formOverhead) {
            request.body.resume();
            throw new PayloadTooLargeError(`The file exceeds the limit of ${uploads.maxBytes} bytes`);
        }

        const form = await readMultipartFile(request.body, request.contentType);
        const file = form.stream;
        try {
            return await this.store(actor, testId, form);
        }
        catch (err) {
            // A broken form is the client's error, whatever it broke on the way
            throw form.failure() ?? err;
        }
        finally {
            if (!file.readableEnded) {
                file.resume();
            }
        }
    }

    private async store(actor: Actor, testId: string, form: MultipartFile): Promise<Evidence> {

        const { uploads, storage } = this.deps;
        const file = form.stream;
        const { value: fields, error } = evidenceFields.validate(form.fields, { abortEarly: false });
        if (error) {
            throw new ValidationError(error.message, error.details.map((detail) => detail.path.join('.')), 'validation_failed');
        }

        // Refuse early what the rules refuse anyway, before a byte is stored
        const test = await this.deps.tests.get(actor, testId);
        this.checkUpload(actor, fields.team, test);

        const originalName = sanitizeFileName(form.filename);
        const hashing = hashingStream(uploads.maxBytes);
        const { head, ended, body: replay } = await internals.peek(file, Math.max(sniffLength, uploads.knownSizeBytes));
        if (ended && head.length > uploads.maxBytes) {
            throw new PayloadTooLargeError(`The file exceeds the limit of ${uploads.maxBytes} bytes`);
        }

        if (ended && head.length === 0) {
            throw new ValidationError('The file is empty', ['file'], 'empty_file');
        }

        const sniffed = sniffContentType(head.subarray(0, sniffLength), originalName);
        if (!sniffed || !uploads.allowedTypes.includes(internals.baseType(sniffed.contentType))) {
            throw new UnsupportedMediaTypeError(`This file type is not accepted${sniffed ? ` (${sniffed.name})` : ''}`);
        }

        // SEC-14: the name must not promise another type than the bytes hold, nor one a desktop would run or render
        const extension = internals.extensionOf(originalName);
        if (internals.activeExtensions.has(extension) || (extension && !internals.textTypes.has(sniffed.name) && extension !== sniffed.extension)) {
            throw new UnsupportedMediaTypeError(`The extension .${extension} does not match the content (${sniffed.name})`);
        }

        // One pass: the bytes go through the hashing stream (size limit, SHA-256) straight into the store. The form's
        // stream is piped, not pipelined: a failed store must not destroy it, so that the rest of the request drains
        // and the answer goes out; its own failure (or an early close) fails the hashing stream, hence the store.
        const key = `evidence/${testId}/${Crypto.randomUUID()}`;
        finished(replay, (err) => err && hashing.destroy(err));
        hashing.on('error', () => undefined);           // before the store listens: it finds the error in the stream's state
        replay.pipe(hashing);
        const [put] = await Promise.allSettled([storage.put(key, hashing, { contentType: sniffed.contentType, ...(ended ? { size: head.length } : {}) })]);
        if (put.status === 'rejected') {
            replay.unpipe(hashing);
            await storage.delete(key).catch(() => undefined);
            const err = hashing.errored instanceof StreamTooLarge ? hashing.errored : put.reason;
            throw err instanceof StreamTooLarge ? new PayloadTooLargeError(`The file exceeds the limit of ${uploads.maxBytes} bytes`) : err;
        }

        // Nothing is recorded before the form has ended well (a field after the file, a broken closing boundary)
        await form.finished.catch(async (err) => {

            await storage.delete(key).catch(() => undefined);
            throw err;
        });

        if (hashing.bytes === 0) {
            await storage.delete(key);
            throw new ValidationError('The file is empty', ['file'], 'empty_file');
        }

        try {
            return await this.insert(actor, testId, fields, { key, originalName, contentType: sniffed.contentType, size: hashing.bytes, sha256: hashing.sha256 });
        }
        catch (err) {
            await storage.delete(key).catch(() => undefined);
            throw err;
        }
    }

    async download(actor: Actor, id: string): Promise<EvidenceDownload> {

        const evidence = await this.get(actor, id);
        const stream = await this.deps.storage.get(evidence.storage_key).catch((err: Error) => {

            // A row whose object is gone (the sweeper reports these): the file cannot be served. Any other failure is
            // the store's, and passes: 503, not 404
            if (err instanceof ObjectNotFoundError) {
                throw new NotFoundError('Evidence file', { evidence_id: id });
            }

            throw Object.assign(new UnavailableError('The evidence store is unavailable', 5), { cause: err });
        });

        await this.deps.audit.record(this.deps.knex, actor, { action: 'evidence.download', entity_type: 'evidence', entity_id: id, details: { test_id: evidence.test_id, sha256: evidence.sha256 } });
        return { evidence, stream };
    }

    // The row goes in a transaction; the object only after the commit (a crash in between leaves an orphan object
    // for the sweeper, never a row without its object)
    async remove(actor: Actor, id: string): Promise<void> {

        const evidence = await Evidence.transaction(this.deps.knex, async (trx) => {

            const row = await Evidence.query(trx).findById(id).forUpdate();
            const test = row ? await Test.query(trx).findById(row.test_id).modify('visibleTo', actor).forUpdate() : undefined;

            // What the actor may not see answers like a missing one (SEC-05); what they see but may not delete, 403
            if (!row || !test) {
                throw new NotFoundError('Evidence');
            }

            if (!ownsOrLead(actor, row.uploaded_by)) {
                throw new ForbiddenError('Only the uploader or a lead may delete this evidence');
            }

            if (!(edits['evidence-delete'].states as readonly string[]).includes(test.state)) {
                throw new ConflictError(`Evidence of a ${test.state} test cannot be deleted`, 'invalid_state_transition', { action: 'evidence-delete', state: test.state });
            }

            await row.$query(trx).delete();
            await appendTimeline(trx, actor, test.id, { action: 'evidence-delete', changes: { evidence_id: id, team: row.team, name: row.original_name, sha256: row.sha256 } });
            await this.deps.audit.record(trx, actor, { action: 'evidence.delete', entity_type: 'evidence', entity_id: id, details: { test_id: test.id, sha256: row.sha256 } });
            return row;
        });

        await this.deps.storage.delete(evidence.storage_key).catch(() => undefined);
    }

    // The worker's sweep: objects without a row, older than the grace period, are deleted; rows whose object is
    // missing are reported (never silently deleted: they are evidence)
    async sweep(actor: Actor, options: { graceMs?: number; now?: Date } = {}): Promise<{ deleted: string[]; missing: string[] }> {

        const cutoff = (options.now ?? new Date()).getTime() - (options.graceMs ?? 60 * 60 * 1000);
        const deleted: string[] = [];
        let batch: string[] = [];
        const flush = async () => {

            const known = new Set((await Evidence.query(this.deps.knex).select('storage_key').whereIn('storage_key', batch)).map((row) => row.storage_key));
            for (const key of batch.filter((item) => !known.has(item))) {
                await this.deps.storage.delete(key);
                deleted.push(key);
            }

            batch = [];
        };

        for await (const object of this.deps.storage.list('evidence/')) {
            if (object.lastModified.getTime() < cutoff) {
                batch.push(object.key);
                if (batch.length >= 500) {
                    await flush();
                }
            }
        }

        await flush();

        const missing: string[] = [];
        const rows = Evidence.query(this.deps.knex).select('id', 'storage_key', 'created_at').where('created_at', '<', new Date(cutoff)).orderBy('created_at');
        for (const row of await rows) {
            if (!await this.deps.storage.exists(row.storage_key)) {
                missing.push(row.id);
            }
        }

        if (deleted.length || missing.length) {
            await this.deps.audit.record(this.deps.knex, actor, { action: 'evidence.sweep', entity_type: 'evidence', outcome: missing.length ? 'failure' : 'success', details: { deleted_objects: deleted.length, missing_objects: missing } });
        }

        return { deleted, missing };
    }

    private checkUpload(actor: Actor, team: 'red' | 'blue', test: Test): void {

        const rule = edits[team === 'red' ? 'evidence-red' : 'evidence-blue'];
        if (!roleAllows(rule.roles, actor)) {
            throw new ForbiddenError(`Only ${rule.roles.join(', ')} may add ${team} evidence`);
        }

        if (!(rule.states as readonly string[]).includes(test.state)) {
            throw new ConflictError(`${team === 'red' ? 'Red' : 'Blue'} evidence can only be added in ${rule.states.join(', ')}`, 'invalid_state_transition', { action: `evidence-${team}`, state: test.state });
        }
    }

    private async insert(actor: Actor, testId: string, fields: { team: 'red' | 'blue'; description?: string }, object: { key: string; originalName: string; contentType: string; size: number; sha256: string }): Promise<Evidence> {

        return await Evidence.transaction(this.deps.knex, async (trx) => {

            // The state may have moved while the bytes were streaming: check again under the lock
            const test = await this.deps.tests.lock(trx, actor, testId);
            this.checkUpload(actor, fields.team, test);

            const evidence = await Evidence.insertReturning(trx, {
                test_id: testId,
                team: fields.team,
                storage_key: object.key,
                original_name: object.originalName,
                content_type: object.contentType,
                size: object.size,
                sha256: object.sha256,
                description: fields.description || null,
                uploaded_by: actor.id
            });

            await appendTimeline(trx, actor, test.id, { action: 'evidence-add', changes: { evidence_id: evidence.id, team: fields.team, name: object.originalName, size: object.size, sha256: object.sha256 } });
            await this.deps.audit.record(trx, actor, { action: 'evidence.upload', entity_type: 'evidence', entity_id: evidence.id, details: { test_id: testId, team: fields.team, size: object.size, sha256: object.sha256, content_type: object.contentType } });
            return evidence;
        });
    }

}
