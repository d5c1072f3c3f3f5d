import type * as Net from 'net';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import { renderMail } from '../../integrations/mail';
import { AuditLog, Setting } from '../../server/models';

import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after, afterEach } = lab;


interface Received {
    from: string | undefined;
    to: string[];
    user: string | undefined;
    mail: ParsedMail;
}


const internals = {
    password: 'smtp-relay-Pa55word',

    // A local SMTP server: plain text on loopback (no STARTTLS), AUTH PLAIN/LOGIN checked against one account
    startSmtp: async (received: Received[]): Promise<{ port: number; close: () => Promise<void> }> => {

        const server = new SMTPServer({
            disabledCommands: ['STARTTLS'],
            disableReverseLookup: true,                     // no PTR query leaves the machine
            allowInsecureAuth: true,
            authOptional: true,
            logger: false,
            onAuth: (auth, session, callback) => {

                if (auth.username === 'aegis' && auth.password === internals.password) {
                    return callback(null, { user: auth.username });
                }

                return callback(new Error('Invalid username or password, and some server detail'));
            },
            onData: (stream, session, callback) => {

                simpleParser(stream).then((mail) => {

                    received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined, to: session.envelope.rcptTo.map((item) => item.address), user: session.user as string | undefined, mail });
                    callback();
                }, callback);
            }
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const port = ((server as unknown as { server: Net.Server }).server.address() as Net.AddressInfo).port;
        return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
    }
};


