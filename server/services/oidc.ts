import * as Crypto from 'crypto';

import { OutboundError, type OutboundHttp } from '../../integrations/http';
import { UnauthorizedError, UpstreamError, ValidationError } from '../errors';
import type { Actor } from '../policy';
import type { OidcSetting } from '../settings';

import type { AuditService } from './audit';
import type { Session } from './auth';
import type { SettingsService } from './settings';
import type { SsoIdentityService } from './sso-identity';


// sso (issue 15, OIDC): sign-in through an OpenID Connect provider (docs/sso.md#openid-connect). @hapi/bell starts
// the authorisation-code flow (state and the PKCE verifier in its sealed cookie, the S256 challenge in the redirect);
// this service gives it the run-time configuration, derives the nonce from bell's state, and finishes the flow: the
// code exchanged through OutboundHttp, the ID token verified here (bell verifies none), the claims handed to
// SsoIdentityService.signIn.


export interface OidcDiscovery {
    issuer: string;
    authorization_endpoint: string;
    token_endpoint: string;
    jwks_uri: string;
}

// What bell needs to send the browser to the provider (routes/oidc.ts builds bell's settings from it)
export interface OidcAuthorization {
    authorization_endpoint: string;
    token_endpoint: string;
    client_id: string;
    client_secret: string | undefined;
    scopes: string[];
    redirect_uri: string;
}

// What bell's sealed cookie carries back to the callback
export interface OidcFlow {
    nonce?: unknown;               // bell's state value (its name for it)
    codeVerifier?: unknown;
    query?: unknown;
}

export interface OidcCallback {
    code?: string | undefined;
    state?: string | undefined;
    iss?: string | undefined;
    error?: string | undefined;
}

export interface OidcConfigView {
    configured: boolean;
    redirect_uri: string | null;
    value: unknown;
    updated_by: string | null;
    updated_at: Date | null;
}

interface Jwk extends Crypto.JsonWebKey {
    kid?: string;
    use?: string;
    alg?: string;
}

interface CachedKeys {
    keys: Jwk[];
    fetchedAt: number;
}


const internals = {
    algorithms: new Set(['RS256', 'ES256']),
    skewSeconds: 60,
    maxAgeSeconds: 600,                 // an ID token older than this (iat) is refused, whatever its exp
    discoveryTtlMs: 10 * 60_000,
    jwksTtlMs: 60 * 60_000,
    jwksRefetchMs: 10_000,              // an unknown kid refetches the key set at most this often
    maxBytes: 512 * 1024,
    callbackPath: '/api/v1/sso/oidc/callback',

    refused: (message: string, code: string) => new UnauthorizedError(message, code),

    b64json: (part: string): unknown => {

        try {
            return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
        }
        catch {
            return undefined;
        }
    },

    isObject: (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value),

    sameIssuer: (a: string, b: string): boolean => a.replace(/\/+$/, '') === b.replace(/\/+$/, ''),

    equal: (a: string, b: string): boolean => {

        const left = Buffer.from(a);
        const right = Buffer.from(b);
        return left.length === right.length && Crypto.timingSafeEqual(left, right);
    },

    claim: (claims: Record<string, unknown>, name: string): string | null => {

        const value = claims[name];
        return typeof value === 'string' && value.trim() ? value.trim() : null;
    },

    groups: (claims: Record<string, unknown>, name: string): string[] => {

        const value = claims[name];
        if (typeof value === 'string') {
            return [value];
        }

        return Array.isArray(value) ? value.filter((group): group is string => typeof group === 'string').slice(0, 1000) : [];
    }
};


export class OidcService {

    private readonly discoveries = new Map<string, { document: OidcDiscovery; fetchedAt: number }>();
    private readonly keySets = new Map<string, CachedKeys>();
    private readonly nonceKey: Buffer;

    constructor(private readonly deps: { audit: AuditService; settings: SettingsService; outbound: OutboundHttp; ssoIdentity: SsoIdentityService; secretKey: Buffer; publicUrl: string | undefined }) {

        this.nonceKey = Buffer.from(Crypto.hkdfSync('sha256', deps.secretKey, Buffer.alloc(0), 'aegis oidc', 32));
    }

