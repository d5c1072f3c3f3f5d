import { DOMParser } from '@xmldom/xmldom';
import * as Xpath from 'xpath';

import { SsoRefusedError, ValidationError, type SsoRefusal } from '../errors';


// sso (issue 15, SAML): the checks @node-saml/node-saml leaves out (SEC-09, docs/sso.md "What a response must
// satisfy"), and the reading of IdP metadata. Pure functions over the XML; SamlService calls them around the library.

const ns = {
    samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
    saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
    ds: 'http://www.w3.org/2000/09/xmldsig#',
    md: 'urn:oasis:names:tc:SAML:2.0:metadata'
};

const select = Xpath.useNamespaces(ns);

const redirectBinding = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';


// SHA-256 or stronger only: every SignatureMethod and DigestMethod of the response, wherever it is
export const allowedSignatureMethods: readonly string[] = [
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
    'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
    'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384',
    'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512'
];

export const allowedDigestMethods: readonly string[] = [
    'http://www.w3.org/2001/04/xmlenc#sha256',
    'http://www.w3.org/2001/04/xmldsig-more#sha384',
    'http://www.w3.org/2001/04/xmlenc#sha512'
];


const internals = {
    refuse: (message: string, code: SsoRefusal = 'saml_response_invalid') => new SsoRefusedError(message, code),

    elements: (expression: string, node: Node): Element[] => (select(expression, node) as Node[]).filter((item): item is Element => item.nodeType === 1),

    attribute: (element: Element | undefined, name: string): string | null => (element?.hasAttribute(name) ? element.getAttribute(name) : null),

    time: (value: string | null): number | null => {

        if (value === null) {
            return null;
        }

        const at = Date.parse(value);
        if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value) || Number.isNaN(at)) {
            throw internals.refuse('The SAML assertion carries a malformed time');
        }

        return at;
    }
};


// A document without a DTD (no entity expansion), well formed, or a refusal. `fail` builds the error to throw.
export const parseXml = (xml: string, fail: (reason: string) => Error = (reason) => internals.refuse(`The SAML response is not well-formed XML: ${reason}`)): Document => {

    if (/<!DOCTYPE|<!ENTITY/i.test(xml)) {
        throw fail('a DOCTYPE or entity declaration is not accepted');
    }

    const errors: string[] = [];
    const doc = new DOMParser({
        locator: {},
        // Strict: xmldom reports an unclosed or mismatched tag only as a warning
        errorHandler: { warning: (message: string) => errors.push(message), error: (message: string) => errors.push(message), fatalError: (message: string) => errors.push(message) }
    }).parseFromString(xml, 'text/xml') as unknown as Document;

    if (errors.length || !doc?.documentElement) {
        throw fail(String(errors[0] ?? 'no root element').split('\n')[0]!.slice(0, 200));
    }

    return doc;
};


export interface ResponseEnvelope {
    id: string | null;
    inResponseTo: string | null;
}


// What is read from the whole response before the library verifies anything: its shape, its algorithms, its
// Destination and its Issuer. None of it is trusted beyond these refusals.
export const checkEnvelope = (doc: Document, expected: { destination: string; issuer: string }): ResponseEnvelope => {

    const root = doc.documentElement;
    if (root.localName !== 'Response' || root.namespaceURI !== ns.samlp) {
        throw internals.refuse('This is not a SAML 2.0 Response');
    }

    // The library reads the status only when there is no assertion: a failure status beside an assertion is refused
    const status = internals.elements('/samlp:Response/samlp:Status/samlp:StatusCode', doc)[0];
    if (internals.attribute(status, 'Value') !== 'urn:oasis:names:tc:SAML:2.0:status:Success') {
        throw internals.refuse('The identity provider did not sign you in (its status is not Success): try again or ask its administrator', 'saml_status_failed');
    }

    const signatures = internals.elements('//ds:Signature', doc);
    if (!signatures.length) {
        throw internals.refuse('The SAML response and its assertion are unsigned: the identity provider must sign them', 'saml_signature_invalid');
    }

    for (const method of internals.elements('//ds:SignatureMethod', doc)) {
        if (!allowedSignatureMethods.includes(internals.attribute(method, 'Algorithm') ?? '')) {
            throw internals.refuse('The SAML response is signed with an algorithm weaker than SHA-256 (or unknown): configure the identity provider for RSA-SHA256 or stronger', 'saml_weak_algorithm');
        }
    }

    for (const method of internals.elements('//ds:DigestMethod', doc)) {
        if (!allowedDigestMethods.includes(internals.attribute(method, 'Algorithm') ?? '')) {
            throw internals.refuse('The SAML response uses a digest weaker than SHA-256 (or unknown): configure the identity provider for SHA-256 or stronger', 'saml_weak_algorithm');
        }
    }

    if (internals.attribute(root, 'Destination') !== expected.destination) {
        throw internals.refuse('The SAML response\'s Destination is not this service provider\'s assertion consumer URL', 'saml_destination_mismatch');
    }

    const issuers = internals.elements('/samlp:Response/saml:Issuer', doc);
    if (issuers.some((issuer) => issuer.textContent?.trim() !== expected.issuer)) {
        throw internals.refuse('The SAML response comes from another issuer than the configured identity provider', 'saml_issuer_mismatch');
    }

    return { id: internals.attribute(root, 'ID'), inResponseTo: internals.attribute(root, 'InResponseTo') };
};


