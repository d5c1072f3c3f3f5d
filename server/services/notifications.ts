import type { Knex } from 'knex';

import { NotFoundError } from '../errors';
import { Notification, Test, User } from '../models';
import { testAccess, type Actor } from '../policy';

import type { AuditService } from './audit';
import { chunks } from './bulk-upsert';
import { page, type ListQuery, type Page } from './lists';
import { isUuid } from './sql';


// The events a user is notified of; each can be switched off in the app (PATCH /users/me/preferences)
export const notificationTypes = ['test.assigned', 'test.review', 'test.validated', 'test.rejected', 'alert.fired', 'campaign.completed', 'report.ready',
    // webhooks
    'webhook.disabled',
    // second factors (issue 15)
    'security.second_factor_reset',
    // jira (issue 14): a Jira issue was resolved, the remediation awaits its retest
    'remediation.awaiting_retest',
    // detection (issue 11): an infrastructure change put a technique in the revalidation queue
    'revalidation.required'] as const;

export type NotificationType = typeof notificationTypes[number];

export interface NotificationPreferences {
    in_app?: boolean;
    email?: boolean;
    events?: Partial<Record<NotificationType, { in_app?: boolean; email?: boolean }>>;
}


// In-app notifications are on unless switched off, all of them or this type
export const wantsInApp = (preferences: NotificationPreferences | undefined, type: string): boolean => preferences?.in_app !== false && preferences?.events?.[type as NotificationType]?.in_app !== false;


// alerts: e-mail is off unless asked for, for all events (and not switched off for this type) or for this type
export const wantsEmail = (preferences: NotificationPreferences | undefined, type: string): boolean => {

    const own = preferences?.events?.[type as NotificationType]?.email;
    return own ?? preferences?.email === true;
};


export interface NotificationCreate {
    user_id: string;
    type: string;
    title: string;
    body?: string | null;
    entity_type?: string | null;
    entity_id?: string | null;
}


const internals = {
    hidden: 'A test you can no longer see'
};


export class NotificationsService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService }) { }

    list(actor: Actor, filters: ListQuery & { unread?: boolean; type?: string }): Promise<Page<Notification> & { unread_count: number }> {

        const query = Notification.query(this.deps.knex).where('user_id', actor.id!);
        if (filters.unread !== undefined) {
            query.where((q) => (filters.unread ? q.whereNull('read_at') : q.whereNotNull('read_at')));
        }

        if (filters.type) {
            query.where('type', filters.type);
        }

        return Promise.all([
            page(query, filters, { sort: 'created_at', order: 'desc' }),
            Notification.query(this.deps.knex).where('user_id', actor.id!).whereNull('read_at').resultSize()
        ]).then(async ([result, unread]) => ({ ...result, items: await this.readable(actor, result.items), unread_count: unread }));
    }

    // Later modules call this inside the transaction of the event that concerns the users.
    // Each recipient's preferences are honoured here, for every module that notifies.
    // Writes the notifications their users want in the app (their preferences) and answers how many it wrote
    async notify(trx: Knex.Transaction | Knex, notifications: NotificationCreate[]): Promise<number> {

        if (!notifications.length) {
            return 0;
        }

        const users = await User.query(trx).findByIds([...new Set(notifications.map((item) => item.user_id))]).select('id', 'preferences');
        const preferences = new Map(users.map((user) => [user.id, user.preferences?.notifications]));
        const wanted = notifications.filter((item) => preferences.has(item.user_id) && wantsInApp(preferences.get(item.user_id), item.type));
        // 500 rows a statement (PostgreSQL's 65,535 parameters: an alert evaluation may notify tens of thousands at once)
        for (const chunk of chunks(wanted, 500)) {
            await Notification.query(trx).insert(chunk);
        }

        return wanted.length;
    }

    async markRead(actor: Actor, id: string, read = true): Promise<Notification> {

        return await Notification.transaction(this.deps.knex, async (trx) => {

            const notification = await Notification.query(trx).findById(id).where('user_id', actor.id!).forUpdate();
            if (!notification) {
                throw new NotFoundError('Notification');
            }

            const updated = await notification.$patchReturning(trx, { read_at: read ? notification.read_at ?? new Date() : null });
            await this.deps.audit.record(trx, actor, { action: 'notification.read', entity_type: 'notification', entity_id: id, details: { read } });
            const [readable] = await this.readable(actor, [updated], trx);
            return readable!;
        });
    }

    async markAllRead(actor: Actor): Promise<{ updated: number }> {

        return await Notification.transaction(this.deps.knex, async (trx) => {

            const updated = await Notification.query(trx).patch({ read_at: new Date() }).where('user_id', actor.id!).whereNull('read_at');
            await this.deps.audit.record(trx, actor, { action: 'notification.read_all', entity_type: 'notification', details: { updated } });
            return { updated };
        });
    }

    // A notification about a test says what the test was called only while the recipient may still see the test
    // (they may have been unassigned, or the test classified, since): the text is checked at read time.
    private async readable(actor: Actor, notifications: Notification[], knex: Knex | Knex.Transaction = this.deps.knex): Promise<Notification[]> {

        const ids = [...new Set(notifications.filter((item) => item.entity_type === 'test').map((item) => item.entity_id!))];
        if (!ids.length || !testAccess(actor)) {
            return notifications;
        }

        const visible = new Set((await Test.query(knex).whereIn('id', ids.filter((id) => isUuid(id))).modify('visibleTo', actor).select('id')).map((test) => test.id));
        for (const item of notifications) {
            if (item.entity_type === 'test' && !visible.has(item.entity_id!)) {
                Object.assign(item, { title: internals.hidden, body: null });
            }
        }

        return notifications;
    }
}
