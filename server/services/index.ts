import type { Knex } from 'knex';

import type { OutboundHttp } from '../../integrations/http';
import type { Redis } from '../../integrations/redis';
import type { ObjectStore } from '../../integrations/storage';
import { defaultUploadTypes, type Config } from '../config';
import type { Queue } from '../jobs';

import { AuditService } from './audit';
import { AttackImportService } from './attack-import';
import { ApiKeysService } from './api-keys';
import { AuthService, type JwtSettings } from './auth';
import { CoverageService, type CoverageSettings } from './coverage';
import { DataSourcesService } from './data-sources';
import { EventsService } from './events';
import { HeatmapService } from './heatmap';
import { MailService } from './mail';
import { EvidenceService, type UploadSettings } from './evidence';
import { NotificationsService } from './notifications';
import { PgRevocationStore, RateLimiterLoginThrottle, RedisRevocationStore, type LoginLimits } from './stores';
import { SettingsService } from './settings';
import { SystemService } from './system';
import { TechniquesService } from './techniques';
import { TestTemplatesService } from './test-templates';
import { TestsService } from './tests';
import { ThreatActorsService } from './threat-actors';
import { UsersService } from './users';
import { WorklogsService } from './worklogs';
// campaigns (issue 10)
import { CampaignsService } from './campaigns';
// scores (issue 12: scores, risk, compliance)
import { ComplianceService } from './compliance';
import { RiskService, risksAbove } from './risk';
import { ScoresService } from './scores';
// alerts
import { AlertsService } from './alerts';
// webhooks
import { WebhooksService, type WebhookSettings } from './webhooks';
// reports
import { ReportsService } from './reports';
// documents (issue 13)
import { DocumentsService } from './documents';
import { ReportSchedulesService } from './report-schedules';
// attack paths and knowledge (issue 10)
import { AttackPathsService } from './attack-paths';
import { KnowledgeService } from './knowledge';
// dashboards (issue 12)
import { AnalyticsService } from './analytics';
import { DashboardsService } from './dashboards';
import { SnapshotsService } from './snapshots';
// detection (issue 11)
import { DetectionService } from './detection';
import { DetectionRulesService } from './detection-rules';
import { OwnershipService } from './ownership';
// second factors (issue 15)
import { SecondFactorService } from './second-factor';
// sso (issue 15): the shared SSO identity core
import { SsoIdentityService } from './sso-identity';
// sso (issue 15, OIDC)
import { OidcService } from './oidc';
// osint (issue 14)
import { OsintService } from './osint';
// sso (issue 15, SAML)
import { SamlService, type SamlServiceProvider } from './saml';
// jira (issue 14)
import { JiraService, type JiraOptions } from './jira';


export interface ServiceDeps {
    knex: Knex;
    queue: Queue;
    redis?: Redis | undefined;
    storage?: ObjectStore | undefined;
    uploads?: UploadSettings | undefined;
    outbound: OutboundHttp;
    secretKey: Buffer;
    smtp: Config['smtp'];
    jwt: JwtSettings;
    login: LoginLimits;
    // API_KEY_MAX_LIFETIME_DAYS (365 when not given)
    apiKeys?: { maxLifetimeDays: number } | undefined;
    version: string;
    heartbeatSeconds: number;
    coverage?: CoverageSettings | undefined;        // unset: the defaults of config.ts
    // scores (issue 12): COMPLIANCE_SOURCE, the folder POST /compliance/import reads
    compliance?: { source: string | undefined } | undefined;
    // webhooks: unset, the defaults of services/webhooks.ts
    webhooks?: Partial<WebhookSettings> | undefined;
    // documents (issue 13): REPORT_WAIT_MS (5000 when not given)
    documents?: { waitMs: number } | undefined;
    // dashboards (issue 12): SNAPSHOT_RETENTION_DAYS
    snapshots?: { retentionDays: number } | undefined;
    // sso (issue 15, OIDC): AEGIS_PUBLIC_URL, which gives the callback address
    oidc?: { publicUrl: string | undefined } | undefined;
    // osint (issue 14): OSINT_FEED_DIR (unset: <temp dir>/aegis-feeds, for scripts that build services by hand)
    osint?: { feedDir: string } | undefined;
    // sso (issue 15, SAML): the public URL the SP entity id and ACS URL derive from; unset, http://127.0.0.1
    sso?: SamlServiceProvider | undefined;
    // jira (issue 14): AEGIS_PUBLIC_URL for the links back; the client's timeouts and waits (tests shorten them)
    jira?: JiraOptions | undefined;
}


