export { BaseModel } from './base';
export { User, type Preferences } from './user';
export { ApiKey, type ApiKeyScope } from './api-key';
export { AuditLog, type AuditOutcome } from './audit-log';
export { Notification } from './notification';
export { RevokedToken, WorkerHeartbeat } from './system';
export { Tactic, Technique, ThreatActor, DataComponent, AttackImport, type AttackDomainName, type CoverageStatusName, type DataQuality } from './attack';
