import { BaseModel } from './base';


export class Evidence extends BaseModel {

    static override tableName = 'evidence';

    declare id: string;
    declare test_id: string;
    declare team: 'red' | 'blue';
    declare storage_key: string;
    declare original_name: string;
    declare content_type: string;
    declare size: number;
    declare sha256: string;
    declare description: string | null;
    declare uploaded_by: string | null;

    // bigint arrives as a string from pg; sizes stay far below 2^53
    override $parseDatabaseJson(json: Record<string, unknown>) {

        const parsed = super.$parseDatabaseJson(json);
        if (parsed.size !== undefined && parsed.size !== null) {
            parsed.size = Number(parsed.size);
        }

        return parsed;
    }

    // The storage key is the server's business
    override $formatJson(json: Record<string, unknown>) {

        const { storage_key, ...rest } = super.$formatJson(json);
        return rest;
    }
}