// The one factory both processes call: the API server and the worker run the same services.
export const createServices = (deps: ServiceDeps) => {

    const { knex, redis } = deps;
    const audit = new AuditService({ knex });
    const revocations = redis ? new RedisRevocationStore(knex, redis) : new PgRevocationStore(knex);
    const throttle = new RateLimiterLoginThrottle(redis ? { redis } : { knex }, deps.login);
    const events = new EventsService({ knex, audit });
    const coverage = new CoverageService({ knex, audit, events, settings: deps.coverage ?? { stalenessDays: 180 } });
    const techniques = new TechniquesService({ knex, audit, coverage });
    const notifications = new NotificationsService({ knex, audit });
    const tests = new TestsService({ knex, audit, events, coverage, notifications });
    const apiKeys = deps.apiKeys ?? { maxLifetimeDays: 365 };
    const settings = new SettingsService({ knex, audit, outbound: deps.outbound, secretKey: deps.secretKey });
    // scores (issue 12: scores, risk, compliance)
    const risk = new RiskService({ knex, audit, settings, queue: deps.queue });
    const mail = new MailService({ knex, audit, settings, smtp: deps.smtp });
    const uploads = deps.uploads ?? { maxBytes: 100 * 1024 * 1024, allowedTypes: defaultUploadTypes, knownSizeBytes: 0 };
    // documents (issue 13)
    const documents = new DocumentsService({ knex, audit, queue: deps.queue, storage: deps.storage!, waitMs: deps.documents?.waitMs ?? 5000 });
    // dashboards (issue 12)
    const snapshots = new SnapshotsService({ knex, audit, settings: deps.snapshots ?? { retentionDays: 365 } });
    const analytics = new AnalyticsService({ knex });
    // sso (issue 15): every login path (password, SAML, OIDC) issues its session through the one AuthService
    // second factors (issue 15): the login asks it whether a second step is needed
    const secondFactors = new SecondFactorService({ knex, audit, throttle, settings, notifications, secretKey: deps.secretKey });
    const auth = new AuthService({ knex, audit, revocations, throttle, jwt: deps.jwt, apiKeys, secondFactors });
    const ssoIdentity = new SsoIdentityService({ knex, audit, auth });

    return {
        audit,
        events,
        coverage,
        techniques,
        attackImport: new AttackImportService({ knex, audit, coverage, queue: deps.queue, outbound: deps.outbound }),
        threatActors: new ThreatActorsService({ knex, audit }),
        dataSources: new DataSourcesService({ knex, audit }),
        heatmap: new HeatmapService({ knex, audit, techniques }),
        auth,
        users: new UsersService({ knex, audit }),
        apiKeys: new ApiKeysService({ knex, audit, maxLifetimeDays: apiKeys.maxLifetimeDays }),
        notifications,
        tests,
        evidence: new EvidenceService({ knex, audit, tests, storage: deps.storage!, uploads }),
        testTemplates: new TestTemplatesService({ knex, audit }),
        worklogs: new WorklogsService({ knex, audit, tests }),
        settings,
        mail,
        system: new SystemService({ knex, queue: deps.queue, relayStatus: () => events.status(), redis, storage: deps.storage, version: deps.version, heartbeatSeconds: deps.heartbeatSeconds }),
        // campaigns (issue 10)
        campaigns: new CampaignsService({ knex, audit, events, tests }),
        // scores (issue 12: scores, risk, compliance)
        risk,
        scores: new ScoresService({ knex, settings, risk }),
        compliance: new ComplianceService({ knex, audit, source: deps.compliance?.source }),
        // alerts
        alerts: new AlertsService({ knex, audit, events, notifications, mail, queue: deps.queue, risk: risksAbove }),
        // webhooks
        webhooks: new WebhooksService({ knex, audit, outbound: deps.outbound, notifications, secretKey: deps.secretKey, settings: deps.webhooks }),
        // reports
        reports: new ReportsService({ knex }),
        // documents (issue 13)
        documents,
        reportSchedules: new ReportSchedulesService({ knex, audit, documents, mail, settings }),
        // attack paths and knowledge (issue 10)
        attackPaths: new AttackPathsService({ knex, audit, tests }),
        knowledge: new KnowledgeService({ knex, audit, tests }),
        // dashboards (issue 12)
        snapshots,
        analytics,
        dashboards: new DashboardsService({ knex, snapshots, analytics }),
        // detection (issue 11)
        detection: new DetectionService({ knex, audit, settings, techniques }),
        detectionRules: new DetectionRulesService({ knex, audit, tests }),
        ownership: new OwnershipService({ knex, audit, notifications }),
        // second factors (issue 15)
        secondFactors,
        // sso (issue 15): the shared SSO identity core
        ssoIdentity,
        // sso (issue 15, OIDC)
        oidc: new OidcService({ audit, settings, outbound: deps.outbound, ssoIdentity, secretKey: deps.secretKey, publicUrl: deps.oidc?.publicUrl }),
        // osint (issue 14)
        osint: new OsintService({ knex, audit, outbound: deps.outbound, queue: deps.queue, secretKey: deps.secretKey, feedDir: deps.osint?.feedDir }),
        // sso (issue 15, SAML)
        saml: new SamlService({ knex, audit, settings, outbound: deps.outbound, ssoIdentity, sp: deps.sso ?? { publicUrl: 'http://127.0.0.1', secureCookies: false } }),
        // jira (issue 14)
        jira: new JiraService({ knex, audit, tests, notifications, settings, outbound: deps.outbound, queue: deps.queue, options: deps.jira })
    };
};


export type Services = ReturnType<typeof createServices>;
