// The purple-team test state machine as one declarative table (style.md P7). Pure: no IO, no clock of its own.
// Routes read their scopes from it, TestsService applies it, docs/tests.md renders it, the tests walk it.

import { Access, type Actor, type Role } from '../policy';


export const testStates = ['draft', 'red_executing', 'blue_evaluating', 'in_review', 'validated', 'rejected'] as const;
export type TestState = typeof testStates[number];

export const testActions = ['start-execution', 'submit-red', 'submit-blue', 'validate-red', 'validate-blue', 'reopen', 'pause-timer', 'resume-timer'] as const;
export type TestAction = typeof testActions[number];

// What a transition does to the timer: start a red segment, hand over to a blue segment, stop, pause, resume
export type TimerEffect = 'start' | 'handover' | 'stop' | 'pause' | 'resume' | 'none';

// Side effects the service performs in the transaction of the change
export type Effect = 'record-red-decision' | 'record-blue-decision' | 'clear-decisions' | 'recompute-coverage' | 'emit-state-changed' | 'emit-validated';

// Who is told that it is their turn
export type Audience = 'red_assignee' | 'blue_assignee' | 'red_leads' | 'blue_leads' | 'assignees';

export interface Transition {
    from: readonly TestState[];
    to: TestState | 'decision' | 'same';                // 'decision': the validation outcome decides (see decide())
    roles: readonly Role[];
    requires: readonly string[];                        // fields that must be set on the test before the move
    timer: TimerEffect;
    effects: readonly Effect[];
    notify: readonly Audience[];
    description: string;
}


export const lifecycle = {
    'start-execution': {
        from: ['draft'], to: 'red_executing', roles: Access.red, requires: [], timer: 'start',
        effects: ['emit-state-changed'], notify: ['red_assignee'],
        description: 'The red team starts executing the technique; the timer starts'
    },
    'submit-red': {
        from: ['red_executing'], to: 'blue_evaluating', roles: Access.red, requires: ['executed_at', 'attack_result'], timer: 'handover',
        effects: ['emit-state-changed'], notify: ['blue_assignee'],
        description: 'Red hands over to blue; red time is banked and blue time starts'
    },
    'submit-blue': {
        from: ['blue_evaluating'], to: 'in_review', roles: Access.blue, requires: ['detections'], timer: 'stop',
        effects: ['emit-state-changed'], notify: ['red_leads', 'blue_leads'],
        description: 'Blue submits its detections for review by both leads; the timer stops'
    },
    'validate-red': {
        from: ['in_review'], to: 'decision', roles: Access.redLead, requires: [], timer: 'none',
        effects: ['record-red-decision', 'emit-state-changed', 'emit-validated', 'recompute-coverage'], notify: ['assignees'],
        description: 'The red lead approves or rejects the red side (a rejection needs a comment)'
    },
    'validate-blue': {
        from: ['in_review'], to: 'decision', roles: Access.blueLead, requires: [], timer: 'none',
        effects: ['record-blue-decision', 'emit-state-changed', 'emit-validated', 'recompute-coverage'], notify: ['assignees'],
        description: 'The blue lead approves or rejects the blue side (a rejection needs a comment)'
    },
    'reopen': {
        from: ['rejected'], to: 'draft', roles: Access.leads, requires: [], timer: 'none',
        effects: ['clear-decisions', 'emit-state-changed'], notify: ['red_assignee'],
        description: 'A rejected test goes back to draft; decisions are cleared, red/blue fields and evidence kept'
    },
    'pause-timer': {
        from: ['red_executing', 'blue_evaluating'], to: 'same', roles: Access.allExceptViewer, requires: [], timer: 'pause',
        effects: [], notify: [],
        description: 'Pause the working-time counter (409 when already paused)'
    },
    'resume-timer': {
        from: ['red_executing', 'blue_evaluating'], to: 'same', roles: Access.allExceptViewer, requires: [], timer: 'resume',
        effects: [], notify: [],
        description: 'Resume the working-time counter (409 when running)'
    }
} as const satisfies Record<TestAction, Transition>;


// Edits that are not transitions: which state allows them and which roles may make them
export const editActions = ['update', 'red', 'blue', 'remediation', 'classification', 'evidence-red', 'evidence-blue', 'evidence-delete'] as const;
export type EditAction = typeof editActions[number];

export interface EditRule {
    states: readonly TestState[];
    roles: readonly Role[];
    description: string;
}

