import { BaseModel } from './base';


export type AuditOutcome = 'success' | 'failure' | 'denied';


export class AuditLog extends BaseModel {

    static override tableName = 'audit_logs';

    id!: string;
    actor_id!: string | null;
    actor_role!: string | null;
    action!: string;
    entity_type!: string | null;
    entity_id!: string | null;
    outcome!: AuditOutcome;
    ip!: string | null;
    user_agent!: string | null;
    request_id!: string | null;
    details!: Record<string, unknown>;
}
