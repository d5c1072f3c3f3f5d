import { apiKeyRoutes } from './api-keys';
import { authRoutes } from './auth';
import { notificationRoutes } from './notifications';
import { systemRoutes } from './system';
import { userRoutes } from './users';


// Every module's routes, in one explicit list.
export const routes = [
    ...authRoutes,
    ...userRoutes,
    ...apiKeyRoutes,
    ...notificationRoutes,
    ...systemRoutes
];
