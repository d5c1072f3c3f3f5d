import Joi from 'joi';


// What admins configure at run time, key by key. Each key has a joi schema for its value, the names of its secret
// fields (write-only: stored encrypted, answered as { set: true|false }), the fields that are URLs the outbound client
// must accept when the value is saved, and a default (null: not configured). Only keys that a real path reads, or
// will read, belong here.
export interface SettingValues {
    smtp: { host: string; port: number; secure: boolean; username?: string; password?: string; from: string };
    // jira (issue 14): docs/jira.md
    jira: JiraSettings;
    'coverage.staleness_days': number;
    'scores.weights': { prevented: number; alerted: number; logged: number; not_detected: number };
    'scores.half_life_days': number;
    // scores (issue 12: scores, risk, compliance)
    'risk.likelihood_saturation': number;
    // documents (issue 13)
    'reports.external_recipients': boolean;
    // detection (issue 11)
    'detection.half_life_days': number;
    'detection.weights': { prevented: number; alerted: number; logged: number };
}

export type SettingKey = keyof SettingValues;

// jira (issue 14): the remediation statuses a Jira status may map to (none is not one: a linked test has a remediation)
export const jiraMappableStatuses = ['open', 'in_progress', 'awaiting_retest', 'resolved', 'accepted_risk'] as const;
export type JiraMappableStatus = typeof jiraMappableStatuses[number];

export interface JiraSettings {
    url: string;
    deployment?: 'cloud' | 'data_center';                 // cloud when not given
    username?: string;                                      // Cloud: the account e-mail
    api_token?: string;                                     // Cloud (secret)
    personal_access_token?: string;                         // Data Center (secret)
    project_key?: string;
    issue_type?: string;                                    // Task when not given
    labels?: string[];
    fields?: Record<string, unknown>;                       // more fields of the create screen, as Jira's REST API takes them
    status_map?: { categories?: Partial<Record<'new' | 'indeterminate' | 'done', JiraMappableStatus>>; statuses?: Record<string, JiraMappableStatus> };
    sync_enabled?: boolean;                                 // true when not given
    poll_minutes?: number;                                  // 15 when not given
    webhook_secret?: string;                                // inbound Jira webhook (secret)
}

export interface SettingDefinition {
    description: string;
    schema: Joi.Schema;
    secrets: string[];
    urls: string[];
    default: unknown;
}


const internals = {
    // A secret field takes a string to set it, null to clear it, and keeps its value when left out
    secret: (max: number) => Joi.string().min(1).max(max).allow(null),

    weight: Joi.number().integer().min(0).max(100).required()
};


export const settingDefinitions: Record<SettingKey, SettingDefinition> = {
    smtp: {
        description: 'The SMTP relay for e-mail (overrides SMTP_URL and SMTP_FROM while set)',
        schema: Joi.object({
            host: Joi.string().hostname().required(),
            port: Joi.number().integer().min(1).max(65535).default(587),
            secure: Joi.boolean().default(false).description('TLS from the start (port 465); otherwise STARTTLS when offered'),
            username: Joi.string().max(320),
            password: internals.secret(1000),
            from: Joi.string().email({ tlds: false }).required()
        }),
        secrets: ['password'],
        urls: [],
        default: null
    },
    jira: {
        description: 'The Jira site remediation tickets are filed in',
        // jira (issue 14): docs/jira.md
        schema: Joi.object({
            url: Joi.string().uri({ scheme: ['https', 'http'] }).max(2000).required(),
            deployment: Joi.string().valid('cloud', 'data_center').description('cloud (e-mail + API token) or data_center (personal access token); cloud when not given'),
            username: Joi.string().max(320).description('Cloud: the e-mail of the Jira account'),
            api_token: internals.secret(2000),
            personal_access_token: internals.secret(2000),
            project_key: Joi.string().pattern(/^[A-Z][A-Z0-9_]{1,19}$/).message('project_key must be a Jira project key (capital letters, digits, _)'),
            issue_type: Joi.string().trim().min(1).max(100),
            labels: Joi.array().items(Joi.string().pattern(/^[^\s]{1,100}$/).message('a label has no spaces (1-100 characters)')).max(20).unique(),
            fields: Joi.object().pattern(
                Joi.string().pattern(/^(?:customfield_\d{1,12}|[a-z][A-Za-z0-9]{0,63})$/).invalid('project', 'issuetype', 'summary', 'description', 'labels'),
                Joi.alternatives(Joi.string().max(10_000), Joi.number(), Joi.boolean(), Joi.object().max(20), Joi.array().max(50))
            ).max(30).description('More fields to fill on every issue, as Jira\'s REST API takes them (e.g. { "priority": { "name": "High" }, "customfield_10010": "x" }); project, issuetype, summary, description and labels are Aegis\'s'),
            status_map: Joi.object({
                categories: Joi.object({ new: Joi.string().valid(...jiraMappableStatuses), indeterminate: Joi.string().valid(...jiraMappableStatuses), done: Joi.string().valid(...jiraMappableStatuses) }),
                statuses: Joi.object().pattern(Joi.string().min(1).max(100), Joi.string().valid(...jiraMappableStatuses)).max(100)
            }).description('Jira status category (new, indeterminate, done) or status name (wins over its category) to remediation status'),
            sync_enabled: Joi.boolean(),
            poll_minutes: Joi.number().integer().min(1).max(1440),
            webhook_secret: Joi.string().min(16).max(200).allow(null).description('The shared secret of the inbound Jira webhook (POST /jira/webhook), at least 16 characters')
        }),
        secrets: ['api_token', 'personal_access_token', 'webhook_secret'],
        urls: ['url'],
        default: null
    },
    'coverage.staleness_days': {
        description: 'Days after which a technique\'s latest validation is stale and the technique needs review',
        schema: Joi.number().integer().min(1).max(3650),
        secrets: [],
        urls: [],
        default: 90
    },
    'scores.weights': {
        description: 'Score of each detection outcome (0-100) before decay',
        schema: Joi.object({ prevented: internals.weight, alerted: internals.weight, logged: internals.weight, not_detected: internals.weight }),
        secrets: [],
        urls: [],
        default: { prevented: 100, alerted: 90, logged: 40, not_detected: 0 }
    },
    'scores.half_life_days': {
        description: 'Days after which a validation counts half in the score',
        schema: Joi.number().integer().min(1).max(3650),
        secrets: [],
        urls: [],
        default: 180
    },
    // scores (issue 12: scores, risk, compliance)
    'risk.likelihood_saturation': {
        description: 'Number of tracked threat actors using a technique at which its likelihood reaches 5 (docs/posture.md)',
        schema: Joi.number().integer().min(1).max(1000),
        secrets: [],
        urls: [],
        default: 31
    },
    // documents (issue 13)
    'reports.external_recipients': {
        description: 'Whether report schedules may send to e-mail addresses outside the users of Aegis (they receive what a viewer sees)',
        schema: Joi.boolean(),
        secrets: [],
        urls: [],
        default: false
    },
    // detection (issue 11)
    'detection.half_life_days': {
        description: 'Days after which a detection validation counts half in a technique\'s detection confidence',
        schema: Joi.number().integer().min(1).max(3650),
        secrets: [],
        urls: [],
        default: 180
    },
    'detection.weights': {
        description: 'Detection confidence (0-100) of a fresh validation, by its outcome, before decay',
        schema: Joi.object({ prevented: internals.weight, alerted: internals.weight, logged: internals.weight }),
        secrets: [],
        urls: [],
        default: { prevented: 100, alerted: 100, logged: 50 }
    }
};


export const settingKeys = Object.keys(settingDefinitions) as SettingKey[];
