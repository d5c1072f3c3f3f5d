import { OutboundError, type OutboundHttp } from '../http';


// A small typed client of the Jira REST API (Cloud and Data Center) over the SSRF-safe outbound client. Why not
// jira-client: docs/jira.md. Every call goes through OutboundHttp (the host checked at each call, the connection
// pinned, a timeout, a size cap); a JiraError says what went wrong in words and never carries Jira's body.

export type JiraDeployment = 'cloud' | 'data_center';

export interface JiraConnection {
    url: string;                                // the site's base URL (https://example.atlassian.net, https://jira.corp/jira)
    deployment: JiraDeployment;
    username?: string | undefined;              // Cloud: the account's e-mail (with api_token)
    apiToken?: string | undefined;
    personalAccessToken?: string | undefined;   // Data Center
}

export interface JiraClientOptions {
    timeoutMs?: number;                         // one call
    maxWaitMs?: number;                         // the longest Retry-After the client waits itself; longer ones fail the call
    retries?: number;                           // 429 and 503 answers retried this many times
    sleep?: (ms: number) => Promise<void>;
}

export interface JiraStatus {
    name: string;
    statusCategory: { key: string; name?: string };
}

// An issue as search and GET /issue answer it, with the fields Aegis reads
export interface JiraIssueRef {
    id: string;
    key: string;
    fields: {
        status?: JiraStatus;
        resolution?: { name: string } | null;
        updated?: string;
    };
}

export type JiraErrorKind = 'not_configured' | 'blocked' | 'unreachable' | 'unauthorised' | 'forbidden' | 'not_found' | 'rate_limited' | 'unavailable' | 'refused' | 'invalid_answer';

export class JiraError extends Error {

    constructor(public readonly kind: JiraErrorKind, message: string, public readonly status?: number, public readonly retryAfterMs?: number) {

        super(message);
        this.name = 'JiraError';
    }
}


const internals = {
    fields: ['status', 'resolution', 'updated'],

    sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),

    issues: (page: { issues?: JiraIssueRef[] } | undefined, origin: string): JiraIssueRef[] => {

        if (!page || !Array.isArray(page.issues)) {
            throw new JiraError('invalid_answer', `${origin} answered a search without an issues list`);
        }

        return page.issues.filter((issue) => typeof issue?.key === 'string');
    },

    // Retry-After: delay-seconds or an HTTP date (RFC 9110 10.2.3)
    retryAfterMs: (value: string | string[] | undefined, now = Date.now()): number | undefined => {

        const text = Array.isArray(value) ? value[0] : value;
        if (!text) {
            return undefined;
        }

        if (/^\d+$/.test(text.trim())) {
            return Number(text.trim()) * 1000;
        }

        const date = Date.parse(text);
        return Number.isNaN(date) ? undefined : Math.max(0, date - now);
    }
};


export const parseRetryAfter = internals.retryAfterMs;


export class JiraClient {

    private readonly base: string;
    private readonly origin: string;
    private readonly options: Required<JiraClientOptions>;

    constructor(private readonly outbound: OutboundHttp, private readonly connection: JiraConnection, options: JiraClientOptions = {}) {

        this.base = connection.url.replace(/\/+$/, '');
        this.origin = new URL(connection.url).origin;
        this.options = { timeoutMs: options.timeoutMs ?? 15_000, maxWaitMs: options.maxWaitMs ?? 30_000, retries: options.retries ?? 3, sleep: options.sleep ?? internals.sleep };
    }

    // The account the credentials belong to (GET /rest/api/2/myself)
    async myself(): Promise<{ displayName?: string; accountId?: string; name?: string }> {

        return await this.call('GET', '/rest/api/2/myself', undefined, { notFound: 'The Jira REST API was not found at this URL: check the base URL (Data Center sites often end in /jira)' });
    }

    // A project and its issue types (GET /rest/api/2/project/{key})
    async project(key: string): Promise<{ id: string; key: string; name: string; issueTypes?: { name: string }[] }> {

        return await this.call('GET', `/rest/api/2/project/${encodeURIComponent(key)}`, undefined, { notFound: `The project ${key} does not exist, or the account cannot see it` });
    }

    async issue(key: string): Promise<JiraIssueRef> {

        return await this.call('GET', `/rest/api/2/issue/${encodeURIComponent(key)}?fields=${internals.fields.join(',')}`, undefined, { notFound: `The issue ${key} does not exist, or the account cannot see it` });
    }

    async createIssue(fields: Record<string, unknown>): Promise<{ id: string; key: string }> {

        const created = await this.call<{ id: string; key: string }>('POST', '/rest/api/2/issue', { fields }, { notFound: 'The Jira REST API was not found at this URL: check the base URL', refused: 'Jira refused the issue (400): check the project, the issue type and the fields of the jira setting against the project\'s create screen' });
        if (typeof created?.key !== 'string' || typeof created.id !== 'string') {
            throw new JiraError('invalid_answer', `${this.origin} answered the issue creation without an issue key`);
        }

        return created;
    }

    async addComment(key: string, body: string): Promise<void> {

        await this.call('POST', `/rest/api/2/issue/${encodeURIComponent(key)}/comment`, { body }, { notFound: `The issue ${key} does not exist any more, or the account cannot see it`, refused: `Jira refused the comment on ${key} (400)` });
    }

