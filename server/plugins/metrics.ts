import type * as Hapi from '@hapi/hapi';

import type { Metrics } from '../metrics';


// Every answered request, by method, route template (`request.route.path`: never the raw URL, whose ids would make a
// series per entity; an unknown URL counts under hapi's catch-all `/{p*}`) and status.
export const metricsPlugin: Hapi.Plugin<{ metrics: Metrics }> = {
    name: 'aegis/metrics',
    register: (server, { metrics }) => {

        server.events.on('response', (request) => {

            const response = request.response as Hapi.ResponseObject | null;
            metrics.request(request.method.toUpperCase(), request.route.path, response?.statusCode ?? 0, (Date.now() - request.info.received) / 1000);
        });
    }
};
