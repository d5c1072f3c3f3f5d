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
// detection (issue 11)
import { DetectionService } from './detection';
import { DetectionRulesService } from './detection-rules';
import { OwnershipService } from './ownership';


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
    const uploads = deps.uploads ?? { maxBytes: 100 * 1024 * 1024, allowedTypes: defaultUploadTypes, knownSizeBytes: 0 };

    return {
        audit,
        events,
        coverage,
        techniques,
        attackImport: new AttackImportService({ knex, audit, coverage, queue: deps.queue, outbound: deps.outbound }),
        threatActors: new ThreatActorsService({ knex, audit }),
        dataSources: new DataSourcesService({ knex, audit }),
        heatmap: new HeatmapService({ knex, audit, techniques }),
        auth: new AuthService({ knex, audit, revocations, throttle, jwt: deps.jwt, apiKeys }),
        users: new UsersService({ knex, audit }),
        apiKeys: new ApiKeysService({ knex, audit, maxLifetimeDays: apiKeys.maxLifetimeDays }),
        notifications,
        tests,
        evidence: new EvidenceService({ knex, audit, tests, storage: deps.storage!, uploads }),
        testTemplates: new TestTemplatesService({ knex, audit }),
        worklogs: new WorklogsService({ knex, audit, tests }),
        settings,
        mail: new MailService({ knex, audit, settings, smtp: deps.smtp }),
        system: new SystemService({ knex, queue: deps.queue, relayStatus: () => events.status(), redis, storage: deps.storage, version: deps.version, heartbeatSeconds: deps.heartbeatSeconds }),
        // detection (issue 11)
        detection: new DetectionService({ knex, audit, settings, techniques }),
        detectionRules: new DetectionRulesService({ knex, audit, tests }),
        ownership: new OwnershipService({ knex, audit })
    };
};


export type Services = ReturnType<typeof createServices>;
