import * as Dns from 'dns';
import * as Http from 'http';
import * as Https from 'https';
import * as Net from 'net';
import { Transform, type Readable } from 'stream';
import * as Zlib from 'zlib';

import Ipaddr from 'ipaddr.js';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';


export type OutboundErrorKind = 'blocked' | 'timeout' | 'too_large' | 'http_status' | 'network';

// The message says what happened and to which origin; it never carries the remote body. `code` is the error code
// behind a 'network' error (ECONNREFUSED, ENOTFOUND, a TLS code) or a connect timeout (ETIMEDOUT), for callers
// that explain the failure in words.
export class OutboundError extends Error {

    // headers: the answer's headers of an 'http_status' error (a caller reads Retry-After from them; jira, issue 14)
    constructor(public readonly kind: OutboundErrorKind, message: string, public readonly status?: number, public readonly code?: string, public readonly headers?: Http.IncomingHttpHeaders) {

        super(message);
        this.name = 'OutboundError';
    }
}


export interface ResolvedAddress {
    address: string;
    family: number;
}

// One outbound call, reported per hop: where metrics count calls per target host (issue 9's metrics hook plugs in here).
export interface OutboundCall {
    host: string;
    outcome: 'ok' | OutboundErrorKind;
    status?: number | undefined;
    ms: number;
}

export interface OutboundOptions {
    allow?: string[];                   // host names, IP addresses and CIDR ranges the operator allows (OUTBOUND_ALLOW_HOSTS)
    allowHttp?: boolean;                // plain http:// besides https://
    ports?: number[];                   // ports allowed to hosts outside the allow list
    connectTimeoutMs?: number;
    timeoutMs?: number;                 // the whole call, body included
    maxBytes?: number;                  // the body after decompression
    maxRedirects?: number;
    resolve?: (host: string) => Promise<ResolvedAddress[]>;
    onCall?: (call: OutboundCall) => void;
}

export interface CallOptions {
    method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
    headers?: Record<string, string>;
    body?: string | Buffer;
    timeoutMs?: number;
    maxBytes?: number;
    maxRedirects?: number;
}

export interface OutboundResponse<Body> {
    url: string;                        // the last hop's URL
    status: number;
    headers: Http.IncomingHttpHeaders;
    body: Body;
}

interface Target {
    url: URL;
    addresses: ResolvedAddress[];
}


const internals = {
    // Cloud metadata endpoints (AWS, GCP, Azure, OpenStack; AWS IPv6; Alibaba; ECS task credentials): refused even inside an allowed range
    metadata: new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200', '169.254.170.2']),

    redirects: new Set([301, 302, 303, 307, 308]),

    decoders: {
        gzip: () => Zlib.createGunzip(),
        'x-gzip': () => Zlib.createGunzip(),
        deflate: () => Zlib.createInflate(),
        br: () => Zlib.createBrotliDecompress()
    } as Record<string, () => Transform>,

    // IPv4-mapped IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it carries
    parse: (address: string): Ipaddr.IPv4 | Ipaddr.IPv6 => {

        const ip = Ipaddr.parse(address);
        return ip.kind() === 'ipv6' && (ip as Ipaddr.IPv6).isIPv4MappedAddress() ? (ip as Ipaddr.IPv6).toIPv4Address() : ip;
    },

    // What a caller authenticates with never follows a redirect to another origin
    withoutCredentials: (headers: Record<string, string> = {}): Record<string, string> => {

        return Object.fromEntries(Object.entries(headers).filter(([name]) => !/^(authorization|proxy-authorization|cookie)$/i.test(name)));
    },

    // RFC 6761: localhost and every name under it are loopback, whatever a resolver says
    isLocalhostName: (name: string): boolean => name === 'localhost' || name.endsWith('.localhost'),

    systemResolve: async (host: string): Promise<ResolvedAddress[]> => await Dns.promises.lookup(host, { all: true, verbatim: true }),

    // Counts the bytes as they pass (after decompression) and fails the stream past the cap.
    cap: (maxBytes: number, origin: string): Transform => {

        let seen = 0;
        return new Transform({
            transform(chunk: Buffer, encoding, callback) {

                seen += chunk.length;
                callback(seen > maxBytes ? new OutboundError('too_large', `${origin} answered more than ${maxBytes} bytes`) : null, chunk);
            }
        });
    }
};


// The one client for every URL a user or operator supplies (SEC-08). A URL is checked when it is saved (check) and
// again on every call: the host is resolved, every address must be public unicast (or inside the operator's allow
// list), and the connection is pinned to exactly those addresses and checked once more at connect time by
// request-filtering-agent, so neither DNS rebinding nor a redirect reaches an internal address. Redirects are
// followed only for GET and HEAD, each hop checked the same way.
export class OutboundHttp {

