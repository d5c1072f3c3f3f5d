import type { Readable } from 'stream';

import Busboy from 'busboy';

import { ValidationError } from '../errors';


export interface MultipartFile {
    fields: Record<string, string>;
    filename: string;
    stream: Readable;
    finished: Promise<void>;                            // the whole form was read and was valid
    failure: () => Error | null;                        // why the form failed, once it has (a client error)
}


const internals = {
    limits: { fields: 10, fieldSize: 16 * 1024, files: 1, parts: 12, headerPairs: 50 }
};


// Streams a multipart/form-data body: resolves once the first file part starts, with the fields sent before it and
// the file as a stream that respects backpressure (nothing is held beyond stream buffers). Fields after the file and
// a second file are refused. Framework-free: the route hands over the raw body and its content type.
export const readMultipartFile = (body: Readable, contentType: string, fileField = 'file'): Promise<MultipartFile> => new Promise((resolve, reject) => {

    let parser: Busboy.Busboy;
    try {
        parser = Busboy({ headers: { 'content-type': contentType }, limits: internals.limits, defParamCharset: 'utf8' });
    }
    catch {
        return reject(new ValidationError('The body must be multipart/form-data with a boundary', ['file'], 'invalid_multipart'));
    }

    const fields: Record<string, string> = {};
    let file: Readable | null = null;
    let settled = false;
    let failure: Error | null = null;
    let finish: { resolve: () => void; reject: (err: Error) => void } = { resolve: () => undefined, reject: () => undefined };
    const finished = new Promise<void>((res, rej) => {

        finish = { resolve: res, reject: rej };
    });

    finished.catch(() => undefined);                    // observed by the caller once it gets there

    const fail = (error: Error) => {

        failure ??= error;
        if (file && !file.readableEnded) {
            file.destroy(error);
        }

        finish.reject(error);
        if (!settled) {
            settled = true;
            reject(error);
        }

        body.unpipe(parser);
        body.resume();                                  // let the rest of the request drain
    };

    parser.on('field', (name, value, info) => {

        if (file) {
            return fail(new ValidationError('Form fields must come before the file', [name], 'invalid_multipart'));
        }

        if (info.valueTruncated || Object.hasOwn(fields, name)) {
            return fail(new ValidationError(`Invalid form field ${name}`, [name], 'invalid_multipart'));
        }

        fields[name] = value;
    });

    parser.on('file', (name, stream, info) => {

        if (file || name !== fileField) {
            stream.resume();
            return fail(new ValidationError(`Exactly one file, in the field "${fileField}", is expected`, [fileField], 'invalid_multipart'));
        }

        file = stream;
        settled = true;
        stream.on('error', () => undefined);            // errors reach the consumer through its pipeline
        resolve({ fields, filename: info.filename ?? '', stream, finished, failure: () => failure });
    });

    parser.on('partsLimit', () => fail(new ValidationError('Too many form parts', ['file'], 'invalid_multipart')));
    parser.on('fieldsLimit', () => fail(new ValidationError('Too many form fields', ['file'], 'invalid_multipart')));
    parser.on('filesLimit', () => fail(new ValidationError('Exactly one file is expected', ['file'], 'invalid_multipart')));
    parser.on('error', (err: Error) => fail(new ValidationError(`Malformed multipart body: ${err.message}`, ['file'], 'invalid_multipart')));
    parser.on('close', () => {

        if (!settled) {
            return fail(new ValidationError('The form has no file', [fileField], 'missing_file'));
        }

        finish.resolve();
    });

    body.on('error', (err) => fail(err));
    body.on('aborted', () => fail(new ValidationError('The upload was aborted', ['file'], 'upload_aborted')));
    body.pipe(parser);
});
