import type { Knex } from 'knex';

import { createSmtpMailer, renderMail, type MailDeliveryError, type MailMessage } from '../../integrations/mail';
import type { Config } from '../config';
import { ConflictError, UpstreamError, ValidationError } from '../errors';
import { User } from '../models';
import type { Actor } from '../policy';

import type { AuditService } from './audit';
import type { SettingsService } from './settings';


export interface MailResult {
    to: string;
    message_id: string;
    accepted: string[];
    rejected: string[];
}


// E-mail for every path that sends one (the admin's test e-mail today; alerts and scheduled reports next). The smtp
// setting, while set, wins over SMTP_URL/SMTP_FROM; with neither, sending answers 409 email_not_configured.
export class MailService {

    constructor(private readonly deps: { knex: Knex; audit: AuditService; settings: SettingsService; smtp: Config['smtp']}) { }

    async send(message: MailMessage): Promise<MailResult> {

        const transport = await this.deps.settings.get('smtp') ?? this.deps.smtp;
        if (!transport) {
            throw new ConflictError('E-mail is not configured: set SMTP_URL and SMTP_FROM, or the smtp setting (PUT /api/v1/system/settings/smtp)', 'email_not_configured');
        }

        const mailer = createSmtpMailer(transport);
        try {
            return { to: message.to, ...await mailer.send(message) };
        }
        catch (err) {
            throw new UpstreamError((err as MailDeliveryError).message, 'email_failed');      // send() throws only MailDeliveryErrors
        }
        finally {
            mailer.close();
        }
    }

    // POST /system/email/test: to the given address, or to the caller's own.
    async sendTest(actor: Actor, to?: string): Promise<MailResult> {

        const user = await User.query(this.deps.knex).findById(actor.id!);
        const recipient = to ?? user?.email;
        if (!recipient) {
            throw new ValidationError('Your account has no e-mail address: give one in "to"', ['to']);
        }

        const sentAt = new Date().toISOString();
        const content = renderMail({
            subject: 'Aegis test e-mail',
            heading: 'Aegis can send e-mail',
            paragraphs: ['This message was sent to check the SMTP settings of Aegis. Nothing else needs to be done.'],
            facts: [['Requested by', user?.username ?? 'unknown'], ['Sent at', sentAt]]
        });

        try {
            const result = await this.send({ to: recipient, ...content, attachments: [{ filename: 'aegis-test.txt', content: `Aegis test e-mail, sent at ${sentAt}\n`, contentType: 'text/plain' }] });
            await this.deps.audit.record(this.deps.knex, actor, { action: 'email.test', entity_type: 'user', entity_id: actor.id, details: { to: recipient } });
            return result;
        }
        catch (err) {
            await this.deps.audit.recordOutside(actor, { action: 'email.test', entity_type: 'user', entity_id: actor.id, outcome: 'failure', details: { to: recipient, code: (err as ConflictError).code } });
            throw err;
        }
    }
}
