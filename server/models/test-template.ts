import type { QueryBuilder } from 'objection';

import { testAccess, type Actor } from '../policy';

import { BaseModel } from './base';
import { Test, type Priority } from './test';


export class TestTemplate extends BaseModel {

    static override tableName = 'test_templates';

    declare id: string;
    declare name: string;
    declare description: string | null;
    declare objective: string | null;
    declare procedure: string | null;
    declare expected_outcome: string | null;
    declare expected_detection: string | null;
    declare technique_ids: string[];
    declare platforms: string[];
    declare tags: string[];
    declare priority: Priority;
    declare tool: string | null;
    declare command: string | null;
    declare cleanup_command: string | null;
    declare executor: Record<string, unknown> | null;
    declare input_arguments: Record<string, unknown>;
    declare source: 'manual' | 'test' | 'atomic';
    declare source_ref: string | null;
    declare source_test_id: string | null;
    declare created_by: string | null;

    static override get jsonAttributes() {

        return ['executor', 'input_arguments'];
    }

    static override modifiers = {
        // A copy of a test is as visible as the test: its classification may have been raised since the copy
        visibleTo(query: QueryBuilder<TestTemplate>, actor: Actor) {

            if (testAccess(actor)) {
                query.where((q) => q.whereNull('test_templates.source_test_id').orWhereIn('test_templates.source_test_id', Test.query().select('tests.id').modify('visibleTo', actor)));
            }
        }
    };
}
