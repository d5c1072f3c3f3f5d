import { BaseModel } from './base';


export const executionStates = ['pending', 'running', 'completed', 'aborted'] as const;
export type ExecutionState = typeof executionStates[number];

export const stepOutcomes = ['succeeded', 'failed', 'blocked', 'detected', 'skipped'] as const;
export type StepOutcome = typeof stepOutcomes[number];


export class AttackPath extends BaseModel {

    static override tableName = 'attack_paths';

    declare id: string;
    declare name: string;
    declare description: string | null;
    declare tags: string[];
    declare created_by: string | null;
}


export class AttackPathStep extends BaseModel {

    static override tableName = 'attack_path_steps';

    declare id: string;
    declare path_id: string;
    declare position: number;
    declare technique_id: string;
    declare notes: string | null;
    declare template_id: string | null;
    declare created_by: string | null;
}


export class AttackPathExecution extends BaseModel {

    static override tableName = 'attack_path_executions';

    declare id: string;
    declare path_id: string | null;
    declare path_name: string;
    declare state: ExecutionState;
    declare notes: string | null;
    declare started_at: Date | null;
    declare started_by: string | null;
    declare completed_at: Date | null;
    declare aborted_at: Date | null;
    declare abort_reason: string | null;
    declare created_by: string | null;
}


export class ExecutionStep extends BaseModel {

    static override tableName = 'attack_path_execution_steps';

    declare id: string;
    declare execution_id: string;
    declare path_step_id: string | null;
    declare position: number;
    declare technique_id: string;
    declare step_notes: string | null;
    declare template_id: string | null;
    declare outcome: StepOutcome | null;
    declare notes: string | null;
    declare executed_at: Date | null;
    declare test_id: string | null;
    declare recorded_by: string | null;
    declare recorded_at: Date | null;
}
