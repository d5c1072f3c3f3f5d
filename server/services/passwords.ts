import { hash, verify, Algorithm } from '@node-rs/argon2';
import type * as Zxcvbn from '@zxcvbn-ts/language-common';

import { ValidationError } from '../errors';


// OWASP's argon2id minimum (m=19 MiB, t=2, p=1): about 17 ms a hash on the reference machine.
const internals = {
    options: { algorithm: Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 },
    context: ['aegis', 'purple', 'password', 'admin'],

    // The common passwords, loaded on the first policy check: only creating a user or changing a password reads them,
    // and the dictionaries' module costs an API that never does about 14 MB of RSS (docs/performance.md, Memory)
    commonSet: undefined as Set<string> | undefined,
    common: (): Set<string> => {

        if (!internals.commonSet) {
            // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
            const { dictionary } = require('@zxcvbn-ts/language-common') as typeof Zxcvbn;

            internals.commonSet = new Set((dictionary['passwords-common'] as string[]).map((word) => word.toLowerCase()));
        }

        return internals.commonSet;
    }
};


export const minPasswordLength = 12;
export const maxPasswordLength = 128;


export const hashPassword = (password: string): Promise<string> => hash(password, internals.options);


export const verifyPassword = async (passwordHash: string, password: string): Promise<boolean> => {

    try {
        return await verify(passwordHash, password);
    }
    catch {
        return false;
    }
};


// Compared against when the user does not exist, so that both answers take the same time.
export const dummyHash = hash('aegis-timing-equaliser-not-a-password', internals.options);


// The policy of SEC-12: length by code points, no composition rules, no common or contextual passwords.
export const checkPasswordPolicy = (password: string, context: { username: string; email?: string | null | undefined }): void => {

    const length = [...password].length;
    if (length < minPasswordLength || length > maxPasswordLength) {
        throw new ValidationError(`Password must be ${minPasswordLength} to ${maxPasswordLength} characters long`, ['password'], 'weak_password');
    }

    const lower = password.toLowerCase();

    // "Password1234!" is "password" with decorations: judge the core without leading and trailing digits and symbols
    const core = lower.replace(/^[\d\W_]+|[\d\W_]+$/gu, '');
    if (core.length >= 4 && (internals.common().has(core) || internals.context.includes(core))) {
        throw new ValidationError('Password is too common', ['password'], 'weak_password');
    }

    const words = [...internals.context, context.username.toLowerCase(), ...(context.email ? [context.email.toLowerCase(), context.email.toLowerCase().split('@')[0] ?? ''] : [])];
    if (internals.common().has(lower) || words.some((word) => word.length >= 4 && lower === word) || (context.username.length >= 3 && lower.includes(context.username.toLowerCase()))) {
        throw new ValidationError('Password is too common or contains the username', ['password'], 'weak_password');
    }

    // One unit said again and again ("aegis-aegis-aegis", "abababab...") is no stronger than the unit
    const letters = lower.replace(/[^\p{L}\p{N}]/gu, '');
    if (new Set(lower).size < 4 || /^(.+?)\1+$/u.test(letters)) {
        throw new ValidationError('Password is too repetitive', ['password'], 'weak_password');
    }
};
