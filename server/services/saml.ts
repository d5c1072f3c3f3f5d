import * as Crypto from 'crypto';

import { SAML, SamlStatusError, ValidateInResponseTo, generateServiceProviderMetadata, type CacheProvider, type Profile } from '@node-saml/node-saml';
import type { Knex } from 'knex';

import type { OutboundHttp } from '../../integrations/http';
import { ConflictError, SsoRefusedError, ValidationError, type SsoRefusal } from '../errors';
import { SamlAssertion, SamlRequest } from '../models';
import type { Actor } from '../policy';
import type { SamlSettings } from '../settings';

import type { AuditService } from './audit';
import type { Session } from './auth';
import type { SettingsService, SettingView } from './settings';
import { isSameOriginPath } from '../schemas/common';
import { checkAssertion, checkEnvelope, parseIdpMetadata, parseXml } from './saml-xml';
import type { ExternalIdentity, SsoIdentityService } from './sso-identity';


// sso (issue 15, SAML): the service provider (docs/sso.md). @node-saml/node-saml builds the AuthnRequest and
// verifies signatures, conditions, audience and InResponseTo against a request cache in PostgreSQL that every API
// instance shares; saml-xml.ts adds what it leaves out (SHA-256 or stronger only, Destination, Recipient, Issuer,
// the assertion replay cache). A response's request is consumed, and its assertion remembered, only in the
// transaction that signs the user in: a refused response consumes nothing.

export interface SamlServiceProvider {
    publicUrl: string;                  // AEGIS_PUBLIC_URL without its trailing slash
    secureCookies: boolean;
}

export type SamlConfigInput = Partial<SamlSettings>;

export interface SamlStatus {
    configured: boolean;
    enabled: boolean;
}

export interface SamlLogin {
    url: string;
    requestId: string;
}

export interface SamlCallback {
    SAMLResponse: string;
    RelayState?: string | undefined;
}


const internals = {
    // How long a sent AuthnRequest may be answered
    requestTtlMs: 10 * 60_000,
    // Clock skew accepted on NotBefore / NotOnOrAfter (SEC-09: at most 3 minutes)
    clockSkewMs: 120_000,
    metadataMaxBytes: 1024 * 1024,

    refuse: (message: string, code: SsoRefusal) => new SsoRefusedError(message, code),

    // The library's reason, as one of ours: its own words never reach the client
    libraryRefusal: (err: unknown): SsoRefusedError => {

        if (err instanceof SsoRefusedError) {
            return err;
        }

        if (err instanceof SamlStatusError) {
            return internals.refuse('The identity provider did not sign you in (its status is not Success): try again or ask its administrator', 'saml_status_failed');
        }

        const message = err instanceof Error ? err.message : '';
        const table: [RegExp, string, SsoRefusal][] = [
            [/InResponseTo|subjectInResponseTo/i, 'The SAML response answers no pending sign-in of this service provider (expired, already used or never sent): sign in again', 'saml_request_mismatch'],
            [/not yet valid/i, 'The SAML assertion is not valid yet: check the clocks of the identity provider and of Aegis', 'saml_not_yet_valid'],
            [/expired|too old/i, 'The SAML assertion has expired: sign in again', 'saml_expired'],
            // The library drops a subject confirmation outside its NotBefore / NotOnOrAfter, then finds none
            [/No valid subject confirmation/i, 'The SAML assertion has expired (its subject confirmation is out of its validity period): sign in again', 'saml_expired'],
            [/audience|AudienceRestriction/i, 'The SAML assertion is meant for another service provider (Audience): check the SP entity id at the identity provider', 'saml_audience_mismatch'],
            [/signature|multiple assertions|transforms|cert/i, 'The SAML response is not signed by the configured identity provider certificate', 'saml_signature_invalid']
        ];

        const [, text, code] = table.find(([pattern]) => pattern.test(message)) ?? [null, 'The SAML response cannot be used', 'saml_response_invalid' as const];
        return internals.refuse(text, code);
    },

    attribute: (profile: Profile, name: string): string[] => {

        const value = (profile.attributes as Record<string, unknown> | undefined)?.[name];
        return [value].flat().filter((item): item is string => typeof item === 'string');
    },

    notConfigured: () => new ConflictError('SAML single sign-on is not configured or not enabled: an administrator sets it with PUT /sso/config', 'sso_not_configured')
};


export class SamlService {

    constructor(private readonly deps: {
        knex: Knex;
        audit: AuditService;
        settings: SettingsService;
        outbound: OutboundHttp;
        ssoIdentity: SsoIdentityService;
        sp: SamlServiceProvider;
    }) { }

    // The service provider's entity id and assertion consumer URL, derived from AEGIS_PUBLIC_URL
    get entityId(): string {

        return `${this.deps.sp.publicUrl}/api/v1/sso/metadata`;
    }

    get acsUrl(): string {

        return `${this.deps.sp.publicUrl}/api/v1/sso/callback`;
    }

    get secureCookies(): boolean {

        return this.deps.sp.secureCookies;
    }

    get requestTtlMs(): number {

        return internals.requestTtlMs;
    }

