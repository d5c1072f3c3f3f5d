import * as Fs from 'fs';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { Access, roles } from '../../server/policy';
import {
    applyTimer, decide, deriveDetection, edits, incompleteDetections, lifecycle, renderLifecycleTable, roleAllows, testActions, testStates, timerReading,
    type LifecycleSnapshot, type TestState
} from '../../server/services/test-lifecycle';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


const internals = {
    snapshot: (state: TestState, overrides: Partial<LifecycleSnapshot> = {}): LifecycleSnapshot => ({
        state,
        red_approved: null,
        blue_approved: null,
        timer_paused: false,
        timer_started_at: state === 'red_executing' || state === 'blue_evaluating' ? new Date() : null,
        ...overrides
    }),
    all: { present: ['executed_at', 'attack_result', 'detections'], approved: true }
};


describe('The test lifecycle table', () => {

    it('walks the happy path draft → red_executing → blue_evaluating → in_review → validated', () => {

        expect(decide('start-execution', internals.snapshot('draft'))).to.equal({ ok: true, to: 'red_executing' });
        expect(decide('submit-red', internals.snapshot('red_executing'), internals.all)).to.equal({ ok: true, to: 'blue_evaluating' });
        expect(decide('submit-blue', internals.snapshot('blue_evaluating'), internals.all)).to.equal({ ok: true, to: 'in_review' });
        expect(decide('validate-red', internals.snapshot('in_review'), internals.all)).to.equal({ ok: true, to: 'in_review' });
        expect(decide('validate-blue', internals.snapshot('in_review', { red_approved: true }), internals.all)).to.equal({ ok: true, to: 'validated' });
        expect(decide('validate-red', internals.snapshot('in_review', { blue_approved: true }), internals.all)).to.equal({ ok: true, to: 'validated' });
    });

    it('rejects as soon as one side rejects, and reopens a rejected test to draft', () => {

        expect(decide('validate-red', internals.snapshot('in_review'), { approved: false })).to.equal({ ok: true, to: 'rejected' });
        expect(decide('validate-blue', internals.snapshot('in_review', { red_approved: true }), { approved: false })).to.equal({ ok: true, to: 'rejected' });
        expect(decide('reopen', internals.snapshot('rejected'))).to.equal({ ok: true, to: 'draft' });
        expect(lifecycle.reopen.effects).to.include('clear-decisions');
    });

    it('refuses a second decision of the same side', () => {

        expect(decide('validate-red', internals.snapshot('in_review', { red_approved: true }), internals.all)).to.equal({ ok: false, refusal: { kind: 'conflict', code: 'already_decided', message: 'The red side has already been decided' } });
        expect(decide('validate-blue', internals.snapshot('in_review', { blue_approved: false }), internals.all)).to.equal({ ok: false, refusal: { kind: 'conflict', code: 'already_decided', message: 'The blue side has already been decided' } });
    });

    it('names the missing fields of submit-red and submit-blue', () => {

        expect(decide('submit-red', internals.snapshot('red_executing'))).to.equal({ ok: false, refusal: { kind: 'missing', fields: ['executed_at', 'attack_result'] } });
        expect(decide('submit-red', internals.snapshot('red_executing'), { present: ['executed_at'] })).to.equal({ ok: false, refusal: { kind: 'missing', fields: ['attack_result'] } });
        expect(decide('submit-blue', internals.snapshot('blue_evaluating'))).to.equal({ ok: false, refusal: { kind: 'missing', fields: ['detections'] } });
    });

    it('answers a state refusal for every action outside its from states, and nothing else', () => {

        let checked = 0;
        for (const action of testActions) {
            for (const state of testStates) {
                const outcome = decide(action, internals.snapshot(state), internals.all);
                const legal = (lifecycle[action].from as readonly string[]).includes(state);
                expect(outcome.ok || (outcome as { refusal: { kind: string } }).refusal.kind !== 'state', `${action} from ${state}`).to.equal(legal);
                checked++;
            }
        }

        expect(checked).to.equal(testActions.length * testStates.length);
    });

    it('pauses only a running timer and resumes only a paused one', () => {

        expect(decide('pause-timer', internals.snapshot('red_executing'))).to.equal({ ok: true, to: 'red_executing' });
        expect(decide('pause-timer', internals.snapshot('blue_evaluating', { timer_paused: true, timer_started_at: null }))).to.equal({ ok: false, refusal: { kind: 'conflict', code: 'timer_not_running', message: 'The timer is already paused' } });
        expect(decide('resume-timer', internals.snapshot('blue_evaluating'))).to.equal({ ok: false, refusal: { kind: 'conflict', code: 'timer_running', message: 'The timer is already running' } });
        expect(decide('resume-timer', internals.snapshot('red_executing', { timer_paused: true, timer_started_at: null }))).to.equal({ ok: true, to: 'red_executing' });
        expect(decide('pause-timer', internals.snapshot('in_review'))).to.equal({ ok: false, refusal: { kind: 'state' } });
    });

    it('banks timer seconds per side: start, pause, resume, hand-over, stop', () => {

        const t0 = new Date('2026-01-01T00:00:00Z');
        const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
        const zero = { red_seconds: 0, blue_seconds: 0, timer_started_at: null, timer_paused: false };

        let timer = applyTimer('start', { ...zero, state: 'draft' }, t0);
        expect(timer).to.equal({ red_seconds: 0, blue_seconds: 0, timer_started_at: t0, timer_paused: false });
        expect(timerReading({ ...timer, state: 'red_executing' }, at(30))).to.equal({ red_seconds: 30, blue_seconds: 0, elapsed_seconds: 30, timer_running: true });

        timer = applyTimer('pause', { ...timer, state: 'red_executing' }, at(60));
        expect(timer).to.equal({ red_seconds: 60, blue_seconds: 0, timer_started_at: null, timer_paused: true });
        expect(timerReading({ ...timer, state: 'red_executing' }, at(1000))).to.equal({ red_seconds: 60, blue_seconds: 0, elapsed_seconds: 60, timer_running: false });

        timer = applyTimer('resume', { ...timer, state: 'red_executing' }, at(100));
        timer = applyTimer('handover', { ...timer, state: 'red_executing' }, at(130));
        expect(timer).to.equal({ red_seconds: 90, blue_seconds: 0, timer_started_at: at(130), timer_paused: false });

        timer = applyTimer('stop', { ...timer, state: 'blue_evaluating' }, at(200));
        expect(timer).to.equal({ red_seconds: 90, blue_seconds: 70, timer_started_at: null, timer_paused: false });
        expect(applyTimer('none', { ...timer, state: 'in_review' }, at(500))).to.equal(timer);

        // A hand-over while paused starts the blue side running: blue's work begins when red hands over
        const paused = applyTimer('handover', { red_seconds: 10, blue_seconds: 0, timer_started_at: null, timer_paused: true, state: 'red_executing' }, at(10));
        expect(paused).to.equal({ red_seconds: 10, blue_seconds: 0, timer_started_at: at(10), timer_paused: false });
    });

    it('derives the detection outcome (strongest) and time (earliest), and names incomplete detections', () => {

        expect(deriveDetection([])).to.equal({ detection_outcome: null, detected_at: null });
        expect(deriveDetection([
            { tool: 'SIEM', outcome: 'logged', detected_at: '2026-01-01T00:05:00Z' },
            { tool: 'EDR', outcome: 'alerted', detected_at: '2026-01-01T00:07:00Z' },
            { tool: 'NDR', outcome: 'not_detected', detected_at: '2026-01-01T00:01:00Z' }
        ])).to.equal({ detection_outcome: 'alerted', detected_at: new Date('2026-01-01T00:05:00Z') });
        expect(deriveDetection([{ tool: 'x', outcome: 'not_applicable' }, { tool: 'y', outcome: 'not_detected' }])).to.equal({ detection_outcome: 'not_detected', detected_at: null });
        expect(incompleteDetections([{ tool: 'x', outcome: 'alerted' }, { tool: 'y', outcome: 'not_detected' }, { tool: 'z', outcome: 'prevented', detected_at: new Date() }])).to.equal(['detections.0.detected_at']);
    });

    it('uses the role sets of the API reference', () => {

        expect(lifecycle['start-execution'].roles).to.equal(Access.red);
        expect(lifecycle['submit-red'].roles).to.equal(Access.red);
        expect(lifecycle['submit-blue'].roles).to.equal(Access.blue);
        expect(lifecycle['validate-red'].roles).to.equal(Access.redLead);
        expect(lifecycle['validate-blue'].roles).to.equal(Access.blueLead);
        expect(lifecycle.reopen.roles).to.equal(Access.leads);
        expect(lifecycle['pause-timer'].roles).to.equal(Access.allExceptViewer);
        expect(edits.update.roles).to.equal(Access.leads);
        expect(edits.classification.roles).to.equal(Access.admin);
        expect(roleAllows(Access.red, { role: 'system' })).to.be.true();
        expect(roles.filter((role) => roleAllows(Access.blue, { role }))).to.equal(['admin', 'blue_lead', 'blue_tech']);
    });

    it('is rendered in docs/tests.md exactly as the module says', () => {

        const doc = Fs.readFileSync(Path.join(__dirname, '..', '..', 'docs', 'tests.md'), 'utf8');
        expect(doc).to.include(renderLifecycleTable());
    });
});
