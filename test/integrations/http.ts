import * as Http from 'http';
import type * as Net from 'net';
import * as Zlib from 'zlib';

import { expect } from '@hapi/code';
import * as Lab from '@hapi/lab';

import { OutboundError, OutboundHttp, type OutboundCall, type OutboundOptions, type ResolvedAddress } from '../../integrations/http';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    secret: 'INTERNAL-DETAIL-4242',

    // Names the tests resolve without a network: a public address (only ever checked, never connected to) and names of internal addresses
    names: {
        'api.example.test': [{ address: '93.184.216.34', family: 4 }],
        'localhost': [{ address: '127.0.0.1', family: 4 }],
        'first-hop.example.test': [{ address: '127.0.0.1', family: 4 }],
        'loopback.example.test': [{ address: '127.0.0.1', family: 4 }],
        'mapped.example.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
        'mixed.example.test': [{ address: '93.184.216.34', family: 4 }, { address: '127.0.0.1', family: 4 }],
        'metadata.example.test': [{ address: '169.254.169.254', family: 4 }]
    } as Record<string, ResolvedAddress[]>,

    resolve: (host: string): Promise<ResolvedAddress[]> => {

        const found = internals.names[host];
        return found ? Promise.resolve(found) : Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
    },

    client: (options: OutboundOptions = {}) => new OutboundHttp({ allowHttp: true, resolve: internals.resolve, ...options }),

    failure: async (promise: Promise<unknown>): Promise<OutboundError> => {

        const err = await expect(promise).to.reject(OutboundError);
        expect(err.message).to.not.include(internals.secret);
        return err as OutboundError;
    },

    read: async (stream: AsyncIterable<Buffer>) => {

        const chunks: Buffer[] = [];
        for await (const chunk of stream) {
            chunks.push(chunk);
        }

        return Buffer.concat(chunks);
    }
};


