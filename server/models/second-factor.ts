import { BaseModel } from './base';


// A user's TOTP factor: pending until confirmed_at is set (docs/second-factors.md)
export class UserSecondFactor extends BaseModel {

    static override tableName = 'user_second_factors';
    static override idColumn = 'user_id';

    declare user_id: string;
    declare method: 'totp';
    declare secret_ciphertext: Buffer;
    declare secret_iv: Buffer;
    declare secret_tag: Buffer;
    declare secret_key_id: string;
    declare confirmed_at: Date | null;
    declare last_used_step: string | null;          // bigint: pg answers it as a string
    declare last_used_at: Date | null;
}


// One recovery code, as its SHA-256
export class UserRecoveryCode extends BaseModel {

    static override tableName = 'user_recovery_codes';

    declare id: string;
    declare user_id: string;
    declare code_hash: string;
    declare used_at: Date | null;
}


// The login step between the password and the session: the client holds the token, the row its SHA-256
export class SecondFactorChallenge extends BaseModel {

    static override tableName = 'second_factor_challenges';

    declare id: string;
    declare token_hash: string;
    declare user_id: string;
    declare purpose: 'verify' | 'enrol';
    declare expires_at: Date;
    declare used_at: Date | null;
}
