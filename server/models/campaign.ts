import { isOverdue, type CampaignStatus, type CampaignType } from '../services/campaign-lifecycle';

import { BaseModel } from './base';
import { dateOnly } from './test';


export class Campaign extends BaseModel {

    static override tableName = 'campaigns';

    declare id: string;
    declare name: string;
    declare description: string | null;
    declare type: CampaignType;
    declare status: CampaignStatus;
    declare threat_actor_id: string | null;
    declare start_date: string | null;
    declare end_date: string | null;
    declare notes: string | null;
    declare blind: boolean;
    declare activated_at: Date | null;
    declare completed_at: Date | null;
    declare version: number;
    declare created_by: string | null;

    override $parseDatabaseJson(json: Record<string, unknown>) {

        const parsed = super.$parseDatabaseJson(json);
        for (const field of ['start_date', 'end_date']) {
            if (parsed[field] instanceof Date) {
                parsed[field] = dateOnly(parsed[field]);
            }
        }

        return parsed;
    }

    // Every reader gets `overdue` (campaign-lifecycle.ts isOverdue)
    override $formatJson(json: Record<string, unknown>) {

        const formatted = super.$formatJson(json);
        return { ...formatted, overdue: isOverdue(this) };
    }
}


export class CampaignTest extends BaseModel {

    static override tableName = 'campaign_tests';

    declare id: string;
    declare campaign_id: string;
    declare test_id: string;
    declare added_by: string | null;
}


export class CampaignHistoryEntry extends BaseModel {

    static override tableName = 'campaign_history';

    declare id: string;
    declare campaign_id: string;
    declare actor_id: string | null;
    declare actor_role: string | null;
    declare action: string;
    declare from_status: string | null;
    declare to_status: string | null;
    declare test_id: string | null;
    declare changes: Record<string, unknown>;
    declare seq: string;

    static override get jsonAttributes() {

        return ['changes'];
    }

    // `seq` only orders the rows one transaction wrote (they share its timestamp)
    override $formatJson(json: Record<string, unknown>) {

        const { seq: _seq, ...formatted } = super.$formatJson(json);
        return formatted;
    }
}
