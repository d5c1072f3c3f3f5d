import { apiKeyRoutes } from './api-keys';
import { authRoutes } from './auth';
import { dataSourceRoutes } from './data-sources';
import { heatmapRoutes } from './heatmap';
import { notificationRoutes } from './notifications';
import { systemRoutes } from './system';
import { techniqueRoutes } from './techniques';
import { threatActorRoutes } from './threat-actors';
import { userRoutes } from './users';


// Every module's routes, in one explicit list.
export const routes = [
    ...authRoutes,
    ...userRoutes,
    ...apiKeyRoutes,
    ...notificationRoutes,
    ...systemRoutes,
    ...techniqueRoutes,
    ...threatActorRoutes,
    ...dataSourceRoutes,
    ...heatmapRoutes
];