    private readonly hosts: Set<string>;
    private readonly ranges: [Ipaddr.IPv4 | Ipaddr.IPv6, number][];
    private readonly settings: Required<Omit<OutboundOptions, 'allow' | 'onCall'>> & Pick<OutboundOptions, 'onCall'>;

    constructor(options: OutboundOptions = {}) {

        this.hosts = new Set();
        this.ranges = [];
        for (const entry of options.allow ?? []) {
            if (Net.isIP(entry)) {
                const ip = internals.parse(entry);
                this.ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
            }
            else if (entry.includes('/')) {
                this.ranges.push(Ipaddr.parseCIDR(entry));
            }
            else {
                this.hosts.add(entry.toLowerCase().replace(/\.$/, ''));
            }
        }

        this.settings = {
            allowHttp: options.allowHttp ?? false,
            ports: options.ports ?? [443, 80],
            connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
            timeoutMs: options.timeoutMs ?? 30_000,
            maxBytes: options.maxBytes ?? 10 * 1024 * 1024,
            maxRedirects: options.maxRedirects ?? 3,
            resolve: options.resolve ?? internals.systemResolve,
            onCall: options.onCall
        };
    }

    // The save-time check: answers the normalised URL, or throws OutboundError 'blocked' (or 'network' when the host
    // does not resolve).
    async check(input: string): Promise<string> {

        return (await this.target(input)).url.href;
    }

    // A call whose body is streamed: capped, decompressed, under the call's deadline. Non-2xx answers throw.
    async open(input: string, options: CallOptions = {}): Promise<OutboundResponse<Readable>> {

        const deadline = Date.now() + (options.timeoutMs ?? this.settings.timeoutMs);
        const maxRedirects = options.method && options.method !== 'GET' && options.method !== 'HEAD' ? 0 : options.maxRedirects ?? this.settings.maxRedirects;
        let target = await this.target(input);
        for (let i = 0; ; ++i) {      // i: the redirects followed so far
            const { response, abort } = await this.send(target, options, deadline);
            const status = response.statusCode ?? 0;
            const origin = target.url.origin;
            if (internals.redirects.has(status) && response.headers.location && maxRedirects > 0) {
                abort();
                if (i >= maxRedirects) {
                    throw new OutboundError('http_status', `${origin} redirected more than ${maxRedirects} times`, status);
                }

                const next = await this.target(new URL(response.headers.location, target.url).href);
                if (next.url.origin !== target.url.origin) {
                    options = { ...options, headers: internals.withoutCredentials(options.headers) };
                }

                target = next;
                continue;
            }

            if (status < 200 || status > 299) {
                abort();
                throw new OutboundError('http_status', `${origin}${target.url.pathname} answered ${status}`, status, undefined, response.headers);
            }

            return { url: target.url.href, status, headers: response.headers, body: this.body(response, options, origin, abort) };
        }
    }

    // A call whose body is read whole (webhooks, APIs): the same rules as open().
    async request(input: string, options: CallOptions = {}): Promise<OutboundResponse<Buffer>> {

        const response = await this.open(input, options);
        const chunks: Buffer[] = [];
        for await (const chunk of response.body) {
            chunks.push(chunk as Buffer);
        }

        return { ...response, body: Buffer.concat(chunks) };
    }

