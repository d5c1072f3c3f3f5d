import type { Browser, Page } from 'puppeteer-core';


// Prints an HTML document to PDF in headless Chromium (issue 13). One browser per process, launched on first use and
// relaunched if it dies; pages are reused. A report loads nothing: JavaScript is off and every request the page would
// make (images, fonts, styles, frames, prefetches) is refused, so the document is only the HTML it was given.

export interface PdfRendererOptions {
    chromiumPath?: string | undefined;          // CHROMIUM_PATH: a system Chromium; unset: the one @sparticuz/chromium ships
    timeoutMs: number;                          // REPORT_RENDER_TIMEOUT_MS: per render
    pages?: number;                             // pages kept open for reuse (2)
}


export class PdfRenderError extends Error {

    constructor(message: string, readonly code: 'render_timeout' | 'render_failed') {

        super(message);
        this.name = 'PdfRenderError';
    }
}


// Flags a headless print needs on a server: no sandbox as root, nothing that phones home
export const chromiumFlags = [
    '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    '--disable-extensions', '--disable-default-apps', '--mute-audio', '--no-pings', '--metrics-recording-only'
];


export class PdfRenderer {

    private browser: Promise<Browser> | undefined;
    private readonly idle: Page[] = [];
    private closed = false;

    constructor(private readonly options: PdfRendererOptions) { }

    // The executable and its arguments, without launching
    async launchOptions(): Promise<{ executablePath: string; args: string[] }> {

        if (this.options.chromiumPath) {
            const root = typeof process.getuid === 'function' && process.getuid() === 0;
            return { executablePath: this.options.chromiumPath, args: [...chromiumFlags, ...(root ? ['--no-sandbox'] : [])] };
        }

        const Chromium = (await import('@sparticuz/chromium')).default;
        Chromium.setGraphicsMode = false;
        // Its own arguments already hold --no-sandbox and --single-process; ours keep it off the network
        const args = [...Chromium.args.filter((arg) => !arg.startsWith('--headless')), ...chromiumFlags];
        return { executablePath: await Chromium.executablePath(), args };
    }

    async pdf(html: string, options: { title?: string } = {}): Promise<Buffer> {

        if (this.closed) {
            throw new PdfRenderError('The PDF renderer is closed', 'render_failed');
        }

        const page = await this.page().catch((err: Error) => {

            throw new PdfRenderError(`Chromium could not start: ${err.message.split('\n')[0]}`, 'render_failed');
        });
        let healthy = false;
        let timer: NodeJS.Timeout | undefined;
        try {
            const work = (async () => {

                await page.setContent(html, { waitUntil: 'load', timeout: this.options.timeoutMs });
                const pdf = await page.pdf({
                    format: 'A4', printBackground: true, margin: { top: '16mm', bottom: '18mm', left: '14mm', right: '14mm' },
                    displayHeaderFooter: true, headerTemplate: '<span></span>',
                    footerTemplate: `<div style="font-size:8px;width:100%;text-align:center;color:#666"><span>${escapeHtml(options.title ?? '')}</span> · <span class="pageNumber"></span>/<span class="totalPages"></span></div>`,
                    timeout: this.options.timeoutMs
                });
                return Buffer.from(pdf);
            })();

            const timeout = new Promise<never>((_, reject) => {

                timer = setTimeout(() => reject(new PdfRenderError(`The render took longer than ${this.options.timeoutMs} ms`, 'render_timeout')), this.options.timeoutMs);
            });

            const pdf = await Promise.race([work, timeout]);
            healthy = true;
            return pdf;
        }
        catch (err) {
            if (err instanceof PdfRenderError) {
                throw err;
            }

            throw new PdfRenderError(`Chromium could not print the report: ${(err as Error).message.split('\n')[0]}`, 'render_failed');
        }
        finally {
            clearTimeout(timer);
            if (healthy && this.idle.length < (this.options.pages ?? 2) && !this.closed) {
                this.idle.push(page);
            }
            else {
                await page.close().catch(() => undefined);
            }
        }
    }

    async close(): Promise<void> {

        this.closed = true;
        const browser = this.browser;
        this.browser = undefined;
        this.idle.length = 0;
        if (browser) {
            await (await browser.catch(() => undefined))?.close().catch(() => undefined);
        }
    }

    private async page(): Promise<Page> {

        const reused = this.idle.pop();
        if (reused && !reused.isClosed()) {
            return reused;
        }

        const browser = await this.launch();
        const page = await browser.newPage();
        await page.setJavaScriptEnabled(false);
        await page.setRequestInterception(true);
        page.on('request', (request) => {

            void request.abort('blockedbyclient').catch(() => undefined);
        });
        return page;
    }

    private launch(): Promise<Browser> {

        if (!this.browser) {
            this.browser = (async () => {

                const { default: Puppeteer } = await import('puppeteer-core');
                const browser = await Puppeteer.launch({ ...await this.launchOptions(), headless: true, timeout: 30_000 });
                browser.on('disconnected', () => {

                    this.browser = undefined;
                    this.idle.length = 0;
                });
                return browser;
            })();

            this.browser.catch(() => {

                this.browser = undefined;
            });
        }

        return this.browser;
    }
}


export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
