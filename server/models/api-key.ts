import type { Model } from 'objection';

import { BaseModel } from './base';
import { User } from './user';


export type ApiKeyScope = 'read' | 'write' | 'admin';


export class ApiKey extends BaseModel {

    static override tableName = 'api_keys';

    id!: string;
    user_id!: string;
    name!: string;
    scope!: ApiKeyScope;
    prefix!: string;
    key_hash!: string;
    expires_at!: Date | null;
    last_used_at!: Date | null;
    revoked_at!: Date | null;
    created_by!: string | null;

    user?: User;

    static override relationMappings = () => ({
        user: { relation: BaseModel.BelongsToOneRelation as typeof Model.BelongsToOneRelation, modelClass: User, join: { from: 'api_keys.user_id', to: 'users.id' } }
    });

    override $formatJson(json: Record<string, unknown>) {

        const { key_hash, ...rest } = super.$formatJson(json);
        return rest;
    }
}
