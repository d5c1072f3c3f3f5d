import * as Boom from '@hapi/boom';
import type * as Hapi from '@hapi/hapi';
import * as Jwt from '@hapi/jwt';

import { apiKeyPrefix, type TokenFailure } from '../services/auth';


// The `jwt` auth scheme: @hapi/jwt's token functions (decode, signature, claims) behind a scheme of our own, for one
// reason: @hapi/jwt's scheme decodes the token and recomputes its HMAC on every request, which was a tenth of the
// cost of a cheap request. Here a token whose signature checked out once is remembered (by its whole text, so
// nothing unsigned can get in) and its claims (exp, maximum age, nbf, aud, iss) are checked again on every request;
// revocation and the user's state stay the validate function's business, per request. Only HS256 with the one
// configured key is accepted (SEC-02): `alg: none`, other algorithms and header tricks fail the signature check.
// Every refusal is the same 401 with one stable `code` (TokenFailure); the library's reason is never shown.

export interface JwtSchemeOptions {
    // Where the token is read: the Authorization header (Bearer) or a cookie
    source: { header: true } | { cookie: string };
    key: string;
    verify: { aud: string; iss: string; maxAgeSec: number; timeSkewSec: number };
    validate: (payload: Record<string, unknown>, request: Hapi.Request, h: Hapi.ResponseToolkit) => Promise<{ isValid: boolean; credentials?: Hapi.AuthCredentials; response?: Hapi.ResponseObject; code?: TokenFailure }>;
}


// What decoding made of a token whose signature checked out; shared by every request with that token, so frozen
type Verified = Jwt.HapiJwt.Artifacts;


const internals = {
    // How many verified tokens a strategy remembers (a few MB at most); the oldest is forgotten first
    remembered: 10_000,

    // Without a scheme Boom adds no `attributes` to the payload and no reason to the header; with a message it is
    // not "missing", so hapi answers it instead of trying the next strategy
    challenge: 'Bearer error="invalid_token"',
    message: 'Missing, invalid or expired credentials'
};


// A presented token or API key that is refused: the generic 401 with its code (RFC 6750's error in the header)
export const refusedToken = (code: TokenFailure): Boom.Boom & { code: TokenFailure } => {

    const error = Boom.unauthorized(internals.message);
    error.output.headers['WWW-Authenticate'] = internals.challenge;
    return Object.assign(error, { code });
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
    const missing = Boom.unauthorized(null, 'Bearer');
    const skewMs = settings.verify.timeSkewSec * 1000;
    const maxAgeSec = settings.verify.maxAgeSec;

    // What @hapi/jwt does not check: a token issued in the future, or one whose lifetime exceeds the configured TTL
    const plausible = ({ iat, exp }: Record<string, unknown>): boolean => typeof iat === 'number' && typeof exp === 'number' && iat * 1000 <= Date.now() + skewMs && exp - iat <= maxAgeSec;

    // The claims failed: expired if its time is up (by exp or by age), otherwise invalid
    const failure = ({ iat, exp }: Record<string, unknown>): TokenFailure => {

        const now = Date.now();
        return (exp as number) * 1000 + skewMs <= now || now - (iat as number) * 1000 > maxAgeSec * 1000 + skewMs ? 'token_expired' : 'token_invalid';
    };

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
            throw refusedToken('token_invalid');
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
            }
            catch {
                return h.unauthenticated(refusedToken('token_invalid'));
            }

            const payload = artifacts.decoded.payload as Record<string, unknown>;
            if (!plausible(payload)) {
                return h.unauthenticated(refusedToken('token_invalid'));
            }

            try {
                Jwt.token.verifyPayload(artifacts, claims);
            }
            catch {
                verified.delete(token);
                return h.unauthenticated(refusedToken(failure(payload)));
            }

            const { isValid, credentials, response, code } = await settings.validate(payload, request, h);
            if (response) {
                return response.takeover();
            }

            if (!isValid) {
                return h.unauthenticated(refusedToken(code ?? 'token_invalid'));
            }

            return h.authenticated({ credentials: credentials!, artifacts: { token } });
        }
    };
};