export const edits = {
    'update': { states: ['draft', 'rejected'], roles: Access.leads, description: 'PATCH /tests/{id}: general fields' },
    'red': { states: ['red_executing'], roles: Access.red, description: 'PATCH /tests/{id}/red: red-side fields' },
    'blue': { states: ['blue_evaluating'], roles: Access.blue, description: 'PATCH /tests/{id}/blue: blue-side fields' },
    'remediation': { states: ['validated', 'rejected'], roles: Access.leads, description: 'PATCH /tests/{id}/remediation' },
    'classification': { states: testStates, roles: Access.admin, description: 'PATCH /tests/{id}/classification: an access label, allowed in every state' },
    'evidence-red': { states: ['red_executing'], roles: Access.red, description: 'POST /tests/{id}/evidence with team=red' },
    'evidence-blue': { states: ['blue_evaluating'], roles: Access.blue, description: 'POST /tests/{id}/evidence with team=blue' },
    'evidence-delete': { states: ['draft', 'red_executing', 'blue_evaluating', 'in_review', 'rejected'], roles: Access.any, description: 'DELETE /evidence/{id}: the uploader, or RL/BL/A; never on a validated test' }
} as const satisfies Record<EditAction, EditRule>;


// The part of a test the table looks at
export interface LifecycleSnapshot {
    state: TestState;
    red_approved: boolean | null;
    blue_approved: boolean | null;
    timer_paused: boolean;
    timer_started_at: Date | null;
}

export type Refusal =
    { kind: 'state' } |                                 // 409 invalid_state_transition
    { kind: 'conflict'; code: string; message: string } |   // 409 with its own code
    { kind: 'missing'; fields: string[] };              // 400 naming the fields

export type Outcome = { ok: true; to: TestState } | { ok: false; refusal: Refusal };


const internals = {
    running: (test: LifecycleSnapshot) => test.timer_started_at !== null && !test.timer_paused
};


export const roleAllows = (roles: readonly Role[], actor: Pick<Actor, 'role'>): boolean => actor.role === 'system' || (roles as readonly string[]).includes(actor.role);


// Is the move legal, and where does it go? `present` lists the required fields the test has; `approved` is the
// decision of a validation.
export const decide = (action: TestAction, test: LifecycleSnapshot, input: { present?: readonly string[]; approved?: boolean } = {}): Outcome => {

    const transition: Transition = lifecycle[action];
    if (!transition.from.includes(test.state)) {
        return { ok: false, refusal: { kind: 'state' } };
    }

    switch (transition.timer) {
        case 'pause':
            return internals.running(test) ? { ok: true, to: test.state } : { ok: false, refusal: { kind: 'conflict', code: 'timer_not_running', message: 'The timer is already paused' } };
        case 'resume':
            return internals.running(test) ? { ok: false, refusal: { kind: 'conflict', code: 'timer_running', message: 'The timer is already running' } } : { ok: true, to: test.state };
    }

    const missing = transition.requires.filter((field) => !input.present?.includes(field));
    if (missing.length) {
        return { ok: false, refusal: { kind: 'missing', fields: missing } };
    }

    if (transition.to === 'same') {
        return { ok: true, to: test.state };
    }

    if (transition.to !== 'decision') {
        return { ok: true, to: transition.to };
    }

    // Each lead decides once; the test is rejected as soon as one side rejects, validated when both approved
    const side = action === 'validate-red' ? 'red_approved' : 'blue_approved';
    const other = action === 'validate-red' ? 'blue_approved' : 'red_approved';
    if (test[side] !== null) {
        return { ok: false, refusal: { kind: 'conflict', code: 'already_decided', message: `The ${side === 'red_approved' ? 'red' : 'blue'} side has already been decided` } };
    }

    if (input.approved === false) {
        return { ok: true, to: 'rejected' };
    }

    return { ok: true, to: test[other] === true ? 'validated' : 'in_review' };
};


// The timer fields after a transition at `now` (seconds are banked to the side whose segment was running)
export interface TimerFields {
    red_seconds: number;
    blue_seconds: number;
    timer_started_at: Date | null;
    timer_paused: boolean;
}