describe('E-mail', () => {

    const received: Received[] = [];
    let smtp: Awaited<ReturnType<typeof internals.startSmtp>>;
    let context: TestContext;
    let unconfigured: TestContext;

    before(async () => {

        smtp = await internals.startSmtp(received);
        context = await init({ redis: false, env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, SMTP_FROM: 'aegis@example.test' } });
        unconfigured = await init({ redis: false });
        await Setting.query(context.knex).delete();
    });

    after(async () => {

        await Setting.query(context.knex).delete();
        await unconfigured.stop();
        await context.stop();
        await smtp.close();
    });

    afterEach(async () => {

        received.length = 0;
        await Setting.query(context.knex).delete();
    });

    const sendTest = (ctx: TestContext, payload?: object) => ctx.server.inject({ method: 'POST', url: '/api/v1/system/email/test', auth: ctx.as('admin'), ...(payload ? { payload } : {}) });

    it('answers 409 email_not_configured, saying what to set, without SMTP_URL or the smtp setting', async () => {

        const res = await sendTest(unconfigured, { to: 'soc@example.test' });
        expect(res.statusCode).to.equal(409);
        expect(JSON.parse(res.payload)).to.include({
            code: 'email_not_configured',
            message: 'E-mail is not configured: set SMTP_URL and SMTP_FROM, or the smtp setting (PUT /api/v1/system/settings/smtp)'
        });
        const audit = await AuditLog.query(unconfigured.knex).where({ action: 'email.test', actor_id: unconfigured.users.admin.id }).first();
        expect(audit).to.include({ outcome: 'failure', details: { to: 'soc@example.test', code: 'email_not_configured' } });
    });

    it('sends a test e-mail through SMTP_URL with a text and an HTML body from one template, and an attachment', async () => {

        const res = await sendTest(context, { to: 'soc@example.test' });
        expect(res.statusCode).to.equal(200);
        const body = JSON.parse(res.payload);
        expect(body).to.include({ to: 'soc@example.test', accepted: ['soc@example.test'], rejected: [] });
        expect(body.message_id).to.match(/^<.+@.+>$/);

        expect(received.length).to.equal(1);
        const [message] = received;
        expect(message!).to.include({ from: 'aegis@example.test', to: ['soc@example.test'], user: undefined });
        const { mail } = message!;
        expect(mail.messageId).to.equal(body.message_id);
        expect(mail.subject).to.equal('Aegis test e-mail');
        expect(mail.from!.value).to.equal([{ address: 'aegis@example.test', name: 'Aegis' }]);
        expect(mail.text).to.include('Aegis can send e-mail');
        expect(mail.text).to.include(`Requested by: ${context.users.admin.username}`);
        expect(mail.html).to.include('<h1 style="font-size: 1.25em">Aegis can send e-mail</h1>');
        expect(mail.html).to.include(`<tr><th align="left">Requested by</th><td>${context.users.admin.username}</td></tr>`);
        expect(mail.attachments.map((item) => ({ filename: item.filename, type: item.contentType }))).to.equal([{ filename: 'aegis-test.txt', type: 'text/plain' }]);
        expect(mail.attachments[0]!.content.toString()).to.startWith('Aegis test e-mail, sent at ');

        const audit = await AuditLog.query(context.knex).where({ action: 'email.test', actor_id: context.users.admin.id, outcome: 'success' }).first();
        expect(audit!.details).to.equal({ to: 'soc@example.test' });
    });

    it('sends to the admin\'s own address when none is given, and asks for one when the account has none', async () => {

        const none = await sendTest(context);
        expect(none.statusCode).to.equal(400);
        expect(JSON.parse(none.payload)).to.include({ code: 'validation_failed', fields: ['to'] });

        await context.knex('users').where({ id: context.users.admin.id }).update({ email: 'admin@example.test' });
        try {
            const res = await sendTest(context);
            expect(res.statusCode).to.equal(200);
            expect(received.map((item) => item.to)).to.equal([['admin@example.test']]);
        }
        finally {
            await context.knex('users').where({ id: context.users.admin.id }).update({ email: null });
        }

        expect((await sendTest(context, { to: 'not an address' })).statusCode).to.equal(400);
        expect((await sendTest(context, { to: 'a@example.test', cc: 'b@example.test' })).statusCode).to.equal(400);
        expect(received.length).to.equal(1);
    });

    it('sends through the smtp setting while it is set, with its encrypted password, instead of SMTP_URL', async () => {

        const admin = context.as('admin');
        const set = await context.server.inject({
            method: 'PUT', url: '/api/v1/system/settings/smtp', auth: admin,
            payload: { value: { host: '127.0.0.1', port: smtp.port, username: 'aegis', password: internals.password, from: 'alerts@example.test' } }
        });
        expect(set.statusCode).to.equal(200);

        expect((await sendTest(context, { to: 'soc@example.test' })).statusCode).to.equal(200);
        expect(received.map(({ from, to, user }) => ({ from, to, user }))).to.equal([{ from: 'alerts@example.test', to: ['soc@example.test'], user: 'aegis' }]);

        // A wrong password: 502 email_failed with the failure's code, never the server's words or the password
        await context.server.inject({ method: 'PUT', url: '/api/v1/system/settings/smtp', auth: admin, payload: { value: { host: '127.0.0.1', port: smtp.port, username: 'aegis', password: 'wrong-password', from: 'alerts@example.test' } } });
        const refused = await sendTest(context, { to: 'soc@example.test' });
        expect(refused.statusCode).to.equal(502);
        expect(JSON.parse(refused.payload)).to.include({ code: 'email_failed', message: 'The SMTP server could not deliver the message (EAUTH)' });
        expect(refused.payload).to.not.include('server detail');
        expect(refused.payload).to.not.include('wrong-password');

        // Reset: back to SMTP_URL
        await context.server.inject({ method: 'DELETE', url: '/api/v1/system/settings/smtp', auth: admin });
        expect((await sendTest(context, { to: 'soc@example.test' })).statusCode).to.equal(200);
        expect(received.map(({ from }) => from)).to.equal(['alerts@example.test', 'aegis@example.test']);
    });

    it('renders text and HTML from the same data, escaping everything in the HTML', () => {

        const rendered = renderMail({
            subject: 'Alert <fired> & "quoted"',
            heading: '<script>alert(1)</script>',
            paragraphs: ['First & second', 'It\'s <b>bold</b>'],
            facts: [['Technique', 'T1059 <img src=x onerror=alert(1)>']],
            link: { label: 'Open <it>', url: 'https://aegis.example.test/tests/1?a=1&b="2"' }
        });

        expect(rendered.subject).to.equal('Alert <fired> & "quoted"');
        expect(rendered.text).to.equal([
            '<script>alert(1)</script>', '', 'First & second', '', 'It\'s <b>bold</b>', '',
            'Technique: T1059 <img src=x onerror=alert(1)>', '',
            'Open <it>: https://aegis.example.test/tests/1?a=1&b="2"', '', '-- ', 'Aegis'
        ].join('\n'));
        expect(rendered.html).to.not.include('<script>');
        expect(rendered.html).to.not.include('<img');
        expect(rendered.html).to.not.include('<b>');
        expect(rendered.html).to.include('<title>Alert &#60;fired&#62; &#38; &#34;quoted&#34;</title>');
        expect(rendered.html).to.include('<h1 style="font-size: 1.25em">&#60;script&#62;alert(1)&#60;/script&#62;</h1>');
        expect(rendered.html).to.include('<p>It&#39;s &#60;b&#62;bold&#60;/b&#62;</p>');
        expect(rendered.html).to.include('<a href="https://aegis.example.test/tests/1?a=1&#38;b=&#34;2&#34;">Open &#60;it&#62;</a>');

        // A link that is not http(s) is shown as text, never as an anchor
        const script = renderMail({ subject: 's', heading: 'h', paragraphs: [], link: { label: 'Click', url: 'javascript:alert(1)' } });
        expect(script.html).to.not.include('<a ');
        expect(script.html).to.include('<p>Click: javascript:alert(1)</p>');
        expect(script.text).to.equal('h\n\nClick: javascript:alert(1)\n\n-- \nAegis');
    });
});