    // The password of bell's sealed cookie (iron wants at least 32 characters)
    get cookiePassword(): string {

        return Buffer.from(Crypto.hkdfSync('sha256', this.deps.secretKey, Buffer.alloc(0), 'aegis oidc cookie', 32)).toString('base64url');
    }

    get redirectUri(): string | null {

        return this.deps.publicUrl ? `${this.deps.publicUrl.replace(/\/+$/, '')}${internals.callbackPath}` : null;
    }

    // The nonce sent with an authorisation request and expected in its ID token: a MAC of bell's state, which bell
    // keeps in its sealed cookie and checks at the callback, so the nonce is bound to the browser that started.
    nonceFor(state: string): string {

        return Crypto.createHmac('sha256', this.nonceKey).update(state).digest('base64url');
    }

    async describe(actor: Actor): Promise<OidcConfigView> {

        const view = await this.deps.settings.describe(actor, 'sso.oidc');
        return { configured: !view.is_default, redirect_uri: this.redirectUri, value: view.value, updated_by: view.updated_by, updated_at: view.updated_at };
    }

    // Saves the configuration once the provider's discovery document and key set answer and fit; nothing is stored
    // otherwise (the settings store validates the value and checks the issuer URL again).
    async configure(actor: Actor, input: OidcSetting): Promise<OidcConfigView> {

        const issuer = await this.checkedUrl(input.issuer, 'issuer');
        const discovery = await this.discover(issuer, { fresh: true });
        const keys = await this.fetchKeys(discovery.jwks_uri);
        if (!keys.some((key) => internals.algorithms.has(this.algorithmOf(key) ?? ''))) {
            throw new ValidationError('The provider\'s key set (jwks_uri) has no RSA or P-256 signing key: Aegis accepts RS256 and ES256 ID tokens only', ['issuer'], 'oidc_discovery_failed');
        }

        await this.deps.settings.set(actor, 'sso.oidc', input);
        return await this.describe(actor);
    }

    // What GET /sso/status says of OpenID Connect, nothing secret
    async status(): Promise<{ configured: boolean; enabled: boolean }> {

        const setting = await this.deps.settings.get('sso.oidc');
        return { configured: setting !== null, enabled: setting?.enabled === true };
    }

    // What the login route hands to bell; refuses when OIDC is not configured or turned off
    async authorization(): Promise<OidcAuthorization> {

        const { setting, discovery, redirectUri } = await this.current();
        return {
            authorization_endpoint: discovery.authorization_endpoint,
            token_endpoint: discovery.token_endpoint,
            client_id: setting.client_id,
            client_secret: setting.client_secret,
            scopes: setting.scopes,
            redirect_uri: redirectUri
        };
    }

    // The provider sent the browser back: check the state against bell's cookie, exchange the code (with the PKCE
    // verifier), verify the ID token, then sign in through the identity core. A refusal creates nothing.
    async complete(actor: Actor, callback: OidcCallback, flow: OidcFlow | undefined): Promise<Session> {

        try {
            const { identity, policy } = await this.verifyCallback(callback, flow);
            return await this.deps.ssoIdentity.signIn(actor, identity, policy);
        }
        catch (err) {
            if (err instanceof UnauthorizedError && err.code.startsWith('oidc_')) {
                await this.deps.audit.recordOutside(actor, { action: 'auth.login', entity_type: 'user', outcome: 'failure', details: { provider: 'oidc', reason: err.code } });
            }

            throw err;
        }
    }

