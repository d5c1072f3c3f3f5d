import * as Crypto from 'crypto';

import type { Knex } from 'knex';

import { ConflictError, NotFoundError, ValidationError } from '../errors';
import { LockKey } from '../locks';
import { User, type Preferences } from '../models';
import { Role, systemActor, type Actor } from '../policy';

import type { AuditService } from './audit';
import { lockOr404 } from './changes';
import { likePattern, pageOfRows, totalColumn, type ListQuery, type Page } from './lists';
import type { NotificationPreferences, NotificationType } from './notifications';
import { checkPasswordPolicy, hashPassword } from './passwords';
import { runStatement, type Statement } from './sql';


export interface UserCreate {
    username: string;
    password: string;
    role: Role;
    email?: string | null;
    display_name?: string | null;
}


export interface UserUpdate {
    role?: Role;
    is_active?: boolean;
    display_name?: string | null;
    email?: string | null;
    must_change_password?: boolean;
}


export interface UserFilters extends ListQuery {
    role?: Role;
    is_active?: boolean;
    search?: string;
}


// What GET /users may sort by: the route's joi allowlist, and all that can reach the SQL
export const userSortFields = ['username', 'role', 'created_at', 'last_login_at'];


const internals = {
    columns: User.publicColumns.map((column) => `"${column}"`).join(', '),
    sortable: new Map(userSortFields.map((field) => [field, `"${field}"`])),

    // A change to one event's setting keeps the others
    mergeNotifications: (current: NotificationPreferences = {}, change: NotificationPreferences): NotificationPreferences => {

        const events = { ...current.events };
        for (const [type, setting] of Object.entries(change.events ?? {}) as [NotificationType, { in_app?: boolean; email?: boolean }][]) {
            events[type] = { ...events[type], ...setting };
        }

        return { ...current, ...change, ...(change.events ? { events } : {}) };
    }
};


// GET /users as plain SQL with its total in the same statement (lists.ts): the one list on the foundation's benchmark,
// where knex and objection would cost more than the query. The public columns only, as plain rows.
export const usersList = (filters: UserFilters): { page: Statement; count: Statement; window: { limit: number; offset: number } } => {

    const values: unknown[] = [];
    const bind = (value: unknown) => `$${values.push(value)}`;

    const conditions: string[] = [];
    if (filters.role) {
        conditions.push(`role = ${bind(filters.role)}`);
    }

    if (filters.is_active !== undefined) {
        conditions.push(`is_active = ${bind(filters.is_active)}`);
    }

    if (filters.search) {
        const pattern = bind(likePattern(filters.search));
        conditions.push(`(username ilike ${pattern} or display_name ilike ${pattern} or email ilike ${pattern})`);
    }

    const where = conditions.length ? ` where ${conditions.join(' and ')}` : '';
    const sort = internals.sortable.get(filters.sort ?? 'username');
    if (!sort) {
        throw new ValidationError(`Cannot sort by ${filters.sort}`, ['sort']);
    }

    const order = filters.order === 'desc' ? 'desc' : 'asc';
    const window = { limit: filters.limit ?? 50, offset: filters.offset ?? 0 };
    const count = { text: `select count(*) as count from users${where}`, values: [...values] };
    const text = `select ${internals.columns}, (${count.text}) as ${totalColumn} from users${where} order by ${sort} ${order}, id ${order} limit ${bind(window.limit)} offset ${bind(window.offset)}`;
    return { page: { text, values }, count, window };
};


