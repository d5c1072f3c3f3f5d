import type { Knex } from 'knex';

import { UnauthorizedError } from '../errors';
import { LockKey } from '../locks';
import { User } from '../models';
import { mostPrivileged, Role, roles, type Actor } from '../policy';

import type { AuditService } from './audit';
import type { AuthService, Session } from './auth';
import { withTransaction, type ChangeOptions } from './changes';


// sso (issue 15): the identity core shared by every single sign-on path (SAML, OIDC). A path proves who the person
// is at the identity provider and hands over an ExternalIdentity; this service turns it into an Aegis user and the
// same Session as a password login (docs/sso.md).

export interface ExternalIdentity {
    provider: 'saml' | 'oidc';
    subject: string;              // SAML NameID / OIDC sub: the stable key, unique per provider
    username: string;             // from the configured attribute / claim
    email: string | null;
    display_name: string | null;
    groups: string[];
}


export interface ProvisioningPolicy {
    jit: boolean;                            // create unknown users on first login
    role_mapping: Record<string, Role>;      // group name -> role
}


const internals = {
    // The usernames a local account may have (schemas/users.ts): an SSO user is listed, searched and named alike
    username: /^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$/,
    email: /^[^\s@]+@[^\s@]+$/,
    maxSubject: 1024,
    maxEmail: 254,
    maxDisplayName: 200,
    refused: (message: string, code: string) => new UnauthorizedError(message, code)
};


// The role a user's groups map to: the most privileged one (rolesByPrivilege, policy.ts), viewer when none maps.
// A mapping to something that is not a role is ignored.
export const roleFromGroups = (groups: readonly string[], mapping: Record<string, Role>): Role => {

    const mapped = groups.map((group) => (Object.hasOwn(mapping, group) ? mapping[group] : undefined)).filter((role): role is Role => roles.includes(role as Role));
    return mostPrivileged(mapped) ?? Role.viewer;
};


