import type { QueryBuilder } from 'objection';

import { testAccess, type Actor } from '../policy';

import { BaseModel } from './base';
import { Test } from './test';


export const playbookTypes = ['attack', 'detection', 'response', 'hunting', 'remediation'] as const;
export type PlaybookType = typeof playbookTypes[number];

export const lessonSeverities = ['low', 'medium', 'high', 'critical'] as const;
export type LessonSeverity = typeof lessonSeverities[number];

export const lessonStatuses = ['open', 'in_progress', 'resolved'] as const;
export type LessonStatus = typeof lessonStatuses[number];


export class Playbook extends BaseModel {

    static override tableName = 'playbooks';

    declare id: string;
    declare title: string;
    declare type: PlaybookType;
    declare technique_ids: string[];
    declare body: string;
    declare tags: string[];
    declare version: number;
    declare created_by: string | null;
    declare updated_by: string | null;
}


// Immutable: inserted, never updated (a trigger refuses it)
export class PlaybookVersion extends BaseModel {

    static override tableName = 'playbook_versions';

    declare id: string;
    declare playbook_id: string;
    declare version: number;
    declare title: string;
    declare type: PlaybookType;
    declare technique_ids: string[];
    declare body: string;
    declare tags: string[];
    declare restored_from: number | null;
    declare author_id: string | null;
}


export class Lesson extends BaseModel {

    static override tableName = 'lessons';

    declare id: string;
    declare title: string;
    declare severity: LessonSeverity;
    declare status: LessonStatus;
    declare technique_id: string | null;
    declare campaign_id: string | null;
    declare test_id: string | null;
    declare body: string;
    declare created_by: string | null;

    static override modifiers = {
        // A lesson drawn from a test tells of that test: it is as visible as the test
        visibleTo(query: QueryBuilder<Lesson>, actor: Actor) {

            if (testAccess(actor)) {
                query.where((q) => q.whereNull('lessons.test_id').orWhereIn('lessons.test_id', Test.query().select('tests.id').modify('visibleTo', actor)));
            }
        }
    };
}