    private async target(input: string): Promise<Target> {

        let url: URL;
        try {
            url = new URL(input);
        }
        catch {
            throw new OutboundError('blocked', 'Not a valid absolute URL');
        }

        if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.settings.allowHttp)) {
            throw new OutboundError('blocked', `The scheme ${url.protocol.replace(/:$/, '')} is not allowed (${this.settings.allowHttp ? 'http or https' : 'https'} only)`);
        }

        if (url.username || url.password) {
            throw new OutboundError('blocked', 'Credentials in the URL are not allowed');
        }

        // The URL parser has already turned decimal, octal and hex IPv4 forms into dotted quads
        const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
        const name = host.toLowerCase().replace(/\.$/, '');
        const named = this.hosts.has(name);
        if (!named && internals.isLocalhostName(name)) {
            throw new OutboundError('blocked', `${url.hostname} is a loopback name`);
        }

        let addresses: ResolvedAddress[];
        try {
            addresses = Net.isIP(host) ? [{ address: host, family: Net.isIP(host) }] : await this.settings.resolve(host);
        }
        catch (err) {
            throw new OutboundError('network', `${url.hostname} could not be resolved`, undefined, (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND');
        }

        if (!addresses.length) {
            throw new OutboundError('network', `${url.hostname} could not be resolved`, undefined, 'ENOTFOUND');
        }

        let listed = true;
        for (const { address } of addresses) {
            const ip = internals.parse(address);
            const inRange = this.ranges.some(([range, bits]) => range.kind() === ip.kind() && ip.match(range, bits));
            if (internals.metadata.has(ip.toString()) || ip.range() === 'unspecified' || (!named && !inRange && ip.range() !== 'unicast')) {
                throw new OutboundError('blocked', `${url.hostname} is or resolves to a private, loopback, link-local, multicast or metadata address`);
            }

            listed &&= inRange;
        }

        // The port rule is for the open internet; hosts and ranges the operator allowed may use any port
        const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
        if (!named && !listed && !this.settings.ports.includes(port)) {
            throw new OutboundError('blocked', `Port ${port} is not allowed`);
        }

        return { url, addresses };
    }

    private send(target: Target, options: CallOptions, deadline: number): Promise<{ response: Http.IncomingMessage; abort: () => void }> {

        const { url, addresses } = target;
        const started = Date.now();
        const report = (outcome: OutboundCall['outcome'], status?: number) => this.settings.onCall?.({ host: url.hostname, outcome, status, ms: Date.now() - started });

        // The addresses checked above are the only ones the connection may use; the agent checks them again at
        // connect time (the non-unicast ones are there because the operator allowed them)
        const exceptions = addresses.filter(({ address }) => Ipaddr.parse(address).range() !== 'unicast').map(({ address }) => address);
        const agentOptions = { allowIPAddressList: exceptions, keepAlive: false };
        const agent = url.protocol === 'https:' ? new RequestFilteringHttpsAgent(agentOptions) : new RequestFilteringHttpAgent(agentOptions);
        // net asks for every address (all: true) under autoSelectFamily, Node 20's default, or for one otherwise
        const lookup = (hostname: string, lookupOptions: Dns.LookupOptions, callback: (...args: unknown[]) => void) => {

            return lookupOptions.all ? callback(null, addresses) : callback(null, addresses[0]!.address, addresses[0]!.family);
        };

        return new Promise((resolve, reject) => {

            let response: Http.IncomingMessage | undefined;
            let settled = false;
            const fail = (err: OutboundError) => {

                clearTimeout(total);
                request.destroy(err);
                response?.destroy(err);
            };

            const total = setTimeout(() => fail(new OutboundError('timeout', `${url.origin} did not answer in time`)), Math.max(0, deadline - Date.now()));
            const request = (url.protocol === 'https:' ? Https : Http).request(url, {
                method: options.method ?? 'GET',
                agent,
                lookup: lookup as never,
                headers: { 'accept-encoding': 'gzip, deflate, br', 'user-agent': 'Aegis', ...options.headers }
            });

            request.once('socket', (socket) => {

                const connect = setTimeout(() => fail(new OutboundError('timeout', `${url.origin} could not be reached in time`, undefined, 'ETIMEDOUT')), this.settings.connectTimeoutMs);
                socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connect));
                socket.once('close', () => clearTimeout(connect));
            });

            request.on('error', (err) => {

                clearTimeout(total);
                if (settled) {
                    return;
                }

                settled = true;
                const code = (err as NodeJS.ErrnoException).code;
                const error = err instanceof OutboundError ? err :
                    /is not allowed/.test(err.message) ? new OutboundError('blocked', `${url.hostname} resolves to an address that is not allowed`) :
                        new OutboundError('network', `${url.origin} could not be reached (${code ?? 'connection failed'})`, undefined, code);
                report(error.kind);
                reject(error);
            });

            request.once('response', (incoming) => {

                settled = true;
                response = incoming;
                report(incoming.statusCode! < 400 ? 'ok' : 'http_status', incoming.statusCode);
                incoming.once('close', () => clearTimeout(total));
                resolve({
                    response: incoming,
                    abort: () => {

                        clearTimeout(total);
                        incoming.destroy();
                        request.destroy();
                    }
                });
            });

            request.end(options.body);
        });
    }

    private body(response: Http.IncomingMessage, options: CallOptions, origin: string, abort: () => void): Readable {

        const maxBytes = options.maxBytes ?? this.settings.maxBytes;
        const encoding = String(response.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
        const length = Number(response.headers['content-length']);
        if (length > maxBytes) {
            abort();
            throw new OutboundError('too_large', `${origin} answered more than ${maxBytes} bytes`);
        }

        // Every failure of the body reaches the caller as an OutboundError that carries none of the remote bytes
        const cap = internals.cap(maxBytes, origin);
        const fail = (err: Error) => {

            abort();
            cap.destroy(err instanceof OutboundError ? err : new OutboundError('network', `${origin} sent a body that could not be read`, undefined, (err as NodeJS.ErrnoException).code));
        };

        cap.once('error', abort);
        response.once('error', fail);
        const decoder = internals.decoders[encoding]?.();
        decoder?.once('error', fail);
        (decoder ? response.pipe(decoder) : response).pipe(cap);
        return cap;
    }
}
