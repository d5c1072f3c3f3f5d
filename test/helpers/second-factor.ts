import { expect } from '@hapi/code';
import type * as Hapi from '@hapi/hapi';
import * as Jwt from '@hapi/jwt';

import { hotp, timeStep } from '../../server/services/totp';

import { password, type TestContext } from './server';


// What an authenticator app does with the secret it was shown: base32 (RFC 4648) back to bytes, and the code of a step
export const fromBase32 = (text: string): Buffer => {

    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = 0;
    let value = 0;
    const bytes: number[] = [];
    for (const char of text.toUpperCase()) {
        value = ((value << 5) | alphabet.indexOf(char)) & 0xffff;
        bits += 5;
        if (bits >= 8) {
            bytes.push((value >>> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }

    return Buffer.from(bytes);
};


export const codeAt = (secret: string, step: number): string => hotp(fromBase32(secret), step);


// A step with a few seconds left before it turns (so that the codes of step - 1, step and step + 1, which the server
// accepts, stay acceptable while a test uses them)
export const steadyStep = async (): Promise<number> => {

    const into = (Date.now() / 1000) % 30;
    if (into > 22) {
        await new Promise((resolve) => setTimeout(resolve, (30 - into) * 1000 + 100));
    }

    return timeStep(Date.now());
};


export interface Enrolled {
    user: Awaited<ReturnType<TestContext['createUser']>>;
    secret: string;
    recoveryCodes: string[];
    step: number;                       // the step whose code confirmed the enrolment (its code is spent)
}


// A user with a confirmed TOTP factor, set up through the routes; the code of `step - 1` confirmed it, so the codes
// of `step` and `step + 1` are still unused
export const enrolled = async (context: TestContext, role: Parameters<TestContext['createUser']>[0] = 'red_tech'): Promise<Enrolled> => {

    const user = await context.createUser(role);
    const session = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password } });
    const authorization = `Bearer ${(session.result as { access_token: string }).access_token}`;
    const started = await context.server.inject({ method: 'POST', url: '/api/v1/auth/second-factor/totp', headers: { authorization }, payload: { password } });
    expect(started.statusCode).to.equal(201);
    const secret = (started.result as { secret: string }).secret;
    const step = await steadyStep();
    const confirmed = await context.server.inject({ method: 'POST', url: '/api/v1/auth/second-factor/totp/confirm', headers: { authorization }, payload: { code: codeAt(secret, step - 1) } });
    expect(confirmed.statusCode, confirmed.payload).to.equal(200);
    return { user, secret, recoveryCodes: (confirmed.result as { recovery_codes: string[] }).recovery_codes, step };
};


// The password step of a user with a second factor: the challenge, no session and no cookie
export const challengeOf = async (server: Hapi.Server, username: string, remoteAddress?: string): Promise<string> => {

    const res = await server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password }, ...(remoteAddress ? { remoteAddress } : {}) });
    expect(res.statusCode).to.equal(200);
    expect(res.headers['set-cookie']).to.not.exist();
    const body = res.result as { challenge: string; access_token?: string };
    expect(body.access_token).to.not.exist();
    return body.challenge;
};


// The session semantics every login path must end in (issue 15: password, password + TOTP, SAML, OIDC): the same
// answer, the aegis_token cookie with the same flags, a token with the same claims and lifetime, that works, and that
// logout revokes
export const expectSessionSemantics = async (context: TestContext, res: { statusCode: number; payload: string; headers: Record<string, unknown> }, userId: string): Promise<void> => {

    expect(res.statusCode).to.equal(200);
    const body = JSON.parse(res.payload) as { access_token: string; token_type: string; expires_at: string; user: { id: string; password_hash?: unknown } };
    expect(body.token_type).to.equal('bearer');
    expect(body.user.id).to.equal(userId);
    expect(body.user.password_hash).to.not.exist();
    expect(res.payload).to.not.include('token_version');

    const cookie = (res.headers['set-cookie'] as string[])[0]!;
    expect(cookie).to.startWith(`aegis_token=${body.access_token};`);
    for (const flag of ['HttpOnly', 'SameSite=Lax', 'Path=/']) {
        expect(cookie).to.include(flag);
    }

    // Expiry: the configured lifetime, as the answer says, with every claim the jwt scheme requires
    const { decoded } = Jwt.token.decode(body.access_token);
    const claims = decoded.payload as Record<string, unknown>;
    expect(Object.keys(claims).sort()).to.equal(['aud', 'exp', 'iat', 'iss', 'jti', 'role', 'sub', 'ver']);
    expect(claims.sub).to.equal(userId);
    expect((claims.exp as number) - (claims.iat as number)).to.equal(context.config.jwt.ttlSeconds);
    expect(new Date(body.expires_at).getTime()).to.equal((claims.exp as number) * 1000);
    expect(decoded.header.alg).to.equal('HS256');

    // Works as a bearer and as the cookie, and logout revokes it
    const authorization = `Bearer ${body.access_token}`;
    expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization } })).statusCode).to.equal(200);
    expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: `aegis_token=${body.access_token}` } })).statusCode).to.equal(200);
    expect((await context.server.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { authorization } })).statusCode).to.equal(204);
    const after = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization } });
    expect(after.statusCode).to.equal(401);
    expect((after.result as { code: string }).code).to.equal('token_revoked');
};
