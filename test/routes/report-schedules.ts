import * as Crypto from 'crypto';
import type * as Net from 'net';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import { PdfRenderer } from '../../integrations/pdf';
import type { Role } from '../../server/policy';

import { pdfText } from '../helpers/documents';
import { json, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// Issue 13: scheduled report e-mails, end to end against a local SMTP server, the attachment parsed and read.
const internals = {
    marker: `RESTRICTED${Crypto.randomBytes(5).toString('hex')}`,
    visible: `Visible ${Crypto.randomBytes(5).toString('hex')}`,
    domain: `${Crypto.randomBytes(4).toString('hex')}.example.test`,

    startSmtp: async (received: { to: string[]; mail: ParsedMail }[], refuse: { to: string | null }) => {

        const server = new SMTPServer({
            disabledCommands: ['STARTTLS'], disableReverseLookup: true, authOptional: true, logger: false,
            onRcptTo: (address, session, callback) => callback(address.address === refuse.to ? Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }) : undefined),
            onData: (stream, session, callback) => {

                simpleParser(stream).then((mail) => {

                    received.push({ to: session.envelope.rcptTo.map((item) => item.address), mail });
                    callback();
                }, callback);
            }
        });

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const port = ((server as unknown as { server: Net.Server }).server.address() as Net.AddressInfo).port;
        return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
    }
};


