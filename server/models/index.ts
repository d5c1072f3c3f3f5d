export { BaseModel } from './base';
export { User, type Preferences } from './user';
export { ApiKey, type ApiKeyScope } from './api-key';
export { AuditLog, type AuditOutcome } from './audit-log';
export { Notification } from './notification';
export { RevokedToken, WorkerHeartbeat } from './system';
export { Tactic, Technique, ThreatActor, DataComponent, AttackImport, type AttackDomainName, type CoverageStatusName, type DataQuality } from './attack';
export { Test, type AttackResult, type DataClassification, type Priority, type RemediationStatus } from './test';
export { TestTimelineEntry } from './test-timeline';
export { Evidence } from './evidence';
export { TestTemplate } from './test-template';
export { Worklog } from './worklog';
export { Setting } from './setting';
export { EventDelivery } from './event-delivery';
// detection (issue 11)
export {
    DetectionAsset, TestDetection, DetectionValidation, DetectionRule, DetectionRuleEvaluation, InfrastructureChange, TechniqueAssignment, AssetOwnership,
    RevalidationEntry, assetTypes, ruleLanguages, ruleStatuses, ruleSeverities, validatedOutcomes, assignmentRoles, assetOwnershipRoles,
    type AssetType, type RuleLanguage, type RuleStatus, type RuleSeverity, type ValidatedOutcome, type AssignmentRole, type AssetOwnershipRole
} from './detection';