export interface AssertionFacts {
    id: string;
    expiresAt: Date;
}


// What is read from the assertion the library verified (its signed bytes, never the unsigned envelope): its Issuer,
// a bearer SubjectConfirmation for this ACS and this request, and how long it stays valid (the replay cache's term).
export const checkAssertion = (assertionXml: string, expected: { recipient: string; issuer: string; inResponseTo: string }): AssertionFacts => {

    const doc = parseXml(assertionXml);
    const assertion = doc.documentElement;
    if (assertion.localName !== 'Assertion' || assertion.namespaceURI !== ns.saml) {
        throw internals.refuse('The signed content is not a SAML assertion');
    }

    const id = internals.attribute(assertion, 'ID');
    if (!id || id.length > 256) {
        throw internals.refuse('The SAML assertion has no usable ID');
    }

    const issuer = internals.elements('/saml:Assertion/saml:Issuer', doc)[0];
    if (issuer?.textContent?.trim() !== expected.issuer) {
        throw internals.refuse('The SAML assertion comes from another issuer than the configured identity provider', 'saml_issuer_mismatch');
    }

    const confirmations = internals.elements('/saml:Assertion/saml:Subject/saml:SubjectConfirmation[@Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"]/saml:SubjectConfirmationData', doc);
    if (!confirmations.length) {
        throw internals.refuse('The SAML assertion has no bearer subject confirmation');
    }

    if (!confirmations.every((data) => internals.attribute(data, 'Recipient') === expected.recipient)) {
        throw internals.refuse('The SAML assertion\'s Recipient is not this service provider\'s assertion consumer URL', 'saml_recipient_mismatch');
    }

    if (!confirmations.every((data) => internals.attribute(data, 'InResponseTo') === expected.inResponseTo)) {
        throw internals.refuse('The SAML assertion answers another request than the response does', 'saml_request_mismatch');
    }

    const conditions = internals.elements('/saml:Assertion/saml:Conditions', doc)[0];
    const ends = [...confirmations.map((data) => internals.attribute(data, 'NotOnOrAfter')), internals.attribute(conditions, 'NotOnOrAfter')]
        .map(internals.time)
        .filter((at): at is number => at !== null);

    if (!ends.length) {
        throw internals.refuse('The SAML assertion has no NotOnOrAfter: the identity provider must bound its validity');
    }

    return { id, expiresAt: new Date(Math.max(...ends)) };
};


export interface IdpMetadata {
    entity_id: string;
    sso_url: string;
    certificates: string[];
}


// The identity provider's entity id, HTTP-Redirect SSO URL and signing certificates from its metadata. With several
// IdP entities (a federation's aggregate), the one named `entityId` is read.
export const parseIdpMetadata = (xml: string, entityId?: string): IdpMetadata => {

    const invalid = (reason: string) => new ValidationError(`metadata_url: the identity provider metadata cannot be used: ${reason}`, ['metadata_url'], 'saml_metadata_invalid');
    const doc = parseXml(xml, invalid);
    const entities = internals.elements('//md:EntityDescriptor[md:IDPSSODescriptor]', doc)
        .filter((entity) => entityId === undefined || internals.attribute(entity, 'entityID') === entityId);

    if (entities.length !== 1) {
        throw invalid(entities.length ? 'it describes several identity providers: give idp_entity_id to choose one' : 'it describes no identity provider (IDPSSODescriptor) with that entity id');
    }

    const entity = entities[0]!;
    const service = internals.elements(`md:IDPSSODescriptor/md:SingleSignOnService[@Binding="${redirectBinding}"]`, entity)[0];
    const certificates = internals.elements('md:IDPSSODescriptor/md:KeyDescriptor[not(@use) or @use="signing"]//ds:X509Certificate', entity)
        .map((node) => node.textContent?.replace(/\s+/g, '') ?? '')
        .filter(Boolean);

    if (!service || !internals.attribute(service, 'Location')) {
        throw invalid('it has no HTTP-Redirect SingleSignOnService');
    }

    if (!certificates.length) {
        throw invalid('it has no signing certificate');
    }

    return { entity_id: internals.attribute(entity, 'entityID') ?? '', sso_url: internals.attribute(service, 'Location')!, certificates: [...new Set(certificates)].slice(0, 5) };
};

