import type { Model } from 'objection';

import { BaseModel } from './base';
import { User } from './user';


export type ApiKeyScope = 'read' | 'write' | 'admin';


export class ApiKey extends BaseModel {

    static override tableName = 'api_keys';

    declare id: string;
    declare user_id: string;
    declare name: string;
    declare scope: ApiKeyScope;
    declare prefix: string;
    declare key_hash: string;
    declare expires_at: Date;
    declare last_used_at: Date | null;
    declare revoked_at: Date | null;
    declare created_by: string | null;

    declare user?: User;

    static override relationMappings = () => ({
        user: { relation: BaseModel.BelongsToOneRelation as typeof Model.BelongsToOneRelation, modelClass: User, join: { from: 'api_keys.user_id', to: 'users.id' } }
    });

    override $formatJson(json: Record<string, unknown>) {

        const { key_hash, ...rest } = super.$formatJson(json);
        return rest;
    }
}
