import { BaseModel } from './base';
import { dateOnly } from './test';


export class Worklog extends BaseModel {

    static override tableName = 'worklogs';

    declare id: string;
    declare user_id: string;
    declare test_id: string | null;
    declare campaign_id: string | null;
    declare minutes: number;
    declare date: string;
    declare note: string | null;

    override $parseDatabaseJson(json: Record<string, unknown>) {

        const parsed = super.$parseDatabaseJson(json);
        if (parsed.date instanceof Date) {
            parsed.date = dateOnly(parsed.date);
        }

        return parsed;
    }
}
