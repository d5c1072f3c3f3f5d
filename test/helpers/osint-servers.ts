import * as Http from 'http';
import type { AddressInfo } from 'net';


// Local servers for the OSINT tests and bench: static feed files (the MISP galaxy, STIX bundles) and a minimal
// TAXII 2.1 server (discovery, API root, collections, objects paged with `more`/`next`), each recording what it was asked.

export interface SeenRequest {
    method: string;
    url: string;
    headers: Http.IncomingHttpHeaders;
}

export interface FeedServer {
    url: string;
    requests: SeenRequest[];
    files: Map<string, Buffer | string>;               // path → body; change it between imports
    close: () => Promise<void>;
}

export interface TaxiiCollection {
    id: string;
    title: string;
    can_read?: boolean;
    objects: object[];
}

export interface TaxiiOptions {
    collections: TaxiiCollection[];
    pageSize?: number;                  // the server's own cap, whatever the client's limit
    basic?: { username: string; password: string };
    brokenPaging?: boolean;             // says `more` without a `next`
}

export interface TaxiiServer extends FeedServer {
    discovery: string;                  // <url>/taxii2/
    apiRoot: string;                    // <url>/api1/
    options: TaxiiOptions;
}


const internals = {
    taxii: 'application/taxii+json;version=2.1',

    listen: async (handler: Http.RequestListener): Promise<{ server: Http.Server; url: string }> => {

        const server = Http.createServer(handler);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    },

    close: (server: Http.Server) => new Promise<void>((resolve) => {

        server.closeAllConnections();
        server.close(() => resolve());
    }),

    send: (res: Http.ServerResponse, status: number, body: unknown, type: string = 'application/taxii+json;version=2.1'): void => {

        res.writeHead(status, { 'content-type': type });
        res.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    }
};


export const startFeedServer = async (files: Record<string, Buffer | string> = {}): Promise<FeedServer> => {

    const requests: SeenRequest[] = [];
    const map = new Map(Object.entries(files));
    const { server, url } = await internals.listen((req, res) => {

        requests.push({ method: req.method!, url: req.url!, headers: req.headers });
        const body = map.get(req.url!.split('?')[0]!);
        if (body === undefined) {
            internals.send(res, 404, { error: 'not found' }, 'application/json');
            return;
        }

        internals.send(res, 200, body, 'application/json');
    });

    return { url, requests, files: map, close: () => internals.close(server) };
};


export const startTaxiiServer = async (options: TaxiiOptions): Promise<TaxiiServer> => {

    const requests: SeenRequest[] = [];
    const { server, url } = await internals.listen((req, res) => {

        requests.push({ method: req.method!, url: req.url!, headers: req.headers });
        if (options.basic) {
            const expected = `Basic ${Buffer.from(`${options.basic.username}:${options.basic.password}`).toString('base64')}`;
            if (req.headers.authorization !== expected) {
                internals.send(res, 401, { title: 'Unauthorized' });
                return;
            }
        }

        if (!String(req.headers.accept ?? '').includes('application/taxii+json')) {
            internals.send(res, 406, { title: 'Not Acceptable' });
            return;
        }

        const path = new URL(req.url!, url);
        if (path.pathname === '/taxii2/') {
            internals.send(res, 200, { title: 'Aegis test TAXII', api_roots: [`${url}/api1/`], default: `${url}/api1/` });
            return;
        }

        if (path.pathname === '/api1/') {
            internals.send(res, 200, { title: 'API root', versions: [internals.taxii], max_content_length: 10_000_000 });
            return;
        }

        if (path.pathname === '/api1/collections/') {
            internals.send(res, 200, { collections: options.collections.map((item) => ({ id: item.id, title: item.title, can_read: item.can_read ?? true, can_write: false, media_types: ['application/stix+json;version=2.1'] })) });
            return;
        }

        const match = /^\/api1\/collections\/([^/]+)\/objects\/$/.exec(path.pathname);
        const collection = match ? options.collections.find((item) => item.id === decodeURIComponent(match[1]!)) : undefined;
        if (!collection) {
            internals.send(res, 404, { title: 'Not Found' });
            return;
        }

        const limit = Math.min(Number(path.searchParams.get('limit') ?? 100), options.pageSize ?? 100);
        const start = Number(path.searchParams.get('next') ?? 0);
        const objects = collection.objects.slice(start, start + limit);
        const more = start + limit < collection.objects.length;
        internals.send(res, 200, { more, ...(more && !options.brokenPaging ? { next: String(start + limit) } : {}), objects });
    });

    return { url, requests, files: new Map(), options, discovery: `${url}/taxii2/`, apiRoot: `${url}/api1/`, close: () => internals.close(server) };
};
