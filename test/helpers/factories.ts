import * as Crypto from 'crypto';

import type { Knex } from '../../server/db';
import { Test } from '../../server/models';
import type { TestState } from '../../server/services/test-lifecycle';


// Techniques the tests need, created when missing; never assumes what else the shared database holds
export const technique = async (knex: Knex, mitreId = 'T1059.001', overrides: { revoked?: boolean; revoked_by_id?: string | null; name?: string } = {}): Promise<string> => {

    await knex.raw(`insert into techniques (mitre_id, domain, name, revoked, revoked_by_id) values (?, 'enterprise-attack', ?, ?, ?) on conflict (mitre_id) do nothing`, [mitreId, overrides.name ?? `Technique ${mitreId}`, overrides.revoked ?? false, overrides.revoked_by_id ?? null]);
    return mitreId;
};


// A technique id of its own for a test that must not share coverage with another script: T9xxx.yyy
export const uniqueTechnique = async (knex: Knex): Promise<string> => {

    const id = `T9${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}.${String(Crypto.randomInt(0, 1000)).padStart(3, '0')}`;
    return await technique(knex, id);
};


// The body as a client sees it (computed fields included)
export const json = <T = Record<string, any>>(res: { payload: string }): T => JSON.parse(res.payload) as T;


// A test row in any state, written directly (the lifecycle itself is tested through the routes)
export const testRow = async (knex: Knex, overrides: Partial<Test> & { state?: TestState } = {}): Promise<Test> => {

    const techniqueId = overrides.technique_id ?? await technique(knex);
    const state = overrides.state ?? 'draft';
    const running = state === 'red_executing' || state === 'blue_evaluating';
    const now = new Date();
    return await Test.query(knex).insertAndFetch({
        title: `Test ${Crypto.randomBytes(3).toString('hex')}`,
        technique_id: techniqueId,
        state,
        timer_started_at: running ? now : null,
        executed_at: state === 'draft' ? null : new Date(now.getTime() - 60_000),
        attack_result: state === 'draft' ? null : 'succeeded',
        detections: state === 'draft' || state === 'red_executing' ? [] : [{ tool: 'EDR', outcome: 'alerted', detected_at: now.toISOString() }],
        detection_outcome: state === 'draft' || state === 'red_executing' ? null : 'alerted',
        detected_at: state === 'draft' || state === 'red_executing' ? null : now,
        // The decisions the database requires of a decided test (migrations/20261206000300_integrity.ts)
        ...state === 'validated' ? { red_approved: true, red_validated_at: now, blue_approved: true, blue_validated_at: now, validated_at: now } : {},
        ...state === 'rejected' ? { blue_approved: false, blue_validated_at: now, rejected_at: now } : {},
        ...overrides
    } as Partial<Test>);
};


// A multipart/form-data body, as a browser sends an upload form
export const multipartForm = (fields: Record<string, string>, file?: { name: string; data: Buffer }) => {

    const boundary = `----aegis${Crypto.randomBytes(8).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const [name, value] of Object.entries(fields)) {
        parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
    }

    if (file) {
        parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), file.data, Buffer.from('\r\n'));
    }

    parts.push(Buffer.from(`--${boundary}--\r\n`));
    return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
};
