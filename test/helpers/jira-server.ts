import * as Http from 'http';
import type { AddressInfo } from 'net';


// A local Jira-compatible server for the tests and the bench: the REST calls Aegis makes, with bodies shaped as
// Jira's REST API documents them (v2 issue, project, myself, comment, search with startAt/maxResults/total; Cloud's
// v3 search/jql with nextPageToken/isLast), errors as { errorMessages, errors }, 401, 404, 400 and 429 with
// Retry-After. State lives in memory; the tests drive it (statuses, outages, rate limits) and read what it received.

export interface FakeIssue {
    id: string;
    key: string;
    fields: {
        summary: string;
        description?: string;
        labels?: string[];
        status: { name: string; statusCategory: { id: number; key: string; name: string } };
        resolution: { name: string } | null;
        updated: string;
        [field: string]: unknown;
    };
    comments: { id: string; body: string }[];
}

export interface FakeProject {
    id: string;
    key: string;
    name: string;
    issueTypes: { id: string; name: string }[];
}

export interface FakeData {
    projects: Map<string, FakeProject>;
    issues: Map<string, FakeIssue>;
    counters: Map<string, number>;
}

export interface FakeJiraOptions {
    deployment?: 'cloud' | 'data_center';
    email?: string;
    token?: string;                             // Cloud API token, or Data Center PAT
    maxResults?: number;                        // the server's own cap on a page
    // Another fake's projects and issues: one Jira data set behind two deployments (Cloud and Data Center APIs)
    share?: FakeData;
}

export interface Received {
    method: string;
    path: string;
    authorization: string | undefined;
    body: any;
}


const internals = {
    categories: {
        new: { id: 2, key: 'new', name: 'To Do' },
        indeterminate: { id: 4, key: 'indeterminate', name: 'In Progress' },
        done: { id: 3, key: 'done', name: 'Done' }
    } as Record<string, { id: number; key: string; name: string }>,

    // Jira's timestamp format: 2026-12-07T10:00:00.000+0000
    jiraTime: (date: Date) => date.toISOString().replace('Z', '+0000'),

    notFoundIssue: { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} }
};


