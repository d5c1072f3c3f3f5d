import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { base32, hotp, matchingStep, otpauthUri, timeStep, totp } from '../../server/services/totp';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


const internals = {
    // RFC 6238 appendix B: the seeds are the ASCII "12345678901234567890" repeated to the hash's key size
    seeds: {
        sha1: Buffer.from('12345678901234567890'),
        sha256: Buffer.from('12345678901234567890123456789012'),
        sha512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234')
    },

    // Time (s), then the 8-digit TOTP for SHA-1, SHA-256 and SHA-512
    vectors: [
        [59, '94287082', '46119246', '90693936'],
        [1111111109, '07081804', '68084774', '25091201'],
        [1111111111, '14050471', '67062674', '99943326'],
        [1234567890, '89005924', '91819424', '93441116'],
        [2000000000, '69279037', '90698825', '38618901'],
        [20000000000, '65353130', '77737706', '47863826']
    ] as const
};


describe('TOTP (RFC 6238)', () => {

    it('computes every published test vector of RFC 6238 for SHA-1, SHA-256 and SHA-512', () => {

        for (const [seconds, sha1, sha256, sha512] of internals.vectors) {
            expect(totp(internals.seeds.sha1, seconds * 1000, { digits: 8, algorithm: 'sha1' }), `${seconds} sha1`).to.equal(sha1);
            expect(totp(internals.seeds.sha256, seconds * 1000, { digits: 8, algorithm: 'sha256' }), `${seconds} sha256`).to.equal(sha256);
            expect(totp(internals.seeds.sha512, seconds * 1000, { digits: 8, algorithm: 'sha512' }), `${seconds} sha512`).to.equal(sha512);
        }
    });

    it('computes the HOTP values of RFC 4226 appendix D (6 digits, SHA-1)', () => {

        const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
        expect(expected.map((value, counter) => hotp(internals.seeds.sha1, counter))).to.equal(expected);
    });

    it('accepts a code of the current step or one step either side, and no other', () => {

        const key = internals.seeds.sha1;
        const at = 1_700_000_015_000;
        const now = timeStep(at);
        expect(now).to.equal(56_666_667);
        expect(matchingStep(key, hotp(key, now), at)).to.equal(now);
        expect(matchingStep(key, hotp(key, now - 1), at)).to.equal(now - 1);
        expect(matchingStep(key, hotp(key, now + 1), at)).to.equal(now + 1);
        for (const step of [now - 2, now + 2, now - 100]) {
            const code = hotp(key, step);
            if (![now - 1, now, now + 1].some((near) => hotp(key, near) === code)) {
                expect(matchingStep(key, code, at), String(step)).to.be.null();
            }
        }

        expect(matchingStep(key, '12345', at)).to.be.null();
        expect(matchingStep(key, '', at)).to.be.null();
    });

    it('encodes base32 as RFC 4648 section 10 (without padding), and builds the otpauth URI apps read', () => {

        const vectors: [string, string][] = [['', ''], ['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI']];
        for (const [input, output] of vectors) {
            expect(base32(Buffer.from(input)), input).to.equal(output);
        }

        expect(base32(internals.seeds.sha1)).to.equal('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
        expect(otpauthUri('Aegis', 'alice@example', internals.seeds.sha1)).to.equal('otpauth://totp/Aegis:alice%40example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Aegis&algorithm=SHA1&digits=6&period=30');
    });
});
