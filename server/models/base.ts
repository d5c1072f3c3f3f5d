import type { Knex } from 'knex';
import { Model, type ModelClass, type PartialModelObject } from 'objection';


// Columns are `declare`d in every model: under ES2022 class fields a plain `name!: T` would define each column as
// undefined on every instance objection builds, a cost paid per row read.
export class BaseModel extends Model {

    declare created_at: Date;
    declare updated_at: Date;

    override $beforeUpdate(): void {

        this.updated_at = new Date();
    }

    // patchAndFetch in one statement (UPDATE … RETURNING *): objection's own runs an UPDATE and then a SELECT, one
    // database round trip more on every change. objection types an instance query's returning() as an array; at run
    // time it answers the one updated instance.
    async $patchReturning(trx: Knex.Transaction, patch: PartialModelObject<this>): Promise<this> {

        return await this.$query(trx).patch(patch).returning('*') as unknown as this;
    }

    // insertAndFetch in one statement (INSERT … RETURNING *), for the same reason.
    static async insertReturning<M extends Model>(this: new (...args: any[]) => M, trx: Knex.Transaction | Knex, row: PartialModelObject<M>): Promise<M> {

        return await (this as unknown as ModelClass<M>).query(trx).insert(row).returning('*') as unknown as M;
    }
}
