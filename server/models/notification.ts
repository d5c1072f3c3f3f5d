import { BaseModel } from './base';


export class Notification extends BaseModel {

    static override tableName = 'notifications';

    declare id: string;
    declare user_id: string;
    declare type: string;
    declare title: string;
    declare body: string | null;
    declare entity_type: string | null;
    declare entity_id: string | null;
    declare read_at: Date | null;
}
