import type * as Hapi from '@hapi/hapi';

import { User } from '../models';
import { Access } from '../policy';
import { refuseCrossSite } from '../plugins/auth';
import { actorOf } from '../plugins/services';
import { answers, responses } from '../schemas/common';
import * as UserSchemas from '../schemas/users';
import { loginAnswer } from '../schemas/second-factor';
import type { Session } from '../services/auth';

import { route } from './route';


export const cookieName = 'aegis_token';


// sso (issue 15): how every login path (password, SAML, OIDC) answers a session: the aegis_token cookie with the flags
// of server.state (server/server.ts), and either the Session as JSON or, for a browser sent back from an identity
// provider, a 303 to a same-origin path that the caller has already checked.
export const withSession = <Refs extends Hapi.ReqRef>(h: Hapi.ResponseToolkit<Refs>, session: Session, redirectTo?: string): Hapi.ResponseObject => {

    const response = redirectTo === undefined ? h.response(session) : h.redirect(redirectTo).code(303);
    return response.state(cookieName, session.access_token);
};

const internals = {
    passwordChange: { aegis: { allowDuringPasswordChange: true } },
    credentialChange: { aegis: { allowDuringPasswordChange: true, interactiveOnly: true } }
};


export const authRoutes = [
    route<{ Payload: { username: string; password: string } }>({
        method: 'POST',
        path: '/api/v1/auth/login',
        options: {
            description: 'Log in with a username and password (form-encoded or JSON); sets the aegis_token cookie. A user with a second factor (or whose role requires one) gets a LoginChallenge instead: no session, no cookie, and the second step at POST /auth/login/second-factor',
            tags: ['api', 'auth'],
            auth: false,
            ext: { onPreAuth: { method: refuseCrossSite } },
            payload: { allow: ['application/json', 'application/x-www-form-urlencoded'] },
            validate: { payload: UserSchemas.login },
            response: { schema: loginAnswer },
            plugins: { 'hapi-swagger': { consumes: ['application/json', 'application/x-www-form-urlencoded'], responses: responses(401, 403, 429) } }
        },
        handler: async (request, h) => {

            const answer = await request.services().auth.login(actorOf(request), request.payload.username, request.payload.password);
            // second factors (issue 15): a challenge is no session, and sets no cookie
            return 'access_token' in answer ? withSession(h, answer) : answer;
        }
    }),

    route({
        method: 'POST',
        path: '/api/v1/auth/logout',
        options: {
            description: 'Revoke the current token and clear the cookie',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            plugins: { ...internals.passwordChange, ...answers(204) }
        },
        handler: async (request, h) => {

            await request.services().auth.logout(actorOf(request), request.auth.credentials.app?.token);
            return h.response().code(204).unstate(cookieName);
        }
    }),

    route({
        method: 'GET',
        path: '/api/v1/auth/me',
        options: {
            description: 'The current user and role',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            plugins: internals.passwordChange,
            response: { schema: UserSchemas.user }
        },
        handler: (request) => User.toPublic(request.auth.credentials.user!)
    }),

    route<{ Payload: { current_password: string; new_password: string } }>({
        method: 'POST',
        path: '/api/v1/auth/change-password',
        options: {
            description: 'Change the own password (required while must_change_password is true; interactive sessions only, not with an API key); answers a fresh session',
            tags: ['api', 'auth'],
            auth: { access: { scope: [...Access.any] } },
            plugins: internals.credentialChange,
            validate: { payload: UserSchemas.passwordChange },
            response: { schema: UserSchemas.session }
        },
        handler: async (request, h) => {

            const session = await request.services().auth.changePassword(actorOf(request), request.payload);
            return withSession(h, session);
        }
    })
];