    private async verifyCallback(callback: OidcCallback, flow: OidcFlow | undefined) {

        if (callback.error) {
            throw internals.refused(`The identity provider refused the sign-in (${callback.error.slice(0, 100)}): try again or ask its administrator`, 'oidc_provider_error');
        }

        if (!flow || typeof flow.nonce !== 'string' || typeof flow.codeVerifier !== 'string') {
            throw internals.refused('No sign-in is in progress in this browser (its cookie is missing or expired): start again at /api/v1/sso/oidc/login', 'oidc_flow_missing');
        }

        // bell's own check: the state starts with the value it sealed in the cookie
        if (!callback.state || !internals.equal(callback.state.slice(0, flow.nonce.length), flow.nonce)) {
            throw internals.refused('The state does not match the sign-in started in this browser: start again at /api/v1/sso/oidc/login', 'oidc_state_mismatch');
        }

        if (!callback.code) {
            throw internals.refused('The identity provider sent no authorisation code: start again at /api/v1/sso/oidc/login', 'oidc_code_missing');
        }

        const { setting, discovery, redirectUri } = await this.current();
        if (callback.iss !== undefined && !internals.sameIssuer(callback.iss, discovery.issuer)) {
            throw internals.refused('The authorisation response names another issuer (iss): start again at /api/v1/sso/oidc/login', 'oidc_issuer_mismatch');
        }

        const idToken = await this.exchange(setting, discovery, redirectUri, callback.code, flow.codeVerifier);
        const claims = await this.verifyIdToken(idToken, setting, discovery, this.nonceFor(flow.nonce));
        const names = setting.claims;
        return {
            identity: {
                provider: 'oidc' as const,
                subject: claims.sub as string,
                username: internals.claim(claims, names.username) ?? '',
                email: internals.claim(claims, names.email),
                display_name: internals.claim(claims, names.display_name),
                groups: internals.groups(claims, names.groups)
            },
            policy: { jit: setting.jit, role_mapping: setting.role_mapping }
        };
    }

    // The authorisation code for tokens, client_secret_basic (or the client id alone for a public client)
    private async exchange(setting: OidcSetting, discovery: OidcDiscovery, redirectUri: string, code: string, verifier: string): Promise<string> {

        const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
        if (setting.client_secret) {
            const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
            headers.authorization = `Basic ${Buffer.from(`${encode(setting.client_id)}:${encode(setting.client_secret)}`).toString('base64')}`;
        }
        else {
            form.set('client_id', setting.client_id);
        }

        let body: unknown;
        try {
            const response = await this.deps.outbound.request(discovery.token_endpoint, { method: 'POST', headers, body: form.toString(), maxBytes: internals.maxBytes });
            body = JSON.parse(response.body.toString('utf8'));
        }
        catch (err) {
            if (err instanceof OutboundError && err.kind === 'http_status') {
                throw internals.refused(`The identity provider refused the authorisation code (${err.status}): start again at /api/v1/sso/oidc/login`, 'oidc_code_refused');
            }

            if (err instanceof OutboundError) {
                throw new UpstreamError(`The identity provider's token endpoint failed: ${err.message}`, 'oidc_unreachable');
            }

            throw internals.refused('The identity provider\'s token answer is not JSON', 'oidc_token_invalid');
        }

        if (!internals.isObject(body) || typeof body.id_token !== 'string') {
            throw internals.refused('The identity provider answered no ID token: check that the openid scope is allowed for this client', 'oidc_token_invalid');
        }

        return body.id_token;
    }

