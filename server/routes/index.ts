import { apiKeyRoutes } from './api-keys';
import { authRoutes } from './auth';
import { evidenceRoutes } from './evidence';
import { dataSourceRoutes } from './data-sources';
import { heatmapRoutes } from './heatmap';
import { notificationRoutes } from './notifications';
import { settingRoutes } from './settings';
import { systemRoutes } from './system';
import { testLifecycleRoutes } from './test-lifecycle';
import { testTemplateRoutes } from './test-templates';
import { testRoutes } from './tests';
import { techniqueRoutes } from './techniques';
import { threatActorRoutes } from './threat-actors';
import { userRoutes } from './users';
import { worklogRoutes } from './worklogs';
// campaigns (issue 10)
import { campaignRoutes } from './campaigns';
// scores (issue 12: scores, risk, compliance)
import { complianceRoutes, riskRoutes, scoreRoutes } from './posture';
// alerts
import { alertRoutes } from './alerts';
// webhooks
import { webhookRoutes } from './webhooks';
// reports
import { reportRoutes } from './reports';
// documents (issue 13)
import { documentRoutes } from './documents';
// attack paths and knowledge (issue 10)
import { attackPathRoutes } from './attack-paths';
import { knowledgeRoutes } from './knowledge';
// detection (issue 11)
import { detectionLifecycleRoutes, detectionRuleRoutes, ownershipRoutes } from './detection';

// dashboards (issue 12)
import { dashboardRoutes } from './dashboards';
// second factors (issue 15)
import { secondFactorRoutes } from './second-factor';
// sso (issue 15, OIDC)
import { oidcRoutes } from './oidc';
// osint (issue 14)
import { osintRoutes } from './osint';
// sso (issue 15)
import { ssoRoutes } from './sso';
// jira (issue 14)
import { jiraRoutes } from './jira';

// Every module's routes, in one explicit list.
export const routes = [
    ...authRoutes,
    ...userRoutes,
    ...apiKeyRoutes,
    ...notificationRoutes,
    ...systemRoutes,
    ...settingRoutes,
    ...testRoutes,
    ...testLifecycleRoutes,
    ...evidenceRoutes,
    ...testTemplateRoutes,
    ...worklogRoutes,
    ...techniqueRoutes,
    ...threatActorRoutes,
    ...dataSourceRoutes,
    ...heatmapRoutes,
    // campaigns (issue 10)
    ...campaignRoutes,
    // scores (issue 12: scores, risk, compliance)
    ...scoreRoutes,
    ...riskRoutes,
    ...complianceRoutes,
    // alerts
    ...alertRoutes,
    // webhooks
    ...webhookRoutes,
    // reports
    ...reportRoutes,
    // documents (issue 13)
    ...documentRoutes,
    // attack paths and knowledge (issue 10)
    ...attackPathRoutes,
    ...knowledgeRoutes,
    // dashboards (issue 12)
    ...dashboardRoutes,
    // detection (issue 11)
    ...detectionLifecycleRoutes,
    ...detectionRuleRoutes,
    ...ownershipRoutes,
    // second factors (issue 15)
    ...secondFactorRoutes,
    // sso (issue 15, OIDC)
    ...oidcRoutes,
    // osint (issue 14)
    ...osintRoutes,
    // sso (issue 15)
    ...ssoRoutes,
    // jira (issue 14)
    ...jiraRoutes
];