describe('OutboundHttp', () => {

    let server: Http.Server;
    let port = 0;
    const hits: string[] = [];
    const current = () => port;

    before(async () => {

        server = Http.createServer((request, response) => {

            hits.push(request.url!);
            const [path, query] = request.url!.split('?');
            const to = new URLSearchParams(query).get('to');
            switch (path) {
                case '/ok': return void response.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
                case '/redirect': return void response.writeHead(302, { location: to! }).end();
                case '/loop': return void response.writeHead(302, { location: '/loop' }).end();
                case '/error': return void response.writeHead(500).end(`stack trace with ${internals.secret}`);
                case '/gzip': return void response.writeHead(200, { 'content-encoding': 'gzip' }).end(Zlib.gzipSync('compressed hello'));
                case '/deflate': return void response.writeHead(200, { 'content-encoding': 'deflate' }).end(Zlib.deflateSync('deflated hello'));
                case '/br': return void response.writeHead(200, { 'content-encoding': 'br' }).end(Zlib.brotliCompressSync('brotli hello'));
                case '/bomb': return void response.writeHead(200, { 'content-encoding': 'gzip' }).end(Zlib.gzipSync(Buffer.alloc(8 * 1024 * 1024)));
                case '/broken-gzip': return void response.writeHead(200, { 'content-encoding': 'gzip' }).end(`not gzip ${internals.secret}`);
                case '/huge': return void response.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) }).end();
                case '/slow': return void response.writeHead(200).write('first bytes');
                case '/hang': return;
                case '/headers': return void response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(request.headers));
                case '/echo': return void request.pipe(response.writeHead(201, { 'content-type': 'application/json' }));
                default: return void response.writeHead(404).end();
            }
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        port = (server.address() as Net.AddressInfo).port;
    });

    after(() => {

        server.closeAllConnections();
        server.close();
    });

    // Every form that reaches an internal address, refused at save time (check) and on a call, and never connected to
    const refused: [string, (port: number) => string][] = [
        ['dotted loopback', (p) => `http://127.0.0.1:${p}/ok`],
        ['decimal IPv4', (p) => `http://2130706433:${p}/ok`],
        ['octal IPv4', (p) => `http://0177.0.0.1:${p}/ok`],
        ['hex IPv4', (p) => `http://0x7f.0x0.0x0.0x1:${p}/ok`],
        ['single hex number', (p) => `http://0x7f000001:${p}/ok`],
        ['short form 127.1', (p) => `http://127.1:${p}/ok`],
        ['IPv6 loopback', (p) => `http://[::1]:${p}/ok`],
        ['IPv4-mapped IPv6', (p) => `http://[::ffff:127.0.0.1]:${p}/ok`],
        ['::ffff: hex form', (p) => `http://[::ffff:7f00:1]:${p}/ok`],
        ['NAT64 of loopback', (p) => `http://[64:ff9b::7f00:1]:${p}/ok`],
        ['6to4 of loopback', (p) => `http://[2002:7f00:1::]:${p}/ok`],
        ['0.0.0.0', (p) => `http://0.0.0.0:${p}/ok`],
        ['::', (p) => `http://[::]:${p}/ok`],
        ['localhost', (p) => `http://localhost:${p}/ok`],
        ['localhost. (trailing dot)', (p) => `http://localhost.:${p}/ok`],
        ['LOCALHOST in capitals', (p) => `http://LOCALHOST:${p}/ok`],
        ['a name under localhost', (p) => `http://aegis.localhost:${p}/ok`],
        ['a name that resolves to loopback', (p) => `http://loopback.example.test:${p}/ok`],
        ['a name that resolves to IPv4-mapped loopback', (p) => `http://mapped.example.test:${p}/ok`],
        ['a name with one public and one loopback address', (p) => `http://mixed.example.test:${p}/ok`],
        ['cloud metadata', () => 'http://169.254.169.254/latest/meta-data/'],
        ['cloud metadata by name', () => 'http://metadata.example.test/latest/meta-data/'],
        ['AWS IPv6 metadata', () => 'http://[fd00:ec2::254]/latest/meta-data/'],
        ['private 10/8', () => 'http://10.0.0.1/'],
        ['private 192.168/16', () => 'http://192.168.1.1/'],
        ['private 172.16/12', () => 'http://172.16.0.1/'],
        ['CGNAT', () => 'http://100.64.0.1/'],
        ['link-local IPv6', () => 'http://[fe80::1]/'],
        ['unique-local IPv6', () => 'http://[fc00::1]/'],
        ['multicast', () => 'http://224.0.0.1/'],
        ['broadcast', () => 'http://255.255.255.255/'],
        ['a redirect to cloud metadata', (p) => `http://first-hop.example.test:${p}/redirect?to=http://169.254.169.254/latest/meta-data/`],
        ['a redirect to 0.0.0.0', (p) => `http://first-hop.example.test:${p}/redirect?to=http://0.0.0.0:${p}/ok`],
        ['a redirect to a name that resolves to loopback', (p) => `http://first-hop.example.test:${p}/redirect?to=http://loopback.example.test:${p}/ok`],
        ['a redirect to another loopback address', (p) => `http://first-hop.example.test:${p}/redirect?to=http://127.0.0.2:${p}/ok`]
    ];

    for (const [name, url] of refused) {
        it(`refuses ${name}`, async () => {

            const at = current();
            const client = internals.client();
            hits.length = 0;
            const isRedirect = name.startsWith('a redirect');
            if (!isRedirect) {
                expect((await internals.failure(client.check(url(at)))).kind).to.equal('blocked');
            }

            expect((await internals.failure(client.request(url(at)))).kind).to.equal('blocked');
            expect(hits).to.equal([]);

            // The first hop of a redirect is allowed by name here; the hop it points to is refused and never reached
            if (isRedirect) {
                const allowed = internals.client({ allow: ['first-hop.example.test'] });
                expect((await internals.failure(allowed.request(url(at)))).kind).to.equal('blocked');
                expect(hits).to.equal([new URL(url(at)).pathname + new URL(url(at)).search]);
            }
        });
    }

    it('reaches a loopback server once the operator allows its address, its range or its name', async () => {

        for (const allow of ['127.0.0.1', '127.0.0.0/8', '::ffff:127.0.0.1']) {
            const client = internals.client({ allow: [allow] });
            for (const url of [`http://127.0.0.1:${port}/ok`, `http://2130706433:${port}/ok`, `http://loopback.example.test:${port}/ok`]) {
                expect(await client.check(url)).to.equal(url.replace('2130706433', '127.0.0.1'));
                const res = await client.request(url);
                expect(res).to.include({ status: 200, url: url.replace('2130706433', '127.0.0.1') });
                expect(res.body.toString()).to.equal('hello');
            }

            // An allowed range never opens the metadata address or a mixed answer outside it
            await expect(client.check('http://169.254.169.254/')).to.reject(OutboundError, /metadata/);
        }

        const named = internals.client({ allow: ['localhost.'] });
        expect((await named.request(`http://localhost:${port}/ok`)).body.toString()).to.equal('hello');
        expect((await internals.failure(named.request(`http://127.0.0.1:${port}/ok`))).kind).to.equal('blocked');

        const ranged = internals.client({ allow: ['10.0.0.0/8', 'fc00::/7'] });
        expect((await internals.failure(ranged.request(`http://127.0.0.1:${port}/ok`))).kind).to.equal('blocked');
    });

    it('refuses other schemes, credentials in the URL, plain http unless allowed, and other ports on the open internet', async () => {

        const client = internals.client();
        for (const url of ['ftp://api.example.test/', 'file:///etc/passwd', 'gopher://api.example.test:70/', 'javascript:alert(1)', 'not a url', '/relative']) {
            expect((await internals.failure(client.check(url))).kind).to.equal('blocked');
        }

        await expect(client.check('https://user:pass@api.example.test/')).to.reject(OutboundError, /Credentials/);
        await expect(internals.client({ allowHttp: false }).check('http://api.example.test/')).to.reject(OutboundError, /https only/);
        await expect(client.check('https://api.example.test:22/')).to.reject(OutboundError, 'Port 22 is not allowed');
        expect(await client.check('https://API.example.test/a?b=c')).to.equal('https://api.example.test/a?b=c');
        expect(await internals.client({ ports: [8443] }).check('https://api.example.test:8443/')).to.equal('https://api.example.test:8443/');
        await expect(client.check('https://unknown.example.test/')).to.reject(OutboundError, 'unknown.example.test could not be resolved');
    });

    it('re-resolves on every call, so a name that later points at loopback (DNS rebinding) is refused', async () => {

        let answer = [{ address: '93.184.216.34', family: 4 }];
        const client = new OutboundHttp({ allowHttp: true, resolve: () => Promise.resolve(answer) });
        expect(await client.check('http://rebind.example.test/')).to.equal('http://rebind.example.test/');

        answer = [{ address: '127.0.0.1', family: 4 }];
        hits.length = 0;
        expect((await internals.failure(client.request(`http://rebind.example.test:${port}/ok`))).kind).to.equal('blocked');
        expect(hits).to.equal([]);
    });

    it('follows redirects that stay allowed, up to the limit, and never for other methods than GET and HEAD', async () => {

        const client = internals.client({ allow: ['127.0.0.1'], maxRedirects: 2 });
        const res = await client.request(`http://127.0.0.1:${port}/redirect?to=/ok`);
        expect(res).to.include({ status: 200, url: `http://127.0.0.1:${port}/ok` });
        expect(res.body.toString()).to.equal('hello');

        const loop = await internals.failure(client.request(`http://127.0.0.1:${port}/loop`));
        expect(loop).to.include({ kind: 'http_status', status: 302, message: `http://127.0.0.1:${port} redirected more than 2 times` });

        const post = await internals.failure(client.request(`http://127.0.0.1:${port}/redirect?to=/ok`, { method: 'POST', body: '{}' }));
        expect(post).to.include({ kind: 'http_status', status: 302 });
    });

    it('drops the caller\'s credentials when a redirect leaves the origin', async () => {

        const client = internals.client({ allow: ['first-hop.example.test', '127.0.0.1'] });
        const headers = { authorization: 'Bearer jira-token', cookie: 'a=b', 'x-request': 'kept' };
        const same = await client.request(`http://127.0.0.1:${port}/redirect?to=/headers`, { headers });
        expect(JSON.parse(same.body.toString())).to.include({ authorization: 'Bearer jira-token', cookie: 'a=b', 'x-request': 'kept' });

        const other = await client.request(`http://first-hop.example.test:${port}/redirect?to=http://127.0.0.1:${port}/headers`, { headers });
        const received = JSON.parse(other.body.toString());
        expect(received).to.include({ 'x-request': 'kept', host: `127.0.0.1:${port}` });
        expect(received.authorization).to.not.exist();
        expect(received.cookie).to.not.exist();
    });

    it('sends a body and answers the status, headers and body', async () => {

        const client = internals.client({ allow: ['127.0.0.1'] });
        const res = await client.request(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
        expect(res.status).to.equal(201);
        expect(res.headers['content-type']).to.equal('application/json');
        expect(JSON.parse(res.body.toString())).to.equal({ a: 1 });
    });

    it('never echoes a remote error body: the error names the origin and the status only', async () => {

        const client = internals.client({ allow: ['127.0.0.1'] });
        const err = await internals.failure(client.request(`http://127.0.0.1:${port}/error`));
        expect(err).to.include({ kind: 'http_status', status: 500, message: `http://127.0.0.1:${port}/error answered 500` });

        const broken = await internals.failure(client.request(`http://127.0.0.1:${port}/broken-gzip`));
        expect(broken).to.include({ kind: 'network', message: `http://127.0.0.1:${port} sent a body that could not be read` });
    });

    it('decompresses, and caps the size after decompression (a gzip bomb) and by Content-Length', async () => {

        const client = internals.client({ allow: ['127.0.0.1'], maxBytes: 1024 * 1024 });
        expect((await client.request(`http://127.0.0.1:${port}/gzip`)).body.toString()).to.equal('compressed hello');
        expect((await client.request(`http://127.0.0.1:${port}/deflate`)).body.toString()).to.equal('deflated hello');
        expect((await client.request(`http://127.0.0.1:${port}/br`)).body.toString()).to.equal('brotli hello');

        const bomb = await internals.failure(client.request(`http://127.0.0.1:${port}/bomb`));
        expect(bomb).to.include({ kind: 'too_large', message: `http://127.0.0.1:${port} answered more than 1048576 bytes` });

        const huge = await internals.failure(client.open(`http://127.0.0.1:${port}/huge`));
        expect(huge.kind).to.equal('too_large');

        const streamed = await client.open(`http://127.0.0.1:${port}/bomb`, { maxBytes: 10 * 1024 * 1024 });
        expect((await internals.read(streamed.body)).length).to.equal(8 * 1024 * 1024);
    });

    it('ends a call past its total time, whether the answer never starts or its body never ends', async () => {

        const client = internals.client({ allow: ['127.0.0.1'], timeoutMs: 500 });
        const started = Date.now();
        const hang = await internals.failure(client.request(`http://127.0.0.1:${port}/hang`));
        expect(hang).to.include({ kind: 'timeout', message: `http://127.0.0.1:${port} did not answer in time` });

        const slow = await internals.failure(client.request(`http://127.0.0.1:${port}/slow`));
        expect(slow.kind).to.equal('timeout');
        expect(Date.now() - started).to.be.below(5000);
    });

    it('reports every call with its host and outcome, where metrics count them', async () => {

        const calls: OutboundCall[] = [];
        const client = internals.client({ allow: ['127.0.0.1', 'first-hop.example.test'], onCall: (call) => calls.push(call) });
        await client.request(`http://first-hop.example.test:${port}/redirect?to=http://127.0.0.1:${port}/ok`);
        await expect(client.request(`http://127.0.0.1:${port}/error`)).to.reject(OutboundError);
        await expect(client.request(`http://127.0.0.1:${port}/hang`, { timeoutMs: 100 })).to.reject(OutboundError);

        expect(calls.map(({ host, outcome, status }) => ({ host, outcome, status }))).to.equal([
            { host: 'first-hop.example.test', outcome: 'ok', status: 302 },
            { host: '127.0.0.1', outcome: 'ok', status: 200 },
            { host: '127.0.0.1', outcome: 'http_status', status: 500 },
            { host: '127.0.0.1', outcome: 'timeout', status: undefined }
        ]);
        expect(calls.every((call) => call.ms >= 0)).to.be.true();
    });

    it('answers a network error when nothing listens, without the connection details of the host', async () => {

        const closed = Http.createServer();
        await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
        const free = (closed.address() as Net.AddressInfo).port;
        await new Promise((resolve) => closed.close(resolve));

        const client = internals.client({ allow: ['127.0.0.1'] });
        const err = await internals.failure(client.request(`http://127.0.0.1:${free}/`));
        expect(err).to.include({ kind: 'network', message: `http://127.0.0.1:${free} could not be reached (ECONNREFUSED)` });

        // TLS to a server that speaks plain HTTP fails the handshake
        const tls = await internals.failure(client.request(`https://127.0.0.1:${port}/ok`));
        expect(tls.kind).to.equal('network');
        expect(tls.message).to.startWith(`https://127.0.0.1:${port} could not be reached (`);
    });
});
