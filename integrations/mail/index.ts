import * as Nodemailer from 'nodemailer';


// Where a mailer sends through: SMTP_URL (smtp:// or smtps://, credentials in the URL) or the smtp setting's fields.
export type SmtpTransport =
    | { url: string; from: string }
    | { host: string; port: number; secure: boolean; username?: string | undefined; password?: string | undefined; from: string };

export interface MailAttachment {
    filename: string;
    content: Buffer | string;
    contentType?: string;
}

export interface MailMessage {
    to: string;
    subject: string;
    text: string;
    html: string;
    attachments?: MailAttachment[];
}

export interface Mailer {
    send(message: MailMessage): Promise<{ message_id: string; accepted: string[]; rejected: string[] }>;
    close(): void;
}

// What an e-mail says, once: the template renders it as plain text and as HTML from the same data.
export interface MailContent {
    subject: string;
    heading: string;
    paragraphs: string[];
    facts?: [label: string, value: string][];
    link?: { label: string; url: string };
}


// Delivery failed: the code is nodemailer's (ECONNECTION, EAUTH, EENVELOPE, ETIMEDOUT, ...); the server's own words stay out.
export class MailDeliveryError extends Error {

    constructor(public readonly code: string) {

        super(`The SMTP server could not deliver the message (${code})`);
        this.name = 'MailDeliveryError';
    }
}


const internals = {
    timeouts: { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 },

    escape: (text: string): string => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`),

    // Only http(s) links become anchors; anything else is shown as text
    href: (url: string): string | undefined => (/^https?:\/\//i.test(url) ? url : undefined)
};


export const renderMail = (content: MailContent): Pick<MailMessage, 'subject' | 'text' | 'html'> => {

    const { escape } = internals;
    const facts = content.facts ?? [];
    const text = [
        content.heading,
        '',
        ...content.paragraphs.flatMap((paragraph) => [paragraph, '']),
        ...facts.map(([label, value]) => `${label}: ${value}`),
        ...(facts.length ? [''] : []),
        ...(content.link ? [`${content.link.label}: ${content.link.url}`, ''] : []),
        '-- ',
        'Aegis'
    ].join('\n');

    const href = content.link && internals.href(content.link.url);
    const html = [
        '<!doctype html>',
        `<html><head><meta charset="utf-8"><title>${escape(content.subject)}</title></head>`,
        '<body style="font-family: sans-serif; line-height: 1.5">',
        `<h1 style="font-size: 1.25em">${escape(content.heading)}</h1>`,
        ...content.paragraphs.map((paragraph) => `<p>${escape(paragraph)}</p>`),
        ...(facts.length ? ['<table>', ...facts.map(([label, value]) => `<tr><th align="left">${escape(label)}</th><td>${escape(value)}</td></tr>`), '</table>'] : []),
        ...(content.link ? [href ? `<p><a href="${escape(href)}">${escape(content.link.label)}</a></p>` : `<p>${escape(content.link.label)}: ${escape(content.link.url)}</p>`] : []),
        '<p style="color: #666">Aegis</p>',
        '</body></html>'
    ].join('\n');

    return { subject: content.subject, text, html };
};


// nodemailer over SMTP: one transport per mailer, closed after use.
export const createSmtpMailer = (transport: SmtpTransport): Mailer => {

    const options = 'url' in transport ?
        { url: transport.url, ...internals.timeouts } :
        {
            host: transport.host, port: transport.port, secure: transport.secure,
            auth: transport.username ? { user: transport.username, pass: transport.password ?? '' } : undefined,
            ...internals.timeouts
        };

    const client = Nodemailer.createTransport(options as Nodemailer.TransportOptions);
    return {
        send: async (message) => {

            try {
                const info = await client.sendMail({ from: { name: 'Aegis', address: transport.from }, ...message });
                return { message_id: info.messageId, accepted: info.accepted.map(String), rejected: info.rejected.map(String) };
            }
            catch (err) {
                throw new MailDeliveryError(String((err as { code?: string }).code ?? 'EMESSAGE'));
            }
        },
        close: () => client.close()
    };
};