    // Every issue JQL matches, a page at a time. Data Center: POST /rest/api/2/search (startAt, maxResults, total);
    // Cloud: POST /rest/api/3/search/jql (nextPageToken, isLast), the search Cloud keeps since /search was removed.
    async *search(jql: string, pageSize = 100): AsyncGenerator<JiraIssueRef[]> {

        if (this.connection.deployment === 'cloud') {
            let nextPageToken: string | undefined;
            for (let i = 0; i < 10_000; ++i) {
                const page = await this.call<{ issues?: JiraIssueRef[]; nextPageToken?: string; isLast?: boolean }>('POST', '/rest/api/3/search/jql', { jql, fields: internals.fields, maxResults: pageSize, ...(nextPageToken ? { nextPageToken } : {}) }, { refused: 'Jira refused the search (400): the JQL names an issue or field it does not know' });
                const issues = internals.issues(page, this.origin);
                yield issues;
                if (page.isLast !== false || !page.nextPageToken) {
                    return;
                }

                nextPageToken = page.nextPageToken;
            }

            return;
        }

        let startAt = 0;
        for (let i = 0; i < 10_000; ++i) {
            const page = await this.call<{ issues?: JiraIssueRef[]; startAt?: number; maxResults?: number; total?: number }>('POST', '/rest/api/2/search', { jql, startAt, maxResults: pageSize, fields: internals.fields }, { refused: 'Jira refused the search (400): the JQL names an issue or field it does not know' });
            const issues = internals.issues(page, this.origin);
            yield issues;
            startAt += issues.length;
            // The server may answer fewer than asked (its own maxResults cap): page on until total is reached
            if (!issues.length || typeof page.total !== 'number' || startAt >= page.total) {
                return;
            }
        }
    }

    private headers(): Record<string, string> {

        const { deployment, username, apiToken, personalAccessToken } = this.connection;
        const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'Aegis-Jira/1' };
        if (deployment === 'data_center' && personalAccessToken) {
            headers.authorization = `Bearer ${personalAccessToken}`;
        }
        else if (username && apiToken) {
            headers.authorization = `Basic ${Buffer.from(`${username}:${apiToken}`).toString('base64')}`;
        }
        else {
            throw new JiraError('not_configured', deployment === 'data_center' ?
                'The jira setting has no personal_access_token (Data Center) nor username and api_token: set them (PUT /system/settings/jira)' :
                'The jira setting needs username (the account e-mail) and api_token for Jira Cloud: set them (PUT /system/settings/jira)');
        }

        return headers;
    }

    private async call<T>(method: 'GET' | 'POST', path: string, body: unknown, words: { notFound?: string; refused?: string } = {}): Promise<T> {

        const headers = this.headers();
        for (let i = 0; ; ++i) {          // i: the attempts made so far
            try {
                const response = await this.outbound.request(`${this.base}${path}`, {
                    method,
                    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
                    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
                    timeoutMs: this.options.timeoutMs,
                    maxBytes: 10 * 1024 * 1024
                });

                if (!response.body.length) {
                    return undefined as T;
                }

                try {
                    return JSON.parse(response.body.toString('utf8')) as T;
                }
                catch {
                    throw new JiraError('invalid_answer', `${this.origin} did not answer JSON: is the URL a Jira site?`);
                }
            }
            catch (err) {
                const error = this.translate(err, words);
                if ((error.kind === 'rate_limited' || error.kind === 'unavailable') && i < this.options.retries && (error.retryAfterMs ?? 1000) <= this.options.maxWaitMs) {
                    await this.options.sleep(error.retryAfterMs ?? 1000 * 2 ** i);
                    continue;
                }

                throw error;
            }
        }
    }

    private translate(err: unknown, words: { notFound?: string; refused?: string }): JiraError {

        if (err instanceof JiraError) {
            return err;
        }

        if (!(err instanceof OutboundError)) {
            return new JiraError('unreachable', `${this.origin} could not be called`);
        }

        switch (err.kind) {
            case 'blocked':
                return new JiraError('blocked', `The Jira URL is not allowed by the outbound rules: ${err.message}. An internal Jira must be named in OUTBOUND_ALLOW_HOSTS`);
            case 'timeout':
                return new JiraError('unreachable', `Jira at ${this.origin} did not answer in time: check the URL and that Aegis can reach it`);
            case 'network':
                return new JiraError('unreachable', `Jira at ${this.origin} is unreachable (${err.code ?? 'network error'}): check the URL and that Aegis can reach it`);
            case 'too_large':
                return new JiraError('invalid_answer', `Jira at ${this.origin} answered more than Aegis reads`);
            default:
        }

        const status = err.status ?? 0;
        const retryAfterMs = internals.retryAfterMs(err.headers?.['retry-after']);
        if (status === 401) {
            return new JiraError('unauthorised', this.connection.deployment === 'cloud' ?
                'Jira refused the credentials (401): check username (the account e-mail) and api_token' :
                'Jira refused the credentials (401): check the personal access token', status);
        }

        if (status === 403) {
            return new JiraError('forbidden', 'Jira accepted the credentials but refused the call (403): give the account access to the project (browse, create issues, add comments)', status);
        }

        if (status === 404) {
            return new JiraError('not_found', words.notFound ?? `Jira answered 404 for ${this.origin}`, status);
        }

        if (status === 429) {
            return new JiraError('rate_limited', `Jira is rate limiting Aegis (429${retryAfterMs === undefined ? '' : `, retry after ${Math.ceil(retryAfterMs / 1000)} s`})`, status, retryAfterMs);
        }

        if (status === 400) {
            return new JiraError('refused', words.refused ?? 'Jira refused the request (400)', status);
        }

        if (status >= 500) {
            return new JiraError('unavailable', `Jira at ${this.origin} is unavailable (${status}): Aegis tries again later`, status, retryAfterMs);
        }

        return new JiraError('refused', `Jira answered ${status}`, status);
    }
}

