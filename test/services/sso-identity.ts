import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { UnauthorizedError } from '../../server/errors';
import { User } from '../../server/models';
import { mostPrivileged, systemActor } from '../../server/policy';
import { roleFromGroups, type ExternalIdentity, type ProvisioningPolicy } from '../../server/services/sso-identity';

import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('SsoIdentityService (the shared SSO identity core)', () => {

    let context: TestContext;
    const anonymous = { id: null, role: 'viewer' as const, ip: '203.0.113.9' };
    const policy: ProvisioningPolicy = { jit: true, role_mapping: { 'aegis-admins': 'admin', 'red-team': 'red_tech', 'red-leads': 'red_lead', 'blue-leads': 'blue_lead', odd: 'nonsense' as never } };

    const unique = () => Crypto.randomBytes(5).toString('hex');
    const identity = (overrides: Partial<ExternalIdentity> = {}): ExternalIdentity => {

        const id = unique();
        return { provider: 'saml', subject: `subject-${id}`, username: `sso-${id}`, email: `sso-${id}@idp.example.test`, display_name: `SSO ${id}`, groups: [], ...overrides };
    };

    const usersNamed = (username: string) => User.query(context.knex).whereRaw('lower(username) = lower(?)', [username]).resultSize();
    const auditRows = (action: string, entityId: string) => context.knex('audit_logs').where({ action, entity_id: entityId }).orderBy('created_at');

    const refused = async (work: Promise<unknown>, code: string) => {

        const err = await expect(work).to.reject(UnauthorizedError);
        expect((err as UnauthorizedError).code).to.equal(code);
    };

    before(async () => {

        context = await init();
    });

    after(async () => {

        await context.stop();
    });

    it('orders roles by privilege explicitly and maps groups to the most privileged, viewer when none maps', () => {

        expect(mostPrivileged(['viewer', 'red_tech', 'blue_lead'])).to.equal('blue_lead');
        expect(mostPrivileged(['blue_lead', 'red_lead'])).to.equal('red_lead');
        expect(mostPrivileged([])).to.be.undefined();
        expect(roleFromGroups(['red-team', 'red-leads'], policy.role_mapping)).to.equal('red_lead');
        expect(roleFromGroups(['red-team', 'aegis-admins'], policy.role_mapping)).to.equal('admin');
        expect(roleFromGroups(['unmapped', 'odd'], policy.role_mapping)).to.equal('viewer');
        expect(roleFromGroups(['constructor', 'toString'], policy.role_mapping)).to.equal('viewer');
    });

    it('creates a user just in time with the mapped role and no password, and answers a working session', async () => {

        const who = identity({ groups: ['red-team', 'unmapped'] });
        const session = await context.services.ssoIdentity.signIn(anonymous, who, policy);

        expect(session.token_type).to.equal('bearer');
        expect(session.user.username).to.equal(who.username);
        const user = await User.query(context.knex).findById(session.user.id).throwIfNotFound();
        expect(user).to.include({ role: 'red_tech', auth_provider: 'saml', external_id: who.subject, password_hash: null, must_change_password: false, is_active: true, email: who.email, display_name: who.display_name });
        expect(user.last_login_at).to.be.a.date();
        expect(JSON.parse(JSON.stringify(session.user))).to.not.include(['external_id', 'password_hash', 'token_version']);

        // The same token semantics as a password login: resolved by the jwt path, expiring after the configured TTL
        const [, payload] = session.access_token.split('.');
        const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { sub: string; jti: string; exp: number; iat: number; ver: number; role: string };
        expect(claims.exp - claims.iat).to.equal(context.config.jwt.ttlSeconds);
        const principal = await context.services.auth.resolveToken(claims);
        expect(principal).to.be.an.object();
        expect((principal as { role: string }).role).to.equal('red_tech');

        const login = await auditRows('auth.login', user.id);
        expect(login).to.have.length(1);
        expect(login[0].details).to.equal({ provider: 'saml' });
        expect(login[0].outcome).to.equal('success');
        const created = await auditRows('user.create', user.id);
        expect(created[0].details).to.equal({ username: who.username, role: 'red_tech', provider: 'saml' });
    });

    it('finds the user by its subject on later logins, updating role, e-mail and display name when they change', async () => {

        const who = identity({ groups: ['red-team'] });
        const first = await context.services.ssoIdentity.signIn(anonymous, who, policy);

        // Unchanged: no update row, the earlier session still works
        const again = await context.services.ssoIdentity.signIn(anonymous, { ...who, username: `renamed-${unique()}` }, policy);
        expect(again.user.id).to.equal(first.user.id);
        expect(again.user.username).to.equal(who.username);
        expect(await auditRows('user.update', first.user.id)).to.have.length(0);

        const changed = { ...who, groups: ['red-leads'], email: `new-${unique()}@idp.example.test`, display_name: 'Renamed Person' };
        const later = await context.services.ssoIdentity.signIn(anonymous, changed, policy);
        expect(later.user).to.include({ id: first.user.id, role: 'red_lead', email: changed.email, display_name: 'Renamed Person' });

        const updates = await auditRows('user.update', first.user.id);
        expect(updates).to.have.length(1);
        expect(updates[0].details).to.equal({ changes: { role: 'red_lead', email: changed.email, display_name: 'Renamed Person' }, provider: 'saml' });

        // A new role ends the earlier sessions, as an admin's role change does (SEC-03)
        const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
        expect(await context.services.auth.resolveToken(claims(first.access_token))).to.equal('token_revoked');
        expect(await context.services.auth.resolveToken(claims(later.access_token))).to.be.an.object();
        expect(await auditRows('auth.login', first.user.id)).to.have.length(3);

        // Groups that no longer map anything: viewer
        const none = await context.services.ssoIdentity.signIn(anonymous, { ...changed, groups: [] }, policy);
        expect(none.user.role).to.equal('viewer');
    });

    it('refuses an unknown user when just-in-time provisioning is off, creating nothing', async () => {

        const who = identity({ groups: ['aegis-admins'] });
        const users = await User.query(context.knex).resultSize();
        await refused(context.services.ssoIdentity.signIn(anonymous, who, { ...policy, jit: false }), 'sso_unknown_user');
        expect(await usersNamed(who.username)).to.equal(0);
        expect(await User.query(context.knex).where({ external_id: who.subject }).resultSize()).to.equal(0);
        expect(await User.query(context.knex).resultSize()).to.be.at.least(users);

        // The refused attempt is audited as a failed password login is, without a user
        const failure = await context.knex('audit_logs').where({ action: 'auth.login', outcome: 'failure' }).whereRaw(`details->>'username' = ?`, [who.username]).first();
        expect(failure.details).to.equal({ provider: 'saml', reason: 'sso_unknown_user', username: who.username });
    });

    it('lets a known user in with jit off', async () => {

        const who = identity();
        const first = await context.services.ssoIdentity.signIn(anonymous, who, policy);
        const second = await context.services.ssoIdentity.signIn(anonymous, who, { ...policy, jit: false });
        expect(second.user.id).to.equal(first.user.id);
    });

    it('refuses a user deactivated in Aegis, changing nothing', async () => {

        const who = identity({ groups: ['red-team'] });
        const session = await context.services.ssoIdentity.signIn(anonymous, who, policy);
        await context.services.users.deactivate(context.actor('admin'), session.user.id);
        const earlier = await User.query(context.knex).findById(session.user.id).throwIfNotFound();

        await refused(context.services.ssoIdentity.signIn(anonymous, { ...who, groups: ['aegis-admins'] }, policy), 'sso_user_inactive');
        const now = await User.query(context.knex).findById(session.user.id).throwIfNotFound();
        expect(now).to.include({ role: 'red_tech', is_active: false, token_version: earlier.token_version });
        expect(now.last_login_at).to.equal(earlier.last_login_at);
        expect(now.updated_at).to.equal(earlier.updated_at);
    });

    it('never takes over a local account or another provider\'s user by a matching username or e-mail', async () => {

        const local = await context.createUser('admin');
        const users = await usersNamed(local.username);

        await refused(context.services.ssoIdentity.signIn(anonymous, identity({ username: local.username.toUpperCase(), groups: ['aegis-admins'] }), policy), 'sso_identity_conflict');
        expect(await usersNamed(local.username)).to.equal(users);
        const untouched = await User.query(context.knex).findById(local.id).throwIfNotFound();
        expect(untouched).to.include({ auth_provider: 'local', external_id: null, last_login_at: null });

        // Another provider's user with that name
        const oidc = identity({ provider: 'oidc' });
        await context.services.ssoIdentity.signIn(anonymous, oidc, policy);
        const saml = identity({ username: oidc.username });
        await refused(context.services.ssoIdentity.signIn(anonymous, saml, policy), 'sso_identity_conflict');
        expect(await User.query(context.knex).where({ external_id: saml.subject }).resultSize()).to.equal(0);

        // An e-mail that is another account's, at creation and at a later login
        const mailed = await context.services.ssoIdentity.signIn(anonymous, identity(), policy);
        const stealer = identity({ email: mailed.user.email!.toUpperCase() });
        await refused(context.services.ssoIdentity.signIn(anonymous, stealer, policy), 'sso_identity_conflict');
        expect(await usersNamed(stealer.username)).to.equal(0);

        const known = identity();
        const knownSession = await context.services.ssoIdentity.signIn(anonymous, known, policy);
        await refused(context.services.ssoIdentity.signIn(anonymous, { ...known, email: mailed.user.email }, policy), 'sso_identity_conflict');
        expect((await User.query(context.knex).findById(knownSession.user.id).throwIfNotFound()).email).to.equal(known.email);
    });

    it('keys users per provider: the same subject at SAML and OIDC is two users', async () => {

        const subject = `shared-${unique()}`;
        const saml = await context.services.ssoIdentity.signIn(anonymous, identity({ subject }), policy);
        const oidc = await context.services.ssoIdentity.signIn(anonymous, identity({ subject, provider: 'oidc' }), policy);
        expect(oidc.user.id).to.not.equal(saml.user.id);
        expect(oidc.user.auth_provider).to.equal('oidc');
    });

    it('refuses an identity without a usable subject or username, creating nothing', async () => {

        const blank = identity({ subject: '   ' });
        await refused(context.services.ssoIdentity.signIn(anonymous, blank, policy), 'sso_invalid_identity');
        expect(await usersNamed(blank.username)).to.equal(0);

        for (const username of ['', 'a', 'has space', 'x'.repeat(65), '-leading']) {
            const who = identity({ username });
            await refused(context.services.ssoIdentity.signIn(anonymous, who, policy), 'sso_invalid_identity');
            expect(await User.query(context.knex).where({ external_id: who.subject }).resultSize()).to.equal(0);
        }

        // A malformed e-mail is dropped, not stored; a long display name is cut
        const sloppy = await context.services.ssoIdentity.signIn(anonymous, identity({ email: 'not an e-mail', display_name: `  ${'d'.repeat(300)} ` }), policy);
        expect(sloppy.user.email).to.be.null();
        expect(sloppy.user.display_name).to.have.length(200);
    });

    it('creates one user when two first sign-ins of one identity race', async () => {

        const who = identity();
        const sessions = await Promise.all([1, 2, 3].map(() => context.services.ssoIdentity.signIn(anonymous, who, policy)));
        expect(new Set(sessions.map((session) => session.user.id)).size).to.equal(1);
        expect(await usersNamed(who.username)).to.equal(1);
    });

    it('demotes an SSO admin whose groups no longer map to admin while other admins remain', async () => {

        const who = identity({ groups: ['aegis-admins'] });
        const admin = await context.services.ssoIdentity.signIn(anonymous, who, policy);
        expect(admin.user.role).to.equal('admin');
        const demoted = await context.services.ssoIdentity.signIn(systemActor, { ...who, groups: ['blue-leads'] }, policy);
        expect(demoted.user.role).to.equal('blue_lead');
    });

    it('does not let groups demote the last active admin: refused, nothing changed', async () => {

        const who = identity({ groups: ['aegis-admins'] });
        const admin = await context.services.ssoIdentity.signIn(anonymous, who, policy);

        // The other admins deactivated in a transaction that is rolled back: no other script ever sees it
        const trx = await context.knex.transaction();
        try {
            await trx('users').where({ role: 'admin', is_active: true }).whereNot('id', admin.user.id).update({ is_active: false });
            await refused(context.services.ssoIdentity.signIn(anonymous, { ...who, groups: ['red-team'] }, policy, { trx }), 'sso_last_admin');
            expect((await User.query(trx).findById(admin.user.id))!.role).to.equal('admin');
        }
        finally {
            await trx.rollback();
        }
    });

    it('keeps the rules in the database: SSO users have an external id and no password, local users no external id', async () => {

        const refusedBy = async (write: Promise<unknown>, constraint: string) => {

            const err = await expect(write).to.reject();
            expect((err as { constraint?: string }).constraint).to.equal(constraint);
        };

        const base = () => ({ username: `db-${unique()}`, role: 'viewer' });
        await refusedBy(context.knex('users').insert({ ...base(), auth_provider: 'oidc', external_id: null }), 'users_external_identity_check');
        await refusedBy(context.knex('users').insert({ ...base(), auth_provider: 'local', password_hash: 'x', external_id: 'someone' }), 'users_external_identity_check');
        await refusedBy(context.knex('users').insert({ ...base(), auth_provider: 'saml', external_id: unique(), password_hash: 'x' }), 'users_sso_password_check');
        await refusedBy(context.knex('users').insert({ ...base(), auth_provider: 'ldap', external_id: unique() }), 'users_auth_provider_check');

        const subject = unique();
        await context.knex('users').insert({ ...base(), auth_provider: 'oidc', external_id: subject });
        const err = await expect(context.knex('users').insert({ ...base(), auth_provider: 'oidc', external_id: subject })).to.reject();
        expect((err as { constraint?: string }).constraint).to.equal('users_external_identity_unique');
    });
});
