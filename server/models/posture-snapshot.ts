import type { CoverageStatusName } from './attack';
import { BaseModel } from './base';


// The figures of one domain in a snapshot (and in the KPIs): top-level techniques with their rolled-up status
export interface PostureSummary {
    techniques: number;
    subtechniques: number;
    by_status: Record<CoverageStatusName, number>;
    covered_percent: number;
    tested_percent: number;
    needs_review: number;
}


export class PostureSnapshot extends BaseModel {

    static override tableName = 'posture_snapshots';

    static override jsonAttributes = ['summary'];

    declare id: string;
    declare kind: 'manual' | 'scheduled';
    declare note: string | null;
    declare taken_at: Date;
    declare summary: Record<string, PostureSummary>;
    declare created_by: string | null;
}


export class PostureSnapshotTechnique extends BaseModel {

    static override tableName = 'posture_snapshot_techniques';

    static override idColumn = ['snapshot_id', 'technique_id'];

    declare snapshot_id: string;
    declare technique_id: string;
    declare domain: string;
    declare is_subtechnique: boolean;
    declare coverage_status: CoverageStatusName;
    declare score: number | null;
    declare own_coverage_status: CoverageStatusName;
    declare own_score: number | null;
    declare needs_review: boolean;
    declare latest_validated_at: Date | null;
}
