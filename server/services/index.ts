import type { Knex } from 'knex';

import type { Redis } from '../../integrations/redis';
import type { ObjectStore } from '../../integrations/storage';
import { defaultUploadTypes } from '../config';
import type { Queue } from '../jobs';

import { AuditService } from './audit';
import { AttackImportService } from './attack-import';
import { ApiKeysService } from './api-keys';
import { AuthService, type JwtSettings } from './auth';
import { CoverageService } from './coverage';
import { DataSourcesService } from './data-sources';
import { EventsService } from './events';
import { HeatmapService } from './heatmap';
import { EvidenceService, type UploadSettings } from './evidence';
import { NotificationsService } from './notifications';
import { MemoryAttemptCounter, PgRevocationStore, RedisAttemptCounter, RedisRevocationStore } from './stores';
import { SystemService } from './system';
import { TechniquesService } from './techniques';
import { TestTemplatesService } from './test-templates';
import { TestsService } from './tests';
import { ThreatActorsService } from './threat-actors';
import { UsersService } from './users';
import { WorklogsService } from './worklogs';


export interface ServiceDeps {
    knex: Knex;
    queue: Queue;
    redis?: Redis | undefined;
    storage?: ObjectStore | undefined;
    uploads?: UploadSettings | undefined;
    jwt: JwtSettings;
    login: { maxFailuresPerUser: number; maxFailuresPerIp: number; windowSeconds: number };
    version: string;
    heartbeatSeconds: number;
}


// The one factory both processes call: the API server and the worker run the same services.
export const createServices = (deps: ServiceDeps) => {

    const { knex, redis } = deps;
    const audit = new AuditService({ knex });
    const revocations = redis ? new RedisRevocationStore(knex, redis) : new PgRevocationStore(knex);
    const attempts = redis ? new RedisAttemptCounter(redis) : new MemoryAttemptCounter();
    const events = new EventsService({ knex, audit });
    const coverage = new CoverageService({ events });
    const techniques = new TechniquesService({ knex, audit });
    const notifications = new NotificationsService({ knex, audit });
    const tests = new TestsService({ knex, audit, events, coverage, notifications });
    const uploads = deps.uploads ?? { maxBytes: 100 * 1024 * 1024, allowedTypes: defaultUploadTypes, knownSizeBytes: 0 };

    return {
        audit,
        events,
        coverage,
        techniques,
        attackImport: new AttackImportService({ knex, audit, queue: deps.queue }),
        threatActors: new ThreatActorsService({ knex, audit }),
        dataSources: new DataSourcesService({ knex, audit }),
        heatmap: new HeatmapService({ knex, audit, techniques }),
        auth: new AuthService({ knex, audit, revocations, attempts, jwt: deps.jwt, login: deps.login }),
        users: new UsersService({ knex, audit }),
        apiKeys: new ApiKeysService({ knex, audit }),
        notifications,
        tests,
        evidence: new EvidenceService({ knex, audit, tests, storage: deps.storage!, uploads }),
        testTemplates: new TestTemplatesService({ knex, audit }),
        worklogs: new WorklogsService({ knex, audit, tests }),
        system: new SystemService({ knex, queue: deps.queue, relayStatus: () => events.status(), redis, storage: deps.storage, version: deps.version, heartbeatSeconds: deps.heartbeatSeconds })
    };
};


export type Services = ReturnType<typeof createServices>;
