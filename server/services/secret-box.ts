import * as Crypto from 'crypto';


export interface Sealed {
    ciphertext: Buffer;
    iv: Buffer;
    tag: Buffer;
    key_id: string;
}


// AES-256-GCM for the secrets of the settings store: a random 12-byte IV per value, the 16-byte tag stored beside it,
// the setting's name as additional data (a ciphertext copied to another row does not open), and the id of the key
// it was sealed under (a hash of the key), for a later rotation to tell old values from new.
export class SecretBox {

    readonly keyId: string;

    constructor(private readonly key: Buffer) {

        this.keyId = Crypto.createHash('sha256').update('aegis-secret-key-id:').update(key).digest('hex').slice(0, 16);
    }

    seal(context: string, plaintext: string): Sealed {

        const iv = Crypto.randomBytes(12);
        const cipher = Crypto.createCipheriv('aes-256-gcm', this.key, iv).setAAD(Buffer.from(context));
        const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
        return { ciphertext, iv, tag: cipher.getAuthTag(), key_id: this.keyId };
    }

    // undefined when the value was sealed under another key, or altered, or moved to another context
    open(context: string, sealed: Sealed): string | undefined {

        if (sealed.key_id !== this.keyId) {
            return undefined;
        }

        try {
            const decipher = Crypto.createDecipheriv('aes-256-gcm', this.key, sealed.iv).setAAD(Buffer.from(context)).setAuthTag(sealed.tag);
            return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
        }
        catch {
            return undefined;
        }
    }
}
