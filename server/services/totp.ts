import * as Crypto from 'crypto';


// TOTP (RFC 6238) over HOTP (RFC 4226): what authenticator apps use is SHA-1, 6 digits and a 30 s step. The
// algorithm and digits are parameters only so that RFC 6238's published vectors (8 digits, SHA-1/256/512) test it.

export type TotpAlgorithm = 'sha1' | 'sha256' | 'sha512';

export const totpDefaults = { algorithm: 'sha1' as TotpAlgorithm, digits: 6, period: 30 };


const internals = {
    base32: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
};


// RFC 4226 5.3: HMAC over the 8-byte big-endian counter, dynamic truncation, modulo 10^digits
export const hotp = (key: Buffer, counter: number, options: { digits?: number; algorithm?: TotpAlgorithm } = {}): string => {

    const digits = options.digits ?? totpDefaults.digits;
    const message = Buffer.alloc(8);
    message.writeBigUInt64BE(BigInt(counter));
    const mac = Crypto.createHmac(options.algorithm ?? totpDefaults.algorithm, key).update(message).digest();
    const offset = mac[mac.length - 1]! & 0x0f;
    const binary = mac.readUInt32BE(offset) & 0x7fffffff;
    return String(binary % 10 ** digits).padStart(digits, '0');
};


// The time step of a moment (RFC 6238 4.2: T = floor((unix time - T0) / X), T0 = 0)
export const timeStep = (at: number, period = totpDefaults.period): number => Math.floor(at / 1000 / period);


export const totp = (key: Buffer, at: number, options: { digits?: number; algorithm?: TotpAlgorithm; period?: number } = {}): string => hotp(key, timeStep(at, options.period), options);


// The step whose code this is, within one step either side of now (a clock a little off, a code typed at the turn
// of a step), the newest first; null when none matches. Compared in constant time.
export const matchingStep = (key: Buffer, code: string, at: number): number | null => {

    const now = timeStep(at);
    const given = Buffer.from(code);
    for (const step of [now + 1, now, now - 1]) {
        const expected = Buffer.from(hotp(key, step));
        if (expected.length === given.length && Crypto.timingSafeEqual(expected, given)) {
            return step;
        }
    }

    return null;
};


// RFC 4648 base32 without padding: how otpauth URIs carry the secret
export const base32 = (bytes: Buffer): string => {

    let bits = 0;
    let value = 0;
    let output = '';
    for (const byte of bytes) {
        value = ((value << 8) | byte) & 0xffff;           // the bits not yet written, at most 12
        bits += 8;
        while (bits >= 5) {
            output += internals.base32[(value >>> (bits - 5)) & 31];
            bits -= 5;
        }
    }

    if (bits > 0) {
        output += internals.base32[(value << (5 - bits)) & 31];
    }

    return output;
};


// Key URI Format (Google Authenticator): otpauth://totp/Issuer:account?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30
export const otpauthUri = (issuer: string, account: string, secret: Buffer): string => {

    const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
    const query = new URLSearchParams({ secret: base32(secret), issuer, algorithm: 'SHA1', digits: String(totpDefaults.digits), period: String(totpDefaults.period) });
    return `otpauth://totp/${label}?${query.toString()}`;
};
