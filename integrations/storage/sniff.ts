import { sanitizeFileName } from './file-name';


export const knownContentTypes = [
    { name: 'png', label: 'PNG image', contentType: 'image/png', extensions: ['png'] },
    { name: 'jpeg', label: 'JPEG image', contentType: 'image/jpeg', extensions: ['jpg', 'jpeg'] },
    { name: 'gif', label: 'GIF image', contentType: 'image/gif', extensions: ['gif'] },
    { name: 'webp', label: 'WebP image', contentType: 'image/webp', extensions: ['webp'] },
    { name: 'pdf', label: 'PDF document', contentType: 'application/pdf', extensions: ['pdf'] },
    { name: 'zip', label: 'ZIP archive', contentType: 'application/zip', extensions: ['zip'] },
    { name: 'docx', label: 'Word document', contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', extensions: ['docx'] },
    { name: 'xlsx', label: 'Excel workbook', contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', extensions: ['xlsx'] },
    { name: 'pptx', label: 'PowerPoint presentation', contentType: 'application/vnd.openxmlformats-officedocument.presentationml.presentation', extensions: ['pptx'] },
    { name: 'gzip', label: 'gzip archive', contentType: 'application/gzip', extensions: ['gz', 'tgz'] },
    { name: '7z', label: '7-Zip archive', contentType: 'application/x-7z-compressed', extensions: ['7z'] },
    { name: 'pcap', label: 'Packet capture (pcap)', contentType: 'application/vnd.tcpdump.pcap', extensions: ['pcap', 'cap'] },
    { name: 'pcapng', label: 'Packet capture (pcapng)', contentType: 'application/x-pcapng', extensions: ['pcapng'] },
    { name: 'evtx', label: 'Windows event log', contentType: 'application/x-ms-evtx', extensions: ['evtx'] },
    { name: 'xml', label: 'XML document', contentType: 'application/xml', extensions: ['xml'] },
    { name: 'json', label: 'JSON document', contentType: 'application/json', extensions: ['json'] },
    { name: 'csv', label: 'CSV table', contentType: 'text/csv', extensions: ['csv'] },
    { name: 'log', label: 'Log file', contentType: 'text/plain', extensions: ['log'] },
    { name: 'text', label: 'Plain text', contentType: 'text/plain', extensions: ['txt'] }
] as const;


export type ContentTypeName = typeof knownContentTypes[number]['name'];

export interface SniffedContentType {
    name: ContentTypeName;
    contentType: string;
    extension: string;
}


// How many leading bytes sniffContentType() looks at; HashingStream keeps this many by default.
export const sniffLength = 4096;


type Magic = readonly (number | null)[];                // null matches any byte


const internals = {
    binary: [
        { name: 'png', magic: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
        { name: 'jpeg', magic: [0xff, 0xd8, 0xff] },
        { name: 'gif', magic: [...Buffer.from('GIF87a')] },
        { name: 'gif', magic: [...Buffer.from('GIF89a')] },
        { name: 'webp', magic: [...Buffer.from('RIFF'), null, null, null, null, ...Buffer.from('WEBP')] },
        { name: 'pdf', magic: [...Buffer.from('%PDF-')] },
        { name: 'gzip', magic: [0x1f, 0x8b, 0x08] },
        { name: '7z', magic: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c] },
        { name: 'pcap', magic: [0xd4, 0xc3, 0xb2, 0xa1] },              // little-endian, microseconds
        { name: 'pcap', magic: [0xa1, 0xb2, 0xc3, 0xd4] },              // big-endian, microseconds
        { name: 'pcap', magic: [0x4d, 0x3c, 0xb2, 0xa1] },              // little-endian, nanoseconds
        { name: 'pcap', magic: [0xa1, 0xb2, 0x3c, 0x4d] },              // big-endian, nanoseconds
        { name: 'pcapng', magic: [0x0a, 0x0d, 0x0d, 0x0a, null, null, null, null, 0x4d, 0x3c, 0x2b, 0x1a] },
        { name: 'pcapng', magic: [0x0a, 0x0d, 0x0d, 0x0a, null, null, null, null, 0x1a, 0x2b, 0x3c, 0x4d] },
        { name: 'evtx', magic: [...Buffer.from('ElfFile'), 0x00] }
    ] as { name: ContentTypeName; magic: Magic }[],

    // Checked before the text rules, as some of these headers are valid UTF-8 (`\x7fELF`, `MZ`).
    executable: [
        [0x7f, 0x45, 0x4c, 0x46],                                       // ELF
        [0x4d, 0x5a],                                                   // PE / DOS (MZ)
        [0xfe, 0xed, 0xfa, 0xce], [0xfe, 0xed, 0xfa, 0xcf],             // Mach-O, big-endian
        [0xce, 0xfa, 0xed, 0xfe], [0xcf, 0xfa, 0xed, 0xfe],             // Mach-O, little-endian
        [0xca, 0xfe, 0xba, 0xbe],                                       // Mach-O universal, Java class
        [0x00, 0x61, 0x73, 0x6d]                                        // WebAssembly
    ] as Magic[],

    zip: [
        [0x50, 0x4b, 0x03, 0x04],
        [0x50, 0x4b, 0x05, 0x06]                                        // empty archive
    ] as Magic[],

    // OOXML documents are zip containers; their type is taken from the name once the container is verified.
    officeOpenXml: new Set<ContentTypeName>(['docx', 'xlsx', 'pptx']),

    // Markup a browser could render actively, refused rather than stored (docs/storage.md): a first tag that the
    // WHATWG MIME sniffing standard takes for HTML, or SVG, XHTML, MathML or a stylesheet anywhere in the sample.
    htmlStart: /^<(!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|svg|math|frameset|object|embed)[\s/>]|^<!--/i,
    activeMarkup: /<\?xml-stylesheet|<\s*(svg|html|script)[\s/>:]|http:\/\/www\.w3\.org\/(1999\/xhtml|2000\/svg|1998\/math\/mathml)/i,

    matches(bytes: Buffer, magic: Magic): boolean {

        return bytes.length >= magic.length &&
            magic.every((byte, i) => byte === null || bytes[i] === byte);
    },

    extensionOf(fileName: string): string {

        const name = sanitizeFileName(fileName);
        const dot = name.lastIndexOf('.');
        return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
    },

    result(name: ContentTypeName, fileExtension: string, charset?: string): SniffedContentType {

        const type = knownContentTypes.find((known) => known.name === name)!;
        const extensions: readonly string[] = type.extensions;
        const extension = extensions.includes(fileExtension) ? fileExtension : extensions[0]!;
        return { name, contentType: charset ? `${type.contentType}; charset=${charset}` : type.contentType, extension };
    },

    decodeText(bytes: Buffer): { text: string; charset: 'utf-8' | 'utf-16le' | 'utf-16be' } | null {

        const bom = internals.boms.find(({ magic }) => internals.matches(bytes, magic));
        const charset = bom?.charset ?? 'utf-8';
        try {
            // `stream: true`: a multi-byte sequence cut at the end of the sample is not an error
            const text = new TextDecoder(charset, { fatal: true }).decode(bytes.subarray(bom?.magic.length ?? 0), { stream: true });
            return text.includes('\u0000') ? null : { text, charset };
        }
        catch {
            return null;
        }
    },

    boms: [
        { magic: [0xef, 0xbb, 0xbf], charset: 'utf-8' },
        { magic: [0xff, 0xfe], charset: 'utf-16le' },
        { magic: [0xfe, 0xff], charset: 'utf-16be' }
    ] as { magic: Magic; charset: 'utf-8' | 'utf-16le' | 'utf-16be' }[],

    text(bytes: Buffer, extension: string): SniffedContentType | null {

        const decoded = internals.decodeText(bytes);
        if (!decoded) {
            return null;
        }

        const { text, charset } = decoded;
        const start = text.trimStart();

        if (start.startsWith('<')) {
            if (internals.htmlStart.test(start) ||
                internals.activeMarkup.test(text)) {

                return null;
            }

            if (start.startsWith('<?xml') ||
                extension === 'xml') {

                return internals.result('xml', extension);
            }
        }

        if (extension === 'json' &&
            charset === 'utf-8' &&
            /^[[{]/.test(start)) {

            return internals.result('json', extension);
        }

        if (extension === 'csv') {
            return internals.result('csv', extension, charset);
        }

        if (extension === 'log') {
            return internals.result('log', extension, charset);
        }

        return internals.result('text', extension, charset);
    }
};


// Decides the type from the leading bytes (and, for OOXML and the text family, the name). Returns null for anything
// not on the list, including executables and recognisable HTML/SVG.
export const sniffContentType = (firstBytes: Buffer, fileName: string): SniffedContentType | null => {

    if (firstBytes.length === 0 ||
        internals.executable.some((magic) => internals.matches(firstBytes, magic))) {

        return null;
    }

    const extension = internals.extensionOf(fileName);
    const binary = internals.binary.find(({ magic }) => internals.matches(firstBytes, magic));
    if (binary) {
        return internals.result(binary.name, extension);
    }

    if (internals.zip.some((magic) => internals.matches(firstBytes, magic))) {
        const office = internals.officeOpenXml.has(extension as ContentTypeName);
        return internals.result(office ? extension as ContentTypeName : 'zip', extension);
    }

    return internals.text(firstBytes, extension);
};
