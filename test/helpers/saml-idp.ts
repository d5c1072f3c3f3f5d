import * as Crypto from 'crypto';
import * as Http from 'http';
import type { AddressInfo } from 'net';
import * as Zlib from 'zlib';

import { DOMParser } from '@xmldom/xmldom';
import Forge from 'node-forge';
import { SignedXml } from 'xml-crypto';


// sso (issue 15): a SAML 2.0 identity provider for the tests. Its keys and self-signed certificate are made at test
// time; its responses are built as an IdP builds them and signed with xml-crypto (exclusive c14n, enveloped
// signature), or forged on purpose. `start()` serves its metadata and an SSO endpoint that reads the AuthnRequest a
// browser brings (HTTP-Redirect binding) and answers the HTTP-POST form a browser would submit to the SP.

export interface KeyPair {
    keyPem: string;
    certPem: string;
    certBody: string;           // the certificate's base64 DER, as metadata carries it
}

export interface Assertion {
    nameId: string;
    attributes?: Record<string, string | string[]>;
    inResponseTo?: string | null;
    subjectInResponseTo?: string;           // the SubjectConfirmationData's, when it differs from the response's
    destination?: string | null;
    recipient?: string;
    audience?: string;
    issuer?: string;
    responseIssuer?: string | null;
    notBefore?: Date;
    notOnOrAfter?: Date | null;
    assertionId?: string;
    status?: string;
}

export type Signing = 'assertion' | 'response' | 'both' | 'none';

export interface SignOptions {
    sign?: Signing;
    algorithm?: 'sha256' | 'sha1';
    key?: KeyPair;
}


const ns = {
    samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
    saml: 'urn:oasis:names:tc:SAML:2.0:assertion'
};

