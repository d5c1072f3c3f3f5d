import { BaseModel } from './base';
import { dateOnly } from './test';


export class Worklog extends BaseModel {

    static override tableName = 'worklogs';

    id!: string;
    user_id!: string;
    test_id!: string | null;
    campaign_id!: string | null;
    minutes!: number;
    date!: string;
    note!: string | null;

    override $parseDatabaseJson(json: Record<string, unknown>) {

        const parsed = super.$parseDatabaseJson(json);
        if (parsed.date instanceof Date) {
            parsed.date = dateOnly(parsed.date);
        }

        return parsed;
    }
}
