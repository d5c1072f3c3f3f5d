import * as Crypto from 'crypto';

import Joi from 'joi';

import { roles, type Role } from './policy';


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
    // second factors (issue 15)
    'auth.second_factor_required_roles': Role[];
    // sso (issue 15, OIDC)
    'sso.oidc': OidcSetting;
    // sso (issue 15, SAML)
    'sso.saml': SamlSettings;
}


// sso (issue 15, OIDC): the OpenID Connect provider Aegis signs users in with (docs/sso.md#openid-connect)
export interface OidcSetting {
    enabled: boolean;
    issuer: string;
    client_id: string;
    client_secret?: string;
    scopes: string[];
    claims: { username: string; email: string; display_name: string; groups: string };
    role_mapping: Record<string, Role>;
    jit: boolean;
}


// sso (issue 15, SAML): the identity provider, how its attributes read, and how its users are provisioned (docs/sso.md)
export interface SamlSettings {
    enabled: boolean;
    idp_entity_id: string;
    sso_url: string;
    certificates: string[];
    metadata_url?: string | null;
    attributes: { username: string | null; email: string; display_name: string; groups: string };
    role_mapping: Record<string, Role>;
    jit: boolean;
    sign_requests: boolean;
    sp_certificate?: string | null;
    sp_private_key?: string | null;
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

    weight: Joi.number().integer().min(0).max(100).required(),

    // sso (issue 15, SAML): a PEM certificate (or its bare base64 body, as IdP metadata carries it), stored as PEM
    certificate: Joi.string().max(20000).custom((value: string, helpers) => {

        const body = value.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
        const pem = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
        try {
            new Crypto.X509Certificate(pem);
        }
        catch {
            return helpers.message({ custom: 'is not a PEM or base64 X.509 certificate' });
        }

        return pem;
    }),

    privateKey: Joi.string().min(1).max(20000).allow(null).custom((value: string, helpers) => {

        try {
            Crypto.createPrivateKey(value);
        }
        catch {
            return helpers.message({ custom: 'is not an unencrypted PEM private key' });
        }

        return value;
    })
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
    },
    // second factors (issue 15)
    'auth.second_factor_required_roles': {
        description: 'Roles whose local users must log in with a second factor (TOTP); a user of such a role without one sets it up at the login (docs/second-factors.md). SSO users are exempt: their identity provider does it',
        schema: Joi.array().items(Joi.string().valid(...roles)).unique().max(roles.length),
        secrets: [],
        urls: [],
        default: []
    },
    // sso (issue 15, OIDC)
    'sso.oidc': {
        description: 'The OpenID Connect provider users sign in with (PUT /sso/oidc/config checks its discovery document)',
        schema: Joi.object({
            enabled: Joi.boolean().default(true),
            issuer: Joi.string().uri({ scheme: ['https', 'http'] }).max(2000).required().description('The issuer URL; its /.well-known/openid-configuration is read'),
            client_id: Joi.string().min(1).max(500).required(),
            client_secret: internals.secret(2000).description('Write-only: a string sets it, null clears it (a public client), left out keeps it'),
            scopes: Joi.array().items(Joi.string().pattern(/^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/)).max(20).unique().default(['openid', 'profile', 'email', 'groups'])
                .custom((value: string[]) => (value.includes('openid') ? value : ['openid', ...value])).description('Requested scopes; openid is always added'),
            claims: Joi.object({
                username: Joi.string().max(100).default('preferred_username'),
                email: Joi.string().max(100).default('email'),
                display_name: Joi.string().max(100).default('name'),
                groups: Joi.string().max(100).default('groups')
            }).default(),
            role_mapping: Joi.object().pattern(Joi.string().min(1).max(200), Joi.string().valid(...roles)).max(200).default({}).description('Group name -> role'),
            jit: Joi.boolean().default(true).description('Create an unknown user at first login')
        }),
        secrets: ['client_secret'],
        urls: ['issuer'],
        default: null
    },
    // sso (issue 15, SAML)
    'sso.saml': {
        description: 'SAML 2.0 single sign-on: the identity provider, attribute names, group-to-role mapping and just-in-time provisioning (docs/sso.md; PUT /sso/config also reads IdP metadata)',
        schema: Joi.object({
            enabled: Joi.boolean().default(true),
            idp_entity_id: Joi.string().min(1).max(1024).required(),
            sso_url: Joi.string().uri({ scheme: ['https', 'http'] }).max(2000).required().description('The IdP\'s HTTP-Redirect single sign-on URL'),
            certificates: Joi.array().items(internals.certificate).min(1).max(5).required().description('The IdP\'s signing certificates (several during a rollover)'),
            metadata_url: Joi.string().uri({ scheme: ['https', 'http'] }).max(2000).allow(null),
            attributes: Joi.object({
                username: Joi.string().min(1).max(512).allow(null).default(null).description('null: the NameID'),
                email: Joi.string().min(1).max(512).default('email'),
                display_name: Joi.string().min(1).max(512).default('displayName'),
                groups: Joi.string().min(1).max(512).default('groups')
            }).default(),
            role_mapping: Joi.object().pattern(Joi.string().min(1).max(512), Joi.string().valid(...roles).required()).max(200).default({}),
            jit: Joi.boolean().default(false),
            sign_requests: Joi.boolean().default(false),
            sp_certificate: internals.certificate.allow(null),
            sp_private_key: internals.privateKey
        }),
        secrets: ['sp_private_key'],
        urls: ['metadata_url'],
        default: null
    }
};


export const settingKeys = Object.keys(settingDefinitions) as SettingKey[];