const algorithms = {
    sha256: { signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', digest: 'http://www.w3.org/2001/04/xmlenc#sha256' },
    sha1: { signature: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', digest: 'http://www.w3.org/2000/09/xmldsig#sha1' }
};

const escape = (value: string) => value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');


// An RSA key and a self-signed certificate (SHA-256), made with node:crypto and node-forge
export const keyPair = (commonName = 'Test IdP'): KeyPair => {

    const { privateKey, publicKey } = Crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const cert = Forge.pki.createCertificate();
    cert.publicKey = Forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
    cert.serialNumber = `01${Crypto.randomBytes(8).toString('hex')}`;
    cert.validity.notBefore = new Date(Date.now() - 86_400_000);
    cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
    const subject = [{ name: 'commonName', value: commonName }];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.sign(Forge.pki.privateKeyFromPem(keyPem), Forge.md.sha256.create());
    const certPem = Forge.pki.certificateToPem(cert);
    const certBody = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    return { keyPem, certPem, certBody };
};


const sign = (xml: string, target: 'Assertion' | 'Response', key: KeyPair, algorithm: 'sha256' | 'sha1'): string => {

    const chosen = algorithms[algorithm];
    const signer = new SignedXml({
        privateKey: key.keyPem,
        publicCert: key.certPem,
        signatureAlgorithm: chosen.signature,
        canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#'
    });

    const element = target === 'Assertion' ? `//*[local-name(.)='Assertion']` : `/*[local-name(.)='Response']`;
    signer.addReference({
        xpath: element,
        digestAlgorithm: chosen.digest,
        transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#']
    });

    // The signature goes right after the element's Issuer, as the schema orders it
    signer.computeSignature(xml, { location: { reference: `${element}/*[local-name(.)='Issuer']`, action: 'after' } });
    return signer.getSignedXml();
};


export class TestIdp {

    readonly entityId = `https://idp-${Crypto.randomBytes(4).toString('hex')}.example.test/saml`;
    readonly key = keyPair();
    ssoUrl = 'https://idp.example.test/sso';
    private server: Http.Server | undefined;
    // What the SSO endpoint signs in as, and the AuthnRequests it saw
    user: Omit<Assertion, 'inResponseTo'> = { nameId: 'nobody' };
    readonly requests: { id: string; acs: string | null; issuer: string | null; signed: boolean; relayState: string | null }[] = [];

    constructor(private readonly sp: { entityId: string; acsUrl: string }) { }

    // The assertion and its response as an IdP writes them, unsigned
    responseXml(assertion: Assertion): string {

        const now = Date.now();
        const issueInstant = new Date(now).toISOString();
        const notBefore = (assertion.notBefore ?? new Date(now - 60_000)).toISOString();
        const notOnOrAfter = assertion.notOnOrAfter === null ? null : (assertion.notOnOrAfter ?? new Date(now + 5 * 60_000)).toISOString();
        const inResponseTo = assertion.inResponseTo === null || assertion.inResponseTo === undefined ? '' : ` InResponseTo="${escape(assertion.inResponseTo)}"`;
        const destination = assertion.destination === null ? '' : ` Destination="${escape(assertion.destination ?? this.sp.acsUrl)}"`;
        const issuer = escape(assertion.issuer ?? this.entityId);
        const responseIssuer = assertion.responseIssuer === null ? '' : `<saml:Issuer>${escape(assertion.responseIssuer ?? assertion.issuer ?? this.entityId)}</saml:Issuer>`;
        const attributes = Object.entries(assertion.attributes ?? {}).map(([name, values]) => `<saml:Attribute Name="${escape(name)}">${[values].flat().map((value) => `<saml:AttributeValue>${escape(value)}</saml:AttributeValue>`).join('')}</saml:Attribute>`).join('');
        const ends = notOnOrAfter ? ` NotOnOrAfter="${notOnOrAfter}"` : '';

        return `<samlp:Response xmlns:samlp="${ns.samlp}" xmlns:saml="${ns.saml}" ID="_r${Crypto.randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${issueInstant}"${destination}${inResponseTo}>` +
            responseIssuer +
            `<samlp:Status><samlp:StatusCode Value="${assertion.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
            `<saml:Assertion ID="${escape(assertion.assertionId ?? `_a${Crypto.randomBytes(16).toString('hex')}`)}" Version="2.0" IssueInstant="${issueInstant}">` +
            `<saml:Issuer>${issuer}</saml:Issuer>` +
            `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${escape(assertion.nameId)}</saml:NameID>` +
            `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData${assertion.subjectInResponseTo ? ` InResponseTo="${escape(assertion.subjectInResponseTo)}"` : inResponseTo}${ends} Recipient="${escape(assertion.recipient ?? this.sp.acsUrl)}"/></saml:SubjectConfirmation></saml:Subject>` +
            `<saml:Conditions NotBefore="${notBefore}"${ends}><saml:AudienceRestriction><saml:Audience>${escape(assertion.audience ?? this.sp.entityId)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
            `<saml:AuthnStatement AuthnInstant="${issueInstant}" SessionIndex="_s${Crypto.randomBytes(8).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
            (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
            '</saml:Assertion></samlp:Response>';
    }

    // Signed as asked: the assertion (the usual case), the response, both, or neither
    signedXml(assertion: Assertion, options: SignOptions = {}): string {

        const key = options.key ?? this.key;
        const algorithm = options.algorithm ?? 'sha256';
        const signing = options.sign ?? 'assertion';
        let xml = this.responseXml(assertion);
        if (signing === 'assertion' || signing === 'both') {
            xml = sign(xml, 'Assertion', key, algorithm);
        }

        if (signing === 'response' || signing === 'both') {
            xml = sign(xml, 'Response', key, algorithm);
        }

        return xml;
    }

    response(assertion: Assertion, options: SignOptions = {}): string {

        return Buffer.from(this.signedXml(assertion, options)).toString('base64');
    }

    metadata(): string {

        return `<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${this.entityId}">` +
            '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">' +
            `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${this.key.certBody}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
            '<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>MIIBroken</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>' +
            `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${this.ssoUrl}/post"/>` +
            `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${this.ssoUrl}"/>` +
            '</md:IDPSSODescriptor></md:EntityDescriptor>';
    }

    // A local HTTP server: /metadata, and /sso reading the AuthnRequest of the query and answering the auto-post form
    async start(): Promise<string> {

        this.server = Http.createServer((req, res) => {

            const url = new URL(req.url ?? '/', 'http://127.0.0.1');
            if (url.pathname === '/metadata') {
                res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(this.metadata());
                return;
            }

            if (url.pathname !== '/sso' || !url.searchParams.get('SAMLRequest')) {
                res.writeHead(404).end();
                return;
            }

            let request: ReturnType<DOMParser['parseFromString']>;
            try {
                request = new DOMParser().parseFromString(Zlib.inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'), 'text/xml');
            }
            catch {
                res.writeHead(400).end();
                return;
            }

            const root = request.documentElement!;
            const id = root.getAttribute('ID')!;
            const relayState = url.searchParams.get('RelayState');
            this.requests.push({ id, acs: root.getAttribute('AssertionConsumerServiceURL'), issuer: root.getElementsByTagNameNS(ns.saml, 'Issuer')[0]?.textContent ?? null, signed: url.searchParams.has('Signature'), relayState });
            const SAMLResponse = this.response({ ...this.user, inResponseTo: id });
            res.writeHead(200, { 'content-type': 'text/html' }).end(
                `<form method="post" action="${escape(this.sp.acsUrl)}"><input type="hidden" name="SAMLResponse" value="${SAMLResponse}"/>` +
                `<input type="hidden" name="RelayState" value="${escape(relayState ?? '')}"/></form>`
            );
        });

        await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
        const base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
        this.ssoUrl = `${base}/sso`;
        return base;
    }

    async stop(): Promise<void> {

        await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    }
}


// The fields of the HTML form an IdP answers, as a browser would submit them
export const formFields = (html: string): Record<string, string> => {

    const fields: Record<string, string> = {};
    for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) {
        fields[match[1]!] = match[2]!.replace(/&quot;/g, '"').replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&amp;/g, '&');
    }

    return fields;
};
