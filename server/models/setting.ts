import { BaseModel } from './base';


export class Setting extends BaseModel {

    static override tableName = 'settings';
    static override idColumn = 'key';
    static override jsonAttributes = ['value'];

    declare key: string;
    declare value: unknown;
    declare secret_ciphertext: Buffer | null;
    declare secret_iv: Buffer | null;
    declare secret_tag: Buffer | null;
    declare secret_key_id: string | null;
    declare updated_by: string | null;
}
