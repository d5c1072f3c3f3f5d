export { BaseModel } from './base';
export { User, type AuthProvider, type Preferences } from './user';
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
// campaigns (issue 10)
export { Campaign, CampaignTest, CampaignHistoryEntry } from './campaign';
// scores (issue 12: scores, risk, compliance)
export { RiskProfile, ComplianceFramework, ComplianceControl, ComplianceMapping } from './posture';
// alerts
export { Alert, AlertRule, type AlertRuleType, type AlertSeverity, type AlertStatus, type AlertSubjectType } from './alert';
// webhooks
export { Webhook, WebhookDelivery, WebhookAttempt, webhookEventTypes, type WebhookEventType } from './webhook';
// documents (issue 13)
export { ReportRender, ReportSchedule, ReportScheduleRun, type DocumentKind } from './report';
// attack paths and knowledge (issue 10)
export { AttackPath, AttackPathStep, AttackPathExecution, ExecutionStep, executionStates, stepOutcomes, type ExecutionState, type StepOutcome } from './attack-path';
export { Playbook, PlaybookVersion, Lesson, playbookTypes, lessonSeverities, lessonStatuses, type PlaybookType, type LessonSeverity, type LessonStatus } from './knowledge';
// dashboards (issue 12)
export { PostureSnapshot, PostureSnapshotTechnique, type PostureSummary } from './posture-snapshot';
// detection (issue 11)
export {
    DetectionAsset, TestDetection, DetectionValidation, DetectionRule, DetectionRuleEvaluation, InfrastructureChange, TechniqueAssignment, AssetOwnership,
    RevalidationEntry, assetTypes, ruleLanguages, ruleStatuses, ruleSeverities, validatedOutcomes, assignmentRoles, assetOwnershipRoles,
    type AssetType, type RuleLanguage, type RuleStatus, type RuleSeverity, type ValidatedOutcome, type AssignmentRole, type AssetOwnershipRole
} from './detection';
// second factors (issue 15)
export { UserSecondFactor, UserRecoveryCode, SecondFactorChallenge } from './second-factor';
// osint (issue 14)
export { OsintFeed, OsintImport, osintFeedKinds, osintAuthTypes, type OsintFeedKind, type OsintAuthType, type OsintRejection } from './osint';
// sso (issue 15, SAML)
export { SamlRequest, SamlAssertion } from './saml';
// jira (issue 14)
export { JiraIssue, JiraSyncRun, JiraComment, jiraSyncTriggers, jiraSyncStatuses, type JiraSyncTrigger, type JiraSyncStatus } from './jira';