export const applyTimer = (effect: TimerEffect, test: TimerFields & { state: TestState }, now: Date): TimerFields => {

    const running = test.timer_started_at !== null && !test.timer_paused;
    const segment = running ? Math.max(0, Math.floor((now.getTime() - test.timer_started_at!.getTime()) / 1000)) : 0;
    const banked = {
        red_seconds: test.red_seconds + (test.state === 'red_executing' ? segment : 0),
        blue_seconds: test.blue_seconds + (test.state === 'blue_evaluating' ? segment : 0)
    };

    switch (effect) {
        case 'start':
        case 'handover':
            return { ...banked, timer_started_at: now, timer_paused: false };
        case 'stop':
            return { ...banked, timer_started_at: null, timer_paused: false };
        case 'pause':
            return { ...banked, timer_started_at: null, timer_paused: true };
        case 'resume':
            return { ...banked, timer_started_at: now, timer_paused: false };
        default:
            return { red_seconds: test.red_seconds, blue_seconds: test.blue_seconds, timer_started_at: test.timer_started_at, timer_paused: test.timer_paused };
    }
};


// elapsed, red and blue seconds as of `now`, counting the segment that runs
export const timerReading = (test: TimerFields & { state: TestState }, now: Date) => {

    const running = test.timer_started_at !== null && !test.timer_paused;
    const current = applyTimer('pause', test, now);
    return {
        red_seconds: current.red_seconds,
        blue_seconds: current.blue_seconds,
        elapsed_seconds: current.red_seconds + current.blue_seconds,
        timer_running: running
    };
};


export const detectionOutcomes = ['prevented', 'alerted', 'logged', 'not_detected', 'not_applicable'] as const;
export type DetectionOutcome = typeof detectionOutcomes[number];

export interface Detection {
    asset_id?: string | null;
    tool?: string | null;
    outcome: DetectionOutcome;
    detected_at?: Date | string | null;
    rule_ids?: string[];
    alert_reference?: string | null;
    notes?: string | null;
}


// domain.md: the strongest outcome among the detections, and the earliest detection time
export const deriveDetection = (detections: readonly Detection[]): { detection_outcome: DetectionOutcome | null; detected_at: Date | null } => {

    const ranked = detections.map((item) => detectionOutcomes.indexOf(item.outcome)).sort((a, b) => a - b);
    const times = detections
        .filter((item) => item.detected_at && item.outcome !== 'not_detected' && item.outcome !== 'not_applicable')
        .map((item) => new Date(item.detected_at!).getTime())
        .sort((a, b) => a - b);

    return {
        detection_outcome: ranked.length ? detectionOutcomes[ranked[0]!]! : null,
        detected_at: times.length ? new Date(times[0]!) : null
    };
};


// submit-blue: at least one detection, each with its time unless nothing was seen or the tool does not apply
export const incompleteDetections = (detections: readonly Detection[]): string[] => detections
    .map((item, index) => (item.detected_at || item.outcome === 'not_detected' || item.outcome === 'not_applicable' ? null : `detections.${index}.detected_at`))
    .filter((field): field is string => field !== null);


// The detections timed before the execution, as the fields to name in a 400
export const detectedBefore = (detections: readonly Detection[], executedAt: Date): string[] => detections
    .map((item, index) => (item.detected_at && new Date(item.detected_at).getTime() < executedAt.getTime() ? `detections.${index}.detected_at` : null))
    .filter((field): field is string => field !== null);


// The table as markdown, for docs/tests.md (a test checks that the document holds exactly this)
export const renderLifecycleTable = (): string => {

    const abbreviations: Record<string, string> = { admin: 'A', red_lead: 'RL', blue_lead: 'BL', red_tech: 'RT', blue_tech: 'BT', viewer: 'V' };
    const who = (list: readonly string[]) => list.map((role) => abbreviations[role] ?? role).join(', ');
    const code = (list: readonly string[]) => (list.length ? list.map((item) => `\`${item}\``).join(', ') : '-');
    const lines = [
        '| action | from | to | roles | requires | timer | effects | notifies |',
        '|---|---|---|---|---|---|---|---|',
        ...testActions.map((action) => {

            const transition: Transition = lifecycle[action];
            const to = transition.to === 'decision' ? '`validated` when both approved, `rejected` on a rejection, else stays `in_review`' : transition.to === 'same' ? '(unchanged)' : `\`${transition.to}\``;
            return `| \`${action}\` | ${code(transition.from)} | ${to} | ${who(transition.roles)} | ${code(transition.requires)} | ${transition.timer} | ${code(transition.effects)} | ${code(transition.notify)} |`;
        }),
        '',
        '| edit | allowed in | roles | route |',
        '|---|---|---|---|',
        ...editActions.map((edit) => {

            const rule: EditRule = edits[edit];
            return `| \`${edit}\` | ${code(rule.states)} | ${who(rule.roles)} | ${rule.description} |`;
        })
    ];

    return lines.join('\n');
};