export class UsersService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService }) { }

    async list(actor: Actor, filters: UserFilters): Promise<Page<User>> {

        const statement = usersList(filters);
        const rows = await runStatement(this.deps.knex, statement.page);
        return await pageOfRows(rows as unknown as User[], statement.window, async () => Number((await runStatement(this.deps.knex, statement.count))[0]!.count));
    }

    async get(actor: Actor, id: string): Promise<User> {

        const user = await User.query(this.deps.knex).findById(id);
        if (!user) {
            throw new NotFoundError('User');
        }

        return user;
    }

    async create(actor: Actor, input: UserCreate): Promise<User> {

        checkPasswordPolicy(input.password, input);
        const passwordHash = await hashPassword(input.password);

        return await User.transaction(this.deps.knex, async (trx) => {

            const user = await User.insertReturning(trx, {
                username: input.username,
                email: input.email ?? null,
                display_name: input.display_name ?? null,
                role: input.role,
                password_hash: passwordHash,
                must_change_password: true,
                created_by: actor.id
            });

            await this.deps.audit.record(trx, actor, { action: 'user.create', entity_type: 'user', entity_id: user.id, details: { username: user.username, role: user.role } });
            return user;
        });
    }

    async update(actor: Actor, id: string, input: UserUpdate): Promise<User> {

        return await User.transaction(this.deps.knex, async (trx) => {

            const user = await lockOr404(User.query(trx).findById(id), 'User');

            const losesAdmin = user.role === Role.admin && user.is_active && (input.role !== undefined && input.role !== Role.admin || input.is_active === false);
            if (losesAdmin) {
                await this.assertAnotherAdmin(trx, user.id);
            }

            // A new role or a deactivation ends every session of the user at once (SEC-03)
            const ends = input.role !== undefined && input.role !== user.role || input.is_active === false && user.is_active;
            const updated = await user.$patchReturning(trx, { ...input, ...(ends ? { token_version: user.token_version + 1 } : {}) });

            await this.deps.audit.record(trx, actor, { action: 'user.update', entity_type: 'user', entity_id: user.id, details: { changes: input } });
            return updated;
        });
    }

    async deactivate(actor: Actor, id: string): Promise<User> {

        return await User.transaction(this.deps.knex, async (trx) => {

            const user = await lockOr404(User.query(trx).findById(id), 'User');

            if (user.id === actor.id) {
                throw new ConflictError('You cannot deactivate your own account', 'cannot_deactivate_self');
            }

            if (user.role === Role.admin && user.is_active) {
                await this.assertAnotherAdmin(trx, user.id);
            }

            const updated = await user.$patchReturning(trx, { is_active: false, token_version: user.token_version + 1 });
            await this.deps.audit.record(trx, actor, { action: 'user.deactivate', entity_type: 'user', entity_id: user.id });
            return updated;
        });
    }

    async updatePreferences(actor: Actor, preferences: Preferences): Promise<User> {

        return await User.transaction(this.deps.knex, async (trx) => {

            const user = await User.query(trx).findById(actor.id!).forUpdate().throwIfNotFound();
            const merged: Preferences = {
                ...user.preferences,
                ...preferences,
                ...(preferences.notifications ? { notifications: internals.mergeNotifications(user.preferences.notifications, preferences.notifications) } : {})
            };

            const updated = await user.$patchReturning(trx, { preferences: merged });
            await this.deps.audit.record(trx, actor, { action: 'user.preferences', entity_type: 'user', entity_id: user.id });
            return updated;
        });
    }

    // First start (conventions.md): with no users at all, create `admin` with a temporary password.
    async bootstrapAdmin(password: string | undefined): Promise<{ created: boolean; password?: string }> {

        return await User.transaction(this.deps.knex, async (trx) => {

            // Several API instances may start at once; only one of them creates the admin
            await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.firstAdmin]);
            const existing = await User.query(trx).resultSize();
            if (existing > 0) {
                return { created: false };
            }

            const chosen = password ?? Crypto.randomBytes(18).toString('base64url');
            const user = await User.insertReturning(trx, {
                username: 'admin',
                role: Role.admin,
                password_hash: await hashPassword(chosen),
                must_change_password: true
            });

            await this.deps.audit.record(trx, systemActor, { action: 'user.bootstrap', entity_type: 'user', entity_id: user.id });
            return password ? { created: true } : { created: true, password: chosen };
        });
    }

    // Two admins deactivating (or demoting) each other at once would each still see the other active: the changes that
    // can remove an admin take one lock over the set of active admins, then count those committed so far.
    private async assertAnotherAdmin(trx: Knex.Transaction, exceptId: string): Promise<void> {

        await trx.raw('select pg_advisory_xact_lock(?)', [LockKey.activeAdmins]);
        const others = await User.query(trx).where({ role: Role.admin, is_active: true }).whereNot('id', exceptId).resultSize();
        if (others === 0) {
            throw new ConflictError('The last active admin cannot lose the admin role', 'last_admin');
        }
    }
}
