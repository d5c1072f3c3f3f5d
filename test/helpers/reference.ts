import * as Fs from 'fs';
import * as Path from 'path';

import { Access, roles, type Role } from '../../server/policy';


export const sharedDir = Path.join(__dirname, '..', '..', '..', 'shared');

export type Allowed = readonly Role[] | 'public';


export interface ReferenceRoute {
    method: string;
    path: string;                       // /api/v1/... with every {param} written as {}
    allowed: Allowed;
    auth: string;                       // the reference's own words
}


const internals = {
    abbreviations: { A: 'admin', RL: 'red_lead', BL: 'blue_lead', RT: 'red_tech', BT: 'blue_tech', V: 'viewer' } as Record<string, Role>,

    // "Other Modules" name a prefix and a rule in words; this is how each reads, checked against the words themselves
    modules: {
        '/notifications': { auth: 'Any (own)', rule: () => Access.any },
        '/audit-logs': { auth: 'A', rule: () => Access.admin },
        '/jira': { auth: 'RL,BL,A', rule: () => Access.leads },
        '/threat-actors': { auth: 'Any GET, RL,BL,A manage', rule: (method: string) => (method === 'GET' ? Access.any : Access.leads) },
        '/compliance': { auth: 'Any', rule: () => Access.any },
        '/analytics': { auth: 'Any', rule: () => Access.any },
        '/heatmap': { auth: 'Any', rule: () => Access.any },
        '/scores': { auth: 'Any GET; A for config PATCH', rule: (method: string) => (method === 'GET' ? Access.any : Access.admin) },
        '/worklogs': { auth: 'Any create; own or A to read', rule: () => Access.any },
        '/osint': { auth: 'RL,BL,A', rule: () => Access.leads },
        '/data-sources': { auth: 'Any GET; A manage', rule: (method: string) => (method === 'GET' ? Access.any : Access.admin) },
        '/system': { auth: 'A (scheduler, sync); Public (health)', rule: (method: string, path: string) => (path === '/api/v1/system/health' ? 'public' as const : Access.admin) }
    } as Record<string, { auth: string; rule: (method: string, path: string) => Allowed }>,

    // Where an issue overrides the reference, and why; these win over the reference's own words
    overrides: [
        {
            method: 'POST', path: '/api/v1/heatmap/layer', allowed: Access.leads,
            reason: 'Issue 8 item 3: importing a layer marks techniques for review, a change of state that PATCH /techniques/{mitre_id}/review gives RL, BL and A only; the Heatmap row ("Any") is about reading the matrix'
        },
        // campaigns (issue 10)
        {
            method: 'POST', path: '/api/v1/campaigns/from-layer', allowed: Access.leads,
            reason: 'Issue 10 adds this route (not in the reference, so not an override of it): a campaign from a Navigator layer, with the roles of its twin POST /campaigns/from-threat-actor/{actor_id}'
        },
        // scores (issue 12: scores, risk, compliance)
        {
            method: 'GET', path: '/api/v1/risk/profiles/{technique_id}', allowed: Access.any,
            reason: 'Issue 12: one technique\'s row of GET /risk/profiles (Any), read as that list is'
        },
        {
            method: 'PATCH', path: '/api/v1/risk/impact/{technique_id}', allowed: Access.admin,
            reason: 'Issue 12: impact is admin-editable, as PATCH /techniques/{mitre_id} (A) edits it'
        },
        {
            method: 'POST', path: '/api/v1/compliance/import', allowed: Access.admin,
            reason: 'Issue 12 design: an admin import path; the Compliance row ("Any") is about reading frameworks, controls and gaps'
        },
        // webhooks
        {
            method: 'GET', path: '/api/v1/webhooks/{id}/deliveries', allowed: Access.admin,
            reason: 'Issue 13: the delivery log of a webhook; the section is "admin only"'
        },
        {
            method: 'POST', path: '/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver', allowed: Access.admin,
            reason: 'Issue 13: "a delivery can be redelivered by an admin (design the route, A)"'
        },
        // documents (issue 13): routes the reference does not list, designed with the documents
        {
            method: 'GET', path: '/api/v1/reports/renders/{id}', allowed: Access.reports,
            reason: 'Issue 13: the poll of a PDF render answers a /reports/generate/* request, so it has the roles of those routes (RL,BL,A,V)'
        },
        ...(['GET /api/v1/reports/schedules', 'POST /api/v1/reports/schedules', 'GET /api/v1/reports/schedules/{id}', 'PATCH /api/v1/reports/schedules/{id}', 'DELETE /api/v1/reports/schedules/{id}', 'GET /api/v1/reports/schedules/{id}/runs'].map((line) => ({
            method: line.split(' ')[0]!, path: line.split(' ')[1]!, allowed: Access.leads,
            reason: 'Issue 13: report schedules are for A, and for RL and BL their own (the service checks ownership)'
        }))),
        // attack paths (issue 10): routes the reference does not list
        {
            method: 'PATCH', path: '/api/v1/attack-paths/{id}/steps/{sid}', allowed: Access.allExceptViewer,
            reason: 'Issue 10: reordering (and editing) a step has no route in the reference; it is a change of the steps, which POST and DELETE of steps give "All except V"'
        },
        {
            method: 'GET', path: '/api/v1/attack-paths/{id}/executions', allowed: Access.any,
            reason: 'Issue 10: the reference can start and record executions but not read them; reading follows GET /attack-paths/{id} ("Any")'
        },
        {
            method: 'GET', path: '/api/v1/executions/{id}', allowed: Access.any,
            reason: 'Issue 10: an execution\'s detail (its steps and proving tests) has no route in the reference; reading follows GET /attack-paths/{id} ("Any")'
        },
        // detection (issue 11)
        {
            method: 'GET', path: '/api/v1/detection-lifecycle/detections', allowed: Access.any,
            reason: 'Issue 11: the per-tool detections of tests are queryable as rows across tests; a read like the module\'s other lists (Any), each row shown only with its test (visibility rule)'
        },
        // second factors (issue 15): routes the reference does not list
        ...(['POST /api/v1/auth/login/second-factor', 'POST /api/v1/auth/login/second-factor/totp', 'POST /api/v1/auth/login/second-factor/totp/confirm'].map((line) => ({
            method: line.split(' ')[0]!, path: line.split(' ')[1]!, allowed: 'public' as const,
            reason: 'Issue 15: the later steps of the login (second factor, or the enrolment a role requires), public like POST /auth/login: the challenge the password step answered is their credential'
        }))),
        ...(['GET /api/v1/auth/second-factor', 'POST /api/v1/auth/second-factor/totp', 'POST /api/v1/auth/second-factor/totp/confirm', 'DELETE /api/v1/auth/second-factor', 'POST /api/v1/auth/second-factor/recovery-codes'].map((line) => ({
            method: line.split(' ')[0]!, path: line.split(' ')[1]!, allowed: Access.any,
            reason: 'Issue 15: "any authenticated local user" manages their own second factor, as /auth/change-password (Any) manages the own password'
        }))),
        {
            method: 'DELETE', path: '/api/v1/users/{id}/second-factor', allowed: Access.admin,
            reason: 'Issue 15: "admins can reset a user\'s" second factor, an admin change of a user like PATCH /users/{id} (A)'
        },
        // sso (issue 15, OIDC): the reference names only SAML's five /sso routes
        {
            method: 'GET', path: '/api/v1/sso/oidc/config', allowed: Access.admin,
            reason: 'Issue 15 (OIDC): the OpenID Connect configuration is read as SAML\'s is written, by admins (PUT /sso/config: A); its client secret is answered as { set }'
        },
        {
            method: 'PUT', path: '/api/v1/sso/oidc/config', allowed: Access.admin,
            reason: 'Issue 15 (OIDC): configuring the OpenID Connect provider, as PUT /sso/config configures SAML (A)'
        },
        {
            method: 'GET', path: '/api/v1/sso/oidc/login', allowed: 'public',
            reason: 'Issue 15 (OIDC): starts an OpenID Connect sign-in, as GET /sso/login starts SAML\'s (Public): whoever calls it is not signed in yet'
        },
        {
            method: 'GET', path: '/api/v1/sso/oidc/callback', allowed: 'public',
            reason: 'Issue 15 (OIDC): the provider sends the browser back here, as to POST /sso/callback for SAML (Public); the state, code and ID token are the credentials'
        },
        // jira (issue 14)
        {
            method: 'POST', path: '/api/v1/jira/test-connection', allowed: Access.admin,
            reason: 'Issue 14: "Configuration (A) in the settings. POST /jira/test-connection checks it": it reads the admin-only configuration and calls Jira with its secrets'
        },
        {
            method: 'POST', path: '/api/v1/jira/webhook', allowed: 'public',
            reason: 'Issue 14: the inbound Jira webhook is called by Jira, authenticated by its shared secret (constant-time compare), not by an Aegis user'
        },
        ...(['GET', 'POST', 'PUT', 'DELETE'].map((method) => ({
            method, path: '/api/v1/tests/{id}/jira', allowed: Access.jira,
            reason: 'Issue 14: the Jira issue of a test (create, link, unlink, read) is the /jira module\'s (RL,BL,A), on the test it belongs to'
        })))
    ] as { method: string; path: string; allowed: Allowed; reason: string }[]
};


