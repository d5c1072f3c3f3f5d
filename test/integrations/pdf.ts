import * as Crypto from 'crypto';
import * as Http from 'http';
import type * as Net from 'net';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { PdfRenderError, PdfRenderer } from '../../integrations/pdf';

import { pdfText } from '../helpers/documents';
import { json, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// The worker's PDF printer (issue 13): its failures are reported with a reason, and a render that fails says so to the
// caller; old renders are pruned with their files.
describe('PDF renderer', () => {

    let context: TestContext;

    before(async () => {

        context = await init({ redis: false, env: { REPORT_WAIT_MS: '200' } });
    });

    after(async () => {

        await context.stop();
    });

    it('refuses every request a report would make and runs none of its script', async () => {

        const printer = new PdfRenderer({ chromiumPath: process.env.CHROMIUM_PATH, timeoutMs: 30_000 });
        try {
            // A page that would fetch, frame and script: none of it may happen or show
            const html = '<html><body><p id="p">static text</p><img src="http://127.0.0.1:9/x.png"><iframe src="http://127.0.0.1:9/"></iframe><script>document.getElementById("p").textContent = "SCRIPT RAN"</script></body></html>';
            const text = await pdfText(await printer.pdf(html, { title: 'Probe' }));
            expect(text).to.contain('static text').and.to.contain('Probe');
            expect(text).to.not.contain('SCRIPT RAN');

            // A server the page would load from if anything let it: stylesheets, imports, images, backgrounds, frames,
            // objects, fonts, a file URL. The printer refuses every request: the server sees none. The same
            // page on a bare page of the same browser does load from it (the probe can see a request)
            const hits: string[] = [];
            const server = Http.createServer((req, res) => {

                hits.push(req.url ?? '');
                res.end('body { color: red }');
            });
            await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
            const origin = `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`;
            const loader = `<html><head><link rel="stylesheet" href="${origin}/link.css"><style>@import url("${origin}/import.css"); @font-face { font-family: x; src: url("${origin}/font.woff") } body { font-family: x; background: url("${origin}/bg.png") }</style>
                </head><body><p>loader text</p><img src="${origin}/img.png"><iframe src="${origin}/frame"></iframe>
                <object data="${origin}/object"></object><img src="file:///etc/passwd"></body></html>`;
            try {
                const pdf = await printer.pdf(loader);
                expect(await pdfText(pdf)).to.contain('loader text');
                expect(hits).to.equal([]);

                // No active content in what it prints: no script, no action run on opening, nothing launched or embedded
                expect(pdf.toString('latin1')).to.not.match(/\/(JavaScript|JS|OpenAction|AA|Launch|EmbeddedFile|RichMedia|SubmitForm)\b/);

                const { default: Puppeteer } = await import('puppeteer-core');
                const bare = await Puppeteer.launch({ ...await printer.launchOptions(), headless: true });
                try {
                    const page = await bare.newPage();
                    await page.setContent(loader, { waitUntil: 'load' });
                    expect(hits.length).to.be.above(0);
                }
                finally {
                    await bare.close();
                }
            }
            finally {
                await new Promise((resolve) => server.close(resolve));
            }

            // The page is reused: a second print is the second document only
            const second = await pdfText(await printer.pdf('<p>second document</p>'));
            expect(second).to.contain('second document').and.to.not.contain('static text');

            // A render over its timeout fails with that reason
            const slow = new PdfRenderer({ chromiumPath: process.env.CHROMIUM_PATH, timeoutMs: 1 });
            const err = await expect(slow.pdf('<p>slow</p>')).to.reject(PdfRenderError);
            expect(err.code).to.equal('render_timeout');
            await slow.close();
        }
        finally {
            await printer.close();
        }

        await expect(printer.pdf('<p>closed</p>')).to.reject(PdfRenderError, 'The PDF renderer is closed');
    });

    it('records a render that Chromium cannot print and answers 502 with the reason', async () => {

        const broken = new PdfRenderer({ chromiumPath: `/nonexistent/chromium-${Crypto.randomBytes(3).toString('hex')}`, timeoutMs: 5000 });
        const techniqueId = await uniqueTechnique(context.knex);
        const first = await context.server.inject({ method: 'GET', url: `/api/v1/reports/generate/technique/${techniqueId}?format=pdf`, auth: context.as('admin') });
        expect(first.statusCode, first.payload).to.equal(202);
        const { id } = json(first);
        await context.services.documents.print(id, broken, 5000);
        await broken.close();

        const row = await context.knex('report_renders').where('id', id).first();
        expect(row.status).to.equal('failed');
        expect(row.error).to.contain('Chromium could not start: Browser was not found');
        const res = await context.server.inject({ method: 'GET', url: `/api/v1/reports/renders/${id}`, auth: context.as('admin') });
        expect(res.statusCode).to.equal(502);
        expect(json(res)).to.include({ code: 'render_failed' });
        expect(json(res).message).to.contain('use format=html');

        // A render already taken is left alone
        await context.services.documents.print(id, broken, 5000);
        expect((await context.knex('report_renders').where('id', id).first()).error).to.equal(row.error);
    });

    it('prunes renders older than the cut-off with their files', async () => {

        const key = `reports/${Crypto.randomUUID()}.pdf`;
        const { Readable } = await import('stream');
        const storage = (context.services.documents as unknown as { deps: { storage: import('../../integrations/storage').ObjectStore } }).deps.storage;
        await storage.put(key, Readable.from([Buffer.from('%PDF-1.4 old')]), { size: 12, contentType: 'application/pdf' });
        const [old] = await context.knex('report_renders').insert({ kind: 'coverage-summary', content_sha256: Crypto.randomBytes(32).toString('hex'), html: '', file_name: 'old.pdf', status: 'done', storage_key: key, size: 12, created_at: new Date('2020-01-01T00:00:00Z') }).returning('id');
        const fresh = await context.knex('report_renders').insert({ kind: 'coverage-summary', content_sha256: Crypto.randomBytes(32).toString('hex'), html: '', file_name: 'new.pdf', status: 'failed' }).returning('id');

        const deleted = await context.services.documents.prune({ id: null, role: 'system' }, new Date('2020-01-02T00:00:00Z'));
        expect(deleted).to.be.at.least(1);
        expect(await context.knex('report_renders').where('id', old.id).first()).to.not.exist();
        expect(await context.knex('report_renders').where('id', fresh[0].id).first()).to.exist();
        expect(await storage.exists(key)).to.be.false();
    });
});
