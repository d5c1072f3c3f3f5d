const internals = {
    fallback: 'file',
    maxBytes: 200,
    maxExtensionLength: 16,

    // Control and format characters (bidi overrides and isolates, zero-width characters, BOM), line and paragraph
    // separators, and lone surrogates.
    invisible: /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu,
    reserved: /[<>:"|?*]/g,
    separators: /[\\/]/,
    windowsDevice: /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i,
    trimEnds: /^[\s.]+|[\s.]+$/g,

    truncate(name: string): string {

        if (Buffer.byteLength(name) <= internals.maxBytes) {
            return name;
        }

        const dot = name.lastIndexOf('.');
        const extension = dot > 0 && name.length - dot <= internals.maxExtensionLength ? name.slice(dot) : '';
        const chars = Array.from(extension ? name.slice(0, dot) : name);
        while (chars.length && Buffer.byteLength(chars.join('') + extension) > internals.maxBytes) {
            chars.pop();
        }

        return chars.join('').replace(internals.trimEnds, '') + extension;
    },

    encodeRfc5987(value: string): string {

        return encodeURIComponent(value).replace(/['()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
    }
};


// Turns a client-supplied name into a safe base name for display and downloads. It is never used as a storage key.
export const sanitizeFileName = (name: string): string => {

    const cleaned = String(name ?? '').normalize('NFC').replace(internals.invisible, '');
    const base = cleaned.split(internals.separators).filter((part) => part.trim() !== '').pop() ?? '';

    let result = base
        .replace(internals.reserved, '_')
        .replace(/\s+/g, ' ')
        .replace(internals.trimEnds, '');

    if (internals.windowsDevice.test(result)) {
        result = `_${result}`;
    }

    result = internals.truncate(result);
    return result || internals.fallback;
};


// RFC 6266: an ASCII `filename` for old clients, and `filename*` (RFC 8187) with the exact UTF-8 name.
export const contentDisposition = (filename: string): string => {

    const name = sanitizeFileName(filename);
    const ascii = name
        .normalize('NFKD')
        .replace(/[\u0300-\u036f]/g, '')
        .replace(/[^\x20-\x7e]+/g, '_')
        .replace(/["\\/%]/g, '_');

    return `attachment; filename="${ascii}"; filename*=UTF-8''${internals.encodeRfc5987(name)}`;
};