    async status(actor: Actor): Promise<SamlStatus> {

        const config = await this.deps.settings.get('sso.saml');
        return { configured: config !== null, enabled: config?.enabled === true };
    }

    // Validates and stores the configuration. With a metadata URL, the IdP's metadata is fetched once through the
    // outbound client and read for what the input leaves out (entity id, SSO URL, certificates); nothing is stored
    // when the fetch or the reading fails.
    async configure(actor: Actor, input: SamlConfigInput): Promise<SettingView> {

        const value: SamlConfigInput = { ...input };
        if (input.metadata_url) {
            const metadata = parseIdpMetadata(await this.fetchMetadata(input.metadata_url), input.idp_entity_id);
            value.idp_entity_id ??= metadata.entity_id;
            value.sso_url ??= metadata.sso_url;
            value.certificates ??= metadata.certificates;
        }

        const missing = (['idp_entity_id', 'sso_url', 'certificates'] as const).filter((field) => value[field] === undefined);
        if (missing.length) {
            throw new ValidationError(`${missing.join(', ')} required: give them, or a metadata_url that carries them`, missing);
        }

        if (value.sign_requests) {
            await this.checkSigningKey(value);
        }

        return await this.deps.settings.set(actor, 'sso.saml', value);
    }

    // Valid SP metadata whether or not an IdP is configured yet (an IdP is usually set up from it first)
    async metadata(actor: Actor): Promise<string> {

        const config = await this.deps.settings.get('sso.saml');
        const signing = config?.sign_requests && config.sp_private_key && config.sp_certificate ? { privateKey: config.sp_private_key, publicCerts: config.sp_certificate } : {};
        return generateServiceProviderMetadata({
            issuer: this.entityId,
            callbackUrl: this.acsUrl,
            identifierFormat: null,
            wantAssertionsSigned: false,
            ...signing
        });
    }

    // The IdP URL a browser is sent to, with the AuthnRequest (signed when configured); its id is recorded in the
    // shared request cache and bound to the browser by the caller (a cookie).
    async login(actor: Actor, returnTo: string | undefined): Promise<SamlLogin> {

        const config = await this.enabledConfig();
        const requestId = `_${Crypto.randomBytes(20).toString('hex')}`;
        await SamlRequest.query(this.deps.knex).where('created_at', '<', new Date(Date.now() - internals.requestTtlMs)).delete();
        const url = await this.client(config, requestId).getAuthorizeUrlAsync(returnTo ?? '', undefined, {});
        return { url, requestId };
    }

    // Consumes a response posted by the browser. `boundRequestId` is the request this browser started (its cookie):
    // a response to any other request, or to none, is refused. Nothing is created or consumed unless every check
    // passes and the user may sign in.
    async callback(actor: Actor, input: SamlCallback, boundRequestId: string | undefined): Promise<{ session: Session; redirectTo: string }> {

        try {
            return await this.consume(actor, input, boundRequestId);
        }
        catch (err) {
            // A refused response is audited as a failed password login is (the identity core audits its own refusals)
            if (err instanceof SsoRefusedError) {
                await this.deps.audit.recordOutside(actor, { action: 'auth.login', entity_type: 'user', outcome: 'failure', details: { provider: 'saml', reason: err.code } });
            }

            throw err;
        }
    }

    private async consume(actor: Actor, input: SamlCallback, boundRequestId: string | undefined): Promise<{ session: Session; redirectTo: string }> {

        const config = await this.enabledConfig();
        if (input.RelayState && !isSameOriginPath(input.RelayState)) {
            throw internals.refuse('RelayState must be a path of this site starting with a single /', 'saml_relay_state_invalid');
        }

        const xml = Buffer.from(input.SAMLResponse, 'base64').toString('utf8');
        const envelope = checkEnvelope(parseXml(xml), { destination: this.acsUrl, issuer: config.idp_entity_id });
        if (!envelope.inResponseTo) {
            throw internals.refuse('Unsolicited SAML responses (IdP-initiated sign-in) are not accepted: start from the Aegis sign-in page', 'saml_unsolicited');
        }

        if (envelope.inResponseTo !== boundRequestId) {
            throw internals.refuse('The SAML response answers a sign-in this browser did not start: sign in again from the Aegis sign-in page', 'saml_request_mismatch');
        }

        let profile: Profile;
        try {
            const result = await this.client(config).validatePostResponseAsync({ SAMLResponse: input.SAMLResponse });
            if (!result.profile) {
                throw new Error('no profile');
            }

            profile = result.profile;
        }
        catch (err) {
            throw internals.libraryRefusal(err);
        }

        const assertion = checkAssertion(profile.getAssertionXml!(), { recipient: this.acsUrl, issuer: config.idp_entity_id, inResponseTo: envelope.inResponseTo });
        const identity = this.identityOf(config, profile);
        const session = await this.deps.knex.transaction(async (trx) => {

            await SamlAssertion.query(trx).where('expires_at', '<', new Date(Date.now() - internals.clockSkewMs)).delete();
            const consumed = await SamlRequest.query(trx).delete().where('id', envelope.inResponseTo!).where('created_at', '>=', new Date(Date.now() - internals.requestTtlMs));
            if (!consumed) {
                throw internals.refuse('The SAML response answers a sign-in that was already completed: sign in again', 'saml_replayed');
            }

            const remembered = await trx.raw('insert into saml_assertions (id, issuer, expires_at) values (?, ?, ?) on conflict (id) do nothing returning id',
                [assertion.id, config.idp_entity_id, new Date(assertion.expiresAt.getTime() + internals.clockSkewMs)]);
            if (!remembered.rows.length) {
                throw internals.refuse('This SAML assertion was already used: sign in again', 'saml_replayed');
            }

            return await this.deps.ssoIdentity.signIn(actor, identity, { jit: config.jit, role_mapping: config.role_mapping }, { trx });
        });

        return { session, redirectTo: input.RelayState || '/' };
    }

