import type { Knex } from 'knex';

import * as Foundation from './20261128000001_foundation';
import * as Attack from './20261128000002_attack';
import * as Tests from './20261128000003_tests';
import * as ApiKeyLifetime from './20261206000100_api_key_lifetime';
import * as LoginAttempts from './20261206000101_login_attempts';
import * as NotificationPreferences from './20261206000200_notification_preferences';
import * as Integrity from './20261206000300_integrity';
import * as CoverageRollup from './20261206000301_coverage_rollup';
import * as CustomDataComponents from './20261206000302_custom_data_components';
import * as Settings from './20261206000600_settings';
import * as EventRelay from './20261206000500_event_relay';
// campaigns (issue 10)
import * as Campaigns from './20261207010000_campaigns';
// scores (issue 12: scores, risk, compliance)
import * as RiskProfiles from './20261207030001_risk_profiles';
import * as Compliance from './20261207030002_compliance';
// alerts
import * as Alerts from './20261207040000_alerts';
// webhooks
import * as Webhooks from './20261207070001_webhooks';
// documents (issue 13)
import * as Documents from './20261207080000_documents';
// attack paths and knowledge (issue 10)
import * as AttackPaths from './20261207020000_attack_paths';
import * as Knowledge from './20261207020100_knowledge';
// dashboards (issue 12)
import * as Posture from './20261207050001_posture';
// detection (issue 11)
import * as Detection from './20261207060001_detection';
// integration of campaigns (integ-a): lessons' campaign_id becomes a foreign key
import * as LessonCampaignKey from './20261207110000_lesson_campaign_key';
import * as PurpleCampaignDocument from './20261207110001_purple_campaign_document';
// second factors (issue 15)
import * as SecondFactors from './20261208140000_second_factors';
// detection (issue 11): the revalidation queue notifies its owners
import * as RevalidationNotify from './20261209110000_revalidation_notify';
// posture (issue 12): the root of each retest chain, for coverage_regression at a million tests
import * as RetestChains from './20261209120000_retest_chains';
// sso (issue 15): the shared SSO identity core
import * as SsoIdentity from './20261208120000_sso_identity';
// osint (issue 14)
import * as Osint from './20261208110000_osint';
// sso (issue 15, SAML)
import * as Saml from './20261208120001_saml';
// jira (issue 14)
import * as Jira from './20261208100000_jira';
// report schedules of campaign reports (issue 13 audit)
import * as ReportScheduleCampaign from './20261209130000_report_schedule_campaign';
import * as ReportRunInFlight from './20261209130001_report_run_in_flight';


export interface Migration {
    name: string;
    up: (knex: Knex) => Promise<void>;
    down: (knex: Knex) => Promise<void>;
}


// The explicit, ordered list of migrations: a new migration is a file plus a line here.
export const migrations: Migration[] = [
    Foundation,
    Attack,
    Tests,
    ApiKeyLifetime,
    LoginAttempts,
    NotificationPreferences,
    Integrity,
    CoverageRollup,
    CustomDataComponents,
    EventRelay,
    Settings,
    // campaigns (issue 10)
    Campaigns,
    // scores (issue 12: scores, risk, compliance)
    RiskProfiles,
    Compliance,
    // alerts
    Alerts,
    // webhooks
    Webhooks,
    // documents (issue 13)
    Documents,
    // attack paths and knowledge (issue 10)
    AttackPaths,
    Knowledge,
    // dashboards (issue 12)
    Posture,
    // detection (issue 11)
    Detection,
    // integration of campaigns (integ-a)
    LessonCampaignKey,
    PurpleCampaignDocument,
    // jira (issue 14)
    Jira,
    // osint (issue 14)
    Osint,
    // sso (issue 15): the shared SSO identity core
    SsoIdentity,
    // sso (issue 15, SAML)
    Saml,
    // second factors (issue 15)
    SecondFactors,
    // detection (issue 11): the revalidation queue notifies its owners
    RevalidationNotify,
    // posture (issue 12): retest chains
    RetestChains,
    // report schedules of campaign reports (issue 13 audit)
    ReportScheduleCampaign,
    ReportRunInFlight
];
