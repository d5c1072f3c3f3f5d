import { BaseModel } from './base';


export class RevokedToken extends BaseModel {

    static override tableName = 'revoked_tokens';
    static override idColumn = 'jti';

    jti!: string;
    user_id!: string | null;
    expires_at!: Date;
}


export class WorkerHeartbeat extends BaseModel {

    static override tableName = 'worker_heartbeats';
    static override idColumn = 'worker_id';

    worker_id!: string;
    hostname!: string;
    pid!: number;
    started_at!: Date;
    beat_at!: Date;
}

