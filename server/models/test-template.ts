import type { Priority } from './test';
import { BaseModel } from './base';


export class TestTemplate extends BaseModel {

    static override tableName = 'test_templates';

    id!: string;
    name!: string;
    description!: string | null;
    objective!: string | null;
    procedure!: string | null;
    expected_outcome!: string | null;
    expected_detection!: string | null;
    technique_ids!: string[];
    platforms!: string[];
    tags!: string[];
    priority!: Priority;
    tool!: string | null;
    command!: string | null;
    cleanup_command!: string | null;
    executor!: Record<string, unknown> | null;
    input_arguments!: Record<string, unknown>;
    source!: 'manual' | 'test' | 'atomic';
    source_ref!: string | null;
    source_test_id!: string | null;
    created_by!: string | null;

    static override get jsonAttributes() {

        return ['executor', 'input_arguments'];
    }
}
