import * as Boom from '@hapi/boom';
import type * as Hapi from '@hapi/hapi';
import * as Jwt from '@hapi/jwt';

import { apiKeyPrefix } from '../services/auth';


// The `jwt` auth scheme: @hapi/jwt's token functions (decode, signature, claims) behind a scheme of our own, for one
// reason: @hapi/jwt's scheme decodes the token and recomputes its HMAC on every request, which was a tenth of the
// cost of a cheap request. Here a token whose signature checked out once is remembered (by its whole text, so
// nothing unsigned can get in) and its claims (exp, maximum age, nbf, aud, iss) are checked again on every request;
// revocation and the user's state stay the validate function's business, per request. Only HS256 with the one
// configured key is accepted (SEC-02): `alg: none`, other algorithms and header tricks fail the signature check.

export interface JwtSchemeOptions {
    // Where the token is read: the Authorization header (Bearer) or a cookie
    source: { header: true } | { cookie: string };
    key: string;
    verify: { aud: string; iss: string; maxAgeSec: number; timeSkewSec: number };
    validate: (payload: Record<string, unknown>, request: Hapi.Request, h: Hapi.ResponseToolkit) => Promise<{ isValid: boolean; credentials?: Hapi.AuthCredentials; response?: Hapi.ResponseObject }>;
}


// What decoding made of a token whose signature checked out; shared by every request with that token, so frozen
type Verified = Jwt.HapiJwt.Artifacts;


const internals = {
    // How many verified tokens a strategy remembers (a few MB at most); the oldest is forgotten first
    remembered: 10_000,

    unauthorized: (message: string | null = null) => Boom.unauthorized(message, 'Bearer')
};


// Verified tokens by their text, oldest first: a Map keeps insertion order.
export class VerifiedTokens {

    private readonly entries = new Map<string, Verified>();

    constructor(private readonly size: number) { }

    get(token: string): Verified | undefined {

        return this.entries.get(token);
    }

    set(token: string, verified: Verified): void {

        if (this.entries.size >= this.size) {
            this.entries.delete(this.entries.keys().next().value!);
        }

        this.entries.set(token, verified);
    }

    delete(token: string): void {

        this.entries.delete(token);
    }
}


export const jwtScheme: Hapi.ServerAuthScheme<JwtSchemeOptions> = (server, options) => {

    const settings = options!;
    const secret = { key: settings.key, algorithm: 'HS256' as const };
    const claims = { ...settings.verify, sub: false as const };                   // exp and nbf are checked unless set to false
    const verified = new VerifiedTokens(internals.remembered);
    const missing = internals.unauthorized();

    const read = (request: Hapi.Request): string => {

        if ('cookie' in settings.source) {
            const value = request.state[settings.source.cookie] as string | undefined;
            if (!value) {
                throw missing;
            }

            return value;
        }

        // Authorization: Bearer <token>, as @hapi/jwt reads it
        const parts = String(request.headers.authorization ?? '').split(/\s+/);
        if (parts[0]!.toLowerCase() !== 'bearer') {
            throw missing;
        }

        if (parts.length !== 2) {
            throw internals.unauthorized('Bad HTTP authentication header format');
        }

        // Empty, or an API key: not a JWT, left to the next strategy
        if (!parts[1] || parts[1].startsWith(apiKeyPrefix)) {
            throw missing;
        }

        return parts[1];
    };

    const check = (token: string): Verified => {

        const known = verified.get(token);
        if (known) {
            return known;
        }

        const artifacts = Jwt.token.decode(token);
        Jwt.token.verifySignature(artifacts, secret);
        Object.freeze(artifacts.decoded.payload);
        verified.set(token, Object.freeze(artifacts));
        return artifacts;
    };

    return {
        authenticate: async (request, h) => {

            const token = read(request);
            let artifacts: Verified;
            try {
                artifacts = check(token);
                Jwt.token.verifyPayload(artifacts, claims);
            }
            catch (err) {
                verified.delete(token);
                return h.unauthenticated(internals.unauthorized((err as Error).message));
            }

            const { isValid, credentials, response } = await settings.validate(artifacts.decoded.payload as Record<string, unknown>, request, h);
            if (response) {
                return response.takeover();
            }

            if (!isValid) {
                return h.unauthenticated(internals.unauthorized('Invalid credentials'));
            }

            return h.authenticated({ credentials: credentials!, artifacts: { token } });
        }
    };
};
