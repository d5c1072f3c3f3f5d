import type * as Hapi from '@hapi/hapi';

import type { Actor } from '../policy';
import type { Services } from '../services';


declare module '@hapi/hapi' {
    interface Request {
        services(): Services;
    }
    interface Server {
        services(): Services;
    }
}


export const servicesPlugin: Hapi.Plugin<{ services: Services }> = {
    name: 'aegis/services',
    register: (server, options) => {

        server.decorate('request', 'services', () => options.services);
        server.decorate('server', 'services', () => options.services);
    }
};


// The actor a service receives: who is calling, and from where (for the audit row).
export const actorOf = (request: Hapi.Request<any>): Actor => {

    const user = request.auth.credentials?.user;
    return {
        id: user?.id ?? null,
        role: user?.role ?? 'viewer',
        ip: request.app.clientAddress ?? request.info.remoteAddress,
        userAgent: request.headers['user-agent'],
        requestId: request.info.id
    };
};
