import { BaseModel } from './base';


export class Notification extends BaseModel {

    static override tableName = 'notifications';

    id!: string;
    user_id!: string;
    type!: string;
    title!: string;
    body!: string | null;
    entity_type!: string | null;
    entity_id!: string | null;
    read_at!: Date | null;
}
