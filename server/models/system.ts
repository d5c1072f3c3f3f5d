import { BaseModel } from './base';


export class RevokedToken extends BaseModel {

    static override tableName = 'revoked_tokens';
    static override idColumn = 'jti';

    declare jti: string;
    declare user_id: string | null;
    declare expires_at: Date;
}


export class WorkerHeartbeat extends BaseModel {

    static override tableName = 'worker_heartbeats';
    static override idColumn = 'worker_id';

    declare worker_id: string;
    declare hostname: string;
    declare pid: number;
    declare started_at: Date;
    declare beat_at: Date;
}

