import { actorOf } from '../plugins/services';
import { answers, idParams } from '../schemas/common';
import { transitionInput, validationInput, test } from '../schemas/tests';
import { lifecycle, testActions } from '../services/test-lifecycle';
import type { TransitionInput } from '../services/tests';

import { route } from './route';


// One route per transition of the lifecycle table: the path, the roles and the description come from the table
export const testLifecycleRoutes = testActions.map((action) => route<{ Params: { id: string }; Payload: TransitionInput | null }>({
    method: 'POST',
    path: `/api/v1/tests/{id}/${action}`,
    options: {
        description: `${lifecycle[action].description} (${lifecycle[action].from.join(', ')})`,
        tags: ['api', 'tests'],
        auth: { access: { scope: [...lifecycle[action].roles] } },
        validate: { params: idParams, payload: action.startsWith('validate-') ? validationInput : transitionInput },
        response: { status: { 200: test } },
        plugins: answers(404, 409)
    },
    handler: (request) => request.services().tests.transition(actorOf(request), request.params.id, action, request.payload ?? {})
}));
