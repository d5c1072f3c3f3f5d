import * as Crypto from 'crypto';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { createKnex, type Knex } from '../../server/db';

import { technique, testRow } from '../helpers/factories';
import { testDatabaseUrl } from '../helpers/db';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// Each rule of migrations/20261206000300_integrity.ts: an impossible row written directly is refused by name
describe('Database integrity', () => {

    let knex: Knex;
    const refused = async (write: () => Promise<unknown>, constraint: string) => {

        const err = await expect(write()).to.reject();
        expect((err as { constraint?: string }).constraint, constraint).to.equal(constraint);
    };

    before(async () => {

        knex = createKnex({ url: await testDatabaseUrl() });
        await technique(knex);
    });

    after(async () => {

        await knex.destroy();
    });

    it('ties a test\'s state to its fields', async () => {

        const validated = await testRow(knex, { state: 'validated' });
        const tests = () => knex('tests').where('id', validated.id);
        await refused(() => tests().update({ validated_at: null }), 'tests_validated_check');
        await refused(() => tests().update({ blue_approved: false }), 'tests_validated_check');
        await refused(() => tests().update({ detection_outcome: null }), 'tests_validated_check');
        await refused(() => testRow(knex, { state: 'in_review', validated_at: new Date() }), 'tests_validated_check');

        const rejected = await testRow(knex, { state: 'rejected' });
        await refused(() => knex('tests').where('id', rejected.id).update({ rejected_at: null }), 'tests_rejected_check');
        await refused(() => knex('tests').where('id', rejected.id).update({ blue_approved: true }), 'tests_rejected_check');
        await refused(() => testRow(knex, { state: 'draft', rejected_at: new Date() }), 'tests_rejected_check');

        await refused(() => testRow(knex, { state: 'in_review', red_approved: true }), 'tests_red_decision_check');
        await refused(() => testRow(knex, { state: 'in_review', blue_validated_at: new Date() }), 'tests_blue_decision_check');

        // A paused timer has no running start; only red_executing and blue_evaluating have a timer at all
        const running = await testRow(knex, { state: 'red_executing' });
        await refused(() => knex('tests').where('id', running.id).update({ timer_paused: true }), 'tests_timer_check');
        await refused(() => testRow(knex, { state: 'in_review', timer_started_at: new Date() }), 'tests_timer_check');
        await refused(() => testRow(knex, { state: 'draft', timer_paused: true }), 'tests_timer_check');

        await refused(() => knex('tests').where('id', running.id).update({ red_seconds: -1 }), 'tests_counters_check');
        await refused(() => knex('tests').where('id', running.id).update({ blue_seconds: -5 }), 'tests_counters_check');
        await refused(() => knex('tests').where('id', running.id).update({ version: 0 }), 'tests_counters_check');

        await refused(() => testRow(knex, { state: 'blue_evaluating', executed_at: new Date('2026-11-28T10:00:00Z'), detected_at: new Date('2026-11-28T09:59:00Z') }), 'tests_detected_after_executed_check');

        // What the lifecycle writes stays possible
        expect(await knex('tests').where('id', running.id).update({ timer_paused: true, timer_started_at: null, red_seconds: 10 })).to.equal(1);
    });

    it('refuses a negative evidence size', async () => {

        const test = await testRow(knex, { state: 'red_executing' });
        await refused(() => knex('evidence').insert({ test_id: test.id, team: 'red', storage_key: `evidence/${Crypto.randomUUID()}`, original_name: 'a.txt', content_type: 'text/plain', size: -1, sha256: '0'.repeat(64) }), 'evidence_size_check');
    });

    it('keeps techniques consistent: parent and flag, review fields, the latest validated test', async () => {

        const parent = await technique(knex, 'T8001');
        await refused(() => knex('techniques').insert({ mitre_id: 'T8001.001', domain: 'enterprise-attack', name: 'Orphan flag', is_subtechnique: true }), 'techniques_subtechnique_check');
        await refused(() => knex('techniques').insert({ mitre_id: 'T8001.002', domain: 'enterprise-attack', name: 'Unflagged child', parent_id: parent }), 'techniques_subtechnique_check');
        await knex('techniques').insert({ mitre_id: 'T8001.003', domain: 'enterprise-attack', name: 'Child', parent_id: parent, is_subtechnique: true });

        await refused(() => knex('techniques').where('mitre_id', parent).update({ review_reason: 'left behind' }), 'techniques_review_check');
        await refused(() => knex('techniques').where('mitre_id', parent).update({ needs_review: true }), 'techniques_review_check');
        expect(await knex('techniques').where('mitre_id', parent).update({ needs_review: true, review_reason: 'why', review_requested_at: new Date() })).to.equal(1);
        await refused(() => knex('techniques').where('mitre_id', parent).update({ needs_review: false }), 'techniques_review_check');

        // The own figure follows the latest validated test, which exists; the figure's score follows its status
        const covered = { own_coverage_status: 'covered', own_score: 90, coverage_status: 'covered', score: 90 };
        await refused(() => knex('techniques').where('mitre_id', parent).update({ ...covered, latest_validated_test_id: Crypto.randomUUID(), latest_validated_at: new Date() }), 'techniques_latest_validated_test_id_foreign');
        const test = await testRow(knex, { technique_id: parent, state: 'validated' });
        await refused(() => knex('techniques').where('mitre_id', parent).update({ ...covered, latest_validated_test_id: test.id }), 'techniques_latest_validated_check');
        await refused(() => knex('techniques').where('mitre_id', parent).update({ latest_validated_test_id: test.id, latest_validated_at: test.validated_at }), 'techniques_own_coverage_check');
        await refused(() => knex('techniques').where('mitre_id', parent).update({ coverage_status: 'partial' }), 'techniques_own_coverage_check');
        await refused(() => knex('techniques').where('mitre_id', parent).update({ ...covered, own_score: 101, latest_validated_test_id: test.id, latest_validated_at: test.validated_at }), 'techniques_own_score_check');
        expect(await knex('techniques').where('mitre_id', parent).update({ ...covered, latest_validated_test_id: test.id, latest_validated_at: test.validated_at })).to.equal(1);
        await refused(() => knex('tests').where('id', test.id).delete(), 'techniques_latest_validated_test_id_foreign');
    });

    it('refuses a template pointing at a test that does not exist, and a local user without a password hash', async () => {

        await refused(() => knex('test_templates').insert({ name: 'Dangling', source: 'test', source_test_id: Crypto.randomUUID() }), 'test_templates_source_test_id_foreign');
        await refused(() => knex('users').insert({ username: `nopass-${Crypto.randomBytes(3).toString('hex')}`, role: 'viewer' }), 'users_local_password_check');
        await refused(() => knex('users').insert({ username: `nopass-${Crypto.randomBytes(3).toString('hex')}`, role: 'viewer', auth_provider: 'local', password_hash: null }), 'users_local_password_check');
    });

    it('tells custom data components from imported ones: no STIX id and an XDC id, or a STIX id and no XDC id', async () => {

        const component = (row: object) => knex('data_components').insert({ domain: 'enterprise-attack', name: 'Telemetry', ...row });
        await refused(() => component({ is_custom: true, mitre_id: 'XDC0001', stix_id: `x-mitre-data-component--${Crypto.randomUUID()}` }), 'data_components_custom_check');
        await refused(() => component({ is_custom: true, mitre_id: 'DC0001' }), 'data_components_custom_check');
        await refused(() => component({ is_custom: false, mitre_id: 'DC0001' }), 'data_components_custom_check');
        await refused(() => component({ is_custom: false, mitre_id: 'XDC0002', stix_id: `x-mitre-data-component--${Crypto.randomUUID()}` }), 'data_components_custom_check');
        await component({ is_custom: true, mitre_id: 'XDC9001' });
        await refused(() => component({ is_custom: true, mitre_id: 'XDC9001' }), 'data_components_custom_id_unique');
        await knex('data_components').where('mitre_id', 'XDC9001').delete();       // the run's database is shared
    });
});
