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
// detection (issue 11)
import { detectionLifecycleRoutes, detectionRuleRoutes, ownershipRoutes } from './detection';


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
    // detection (issue 11)
    ...detectionLifecycleRoutes,
    ...detectionRuleRoutes,
    ...ownershipRoutes
];