describe('Report schedules', () => {

    const received: { to: string[]; mail: ParsedMail }[] = [];
    const refuse: { to: string | null } = { to: null };
    let smtp: Awaited<ReturnType<typeof internals.startSmtp>>;
    let context: TestContext;
    let printer: PdfRenderer;
    let techniqueId: string;
    const email = (role: string) => `${role}@${internals.domain}`;
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });
    const mailsTo = (address: string) => received.filter((item) => item.to.includes(address));

    before(async () => {

        smtp = await internals.startSmtp(received, refuse);
        context = await init({ redis: false, env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, SMTP_FROM: 'aegis@example.test' } });
        printer = new PdfRenderer({ chromiumPath: process.env.CHROMIUM_PATH, timeoutMs: 30_000 });
        for (const role of ['viewer', 'blue_lead', 'admin'] as const) {
            await context.knex('users').where('id', context.users[role].id).update({ email: email(role) });
        }

        techniqueId = await uniqueTechnique(context.knex);
        await testRow(context.knex, { technique_id: techniqueId, title: internals.visible, data_classification: 'internal', state: 'validated', detection_outcome: 'alerted' });
        await testRow(context.knex, { technique_id: techniqueId, title: internals.marker, data_classification: 'restricted', state: 'validated', detection_outcome: 'prevented' });
    });

    after(async () => {

        await context.services.settings.reset(context.actor('admin'), 'reports.external_recipients');
        await printer.close();
        await context.stop();
        await smtp.close();
    });

    const schedule = (overrides: Record<string, unknown> = {}) => ({
        name: `Weekly ${techniqueId}`, kind: 'technique', params: { id: techniqueId }, period: 'weekly', timezone: 'Europe/Paris',
        recipient_user_ids: [context.users.viewer.id, context.users.blue_lead.id], ...overrides
    });

    it('lets a lead schedule a report, theirs only, and computes the next occurrence in its time zone', async () => {

        const res = await request('red_lead', 'POST', '/reports/schedules', schedule());
        expect(res.statusCode, res.payload).to.equal(201);
        const created = json(res);
        expect(created).to.include({ owner_id: context.users.red_lead.id, kind: 'technique', period: 'weekly', cron: null, timezone: 'Europe/Paris', enabled: true, recipient_emails: [] });

        // Mondays at 07:00 in Paris: 06:00 UTC in winter, 05:00 in summer
        const next = new Date(created.next_run_at);
        expect(next.getTime()).to.be.above(Date.now());
        expect(next.getUTCDay()).to.equal(1);
        expect([5, 6]).to.include(next.getUTCHours());

        expect((await request('blue_lead', 'GET', `/reports/schedules/${created.id}`)).statusCode).to.equal(404);
        expect((await request('blue_lead', 'PATCH', `/reports/schedules/${created.id}`, { name: 'Mine now' })).statusCode).to.equal(404);
        expect((await request('admin', 'GET', `/reports/schedules/${created.id}`)).statusCode).to.equal(200);
        expect(json(await request('red_lead', 'GET', '/reports/schedules?limit=500')).items.map((item: { id: string }) => item.id)).to.include(created.id);
        expect(json(await request('blue_lead', 'GET', '/reports/schedules?limit=500')).items.map((item: { id: string }) => item.id)).to.not.include(created.id);

        // A cron expression replaces the period
        const patched = json(await request('red_lead', 'PATCH', `/reports/schedules/${created.id}`, { cron: '30 8 * * 1-5' }));
        expect(patched).to.include({ cron: '30 8 * * 1-5', period: null });
        expect(new Date(patched.next_run_at).getUTCMinutes()).to.equal(30);

        expect((await request('red_lead', 'DELETE', `/reports/schedules/${created.id}`)).statusCode).to.equal(204);
        expect((await request('admin', 'GET', `/reports/schedules/${created.id}`)).statusCode).to.equal(404);
    });

    it('refuses what it cannot send, naming the field, and writes nothing', async () => {

        const count = async () => Number((await context.knex('report_schedules').count('* as n').first())!.n);
        const rows = await count();
        const stranger = await context.createUser('viewer');
        const cases: [Record<string, unknown>, string][] = [
            [schedule({ cron: '0 7 * * *' }), 'cron'],
            [schedule({ period: undefined }), 'cron'],
            [schedule({ period: undefined, cron: 'every tuesday' }), 'cron'],
            [schedule({ timezone: 'Mars/Olympus_Mons' }), 'timezone'],
            [schedule({ recipient_emails: ['ciso@outside.example'] }), 'recipient_emails'],
            [schedule({ recipient_user_ids: [stranger.id] }), 'recipient_user_ids'],
            [schedule({ recipient_user_ids: [] }), 'recipient_user_ids'],
            [schedule({ params: { id: 'T0000.999' } }), 'params.id'],
            [schedule({ kind: 'memo' }), 'kind'],
            [schedule({ kind: 'purple-campaign', params: { id: techniqueId } }), 'params.id'],
            [schedule({ kind: 'purple-campaign', params: { id: Crypto.randomUUID() } }), 'params.id'],
            [schedule({ kind: 'purple-campaign', params: {} }), 'params.id'],
            [schedule({ params: { id: 'x; drop table' } }), 'params.id']
        ];
        for (const [payload, field] of cases) {
            const res = await request('blue_lead', 'POST', '/reports/schedules', payload);
            expect(res.statusCode, `${field}: ${res.payload}`).to.equal(400);
            const body = json(res);
            expect(body.fields, res.payload).to.include(field);
        }

        expect(await count()).to.equal(rows);
    });

    it('sends each period once to each recipient, with what each may see, however many workers tick', async () => {

        const created = json(await request('red_lead', 'POST', '/reports/schedules', schedule()));
        const due = new Date(Date.now() - 60_000);
        await context.knex('report_schedules').where('id', created.id).update({ next_run_at: due });

        // Two workers at once: one claims the period, the other finds it taken
        const now = new Date();
        const results = await Promise.all([context.services.reportSchedules.tick(printer, now), context.services.reportSchedules.tick(printer, now)]);
        expect(results.reduce((sum, result) => sum + result.claimed, 0)).to.equal(1);
        expect(results.reduce((sum, result) => sum + result.sent, 0)).to.equal(1);
        expect(mailsTo(email('viewer'))).to.have.length(1);
        expect(mailsTo(email('blue_lead'))).to.have.length(1);

        const texts: Record<string, string> = {};
        for (const role of ['viewer', 'blue_lead']) {
            const { mail } = mailsTo(email(role))[0]!;
            expect(mail.subject).to.equal(`Weekly ${techniqueId}: Technique report: ${techniqueId} Technique ${techniqueId}`);
            const attachment = mail.attachments.find((item) => item.contentType === 'application/pdf')!;
            expect(attachment.filename).to.match(/^technique-\d{4}-\d{2}-\d{2}\.pdf$/);
            texts[role] = await pdfText(attachment.content);
            expect(texts[role]).to.contain(internals.visible);
        }

        expect(texts.viewer).to.not.contain(internals.marker);
        expect(texts.blue_lead).to.contain(internals.marker);

        const runs = json(await request('red_lead', 'GET', `/reports/schedules/${created.id}/runs`));
        expect(runs.total).to.equal(1);
        expect(runs.items[0]).to.include({ period_key: due.toISOString(), status: 'sent', attempts: 1, error: null, recipients: 2 });
        expect(runs.items[0].sent_to.sort()).to.equal([email('blue_lead'), email('viewer')]);
        const moved = json(await request('red_lead', 'GET', `/reports/schedules/${created.id}`));
        expect(new Date(moved.next_run_at).getTime()).to.be.above(now.getTime());

        // Ticking again sends nothing more
        const again = await context.services.reportSchedules.tick(printer, now);
        expect(again.claimed).to.equal(0);
        expect(mailsTo(email('viewer'))).to.have.length(1);
        expect((await request('blue_lead', 'GET', `/reports/schedules/${created.id}/runs`)).statusCode).to.equal(404);
        await request('red_lead', 'DELETE', `/reports/schedules/${created.id}`);
    });

    it('sends a campaign report on its schedule, each recipient reading the campaign\'s tests they may open', async () => {

        const lead = (url: string, payload: object) => request('red_lead', 'POST', url, payload);
        const name = `Scheduled campaign ${Crypto.randomBytes(4).toString('hex')}`;
        const campaign = json(await lead('/campaigns', { name }));
        const members = await context.knex('tests').where('technique_id', techniqueId).pluck('id');
        for (const id of members) {
            expect((await lead(`/campaigns/${campaign.id}/tests`, { test_id: id })).statusCode).to.equal(201);
        }

        const res = await request('blue_lead', 'POST', '/reports/schedules', schedule({ name: `Campaign ${name}`, kind: 'purple-campaign', params: { id: campaign.id }, period: undefined, cron: '0 7 1 1 *' }));
        expect(res.statusCode, res.payload).to.equal(201);
        const created = json(res);
        expect(created).to.include({ kind: 'purple-campaign', params: { id: campaign.id } });
        expect(json(await request('blue_lead', 'GET', '/reports/schedules?kind=purple-campaign&limit=500')).items.map((item: { id: string }) => item.id)).to.include(created.id);

        await context.knex('report_schedules').where('id', created.id).update({ next_run_at: new Date(Date.now() - 1000) });
        const earlier = { viewer: mailsTo(email('viewer')).length, blue_lead: mailsTo(email('blue_lead')).length };
        await context.services.reportSchedules.tick(printer, new Date());
        expect(mailsTo(email('viewer'))).to.have.length(earlier.viewer + 1);
        expect(mailsTo(email('blue_lead'))).to.have.length(earlier.blue_lead + 1);

        const textOf = async (role: 'viewer' | 'blue_lead') => {

            const { mail } = mailsTo(email(role)).at(-1)!;
            expect(mail.subject).to.equal(`Campaign ${name}: Purple-team campaign report: ${name}`);
            const attachment = mail.attachments.find((item) => item.contentType === 'application/pdf')!;
            expect(attachment.filename).to.match(/^purple-campaign-\d{4}-\d{2}-\d{2}\.pdf$/);
            return await pdfText(attachment.content);
        };

        const viewer = await textOf('viewer');
        expect(viewer).to.contain(name).and.to.contain(internals.visible).and.to.contain('1 of 1 tests validated (100%)').and.to.not.contain(internals.marker);
        const blue = await textOf('blue_lead');
        expect(blue).to.contain(internals.visible).and.to.contain(internals.marker).and.to.contain('2 of 2 tests validated (100%)');
        expect(await context.knex('report_schedule_runs').where('schedule_id', created.id).select('status', 'recipients')).to.equal([{ status: 'sent', recipients: 2 }]);
        await request('blue_lead', 'DELETE', `/reports/schedules/${created.id}`);
    });

    it('takes a run over after its worker died mid-send, sends only to the recipients not yet served, once however many workers tick', async () => {

        // January the 1st only: no new occurrence comes due while the test moves its clock by half an hour
        const created = json(await request('red_lead', 'POST', '/reports/schedules', schedule({ period: undefined, cron: '0 7 1 1 *', timezone: 'UTC' })));
        await context.knex('report_schedules').where('id', created.id).update({ next_run_at: new Date(Date.now() - 60_000) });
        const earlier = { viewer: mailsTo(email('viewer')).length, blue_lead: mailsTo(email('blue_lead')).length };
        const sentCount = () => mailsTo(email('viewer')).length + mailsTo(email('blue_lead')).length - earlier.viewer - earlier.blue_lead;

        // The worker prints and sends to its first recipient, then dies while printing for the second: its tick never
        // ends, the run stays 'running' with one address in sent_to
        let prints = 0;
        const dying = { pdf: (html: string, options?: { title?: string }) => (++prints === 1 ? printer.pdf(html, options) : new Promise<Buffer>(() => undefined)) };
        const now = new Date();
        void context.services.reportSchedules.tick(dying, now);
        let run: { status: string; sent_to: string[]; attempts: number } | undefined;
        for (let i = 0; i < 300 && !(run?.sent_to.length && prints === 2); ++i) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            run = await context.knex('report_schedule_runs').where('schedule_id', created.id).first();
        }

        expect(run).to.include({ status: 'running', attempts: 1 });
        expect(run!.sent_to).to.have.length(1);
        expect(sentCount()).to.equal(1);
        const served = run!.sent_to[0]!;
        const other = served === email('viewer') ? email('blue_lead') : email('viewer');

        // Another worker leaves a running run alone while its worker may still be at it (30 minutes). The figures are
        // this schedule's own (its run, its recipients' mail): the shared database may hold other schedules
        const mine = () => context.knex('report_schedule_runs').where('schedule_id', created.id);
        await context.services.reportSchedules.tick(printer, new Date(now.getTime() + 10 * 60_000));
        expect(await mine().first()).to.include({ status: 'running', attempts: 1 });
        expect(sentCount()).to.equal(1);

        // Then two workers find it stale at once: one takes it over and sends to the recipient not yet served
        const later = new Date(now.getTime() + 31 * 60_000);
        const results = await Promise.all([context.services.reportSchedules.tick(printer, later), context.services.reportSchedules.tick(printer, later)]);
        expect(results.reduce((sum, result) => sum + result.retried, 0)).to.be.at.least(1);
        expect(sentCount()).to.equal(2);
        expect(mailsTo(served)).to.have.length(earlier[served === email('viewer') ? 'viewer' : 'blue_lead'] + 1);
        expect(mailsTo(other)).to.have.length(earlier[other === email('viewer') ? 'viewer' : 'blue_lead'] + 1);

        const runs = json(await request('red_lead', 'GET', `/reports/schedules/${created.id}/runs`));
        expect(runs.total).to.equal(1);
        expect(runs.items[0]).to.include({ status: 'sent', attempts: 2, error: null, recipients: 2 });
        expect(runs.items[0].sent_to.sort()).to.equal([email('blue_lead'), email('viewer')]);

        // Nothing more, however often the workers tick
        await context.services.reportSchedules.tick(printer, new Date(now.getTime() + 90 * 60_000));
        expect(await mine().select('status', 'attempts')).to.equal([{ status: 'sent', attempts: 2 }]);
        expect(sentCount()).to.equal(2);
        await request('red_lead', 'DELETE', `/reports/schedules/${created.id}`);
    });

    it('never sends a message twice when its worker died after the SMTP server accepted it but before recording it', async () => {

        const created = json(await request('red_lead', 'POST', '/reports/schedules', schedule({ period: undefined, cron: '0 7 1 1 *', timezone: 'UTC' })));
        await context.knex('report_schedules').where('id', created.id).update({ next_run_at: new Date(Date.now() - 60_000) });
        const earlier = { viewer: mailsTo(email('viewer')).length, blue_lead: mailsTo(email('blue_lead')).length };
        const mine = () => context.knex('report_schedule_runs').where('schedule_id', created.id).first();

        // The first message is accepted by the SMTP server, then the worker dies before it can record that
        const mail = context.services.mail;
        const send = mail.send.bind(mail);
        let calls = 0;
        mail.send = async (message) => {

            const result = await send(message);
            return ++calls === 1 ? new Promise<never>(() => undefined) : result;
        };

        const now = new Date();
        try {
            void context.services.reportSchedules.tick(printer, now);
            for (let i = 0; i < 300 && calls === 0; ++i) {
                await new Promise((resolve) => setTimeout(resolve, 50));
            }
        }
        finally {
            mail.send = send;
        }

        const crashed = await mine();
        expect(crashed).to.include({ status: 'running', attempts: 1, sent_to: [] });
        const accepted = crashed.in_flight as string;
        expect([email('viewer'), email('blue_lead')]).to.include(accepted);
        const other = accepted === email('viewer') ? email('blue_lead') : email('viewer');
        const count = (address: string) => mailsTo(address).length - earlier[address === email('viewer') ? 'viewer' : 'blue_lead'];
        expect(count(accepted)).to.equal(1);

        // Taken over after 30 minutes: the message in flight is not sent again but listed as unconfirmed
        await context.services.reportSchedules.tick(printer, new Date(now.getTime() + 31 * 60_000));
        expect(count(accepted)).to.equal(1);
        expect(count(other)).to.equal(1);
        const run = json(await request('red_lead', 'GET', `/reports/schedules/${created.id}/runs`)).items[0];
        expect(run).to.include({ status: 'sent', attempts: 2, sent_to: [other], unconfirmed: [accepted], in_flight: null, recipients: 1 });

        await context.services.reportSchedules.tick(printer, new Date(now.getTime() + 90 * 60_000));
        expect([count(accepted), count(other)]).to.equal([1, 1]);
        await request('red_lead', 'DELETE', `/reports/schedules/${created.id}`);
    });

    it('records a failed run with its reason and retries it later, sending only what was not sent; outside addresses see what a viewer sees', async () => {

        expect((await request('admin', 'PUT', '/system/settings/reports.external_recipients', { value: true })).statusCode).to.equal(200);
        const outside = `ciso@outside-${internals.domain}`;
        const created = json(await request('admin', 'POST', '/reports/schedules', schedule({ period: 'daily', recipient_user_ids: [context.users.admin.id], recipient_emails: [outside.toUpperCase()] })));
        expect(created.recipient_emails).to.equal([outside]);
        await context.knex('report_schedules').where('id', created.id).update({ next_run_at: new Date(Date.now() - 1000) });

        refuse.to = outside;
        const now = new Date();
        expect(await context.services.reportSchedules.tick(printer, now)).to.include({ claimed: 1, failed: 1 });
        let run = json(await request('admin', 'GET', `/reports/schedules/${created.id}/runs`)).items[0];
        expect(run).to.include({ status: 'failed', attempts: 1, recipients: 1, sent_to: [email('admin')] });
        expect(run.error).to.equal('The SMTP server could not deliver the message (EENVELOPE)');
        expect(mailsTo(email('admin'))).to.have.length(1);

        // Not before its back-off (5 minutes after the first failure); then once, to the one not yet served
        refuse.to = null;
        expect(await context.services.reportSchedules.tick(printer, new Date(now.getTime() + 60_000))).to.include({ retried: 0 });
        expect(await context.services.reportSchedules.tick(printer, new Date(now.getTime() + 6 * 60_000))).to.include({ retried: 1, sent: 1 });
        run = json(await request('admin', 'GET', `/reports/schedules/${created.id}/runs`)).items[0];
        expect(run).to.include({ status: 'sent', attempts: 2, error: null, recipients: 2 });
        expect(mailsTo(email('admin'))).to.have.length(1);
        expect(mailsTo(outside)).to.have.length(1);

        const text = await pdfText(mailsTo(outside)[0]!.mail.attachments[0]!.content);
        expect(text).to.contain(internals.visible).and.to.not.contain(internals.marker);
        await request('admin', 'DELETE', `/reports/schedules/${created.id}`);
    });
});
