import * as Fs from 'fs';
import * as Path from 'path';

import { OutboundError, type OutboundHttp } from '../../integrations/http';
import type { OsintFeed } from '../models';


// Reading a feed (docs/osint.md): a file under the feed directory (air-gapped installs), a URL through the outbound
// client, or a TAXII 2.1 collection (discovery or API root, the collection, its objects page by page).

export interface FeedCredential {
    headers: Record<string, string>;
}

export class FeedReadError extends Error {

    constructor(message: string) {

        super(message);
        this.name = 'FeedReadError';
    }
}


const internals = {
    maxBytes: 128 * 1024 * 1024,
    maxPages: 1000,
    pageSize: 1000,
    taxii: 'application/taxii+json;version=2.1',

    isObject: (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value),

    withSlash: (url: string): string => (url.endsWith('/') ? url : `${url}/`),

    // What may be shown of a URL: no credentials, query or fragment
    shown: (url: string): string => {

        try {
            const parsed = new URL(url);
            return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
        }
        catch {
            return 'the URL';
        }
    },

    failure: (err: unknown, url: string): FeedReadError => {

        const shown = internals.shown(url);
        if (err instanceof OutboundError) {
            switch (err.kind) {
                case 'blocked':
                    return new FeedReadError(`${shown} is not allowed by the outbound rules (${err.message}): an internal server must be added to OUTBOUND_ALLOW_HOSTS`);
                case 'http_status':
                    return new FeedReadError(`${shown} answered HTTP ${err.status ?? ''}${err.status === 401 || err.status === 403 ? ': check the feed\'s credentials' : ''}`.trim());
                case 'too_large':
                    return new FeedReadError(`${shown} answered more than ${internals.maxBytes} bytes`);
                case 'timeout':
                    return new FeedReadError(`${shown} did not answer in time`);
                default:
                    return new FeedReadError(`${shown} could not be reached${err.code ? ` (${err.code})` : ''}`);
            }
        }

        return new FeedReadError(`${shown} could not be read`);
    },

    json: (body: Buffer, shown: string): unknown => {

        try {
            return JSON.parse(body.toString('utf8'));
        }
        catch {
            throw new FeedReadError(`${shown} is not JSON`);
        }
    }
};


// A feed file's path, resolved under the feed directory, or null when it would leave it ('..', an absolute path
// elsewhere). Checked when a feed is saved, and again, symbolic links resolved, when it is read.
export const confinedPath = (feedDir: string, filePath: string): string | null => {

    const root = Path.resolve(feedDir);
    const resolved = Path.resolve(root, filePath);
    const relative = Path.relative(root, resolved);
    return relative && !relative.startsWith('..') && !Path.isAbsolute(relative) && !filePath.includes('\0') ? resolved : null;
};


export class FeedReader {

    constructor(private readonly deps: { outbound: OutboundHttp; feedDir: string }) { }

    // The feed's documents as parsed JSON: one for a file or URL, the objects of every page for a TAXII collection
    async read(feed: Pick<OsintFeed, 'kind' | 'url' | 'file_path' | 'collection'>, credential: FeedCredential): Promise<{ document: unknown; source: string }> {

        if (feed.file_path !== null) {
            return { document: await this.file(feed.file_path), source: `file:${feed.file_path}` };
        }

        if (feed.kind === 'taxii_collection') {
            return await this.taxii(feed.url!, feed.collection!, credential);
        }

        return { document: await this.get(feed.url!, credential, 'application/json'), source: internals.shown(feed.url!) };
    }