export class SsoIdentityService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; auth: AuthService }) { }

    // Finds the user by (auth_provider, external_id); creates it when jit; updates role, e-mail and display name when
    // they changed (a new role ends the user's earlier sessions, as an admin's change does); refuses an inactive user,
    // an unknown user without jit, and a username or e-mail that belongs to another account (no takeover by a matching
    // name). A refusal changes no user: the transaction rolls back and only the failed attempt is audited, as a failed
    // password login is.
    // `options.trx`: the caller's transaction (a SAML response consumes its request in the same one).
    async signIn(actor: Actor, identity: ExternalIdentity, policy: ProvisioningPolicy, options: ChangeOptions = {}): Promise<Session> {

        const clean = normalise(identity);
        try {
            return await withTransaction(this.deps.knex, options.trx, async (trx) => {

                // Two first sign-ins of one identity at once would both find no user: one waits for the other
                await trx.raw('select pg_advisory_xact_lock(?, hashtext(?))', [LockKey.ssoIdentity, `${clean.provider}:${clean.subject}`]);

                const role = roleFromGroups(clean.groups, policy.role_mapping);
                const found = await User.query(trx).where({ auth_provider: clean.provider, external_id: clean.subject }).forUpdate().first();
                const user = found ? await this.update(trx, actor, found, clean, role) : await this.create(trx, actor, clean, role, policy);

                const signedIn = await user.$patchReturning(trx, { last_login_at: new Date() });
                await this.deps.audit.record(trx, { ...actor, id: user.id, role: signedIn.role }, { action: 'auth.login', entity_type: 'user', entity_id: user.id, details: { provider: clean.provider } });
                return this.deps.auth.issue(signedIn);
            });
        }
        catch (err) {
            if (err instanceof UnauthorizedError) {
                await this.deps.audit.recordOutside(actor, {
                    action: 'auth.login', entity_type: 'user', outcome: 'failure', details: { provider: clean.provider, reason: err.code, username: clean.username.slice(0, 128) }
                });
            }

            throw err;
        }
    }

    private async create(trx: Knex.Transaction, actor: Actor, identity: ExternalIdentity, role: Role, policy: ProvisioningPolicy): Promise<User> {

        if (!policy.jit) {
            throw internals.refused('This identity has no Aegis account and just-in-time provisioning is off: ask an administrator to turn it on', 'sso_unknown_user');
        }

        await this.assertFree(trx, identity, null);
        const user = await User.insertReturning(trx, {
            username: identity.username,
            email: identity.email,
            display_name: identity.display_name,
            role,
            password_hash: null,
            must_change_password: false,
            auth_provider: identity.provider,
            external_id: identity.subject
        });

        await this.deps.audit.record(trx, actor, { action: 'user.create', entity_type: 'user', entity_id: user.id, details: { username: user.username, role, provider: identity.provider } });
        return user;
    }

    private async update(trx: Knex.Transaction, actor: Actor, user: User, identity: ExternalIdentity, role: Role): Promise<User> {

        if (!user.is_active) {
            throw internals.refused('This account is deactivated in Aegis: ask an administrator to reactivate it', 'sso_user_inactive');
        }

        const changes: Partial<Pick<User, 'role' | 'email' | 'display_name'>> = {};
        if (user.role !== role) {
            changes.role = role;
        }

        if (user.email !== identity.email) {
            changes.email = identity.email;
        }

        if (user.display_name !== identity.display_name) {
            changes.display_name = identity.display_name;
        }

        if (!Object.keys(changes).length) {
            return user;
        }

        if (changes.email) {
            await this.assertFree(trx, { ...identity, username: user.username }, user.id);
        }

        if (changes.role && user.role === Role.admin) {
            await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.activeAdmins]);
            const others = await User.query(trx).where({ role: Role.admin, is_active: true }).whereNot('id', user.id).resultSize();
            if (others === 0) {
                throw internals.refused('The identity provider no longer grants the admin role, but this is the last active admin: another admin must exist first', 'sso_last_admin');
            }
        }

        // A new role ends every earlier session of the user at once (SEC-03), as UsersService.update does
        const updated = await user.$patchReturning(trx, { ...changes, ...(changes.role ? { token_version: user.token_version + 1 } : {}) });
        await this.deps.audit.record(trx, actor, { action: 'user.update', entity_type: 'user', entity_id: user.id, details: { changes, provider: identity.provider } });
        return updated;
    }

    // No takeover by a matching name: a username or e-mail already used by another account (local, or another
    // provider's) is refused, never linked.
    private async assertFree(trx: Knex.Transaction, identity: ExternalIdentity, selfId: string | null): Promise<void> {

        const taken = await User.query(trx)
            .where((query) => {

                query.whereRaw('lower(username) = lower(?)', [identity.username]);
                if (identity.email) {
                    query.orWhereRaw('lower(email) = lower(?)', [identity.email]);
                }
            })
            .modify((query) => selfId && query.whereNot('id', selfId))
            .first();

        if (taken) {
            const field = taken.username.toLowerCase() === identity.username.toLowerCase() ? 'username' : 'e-mail';
            throw internals.refused(`The ${field} from the identity provider belongs to another Aegis account: an administrator must rename one of them`, 'sso_identity_conflict');
        }
    }
}


// What the identity provider said, trimmed and bounded; an identity without a usable subject or username is refused
const normalise = (identity: ExternalIdentity): ExternalIdentity => {

    const subject = typeof identity.subject === 'string' ? identity.subject.trim() : '';
    const username = typeof identity.username === 'string' ? identity.username.trim() : '';
    const email = typeof identity.email === 'string' ? identity.email.trim() : '';
    const displayName = typeof identity.display_name === 'string' ? identity.display_name.trim() : '';
    const clean: ExternalIdentity = {
        provider: identity.provider,
        subject,
        username,
        email: email && email.length <= internals.maxEmail && internals.email.test(email) ? email : null,
        display_name: displayName ? displayName.slice(0, internals.maxDisplayName) : null,
        groups: Array.isArray(identity.groups) ? identity.groups.filter((group) => typeof group === 'string') : []
    };

    if (!subject || subject.length > internals.maxSubject) {
        throw internals.refused('The identity provider sent no usable subject (NameID / sub): check its configuration', 'sso_invalid_identity');
    }

    if (!internals.username.test(username)) {
        throw internals.refused('The identity provider sent no usable username (3-64 letters, digits or . _ @ -): check the username attribute in the SSO configuration', 'sso_invalid_identity');
    }

    return clean;
};