    private async enabledConfig(): Promise<SamlSettings> {

        const config = await this.deps.settings.get('sso.saml');
        if (!config?.enabled) {
            throw internals.notConfigured();
        }

        if (config.sign_requests && (!config.sp_private_key || !config.sp_certificate)) {
            throw new ConflictError('sign_requests is on but the SP private key or certificate is missing: set them with PUT /sso/config', 'sso_not_configured');
        }

        return config;
    }

    private client(config: SamlSettings, requestId?: string): SAML {

        const knex = this.deps.knex;
        const ttl = internals.requestTtlMs;
        // Shared by every API instance. remove is left to the callback's transaction, which consumes the request only
        // when the response is accepted (the library would consume it on any failure, letting a forgery burn a
        // pending sign-in)
        const cacheProvider: CacheProvider = {
            saveAsync: async (key, value) => {

                await SamlRequest.query(knex).insert({ id: key });
                return { value, createdAt: Date.now() };
            },
            getAsync: async (key) => {

                const row = await SamlRequest.query(knex).findById(key).where('created_at', '>=', new Date(Date.now() - ttl));
                return row ? row.created_at.toISOString() : null;
            },
            removeAsync: (key) => Promise.resolve(key)
        };

        return new SAML({
            entryPoint: config.sso_url,
            issuer: this.entityId,
            audience: this.entityId,
            callbackUrl: this.acsUrl,
            idpCert: config.certificates,
            idpIssuer: config.idp_entity_id,
            // A signature on the response or on the assertion, checked against the configured certificates only
            wantAuthnResponseSigned: false,
            wantAssertionsSigned: false,
            signatureAlgorithm: 'sha256',
            digestAlgorithm: 'sha256',
            ...(config.sign_requests ? { privateKey: config.sp_private_key!, publicCert: config.sp_certificate! } : {}),
            acceptedClockSkewMs: internals.clockSkewMs,
            validateInResponseTo: ValidateInResponseTo.always,
            requestIdExpirationPeriodMs: ttl,
            cacheProvider,
            identifierFormat: null,
            disableRequestedAuthnContext: true,
            ...(requestId ? { generateUniqueId: () => requestId } : {})
        });
    }

    private identityOf(config: SamlSettings, profile: Profile): ExternalIdentity {

        const names = config.attributes;
        const first = (name: string) => internals.attribute(profile, name)[0] ?? null;
        const subject = profile.nameID ?? '';
        return {
            provider: 'saml',
            subject,
            username: (names.username ? first(names.username) : subject) ?? '',
            email: first(names.email),
            display_name: first(names.display_name),
            groups: internals.attribute(profile, names.groups)
        };
    }

    private async fetchMetadata(url: string): Promise<string> {

        try {
            const response = await this.deps.outbound.request(url, { maxBytes: internals.metadataMaxBytes, headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
            return response.body.toString('utf8');
        }
        catch (err) {
            throw new ValidationError(`metadata_url: the identity provider metadata cannot be fetched: ${(err as Error).message}`, ['metadata_url'], 'saml_metadata_unavailable');
        }
    }

    // The SP key must be a private key whose public half is the SP certificate published in the metadata
    private async checkSigningKey(value: SamlConfigInput): Promise<void> {

        const current = value.sp_private_key === undefined ? await this.deps.settings.get('sso.saml') : null;
        const key = value.sp_private_key ?? current?.sp_private_key;
        if (!key || !value.sp_certificate) {
            throw new ValidationError('sign_requests needs sp_private_key and sp_certificate (the key is kept when left out)', ['sp_private_key', 'sp_certificate']);
        }

        let matches = false;
        try {
            const body = value.sp_certificate.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
            const published = new Crypto.X509Certificate(Buffer.from(body, 'base64')).publicKey.export({ type: 'spki', format: 'der' });
            matches = published.equals(Crypto.createPublicKey(key).export({ type: 'spki', format: 'der' }));
        }
        catch {
            throw new ValidationError('sp_certificate must be an X.509 certificate and sp_private_key an unencrypted PEM private key', ['sp_private_key', 'sp_certificate']);
        }

        if (!matches) {
            throw new ValidationError('sp_certificate does not belong to sp_private_key', ['sp_certificate']);
        }
    }
}
