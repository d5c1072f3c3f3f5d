import { Model } from 'objection';


export class BaseModel extends Model {

    created_at!: Date;
    updated_at!: Date;

    override $beforeUpdate(): void {

        this.updated_at = new Date();
    }
}