export const startFakeJira = async (options: FakeJiraOptions = {}) => {

    const deployment = options.deployment ?? 'data_center';
    const auth = {
        email: options.email ?? 'aegis@example.test',
        token: options.token ?? 'fake-jira-token-0123456789'
    };

    const state = {
        projects: options.share?.projects ?? new Map<string, FakeProject>(),
        issues: options.share?.issues ?? new Map<string, FakeIssue>(),
        counters: options.share?.counters ?? new Map<string, number>(),
        nextId: 10_000,
        received: [] as Received[],
        // What the next calls answer instead of the real thing
        script: [] as ({ status: 429; retryAfter?: string } | { status: 503 } | { status: 'drop' })[],
        down: false,
        maxResults: options.maxResults ?? 50
    };

    const send = (res: Http.ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) => {

        res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json;charset=UTF-8' }), ...headers });
        res.end(body === undefined ? undefined : JSON.stringify(body));
    };

    const authorised = (header: string | undefined): boolean => {

        if (deployment === 'data_center') {
            return header === `Bearer ${auth.token}`;
        }

        return header === `Basic ${Buffer.from(`${auth.email}:${auth.token}`).toString('base64')}`;
    };

    const visible = (issue: FakeIssue, fields: string[] | undefined) => ({
        id: issue.id,
        key: issue.key,
        self: `${base()}/rest/api/2/issue/${issue.id}`,
        fields: fields ? Object.fromEntries(Object.entries(issue.fields).filter(([name]) => fields.includes(name))) : issue.fields
    });

    // The JQL Aegis writes: project in ("A", "B") AND updated >= "-15m" ORDER BY updated ASC
    const search = (jql: string): FakeIssue[] | { error: string } => {

        const projects = /project in \(([^)]*)\)/i.exec(jql)?.[1]?.split(',').map((item) => item.trim().replace(/^"|"$/g, '')) ?? [];
        for (const key of projects) {
            if (!state.projects.has(key)) {
                return { error: `The value '${key}' does not exist for the field 'project'.` };
            }
        }

        const minutes = /updated >= "-(\d+)m"/i.exec(jql)?.[1];
        const after = minutes ? Date.now() - Number(minutes) * 60_000 : 0;
        return [...state.issues.values()]
            .filter((issue) => projects.includes(issue.key.split('-')[0]!) && Date.parse(issue.fields.updated.replace('+0000', 'Z')) >= after)
            .sort((a, b) => a.fields.updated.localeCompare(b.fields.updated) || Number(a.id) - Number(b.id));
    };

    const server = Http.createServer((req, res) => {

        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {

            const url = new URL(req.url ?? '/', 'http://localhost');
            const path = url.pathname.replace(/^\/jira/, '');
            const text = Buffer.concat(chunks).toString('utf8');
            let body: any;
            try {
                body = text ? JSON.parse(text) : undefined;
            }
            catch {
                return send(res, 400, { errorMessages: ['Unexpected character in the request body'], errors: {} });
            }

            state.received.push({ method: req.method ?? 'GET', path, authorization: req.headers.authorization, body });
            if (state.down) {
                return req.socket.destroy();
            }

            const scripted = state.script.shift();
            if (scripted?.status === 'drop') {
                return req.socket.destroy();
            }

            if (scripted?.status === 429) {
                return send(res, 429, { errorMessages: ['Rate limit exceeded.'], errors: {} }, scripted.retryAfter === undefined ? {} : { 'retry-after': scripted.retryAfter });
            }

            if (scripted?.status === 503) {
                return send(res, 503, { errorMessages: ['Service unavailable'], errors: {} });
            }

            if (!authorised(req.headers.authorization)) {
                return send(res, 401, { errorMessages: ['You are not authenticated. Authentication required to perform this operation.'], errors: {} });
            }

            const method = req.method;
            let match: RegExpExecArray | null;
            if (method === 'GET' && path === '/rest/api/2/myself') {
                return send(res, 200, { self: `${base()}/rest/api/2/myself`, accountId: '5b10ac8d82e05b22cc7d4ef5', emailAddress: auth.email, displayName: 'Aegis Integration', active: true });
            }

            if (method === 'GET' && (match = /^\/rest\/api\/2\/project\/([^/]+)$/.exec(path))) {
                const project = state.projects.get(decodeURIComponent(match[1]!));
                return project ? send(res, 200, { ...project, self: `${base()}/rest/api/2/project/${project.id}` }) : send(res, 404, { errorMessages: [`No project could be found with key '${match[1]}'.`], errors: {} });
            }

            if (method === 'POST' && path === '/rest/api/2/issue') {
                const fields = body?.fields ?? {};
                const project = state.projects.get(fields.project?.key);
                const errors: Record<string, string> = {};
                if (!project) {
                    errors.project = 'valid project is required';
                }
                else if (!project.issueTypes.some((type) => type.name === fields.issuetype?.name)) {
                    errors.issuetype = 'Specify a valid issue type';
                }

                if (!fields.summary) {
                    errors.summary = 'You must specify a summary of the issue.';
                }

                for (const name of Object.keys(fields)) {
                    if (!['project', 'issuetype', 'summary', 'description', 'labels', 'priority'].includes(name)) {
                        errors[name] = `Field '${name}' cannot be set. It is not on the appropriate screen, or unknown.`;
                    }
                }

                if (Object.keys(errors).length) {
                    return send(res, 400, { errorMessages: [], errors });
                }

                const created = api.addIssue(project!.key, { summary: fields.summary, description: fields.description, labels: fields.labels, ...(fields.priority ? { priority: fields.priority } : {}) });
                return send(res, 201, { id: created.id, key: created.key, self: `${base()}/rest/api/2/issue/${created.id}` });
            }

            if ((match = /^\/rest\/api\/2\/issue\/([^/]+)(\/comment)?$/.exec(path))) {
                const issue = state.issues.get(decodeURIComponent(match[1]!));
                if (!issue) {
                    return send(res, 404, internals.notFoundIssue);
                }

                if (method === 'GET' && !match[2]) {
                    return send(res, 200, visible(issue, url.searchParams.get('fields')?.split(',')));
                }

                if (method === 'POST' && match[2]) {
                    if (typeof body?.body !== 'string' || !body.body) {
                        return send(res, 400, { errorMessages: [], errors: { comment: 'Comment body can not be empty!' } });
                    }

                    const comment = { id: String(state.nextId++), body: body.body };
                    issue.comments.push(comment);
                    return send(res, 201, { ...comment, self: `${base()}/rest/api/2/issue/${issue.id}/comment/${comment.id}`, created: internals.jiraTime(new Date()) });
                }
            }

            if (method === 'POST' && path === '/rest/api/2/search' && deployment === 'data_center') {
                const found = search(String(body?.jql ?? ''));
                if ('error' in found) {
                    return send(res, 400, { errorMessages: [found.error], errors: {} });
                }

                const startAt = Number(body?.startAt ?? 0);
                const maxResults = Math.min(Number(body?.maxResults ?? 50), state.maxResults);
                return send(res, 200, { expand: 'schema,names', startAt, maxResults, total: found.length, issues: found.slice(startAt, startAt + maxResults).map((issue) => visible(issue, body?.fields)) });
            }

            if (method === 'POST' && path === '/rest/api/3/search/jql' && deployment === 'cloud') {
                const found = search(String(body?.jql ?? ''));
                if ('error' in found) {
                    return send(res, 400, { errorMessages: [found.error], errors: {} });
                }

                const startAt = body?.nextPageToken ? Number(Buffer.from(body.nextPageToken, 'base64url').toString()) : 0;
                const maxResults = Math.min(Number(body?.maxResults ?? 50), state.maxResults);
                const next = startAt + maxResults;
                return send(res, 200, { issues: found.slice(startAt, next).map((issue) => visible(issue, body?.fields)), isLast: next >= found.length, ...(next < found.length ? { nextPageToken: Buffer.from(String(next)).toString('base64url') } : {}) });
            }

            return send(res, 404, { errorMessages: ['null for uri: ' + path], errors: {} });
        });
    });

    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const base = () => `http://127.0.0.1:${port}${deployment === 'data_center' ? '/jira' : ''}`;

    const api = {
        url: base(),
        deployment,
        auth,
        state,
        received: state.received,

        addProject: (key: string, issueTypes = ['Task', 'Bug']) => {

            state.projects.set(key, { id: String(state.nextId++), key, name: `Project ${key}`, issueTypes: issueTypes.map((name, index) => ({ id: String(index + 1), name })) });
        },

        addIssue: (project: string, fields: Partial<FakeIssue['fields']> = {}): FakeIssue => {

            const number = (state.counters.get(project) ?? 0) + 1;
            state.counters.set(project, number);
            const issue: FakeIssue = {
                id: String(state.nextId++),
                key: `${project}-${number}`,
                fields: { summary: 'An issue', status: { name: 'To Do', statusCategory: internals.categories.new! }, resolution: null, updated: internals.jiraTime(new Date()), ...fields } as FakeIssue['fields'],
                comments: []
            };

            state.issues.set(issue.key, issue);
            return issue;
        },

        // A transition as Jira records it: a new status, its category, a resolution when done, `updated` moved on
        setStatus: (key: string, name: string, category: 'new' | 'indeterminate' | 'done', at = new Date()) => {

            const issue = state.issues.get(key)!;
            issue.fields.status = { name, statusCategory: internals.categories[category]! };
            issue.fields.resolution = category === 'done' ? { name: 'Done' } : null;
            issue.fields.updated = internals.jiraTime(at);
        },

        calls: (method: string, path: RegExp) => state.received.filter((item) => item.method === method && path.test(item.path)),

        stop: () => new Promise<void>((resolve) => server.close(() => resolve()))
    };

    return api;
};


export type FakeJira = Awaited<ReturnType<typeof startFakeJira>>;
