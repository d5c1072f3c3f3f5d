import { BaseModel } from './base';


export class Evidence extends BaseModel {

    static override tableName = 'evidence';

    id!: string;
    test_id!: string;
    team!: 'red' | 'blue';
    storage_key!: string;
    original_name!: string;
    content_type!: string;
    size!: number;
    sha256!: string;
    description!: string | null;
    uploaded_by!: string | null;

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