    // Signature (RS256 or ES256, the key from the provider's JWKS), then iss, aud (and azp), exp, iat, nonce, sub
    async verifyIdToken(token: string, setting: Pick<OidcSetting, 'client_id'>, discovery: OidcDiscovery, nonce: string): Promise<Record<string, unknown>> {

        const invalid = (why: string, code = 'oidc_token_invalid') => internals.refused(`The ID token was refused: ${why}`, code);
        const parts = token.split('.');
        if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]*$/.test(part))) {
            throw invalid('it is not a signed JWT');
        }

        const [head, payload, signature] = parts as [string, string, string];
        const header = internals.b64json(head);
        const claims = internals.b64json(payload);
        if (!internals.isObject(header) || !internals.isObject(claims)) {
            throw invalid('its header or claims are not JSON');
        }

        if (typeof header.alg !== 'string' || !internals.algorithms.has(header.alg)) {
            throw invalid(`its algorithm ${String(header.alg).slice(0, 20)} is not accepted (RS256 and ES256 only)`, 'oidc_token_algorithm');
        }

        const key = await this.keyFor(discovery.jwks_uri, header.alg, typeof header.kid === 'string' ? header.kid : undefined);
        if (!key) {
            throw invalid('it is not signed by a key of the provider\'s key set', 'oidc_token_signature');
        }

        let verified = false;
        try {
            const publicKey = Crypto.createPublicKey({ key: key as Crypto.JsonWebKey, format: 'jwk' });
            verified = Crypto.verify('sha256', Buffer.from(`${head}.${payload}`), header.alg === 'ES256' ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey, Buffer.from(signature, 'base64url'));
        }
        catch {
            verified = false;           // a key the provider published that node cannot read verifies nothing
        }

        if (!verified) {
            throw invalid('its signature does not verify with the provider\'s key', 'oidc_token_signature');
        }

        if (typeof claims.iss !== 'string' || claims.iss !== discovery.issuer) {
            throw invalid('it was issued by another issuer (iss)', 'oidc_token_issuer');
        }

        const audiences = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
        if (!audiences.includes(setting.client_id) || (audiences.length > 1 && claims.azp !== setting.client_id)) {
            throw invalid('it is meant for another client (aud)', 'oidc_token_audience');
        }

        const now = Math.floor(Date.now() / 1000);
        if (typeof claims.exp !== 'number' || claims.exp + internals.skewSeconds < now) {
            throw invalid('it has expired (exp)', 'oidc_token_expired');
        }

        if (typeof claims.iat !== 'number' || claims.iat - internals.skewSeconds > now || claims.iat + internals.maxAgeSeconds < now) {
            throw invalid('its issue time (iat) is in the future or too old', 'oidc_token_expired');
        }

        if (typeof claims.nonce !== 'string' || !internals.equal(claims.nonce, nonce)) {
            throw invalid('its nonce does not match this sign-in', 'oidc_token_nonce');
        }

        if (typeof claims.sub !== 'string' || !claims.sub) {
            throw invalid('it names no subject (sub)');
        }

        return claims;
    }

    private async current(): Promise<{ setting: OidcSetting; discovery: OidcDiscovery; redirectUri: string }> {

        const setting = await this.deps.settings.get('sso.oidc');
        if (!setting || !setting.enabled) {
            throw new ValidationError('OpenID Connect sign-in is not configured or is turned off: an administrator sets it with PUT /api/v1/sso/oidc/config', [], 'oidc_not_configured');
        }

        const redirectUri = this.redirectUri;
        if (!redirectUri) {
            throw new ValidationError('OpenID Connect sign-in needs AEGIS_PUBLIC_URL, which gives its callback address: set it and restart', [], 'oidc_not_configured');
        }

        try {
            return { setting, discovery: await this.discover(setting.issuer), redirectUri };
        }
        catch (err) {
            throw err instanceof ValidationError ? new UpstreamError(`The identity provider's discovery document cannot be used now: ${err.message}`, 'oidc_unreachable') : err;
        }
    }

    private async checkedUrl(url: unknown, field: string): Promise<string> {

        if (typeof url !== 'string') {
            throw new ValidationError(`The discovery document has no ${field}`, ['issuer'], 'oidc_discovery_failed');
        }

        try {
            return await this.deps.outbound.check(url);
        }
        catch (err) {
            throw new ValidationError(`${field}: ${(err as Error).message}`, ['issuer'], field === 'issuer' ? 'url_not_allowed' : 'oidc_discovery_failed');
        }
    }

    private async fetchJson(url: string, what: string): Promise<Record<string, unknown>> {

        try {
            const response = await this.deps.outbound.request(url, { headers: { accept: 'application/json' }, maxBytes: internals.maxBytes });
            const body: unknown = JSON.parse(response.body.toString('utf8'));
            if (internals.isObject(body)) {
                return body;
            }
        }
        catch (err) {
            if (err instanceof OutboundError) {
                throw new ValidationError(`The ${what} could not be read: ${err.message}`, ['issuer'], 'oidc_discovery_failed');
            }
        }

        throw new ValidationError(`The ${what} is not a JSON object`, ['issuer'], 'oidc_discovery_failed');
    }

    // The provider's discovery document, cached for ten minutes per issuer
    private async discover(issuer: string, options: { fresh?: boolean } = {}): Promise<OidcDiscovery> {

        const cached = this.discoveries.get(issuer);
        if (cached && !options.fresh && Date.now() - cached.fetchedAt < internals.discoveryTtlMs) {
            return cached.document;
        }

        const document = await this.fetchJson(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, 'discovery document (/.well-known/openid-configuration)');
        if (typeof document.issuer !== 'string' || !internals.sameIssuer(document.issuer, issuer)) {
            throw new ValidationError(`The discovery document names another issuer (${String(document.issuer).slice(0, 200)}): set the issuer exactly as the provider names itself`, ['issuer'], 'oidc_discovery_failed');
        }

        const responseTypes = document.response_types_supported;
        if (Array.isArray(responseTypes) && !responseTypes.includes('code')) {
            throw new ValidationError('The provider does not offer the authorisation-code flow (response type code)', ['issuer'], 'oidc_discovery_failed');
        }

        const challenges = document.code_challenge_methods_supported;
        if (Array.isArray(challenges) && !challenges.includes('S256')) {
            throw new ValidationError('The provider does not offer PKCE with S256', ['issuer'], 'oidc_discovery_failed');
        }

        const algorithms = document.id_token_signing_alg_values_supported;
        if (Array.isArray(algorithms) && !algorithms.some((alg) => internals.algorithms.has(alg as string))) {
            throw new ValidationError('The provider signs ID tokens with neither RS256 nor ES256', ['issuer'], 'oidc_discovery_failed');
        }

        const checked: OidcDiscovery = {
            issuer: document.issuer,
            authorization_endpoint: await this.checkedUrl(document.authorization_endpoint, 'authorization_endpoint'),
            token_endpoint: await this.checkedUrl(document.token_endpoint, 'token_endpoint'),
            jwks_uri: await this.checkedUrl(document.jwks_uri, 'jwks_uri')
        };

        this.discoveries.set(issuer, { document: checked, fetchedAt: Date.now() });
        return checked;
    }

    private async fetchKeys(uri: string): Promise<Jwk[]> {

        const document = await this.fetchJson(uri, 'key set (jwks_uri)');
        const keys = Array.isArray(document.keys) ? document.keys.filter((key): key is Jwk => internals.isObject(key) && (key.use === undefined || key.use === 'sig')) : [];
        this.keySets.set(uri, { keys, fetchedAt: Date.now() });
        return keys;
    }

    // The key a token names (by kid, or the only key of its type), from the cached key set; an unknown kid refetches
    // the set (the provider rotated its keys), at most once every ten seconds.
    private async keyFor(uri: string, alg: string, kid: string | undefined): Promise<Jwk | undefined> {

        const pick = (keys: Jwk[]) => {

            const fitting = keys.filter((key) => this.algorithmOf(key) === alg && (key.alg === undefined || key.alg === alg));
            return kid === undefined ? (fitting.length === 1 ? fitting[0] : undefined) : fitting.find((key) => key.kid === kid);
        };

        const cached = this.keySets.get(uri);
        const fresh = cached && Date.now() - cached.fetchedAt < internals.jwksTtlMs ? pick(cached.keys) : undefined;
        if (fresh || (cached && Date.now() - cached.fetchedAt < internals.jwksRefetchMs)) {
            return fresh;
        }

        try {
            return pick(await this.fetchKeys(uri));
        }
        catch (err) {
            throw err instanceof ValidationError ? new UpstreamError(`The identity provider's key set cannot be read now: ${err.message}`, 'oidc_unreachable') : err;
        }
    }

    private algorithmOf(key: Jwk): string | undefined {

        return key.kty === 'RSA' ? 'RS256' : key.kty === 'EC' && key.crv === 'P-256' ? 'ES256' : undefined;
    }
}