export const normalisePath = (path: string): string => path.replace(/\{[^}]+\}/g, '{}');


export const parseAuth = (auth: string): Allowed => {

    const text = auth.replace(/\*/g, '').trim();
    if (/^public$/i.test(text)) {
        return 'public';
    }

    if (/^any$/i.test(text)) {
        return [...roles];
    }

    if (/^all except v$/i.test(text)) {
        return Access.allExceptViewer;
    }

    // Ownership rules are checked by the service; the route itself is open to every role
    if (/^own or /i.test(text)) {
        return [...roles];
    }

    // Evidence upload: red evidence RL,RT,A and blue evidence BL,BT,A (the footnote of the reference)
    if (/^role-dependent$/i.test(text)) {
        return [...new Set([...Access.red, ...Access.blue])];
    }

    return text.split(',').map((item) => {

        const role = internals.abbreviations[item.trim()];
        if (!role) {
            throw new Error(`Unknown role "${item}" in the API reference`);
        }

        return role;
    });
};


export const loadReference = (): { routes: ReferenceRoute[]; modules: typeof internals.modules; moduleRows: Map<string, string> } => {

    const text = Fs.readFileSync(Path.join(sharedDir, 'docs', 'api-reference.md'), 'utf8');
    const routes: ReferenceRoute[] = [];
    const moduleRows = new Map<string, string>();

    for (const line of text.split('\n')) {
        const cells = line.split('|').map((cell) => cell.trim());
        const [, method, rawPath, auth] = cells;
        if (cells.length >= 5 && method && /^(GET|POST|PUT|PATCH|DELETE)$/.test(method) && rawPath && auth) {
            const path = `/api/v1${rawPath.replace(/`/g, '')}`;
            routes.push({ method, path: normalisePath(path), allowed: parseAuth(auth), auth });
            continue;
        }

        // | Notifications | `/notifications` | Any (own) | GET list, PATCH mark-read |
        const prefix = cells[2]?.replace(/`/g, '');
        if (cells.length >= 5 && prefix?.startsWith('/') && cells[1] !== 'Module') {
            moduleRows.set(prefix, cells[3]!);
        }
    }

    return { routes, modules: internals.modules, moduleRows };
};


// What the reference allows for a route of the server, or undefined when the reference does not cover it.
export const allowedFor = (reference: ReturnType<typeof loadReference>, method: string, path: string): Allowed | undefined => {

    const override = internals.overrides.find((item) => item.method === method && item.path === path);
    if (override) {
        return override.allowed;
    }

    const normalised = normalisePath(path);
    const exact = reference.routes.find((item) => item.method === method && item.path === normalised);
    if (exact) {
        return exact.allowed;
    }

    const prefix = Object.keys(reference.modules).find((item) => path.startsWith(`/api/v1${item}`));
    return prefix ? reference.modules[prefix]!.rule(method, path) : undefined;
};