    private async file(filePath: string): Promise<unknown> {

        const path = confinedPath(this.deps.feedDir, filePath);
        if (!path) {
            throw new FeedReadError(`${filePath} is outside the feed directory`);
        }

        let real: string;
        try {
            real = await Fs.promises.realpath(path);
        }
        catch {
            throw new FeedReadError(`${filePath} does not exist in the feed directory (OSINT_FEED_DIR): copy the feed file there`);
        }

        const root = await Fs.promises.realpath(this.deps.feedDir).catch(() => Path.resolve(this.deps.feedDir));
        const relative = Path.relative(root, real);
        if (!relative || relative.startsWith('..') || Path.isAbsolute(relative)) {
            throw new FeedReadError(`${filePath} leads outside the feed directory (a symbolic link)`);
        }

        const stat = await Fs.promises.stat(real);
        if (!stat.isFile()) {
            throw new FeedReadError(`${filePath} is not a file`);
        }

        if (stat.size > internals.maxBytes) {
            throw new FeedReadError(`${filePath} is larger than ${internals.maxBytes} bytes`);
        }

        return internals.json(await Fs.promises.readFile(real), filePath);
    }

    private async get(url: string, credential: FeedCredential, accept: string): Promise<unknown> {

        let body: Buffer;
        try {
            body = (await this.deps.outbound.request(url, { headers: { accept, ...credential.headers }, maxBytes: internals.maxBytes })).body;
        }
        catch (err) {
            throw internals.failure(err, url);
        }

        return internals.json(body, internals.shown(url));
    }

    // TAXII 2.1: the URL is a discovery endpoint (it lists api_roots) or an API root; the collection is named by id or
    // title; its objects are read page by page while the server says `more`, following `next`.
    private async taxii(url: string, collection: string, credential: FeedCredential): Promise<{ document: unknown; source: string }> {

        const first = await this.get(url, credential, internals.taxii);
        let root = url;
        if (internals.isObject(first) && Array.isArray(first.api_roots)) {
            const chosen = typeof first.default === 'string' ? first.default : first.api_roots.find((item): item is string => typeof item === 'string');
            if (!chosen) {
                throw new FeedReadError(`${internals.shown(url)} lists no API root`);
            }

            root = new URL(chosen, url).href;
        }

        root = internals.withSlash(root);
        const collections = await this.get(`${root}collections/`, credential, internals.taxii);
        const list = internals.isObject(collections) && Array.isArray(collections.collections) ? collections.collections.filter(internals.isObject) : [];
        const found = list.find((item) => item.id === collection) ?? list.find((item) => item.title === collection);
        if (!found || typeof found.id !== 'string') {
            const offered = list.map((item) => String(item.id)).slice(0, 20).join(', ') || 'none';
            throw new FeedReadError(`${internals.shown(root)} has no collection "${collection}" (it offers: ${offered})`);
        }

        if (found.can_read === false) {
            throw new FeedReadError(`the collection "${collection}" cannot be read with the feed's credentials`);
        }

        const objects: unknown[] = [];
        let next: string | null = null;
        for (let i = 0; ; ++i) {           // i: the pages read so far
            if (i >= internals.maxPages) {
                throw new FeedReadError(`the collection "${collection}" has more than ${internals.maxPages} pages`);
            }

            const pageUrl = new URL(`${root}collections/${encodeURIComponent(found.id)}/objects/`);
            pageUrl.searchParams.set('limit', String(internals.pageSize));
            if (next) {
                pageUrl.searchParams.set('next', next);
            }

            const envelope = await this.get(pageUrl.href, credential, internals.taxii);
            if (!internals.isObject(envelope) || (envelope.objects !== undefined && !Array.isArray(envelope.objects))) {
                throw new FeedReadError(`${internals.shown(pageUrl.href)} is not a TAXII 2.1 envelope`);
            }

            objects.push(...(envelope.objects as unknown[] | undefined) ?? []);
            if (envelope.more !== true) {
                break;
            }

            if (typeof envelope.next !== 'string' || !envelope.next || envelope.next === next) {
                throw new FeedReadError(`${internals.shown(pageUrl.href)} says there is more but gives no new "next"`);
            }

            next = envelope.next;
        }

        return { document: { type: 'bundle', objects }, source: `${internals.shown(root)}collections/${found.id}/` };
    }
}
