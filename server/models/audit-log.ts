import { BaseModel } from './base';


export type AuditOutcome = 'success' | 'failure' | 'denied';


export class AuditLog extends BaseModel {

    static override tableName = 'audit_logs';

    declare id: string;
    declare actor_id: string | null;
    declare actor_role: string | null;
    declare action: string;
    declare entity_type: string | null;
    declare entity_id: string | null;
    declare outcome: AuditOutcome;
    declare ip: string | null;
    declare user_agent: string | null;
    declare request_id: string | null;
    declare details: Record<string, unknown>;
}
