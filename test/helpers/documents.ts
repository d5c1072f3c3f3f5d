import { createAgenda } from '../../server/jobs';
import type { Services } from '../../server/services';
import { PdfRenderer } from '../../integrations/pdf';


// The text of a PDF, pages joined (unpdf: pdf.js without a canvas)
export const pdfText = async (pdf: Buffer): Promise<string> => {

    const { extractText, getDocumentProxy } = await import('unpdf');
    const document = await getDocumentProxy(new Uint8Array(pdf));
    const { text } = await extractText(document, { mergePages: true });
    // Where a table cell wraps depends on its columns' widths: the words are compared, not the line breaks
    return (text as string).replace(/\s+/g, ' ');
};


// What a worker runs for documents, in the test process: its own Agenda processing only documents.render, and the
// browser (the packaged Chromium unless CHROMIUM_PATH says otherwise)
export const startDocumentWorker = async (databaseUrl: string, services: Services, options: { chromiumPath?: string | undefined } = {}) => {

    const printer = new PdfRenderer({ chromiumPath: options.chromiumPath, timeoutMs: 30_000 });
    const { agenda, close } = await createAgenda({ databaseUrl, name: `aegis-test-documents-${process.pid}` });
    agenda.define<{ render_id: string }>('documents.render', (job) => services.documents.print(job.attrs.data.render_id, printer, 30_000), { concurrency: 2 });
    await agenda.start();
    return {
        printer,
        stop: async () => {

            await close();
            await printer.close();
        }
    };
};
