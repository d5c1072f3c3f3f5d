import * as Crypto from 'crypto';
import * as Zlib from 'zlib';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';

import { ValidationError } from '../../server/errors';
import { SamlAssertion, SamlRequest, Setting, User } from '../../server/models';
import type { Role } from '../../server/policy';
import { isSameOriginPath } from '../../server/schemas/common';

import { json } from '../helpers/factories';
import { formFields, keyPair, TestIdp, type Assertion } from '../helpers/saml-idp';
import { init, login, origin, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('SAML 2.0 service provider (/sso)', () => {

    let context: TestContext;
    let idp: TestIdp;
    let idpBase: string;
    const sp = { entityId: `${origin}/api/v1/sso/metadata`, acsUrl: `${origin}/api/v1/sso/callback` };
    const mapping = { 'aegis-admins': 'admin', 'red-team': 'red_tech', 'blue-leads': 'blue_lead' };

    const unique = () => Crypto.randomBytes(5).toString('hex');
    const config = (overrides: Record<string, unknown> = {}) => ({
        idp_entity_id: idp.entityId,
        sso_url: idp.ssoUrl,
        certificates: [idp.key.certPem],
        attributes: { username: 'uid', email: 'mail', display_name: 'cn', groups: 'memberOf' },
        role_mapping: mapping,
        jit: true,
        ...overrides
    });

    const configure = async (overrides: Record<string, unknown> = {}) => {

        const res = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/config', auth: context.as('admin'), payload: config(overrides) });
        expect(res.statusCode, res.payload).to.equal(200);
        return json(res);
    };

    // A sign-in a browser started: its request id (the AuthnRequest's ID, also its cookie)
    const start = async (redirectTo?: string) => {

        const res = await context.server.inject({ method: 'GET', url: `/api/v1/sso/login${redirectTo ? `?redirect_to=${encodeURIComponent(redirectTo)}` : ''}` });
        expect(res.statusCode, res.payload).to.equal(302);
        const location = new URL(res.headers.location as string);
        const request = Zlib.inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
        const id = /ID="([^"]+)"/.exec(request)![1]!;
        const cookie = ([res.headers['set-cookie']].flat() as string[]).find((line) => line.startsWith('aegis_saml_request='))!;
        expect(cookie.split(';')[0]).to.equal(`aegis_saml_request=${id}`);
        return { id, location, request, cookie };
    };

    const post = (fields: Record<string, string>, requestId?: string) => context.server.inject({
        method: 'POST',
        url: '/api/v1/sso/callback',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.elsewhere.test', ...(requestId ? { cookie: `aegis_saml_request=${requestId}` } : {}) },
        payload: new URLSearchParams(fields).toString()
    });

    const person = (overrides: Partial<Assertion> = {}): Assertion => {

        const id = unique();
        return { nameId: `nameid-${id}`, attributes: { uid: `saml-${id}`, mail: `saml-${id}@corp.example.test`, cn: `Saml ${id}`, memberOf: ['red-team'] }, ...overrides };
    };

    const usersOf = (who: Assertion) => User.query(context.knex).where('external_id', who.nameId).orWhereRaw('lower(username) = lower(?)', [String(who.attributes?.uid ?? '')]).resultSize();
    const pending = (id: string) => SamlRequest.query(context.knex).findById(id).resultSize();

    before(async () => {

        context = await init({ env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1', AEGIS_PUBLIC_URL: origin } });
        idp = new TestIdp(sp);
        idpBase = await idp.start();
    });

    after(async () => {

        // The run's database is shared: other scripts expect the setting at its default
        await Setting.query(context.knex).deleteById('sso.saml');
        await idp.stop();
        await context.stop();
    });

    describe('configuration', () => {

        it('answers the status to every role, nothing secret; configures from IdP metadata fetched through the outbound client', async () => {

            await Setting.query(context.knex).deleteById('sso.saml');
            for (const role of ['admin', 'viewer', 'red_tech'] as Role[]) {
                const res = await context.server.inject({ method: 'GET', url: '/api/v1/sso/status', auth: context.as(role) });
                expect(res.statusCode).to.equal(200);
                expect(json(res).saml).to.equal({ configured: false, enabled: false });      // oidc: another script's
            }

            const res = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/config', auth: context.as('admin'), payload: { metadata_url: `${idpBase}/metadata`, jit: true, role_mapping: mapping } });
            expect(res.statusCode, res.payload).to.equal(200);
            const saved = json(res);
            expect(saved.key).to.equal('sso.saml');
            expect(saved.value).to.include({ idp_entity_id: idp.entityId, sso_url: idp.ssoUrl, enabled: true, jit: true, sign_requests: false, sp_private_key: { set: false } });
            expect(saved.value.certificates).to.equal([idp.key.certPem.replace(/\r\n/g, '\n')]);
            expect(saved.value.attributes).to.equal({ username: null, email: 'email', display_name: 'displayName', groups: 'groups' });

            const status = await context.server.inject({ method: 'GET', url: '/api/v1/sso/status', auth: context.as('viewer') });
            expect(json(status).saml).to.equal({ configured: true, enabled: true });

            // Explicit fields win over the metadata's
            const explicit = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/config', auth: context.as('admin'), payload: { metadata_url: `${idpBase}/metadata`, sso_url: 'https://idp.example.test/other' } });
            expect(json(explicit).value.sso_url).to.equal('https://idp.example.test/other');

            const audit = await context.knex('audit_logs').where({ action: 'settings.update', entity_id: 'sso.saml' }).orderBy('created_at', 'desc').first();
            expect(audit.actor_id).to.equal(context.users.admin.id);
            await configure();
        });

        it('refuses bad input with a 400 saying why, storing nothing', async () => {

            await configure();
            const stored = await Setting.query(context.knex).findById('sso.saml');
            const attempts: [Record<string, unknown>, RegExp][] = [
                [{ metadata_url: undefined, certificates: undefined }, /certificates required/],
                [{ certificates: ['not a certificate'] }, /certificate/],
                [{ certificates: [] }, /certificates/],
                [{ sso_url: 'javascript:alert(1)' }, /sso_url/],
                [{ role_mapping: { admins: 'superuser' } }, /role_mapping/],
                [{ metadata_url: `${idpBase}/missing`, certificates: undefined }, /cannot be fetched/],
                [{ metadata_url: 'http://10.0.0.1/metadata', certificates: undefined }, /metadata_url/],
                [{ sign_requests: true }, /sp_private_key/],
                [{ sign_requests: true, sp_private_key: keyPair().keyPem, sp_certificate: idp.key.certPem }, /does not belong/],
                [{ sp_private_key: 'not a key' }, /private key/],
                [{ surprise: true }, /not allowed/]
            ];

            for (const [overrides, message] of attempts) {
                const res = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/config', auth: context.as('admin'), payload: config(overrides) });
                expect(res.statusCode, JSON.stringify(overrides)).to.equal(400);
                expect(json(res).message, JSON.stringify(overrides)).to.match(message);
            }

            // Metadata that is not metadata
            const bad = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/config', auth: context.as('admin'), payload: { metadata_url: `${idpBase}/sso?SAMLRequest=x` } });
            expect(bad.statusCode).to.equal(400);

            const unchanged = await Setting.query(context.knex).findById('sso.saml');
            expect(unchanged!.updated_at).to.equal(stored!.updated_at);
            expect(unchanged!.value).to.equal(stored!.value);

            for (const role of ['viewer', 'red_lead', 'blue_lead', 'red_tech', 'blue_tech'] as Role[]) {
                const res = await context.server.inject({ method: 'PUT', url: '/api/v1/sso/config', auth: context.as(role), payload: config() });
                expect(res.statusCode).to.equal(403);
            }

            expect((await context.server.inject({ method: 'PUT', url: '/api/v1/sso/config', payload: config() })).statusCode).to.equal(401);
        });

        it('refuses a signing key it cannot use, at save (service) and at sign-in (a setting saved without the key)', async () => {

            await configure();
            const garbage = { ...config(), enabled: true, sign_requests: true, sp_private_key: 'not a key', sp_certificate: 'not a certificate' } as never;
            const err = await expect(context.services.saml.configure(context.actor('admin'), garbage)).to.reject(ValidationError);
            expect(err.message).to.include('sp_certificate');

            // The generic settings route stores the shape without checking the pair; a sign-in then says what is missing
            await context.services.settings.set(context.actor('admin'), 'sso.saml', { ...config(), sign_requests: true, sp_private_key: null });
            const res = await context.server.inject({ method: 'GET', url: '/api/v1/sso/login' });
            expect(res.statusCode).to.equal(409);
            expect(json(res).message).to.include('sign_requests');
            await configure();
        });

        it('answers valid SP metadata XML, publishing the signing certificate when AuthnRequests are signed', async () => {

            await configure();
            const res = await context.server.inject({ method: 'GET', url: '/api/v1/sso/metadata' });
            expect(res.statusCode).to.equal(200);
            expect(String(res.headers['content-type'])).to.startWith('application/samlmetadata+xml');
            const doc = new DOMParser().parseFromString(res.payload, 'text/xml');
            const entity = doc.documentElement!;
            expect(entity.localName).to.equal('EntityDescriptor');
            expect(entity.namespaceURI).to.equal('urn:oasis:names:tc:SAML:2.0:metadata');
            expect(entity.getAttribute('entityID')).to.equal(sp.entityId);
            const acs = doc.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'AssertionConsumerService')[0]!;
            expect(acs.getAttribute('Location')).to.equal(sp.acsUrl);
            expect(acs.getAttribute('Binding')).to.equal('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
            expect(doc.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:metadata', 'KeyDescriptor')).to.have.length(0);

            const spKey = keyPair('Aegis SP');
            await configure({ sign_requests: true, sp_private_key: spKey.keyPem, sp_certificate: spKey.certPem });
            const signed = await context.server.inject({ method: 'GET', url: '/api/v1/sso/metadata' });
            expect(signed.payload.replace(/\s+/g, '')).to.include(spKey.certBody);
            expect(signed.payload).to.include('AuthnRequestsSigned="true"');
            expect(signed.payload).to.not.include('PRIVATE');
            await configure({ sign_requests: false, sp_private_key: null });
        });
    });

    describe('sign-in', () => {

        it('redirects with an AuthnRequest (unsigned or signed as configured) bound to the browser, and refuses an off-site redirect_to', async () => {

            await configure();
            const { id, location, request, cookie } = await start('/campaigns?tab=open');
            expect(location.origin + location.pathname).to.equal(idp.ssoUrl);
            expect(location.searchParams.get('RelayState')).to.equal('/campaigns?tab=open');
            expect(location.searchParams.has('Signature')).to.be.false();
            expect(request).to.include(`AssertionConsumerServiceURL="${sp.acsUrl}"`);
            expect(request).to.include(`Destination="${idp.ssoUrl}"`);
            expect(request).to.include(`>${sp.entityId}</saml:Issuer>`);
            expect(await pending(id)).to.equal(1);
            expect(cookie).to.include('HttpOnly');
            expect(cookie).to.include('Secure');
            expect(cookie).to.include('SameSite=None');
            expect(cookie).to.include('Path=/api/v1/sso/callback');

            for (const bad of ['//evil.example.test/x', 'https://evil.example.test', '/\\evil.example.test', 'relative', '/a b', `/${'x'.repeat(1100)}`]) {
                const res = await context.server.inject({ method: 'GET', url: `/api/v1/sso/login?redirect_to=${encodeURIComponent(bad)}` });
                expect(res.statusCode, bad).to.equal(400);
            }

            const spKey = keyPair('Aegis SP');
            await configure({ sign_requests: true, sp_private_key: spKey.keyPem, sp_certificate: spKey.certPem });
            const signed = await start();
            expect(signed.location.searchParams.get('SigAlg')).to.equal('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
            const query = ['SAMLRequest', 'RelayState', 'SigAlg'].filter((name) => signed.location.searchParams.has(name)).map((name) => `${name}=${encodeURIComponent(signed.location.searchParams.get(name)!)}`).join('&');
            expect(Crypto.verify('sha256', Buffer.from(query), spKey.certPem, Buffer.from(signed.location.searchParams.get('Signature')!, 'base64'))).to.be.true();
            await configure({ sign_requests: false, sp_private_key: null });
        });

        it('refuses to start or consume a sign-in while SAML is disabled', async () => {

            await configure({ enabled: false });
            expect((await context.server.inject({ method: 'GET', url: '/api/v1/sso/login' })).statusCode).to.equal(409);
            const res = await post({ SAMLResponse: idp.response(person()) });
            expect(res.statusCode).to.equal(409);
            expect(json(res).code).to.equal('sso_not_configured');
            await configure();
        });

        it('signs in through the IdP: the browser carries the request there and the form back; the same session as a password login', async () => {

            await configure();
            const who = person({ attributes: { uid: `flow-${unique()}`, mail: `flow-${unique()}@corp.example.test`, cn: 'Flow Person', memberOf: ['red-team', 'blue-leads', 'unmapped'] } });
            idp.user = who;
            const started = await start('/tests?mine=1');

            // The browser follows the redirect to the IdP, which signs the person in and answers its form
            const page = await fetch(started.location.href);
            const fields = formFields(await page.text());
            expect(idp.requests.at(-1)).to.include({ id: started.id, acs: sp.acsUrl, issuer: sp.entityId, signed: false, relayState: '/tests?mine=1' });

            const res = await post(fields, started.id);
            expect(res.statusCode, res.payload).to.equal(303);
            expect(res.headers.location).to.equal('/tests?mine=1');
            const cookies = [res.headers['set-cookie']].flat() as string[];
            const session = cookies.find((line) => line.startsWith('aegis_token='))!;
            expect(cookies.find((line) => line.startsWith('aegis_saml_request='))).to.include('Max-Age=0');

            // The user: provisioned with the most privileged mapped role, no password
            const user = await User.query(context.knex).where({ auth_provider: 'saml', external_id: who.nameId }).first();
            expect(user).to.include({ username: String(who.attributes!.uid), email: String(who.attributes!.mail), display_name: 'Flow Person', role: 'blue_lead', password_hash: null, must_change_password: false });
            expect(await pending(started.id)).to.equal(0);
            expect(await SamlAssertion.query(context.knex).where('issuer', idp.entityId).resultSize()).to.be.at.least(1);

            // The cookie works on /auth/me, with the flags and expiry of a password login's cookie
            const token = session.split(';')[0]!;
            const me = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: token } });
            expect(me.statusCode).to.equal(200);
            expect(json(me)).to.include({ id: user!.id, auth_provider: 'saml', role: 'blue_lead' });

            const local = await context.createUser('viewer');
            const password = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: local.username, password: local.password } });
            const passwordCookie = ([password.headers['set-cookie']].flat() as string[]).find((line) => line.startsWith('aegis_token='))!;
            const flags = (line: string) => line.split(';').slice(1).map((part) => part.trim()).filter((part) => !part.startsWith('Expires=')).sort();
            expect(flags(session)).to.equal(flags(passwordCookie));
            expect(flags(session)).to.include(['HttpOnly', 'SameSite=Lax', 'Secure', 'Path=/']);
            const claims = (value: string) => JSON.parse(Buffer.from(value.split('=')[1]!.split('.')[1]!, 'base64url').toString());
            const samlClaims = claims(token);
            const passwordClaims = claims(passwordCookie.split(';')[0]!);
            expect(samlClaims.exp - samlClaims.iat).to.equal(passwordClaims.exp - passwordClaims.iat);
            expect(Object.keys(samlClaims).sort()).to.equal(Object.keys(passwordClaims).sort());

            // Logout revokes it
            const logout = await context.server.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { authorization: `Bearer ${token.split('=')[1]}` } });
            expect(logout.statusCode).to.equal(204);
            expect((await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { cookie: token } })).statusCode).to.equal(401);

            const audit = await context.knex('audit_logs').where({ action: 'auth.login', entity_id: user!.id }).first();
            expect(audit.details).to.equal({ provider: 'saml' });
            expect(JSON.stringify(await context.knex('audit_logs').where({ entity_id: user!.id }))).to.not.include('SAMLResponse');

            // The password login path refuses the SSO user (no local password)
            const refused = await context.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user!.username, password: 'Correct-Horse-Battery-9' } });
            expect(refused.statusCode).to.equal(401);
        });

        it('accepts a signature on the response alone, or on both, and updates the user on a later login when the groups change', async () => {

            await configure();
            const who = person({ attributes: { uid: `both-${unique()}`, memberOf: ['red-team'] } });
            const first = await start();
            expect((await post({ SAMLResponse: idp.response({ ...who, inResponseTo: first.id }, { sign: 'response' }) }, first.id)).statusCode).to.equal(303);
            expect((await User.query(context.knex).where('external_id', who.nameId).first())!.role).to.equal('red_tech');

            const second = await start();
            const changed = { ...who, attributes: { ...who.attributes, memberOf: ['aegis-admins'] } };
            const res = await post({ SAMLResponse: idp.response({ ...changed, inResponseTo: second.id }, { sign: 'both' }), RelayState: '' }, second.id);
            expect(res.statusCode, res.payload).to.equal(303);
            expect(res.headers.location).to.equal('/');
            const user = await User.query(context.knex).where('external_id', who.nameId).first();
            expect(user).to.include({ role: 'admin', email: null, display_name: null });
        });

        it('refuses an SSO user deactivated in Aegis, and an unknown user when jit is off, creating and consuming nothing', async () => {

            await configure();
            const who = person();
            const first = await start();
            expect((await post({ SAMLResponse: idp.response({ ...who, inResponseTo: first.id }) }, first.id)).statusCode).to.equal(303);
            const user = (await User.query(context.knex).where('external_id', who.nameId).first())!;
            await context.services.users.deactivate(context.actor('admin'), user.id);

            const again = await start();
            const res = await post({ SAMLResponse: idp.response({ ...who, inResponseTo: again.id }) }, again.id);
            expect(res.statusCode).to.equal(401);
            expect(json(res)).to.include({ code: 'sso_user_inactive' });
            expect(json(res).message).to.include('deactivated');
            expect(await pending(again.id)).to.equal(1);

            await configure({ jit: false });
            const stranger = person();
            const third = await start();
            const refused = await post({ SAMLResponse: idp.response({ ...stranger, inResponseTo: third.id }) }, third.id);
            expect(refused.statusCode).to.equal(401);
            expect(json(refused).code).to.equal('sso_unknown_user');
            expect(await usersOf(stranger)).to.equal(0);
            expect(await pending(third.id)).to.equal(1);
            await configure();
        });

        it('never takes over a local account by a matching username', async () => {

            await configure();
            const local = await context.createUser('admin');
            const who = person({ attributes: { uid: local.username, memberOf: ['aegis-admins'] } });
            const started = await start();
            const res = await post({ SAMLResponse: idp.response({ ...who, inResponseTo: started.id }) }, started.id);
            expect(res.statusCode).to.equal(401);
            expect(json(res).code).to.equal('sso_identity_conflict');
            expect(await User.query(context.knex).where('external_id', who.nameId).resultSize()).to.equal(0);
            expect((await User.query(context.knex).findById(local.id))!.last_login_at).to.be.null();
        });
    });

    describe('forged and unusable responses', () => {

        const parse = (xml: string) => new DOMParser().parseFromString(xml, 'text/xml');
        const serialise = (doc: Document) => new XMLSerializer().serializeToString(doc as never);
        const b64 = (xml: string) => Buffer.from(xml).toString('base64');
        const saml = 'urn:oasis:names:tc:SAML:2.0:assertion';
        const ds = 'http://www.w3.org/2000/09/xmldsig#';

        // Each case: the response for a pending request `id` of a browser, and the code it is refused with
        const cases: { name: string; code: string; build: (id: string, who: Assertion) => { fields: Record<string, string>; cookie?: string | undefined } }[] = [
            { name: 'unsigned', code: 'saml_signature_invalid', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id }, { sign: 'none' }) } }) },
            {
                name: 'tampered after signing (NameID changed)', code: 'saml_signature_invalid', build: (id, who) => ({
                    fields: { SAMLResponse: b64(idp.signedXml({ ...who, inResponseTo: id }).replace(who.nameId, `${who.nameId}-evil`)) }
                })
            },
            {
                name: 'XSW: an evil assertion beside the signed one', code: 'saml_signature_invalid', build: (id, who) => {

                    const doc = parse(idp.signedXml({ ...person(), inResponseTo: id }));
                    const evil = parse(idp.responseXml({ ...who, inResponseTo: id })).getElementsByTagNameNS(saml, 'Assertion')[0]!;
                    const signed = doc.getElementsByTagNameNS(saml, 'Assertion')[0]!;
                    doc.documentElement!.insertBefore(doc.importNode(evil, true), signed);
                    return { fields: { SAMLResponse: b64(serialise(doc as unknown as Document)) } };
                }
            },
            {
                name: 'XSW: the signed assertion wrapped inside an evil one', code: 'saml_signature_invalid', build: (id, who) => {

                    const doc = parse(idp.signedXml({ ...person(), inResponseTo: id }));
                    const signed = doc.getElementsByTagNameNS(saml, 'Assertion')[0]!;
                    const evil = doc.importNode(parse(idp.responseXml({ ...who, inResponseTo: id })).getElementsByTagNameNS(saml, 'Assertion')[0]!, true);
                    doc.documentElement!.replaceChild(evil, signed);
                    evil.appendChild(signed);
                    return { fields: { SAMLResponse: b64(serialise(doc as unknown as Document)) } };
                }
            },
            {
                name: 'XSW: the signed response wrapped inside an evil response', code: 'saml_signature_invalid', build: (id, who) => {

                    const original = parse(idp.signedXml({ ...person(), inResponseTo: id }, { sign: 'response' }));
                    const doc = parse(idp.responseXml({ ...who, inResponseTo: id }));
                    const root = doc.documentElement!;
                    const signature = original.documentElement!.getElementsByTagNameNS(ds, 'Signature')[0]!;
                    root.setAttribute('ID', original.documentElement!.getAttribute('ID')!);
                    root.insertBefore(doc.importNode(signature, true), root.getElementsByTagNameNS(saml, 'Assertion')[0]!);
                    const extensions = doc.createElementNS('urn:oasis:names:tc:SAML:2.0:protocol', 'samlp:Extensions');
                    original.documentElement!.removeChild(signature);
                    extensions.appendChild(doc.importNode(original.documentElement!, true));
                    root.insertBefore(extensions, root.firstChild!.nextSibling);
                    return { fields: { SAMLResponse: b64(serialise(doc as unknown as Document)) } };
                }
            },
            {
                name: 'XSW: the assertion\'s signature moved to the response', code: 'saml_signature_invalid', build: (id, who) => {

                    const doc = parse(idp.signedXml({ ...who, inResponseTo: id }));
                    const signature = doc.getElementsByTagNameNS(ds, 'Signature')[0]!;
                    signature.parentNode!.removeChild(signature);
                    const root = doc.documentElement!;
                    root.insertBefore(signature, root.getElementsByTagNameNS(saml, 'Assertion')[0]!);
                    return { fields: { SAMLResponse: b64(serialise(doc as unknown as Document)) } };
                }
            },
            { name: 'SHA-1', code: 'saml_weak_algorithm', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id }, { algorithm: 'sha1' }) } }) },
            { name: 'signed by a certificate not configured', code: 'saml_signature_invalid', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id }, { key: other }) } }) },
            { name: 'expired', code: 'saml_expired', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, notBefore: new Date(Date.now() - 20 * 60_000), notOnOrAfter: new Date(Date.now() - 10 * 60_000) }) } }) },
            { name: 'not yet valid', code: 'saml_not_yet_valid', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, notBefore: new Date(Date.now() + 10 * 60_000), notOnOrAfter: new Date(Date.now() + 20 * 60_000) }) } }) },
            { name: 'without NotOnOrAfter', code: 'saml_response_invalid', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, notOnOrAfter: null }) } }) },
            { name: 'wrong Destination', code: 'saml_destination_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, destination: 'https://other-sp.example.test/acs' }) } }) },
            { name: 'no Destination', code: 'saml_destination_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, destination: null }) } }) },
            { name: 'wrong Recipient', code: 'saml_recipient_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, recipient: 'https://other-sp.example.test/acs' }) } }) },
            { name: 'wrong Audience', code: 'saml_audience_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, audience: 'https://other-sp.example.test' }) } }) },
            { name: 'wrong Issuer', code: 'saml_issuer_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, issuer: 'https://evil-idp.example.test' }) } }) },
            { name: 'wrong assertion Issuer under the right response Issuer', code: 'saml_issuer_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, issuer: 'https://evil-idp.example.test', responseIssuer: idp.entityId }) } }) },
            { name: 'unsolicited (no InResponseTo)', code: 'saml_unsolicited', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: null }) } }) },
            { name: 'InResponseTo of another browser\'s request', code: 'saml_request_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id }) }, cookie: otherRequest }) },
            { name: 'InResponseTo of a request never sent', code: 'saml_request_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: '_never-sent' }) }, cookie: '_never-sent' }) },
            { name: 'assertion answering another request than the response', code: 'saml_request_mismatch', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, subjectInResponseTo: otherRequest }) } }) },
            { name: 'RelayState off-site', code: 'saml_relay_state_invalid', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id }), RelayState: '//evil.example.test/' } }) },
            { name: 'RelayState absolute', code: 'saml_relay_state_invalid', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id }), RelayState: 'https://evil.example.test/' } }) },
            { name: 'a status other than Success', code: 'saml_status_failed', build: (id, who) => ({ fields: { SAMLResponse: idp.response({ ...who, inResponseTo: id, status: 'urn:oasis:names:tc:SAML:2.0:status:Requester' }, { sign: 'response' }) } }) },
            { name: 'not XML', code: 'saml_response_invalid', build: () => ({ fields: { SAMLResponse: b64('<<not xml') } }) },
            { name: 'with a DOCTYPE', code: 'saml_response_invalid', build: (id, who) => ({ fields: { SAMLResponse: b64(`<!DOCTYPE r [<!ENTITY x "y">]>${idp.signedXml({ ...who, inResponseTo: id })}`) } }) },
            { name: 'not a Response', code: 'saml_response_invalid', build: () => ({ fields: { SAMLResponse: b64('<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>') } }) }
        ];

        const other = keyPair('Another IdP');
        let otherRequest: string;

        before(async () => {

            await configure();
            otherRequest = (await start()).id;
        });

        it('refuses each forged response with a 401 and its code, creating nothing and consuming no request', async () => {

            await configure();
            for (const item of cases) {
                const who = person();
                const { id } = await start();
                const { fields, cookie } = item.build(id, who);
                const assertions = await SamlAssertion.query(context.knex).resultSize();
                const res = await post(fields, cookie ?? id);
                expect(res.statusCode, `${item.name}: ${res.payload}`).to.equal(401);
                const body = json(res);
                expect(body.code, `${item.name}: ${body.message}`).to.equal(item.code);
                expect(String(body.message).length, item.name).to.be.above(20);
                expect(res.headers['set-cookie'], item.name).to.not.exist();
                expect(await usersOf(who), item.name).to.equal(0);
                expect(await pending(id), item.name).to.equal(1);
                expect(await pending(otherRequest), item.name).to.equal(1);
                expect(await SamlAssertion.query(context.knex).resultSize(), item.name).to.equal(assertions);
                const audited = await context.knex('audit_logs').where({ action: 'auth.login', outcome: 'failure' }).whereRaw(`details->>'reason' = ?`, [item.code]).orderBy('created_at', 'desc').first();
                expect(audited.details, item.name).to.equal({ provider: 'saml', reason: item.code });
            }

            // And the genuine response to a request a forgery was posted against still signs in
            const who = person();
            const { id } = await start();
            expect((await post({ SAMLResponse: idp.response({ ...who, inResponseTo: id }, { key: other }) }, id)).statusCode).to.equal(401);
            expect((await post({ SAMLResponse: idp.response({ ...who, inResponseTo: id }) }, id)).statusCode).to.equal(303);
        });

        it('refuses a replayed response, and an assertion id seen before even under a new request', async () => {

            await configure();
            const who = person();
            const { id } = await start();
            const fields = { SAMLResponse: idp.response({ ...who, inResponseTo: id }) };
            expect((await post(fields, id)).statusCode).to.equal(303);
            const users = await usersOf(who);

            const replay = await post(fields, id);
            expect(replay.statusCode).to.equal(401);
            expect(json(replay).code).to.equal('saml_request_mismatch');

            // The IdP (or whoever holds its key) reusing an assertion id for a new request: the replay cache refuses it
            const assertionId = `_reused${unique()}`;
            const first = await start();
            expect((await post({ SAMLResponse: idp.response({ ...who, inResponseTo: first.id, assertionId }) }, first.id)).statusCode).to.equal(303);
            const second = await start();
            const reused = await post({ SAMLResponse: idp.response({ ...who, inResponseTo: second.id, assertionId }) }, second.id);
            expect(reused.statusCode).to.equal(401);
            expect(json(reused).code).to.equal('saml_replayed');
            expect(await pending(second.id)).to.equal(1);
            const remembered = await SamlAssertion.query(context.knex).findById(assertionId);
            expect(remembered!.expires_at.getTime()).to.be.above(Date.now() + 4 * 60_000);
            expect(await usersOf(who)).to.equal(users);

            // Two posts of one response at once: one session
            const race = await start();
            const raced = { SAMLResponse: idp.response({ ...who, inResponseTo: race.id }) };
            const answers = await Promise.all([post(raced, race.id), post(raced, race.id), post(raced, race.id)]);
            expect(answers.map((res) => res.statusCode).sort()).to.equal([303, 401, 401]);
        });

        it('refuses malformed callback input with a 400 and survives junk', async () => {

            await configure();
            for (const payload of ['', 'SAMLResponse=', 'SAMLResponse=%00%01', `SAMLResponse=${'A'.repeat(600 * 1024)}`, 'RelayState=/x']) {
                const res = await context.server.inject({ method: 'POST', url: '/api/v1/sso/callback', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload });
                expect(res.statusCode, payload.slice(0, 40)).to.be.within(400, 413);
            }

            const jsonBody = await context.server.inject({ method: 'POST', url: '/api/v1/sso/callback', payload: { SAMLResponse: 'AAAA' } });
            expect(jsonBody.statusCode).to.equal(415);

            const junk = await post({ SAMLResponse: Buffer.from(Crypto.randomBytes(300)).toString('base64') }, '_junk');
            expect(junk.statusCode).to.equal(401);
        });

        it('knows a same-origin path', () => {

            for (const good of ['/', '/tests', '/tests?x=1#y', '/a/b%2Fc']) {
                expect(isSameOriginPath(good), good).to.be.true();
            }

            for (const bad of ['', 'tests', '//evil', '/\\evil', '\\evil', 'https://evil', '/a\nb', '/a b', 'javascript:alert(1)', `/${'x'.repeat(1024)}`]) {
                expect(isSameOriginPath(bad), bad).to.be.false();
            }
        });
    });

    it('logs in through every path to the same session semantics (password, SAML)', async () => {

        await configure();
        const local = await context.createUser('red_tech');
        const byPassword = await login(context.server, local.username, local.password);
        const who = person();
        const { id } = await start();
        const res = await post({ SAMLResponse: idp.response({ ...who, inResponseTo: id }) }, id);
        const bySaml = ([res.headers['set-cookie']].flat() as string[]).find((line) => line.startsWith('aegis_token='))!.split(';')[0]!.split('=')[1]!;

        // A script asks for JSON at both ends: the URL, then the Session as POST /auth/login answers it, same cookie
        const started = await context.server.inject({ method: 'GET', url: '/api/v1/sso/login', headers: { accept: 'application/json' } });
        expect(started.statusCode).to.equal(200);
        const requestId = new URL(json(started).url).searchParams.has('SAMLRequest') && ([started.headers['set-cookie']].flat() as string[])[0]!.split(';')[0]!.split('=')[1]!;
        const scripted = await context.server.inject({
            method: 'POST', url: '/api/v1/sso/callback',
            headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', cookie: `aegis_saml_request=${requestId}` },
            payload: new URLSearchParams({ SAMLResponse: idp.response({ ...who, inResponseTo: String(requestId) }) }).toString()
        });
        expect(scripted.statusCode, scripted.payload).to.equal(200);
        const bySession = json(scripted);
        expect(bySession).to.include({ token_type: 'bearer' });
        expect(bySession.user).to.include({ auth_provider: 'saml', role: 'red_tech' });
        expect(([scripted.headers['set-cookie']].flat() as string[]).find((line) => line.startsWith('aegis_token='))).to.include(bySession.access_token);

        for (const token of [byPassword.token, bySaml, bySession.access_token]) {
            const me = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
            expect(me.statusCode).to.equal(200);
            await context.server.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: { authorization: `Bearer ${token}` } });
            const revoked = await context.server.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
            expect(revoked.statusCode).to.equal(401);
            expect(json(revoked).code).to.equal('token_revoked');
        }
    });
});
