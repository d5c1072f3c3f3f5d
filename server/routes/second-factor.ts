import { refuseCrossSite } from '../plugins/auth';
import { actorOf } from '../plugins/services';
import { Access } from '../policy';
import { answers, idParams, responses } from '../schemas/common';
import * as Schemas from '../schemas/second-factor';
import * as UserSchemas from '../schemas/users';
import type { FactorProof } from '../services/second-factor';

import { cookieName } from './auth';
import { route } from './route';


const internals = {
    // The login's later steps: public like POST /auth/login, refused cross-site like it (login CSRF)
    loginStep: {
        tags: ['api', 'auth'],
        auth: false as const,
        ext: { onPreAuth: { method: refuseCrossSite } },
        payload: { allow: ['application/json', 'application/x-www-form-urlencoded'] }
    },

    // Credential management: a login (not an API key), and not while the password is temporary
    credentials: { aegis: { interactiveOnly: true } }
};


// second factors (issue 15): docs/second-factors.md
export const secondFactorRoutes = [
    route<{ Payload: FactorProof & { challenge: string } }>({
        method: 'POST',
        path: '/api/v1/auth/login/second-factor',
        options: {
            ...internals.loginStep,
            description: 'The login\'s second step: the challenge of POST /auth/login and a current TOTP code or a recovery code; answers the session and sets the aegis_token cookie',
            validate: { payload: Schemas.loginSecondFactor },
            response: { schema: UserSchemas.session },
            plugins: { 'hapi-swagger': { responses: responses(401, 403, 429) } }
        },
        handler: async (request, h) => {

            const session = await request.services().auth.loginSecondFactor(actorOf(request), request.payload);
            return h.response(session).state(cookieName, session.access_token);
        }
    }),

    route<{ Payload: { challenge: string } }>({
        method: 'POST',
        path: '/api/v1/auth/login/second-factor/totp',
        options: {
            ...internals.loginStep,
            description: 'Start the TOTP enrolment that the role requires, with the challenge of POST /auth/login (enrolment_required); answers the otpauth URI and its QR code',
            validate: { payload: Schemas.loginEnrolment },
            response: { status: { 201: Schemas.totpEnrolment } },
            plugins: { 'hapi-swagger': { responses: responses(401, 403, 409) } }
        },
        handler: async (request, h) => h.response(await request.services().secondFactors.startEnrolmentAtLogin(actorOf(request), request.payload)).code(201)
    }),

    route<{ Payload: { challenge: string; code: string } }>({
        method: 'POST',
        path: '/api/v1/auth/login/second-factor/totp/confirm',
        options: {
            ...internals.loginStep,
            description: 'Confirm the required enrolment with its first code: ends the login with the session (aegis_token cookie set) and the ten recovery codes, shown this once',
            validate: { payload: Schemas.loginEnrolmentConfirm },
            response: { schema: Schemas.sessionWithRecoveryCodes },
            plugins: { 'hapi-swagger': { responses: responses(401, 403, 409, 429) } }
        },
        handler: async (request, h) => {

            const session = await request.services().auth.loginEnrolment(actorOf(request), request.payload);
            return h.response(session).state(cookieName, session.access_token);
        }
    }),

    route({
        method: 'GET',
        path: '/api/v1/auth/second-factor',
        options: {
            description: 'The own second factor: whether it is set up, pending or required, and how many recovery codes are left',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            response: { schema: Schemas.status }
        },
        handler: (request) => request.services().secondFactors.status(actorOf(request))
    }),

    route<{ Payload: { password: string } }>({
        method: 'POST',
        path: '/api/v1/auth/second-factor/totp',
        options: {
            description: 'Start a TOTP enrolment (the current password again); answers the otpauth URI, the secret and a QR code. A second start replaces a pending one',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            validate: { payload: Schemas.enrolmentStart },
            response: { status: { 201: Schemas.totpEnrolment } },
            plugins: { ...internals.credentials, ...answers(409, 429) }
        },
        handler: async (request, h) => h.response(await request.services().secondFactors.startEnrolment(actorOf(request), request.payload)).code(201)
    }),

    route<{ Payload: { code: string } }>({
        method: 'POST',
        path: '/api/v1/auth/second-factor/totp/confirm',
        options: {
            description: 'Confirm the pending TOTP enrolment with a current code: the factor is on from the next login; answers the ten recovery codes, shown this once',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            validate: { payload: Schemas.enrolmentConfirm },
            response: { schema: Schemas.recoveryCodes },
            plugins: { ...internals.credentials, ...answers(409, 429) }
        },
        handler: (request) => request.services().secondFactors.confirmEnrolment(actorOf(request), request.payload)
    }),

    route<{ Payload: FactorProof & { password: string } }>({
        method: 'DELETE',
        path: '/api/v1/auth/second-factor',
        options: {
            description: 'Remove the own second factor and its recovery codes: the current password and a current code (or a recovery code). Refused while the role requires one',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            validate: { payload: Schemas.removal },
            plugins: { ...internals.credentials, ...answers(204, 404, 409, 429) }
        },
        handler: async (request, h) => {

            await request.services().secondFactors.remove(actorOf(request), request.payload);
            return h.response().code(204);
        }
    }),

    route<{ Payload: { code: string } }>({
        method: 'POST',
        path: '/api/v1/auth/second-factor/recovery-codes',
        options: {
            description: 'Replace the recovery codes (a current code proves the factor): the old ones stop working; the ten new ones are shown this once',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            validate: { payload: Schemas.recoveryCodesRequest },
            response: { schema: Schemas.recoveryCodes },
            plugins: { ...internals.credentials, ...answers(404, 429) }
        },
        handler: (request) => request.services().secondFactors.regenerateRecoveryCodes(actorOf(request), request.payload)
    }),

    route<{ Params: { id: string } }>({
        method: 'DELETE',
        path: '/api/v1/users/{id}/second-factor',
        options: {
            description: 'Reset a user\'s second factor (a lost device): the factor and its recovery codes are removed, the user\'s sessions end and the user is notified; not one\'s own',
            tags: ['api', 'users'],
            auth: { access: { scope: [...Access.admin] } },
            validate: { params: idParams },
            plugins: { ...internals.credentials, ...answers(204, 404, 409) }
        },
        handler: async (request, h) => {

            await request.services().secondFactors.reset(actorOf(request), request.params.id);
            return h.response().code(204);
        }
    })
];
