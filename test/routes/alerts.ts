import * as Crypto from 'crypto';
import type * as Net from 'net';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import { Alert, AlertRule, type Test } from '../../server/models';
import { systemActor, type Role } from '../../server/policy';
import { risksAbove } from '../../server/services/risk';
import { recomputeRisk } from '../../worker/jobs/risk';

import { json, testRow, uniqueTechnique } from '../helpers/factories';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    day: 86_400_000,
    dateOnly: (date: Date) => date.toISOString().slice(0, 10)
};


describe('Alerts', () => {

    let context: TestContext;
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    // A validated test of a technique, as the lifecycle leaves it, and the technique's stored coverage recomputed
    const validated = async (techniqueId: string, outcome: string, options: { retestOf?: Test; daysAgo?: number; overrides?: Partial<Test> } = {}): Promise<Test> => {

        const at = new Date(Date.now() - (options.daysAgo ?? 0) * internals.day);
        const test = await testRow(context.knex, {
            technique_id: techniqueId, state: 'validated', retest_of_id: options.retestOf?.id ?? null,
            detections: [{ tool: 'EDR', outcome, detected_at: at.toISOString() }] as never, detection_outcome: outcome as never,
            validated_at: at, red_validated_at: at, blue_validated_at: at, ...options.overrides
        });

        await context.knex.transaction((trx) => context.services.coverage.recompute(trx, systemActor, [techniqueId]));
        return test;
    };

    const rule = async (rule_type: string, parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) => {

        const res = await request('blue_lead', 'POST', '/alerts/rules', { name: `${rule_type} ${Crypto.randomBytes(3).toString('hex')}`, rule_type, parameters, ...extra });
        expect(res.statusCode, res.payload).to.equal(201);
        return json(res);
    };

    const instances = (ruleId: string) => Alert.query(context.knex).where('rule_id', ruleId).orderBy('fired_at').orderBy('id');

    const evaluate = () => context.services.alerts.evaluate(systemActor);

    const count = async (table: string, where: Record<string, unknown>) => Number((await context.knex(table).where(where).count('* as n'))[0]!.n);

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        // Rules of this script stay quiet for the scripts that run after it in the shared database
        await AlertRule.query(context.knex).delete().whereIn('id', AlertRule.query(context.knex).select('id').where('name', '~', '^(coverage_regression|stale_validation|detection_failure|risk_threshold|sla_breach) [0-9a-f]{6}$'));
        await context.stop();
    });

    describe('rules', () => {

        it('creates a rule of each type with its parameters checked and their defaults filled, reads, changes and deletes it', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const scope = { technique_ids: [techniqueId] };
            const expected: Record<string, Record<string, unknown>> = {
                coverage_regression: { ...scope, min_drop: 1 },
                stale_validation: { ...scope, max_age_days: 180 },
                detection_failure: { ...scope, outcomes: ['not_detected'] },
                risk_threshold: { ...scope, min_risk: 12.5 },
                sla_breach: { ...scope, subjects: ['remediation'], grace_days: 0 }
            };

            const created: Record<string, any> = {};
            for (const [type, parameters] of Object.entries(expected)) {
                created[type] = await rule(type, type === 'risk_threshold' ? { ...scope, min_risk: 12.5 } : scope, { enabled: false });
                expect(created[type]).to.equal({
                    id: created[type].id, name: created[type].name, description: null, rule_type: type, parameters, severity: 'medium', enabled: false,
                    last_evaluated_at: null, created_by: context.users.blue_lead.id, created_at: created[type].created_at, updated_at: created[type].updated_at
                });
            }

            const plain = await request('admin', 'POST', '/alerts/rules', { name: 'sla_breach 000000', rule_type: 'sla_breach', description: 'Remediation SLA', severity: 'low', enabled: false });
            expect(json(plain)).to.include({ parameters: { subjects: ['remediation'], grace_days: 0 }, description: 'Remediation SLA', severity: 'low', created_by: context.users.admin.id });

            const id = created.stale_validation.id;
            expect(json(await request('viewer', 'GET', `/alerts/rules/${id}`))).to.equal(created.stale_validation);
            const listed = json(await request('red_tech', 'GET', '/alerts/rules?rule_type=stale_validation&enabled=false&limit=500'));
            expect(listed.items.map((item: { id: string }) => item.id)).to.include(id);
            expect(listed.items.every((item: { rule_type: string }) => item.rule_type === 'stale_validation')).to.be.true();

            const updated = json(await request('red_lead', 'PATCH', `/alerts/rules/${id}`, { parameters: { max_age_days: 30 }, severity: 'high', description: 'Quarterly retests' }));
            expect(updated).to.include({ parameters: { max_age_days: 30 }, severity: 'high', description: 'Quarterly retests', rule_type: 'stale_validation' });
            expect(json(await request('admin', 'PATCH', `/alerts/rules/${id}`, { description: '' })).description).to.be.null();

            expect((await request('admin', 'DELETE', `/alerts/rules/${id}`)).statusCode).to.equal(204);
            expect((await request('admin', 'GET', `/alerts/rules/${id}`)).statusCode).to.equal(404);
            expect(await context.knex('audit_logs').where({ entity_id: id }).orderBy('created_at').pluck('action')).to.equal(['alert_rule.create', 'alert_rule.update', 'alert_rule.update', 'alert_rule.delete']);
        });

        it('refuses bad rules with a 400 naming the field, and writes nothing', async () => {

            const rulesBefore = await AlertRule.query(context.knex).resultSize();
            const cases: [Record<string, unknown>, string[] | undefined][] = [
                [{ name: 'x', rule_type: 'risk_threshold', parameters: {} }, ['parameters.min_risk']],
                [{ name: 'x', rule_type: 'risk_threshold', parameters: { min_risk: 26 } }, ['parameters.min_risk']],
                [{ name: 'x', rule_type: 'stale_validation', parameters: { max_age_days: '30' } }, ['parameters.max_age_days']],
                [{ name: 'x', rule_type: 'stale_validation', parameters: { min_drop: 1 } }, ['parameters.min_drop']],
                [{ name: 'x', rule_type: 'coverage_regression', parameters: { min_drop: 4, technique_ids: ['nope'] } }, ['parameters.min_drop', 'parameters.technique_ids.0']],
                [{ name: 'x', rule_type: 'detection_failure', parameters: { outcomes: ['alerted'] } }, ['parameters.outcomes.0']],
                [{ name: 'x', rule_type: 'sla_breach', parameters: { subjects: ['test'] } }, ['parameters.subjects.0']],
                [{ name: 'x', rule_type: 'sla_breach', parameters: { grace_days: -1 } }, ['parameters.grace_days']],
                [{ name: 'x', rule_type: 'everything' }, undefined],
                [{ rule_type: 'sla_breach' }, undefined],
                [{ name: 'x', rule_type: 'sla_breach', severity: 'urgent' }, undefined],
                [{ name: 'x', rule_type: 'sla_breach', created_by: context.users.admin.id }, undefined],
                [{ name: 'x', rule_type: 'sla_breach', parameters: [] }, undefined]
            ];

            for (const [payload, fields] of cases) {
                const res = await request('admin', 'POST', '/alerts/rules', payload);
                expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
                if (fields) {
                    expect(json(res).fields, JSON.stringify(payload)).to.equal(fields);
                }
            }

            const existing = await rule('sla_breach', {}, { enabled: false });
            for (const payload of [{ rule_type: 'stale_validation' }, { parameters: { grace_days: 'soon' } }, {}, { enabled: 'sometimes' }]) {
                expect((await request('admin', 'PATCH', `/alerts/rules/${existing.id}`, payload)).statusCode, JSON.stringify(payload)).to.equal(400);
            }

            expect(json(await request('admin', 'GET', `/alerts/rules/${existing.id}`))).to.equal(existing);
            expect(await AlertRule.query(context.knex).resultSize()).to.equal(rulesBefore + 1);

            for (const [method, url] of [['GET', '/alerts/rules/'], ['PATCH', '/alerts/rules/'], ['DELETE', '/alerts/rules/']] as const) {
                expect((await request('admin', method, `${url}${Crypto.randomUUID()}`, method === 'PATCH' ? { enabled: true } : undefined)).statusCode).to.equal(404);
                expect((await request('admin', method, `${url}not-a-uuid`, method === 'PATCH' ? { enabled: true } : undefined)).statusCode).to.equal(400);
            }

            for (const query of ['rule_type=all', 'enabled=perhaps', 'sort=parameters', 'limit=501']) {
                expect((await request('viewer', 'GET', `/alerts/rules?${query}`)).statusCode, query).to.equal(400);
            }

            expect((await request('red_lead', 'DELETE', `/alerts/rules/${existing.id}`)).statusCode).to.equal(403);
            expect((await request('red_tech', 'POST', '/alerts/rules', { name: 'x', rule_type: 'sla_breach' })).statusCode).to.equal(403);
            expect(await AlertRule.query(context.knex).resultSize()).to.equal(rulesBefore + 1);
        });
    });

    describe('rule types', () => {

        it('coverage_regression fires when the latest validation of a retest chain is worse than the one before it, notifies the blue leads, and resolves itself when a retest recovers', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const first = await validated(techniqueId, 'alerted', { daysAgo: 3 });
            const regression = await rule('coverage_regression', { technique_ids: [techniqueId] }, { severity: 'high' });
            const steep = await rule('coverage_regression', { technique_ids: [techniqueId], min_drop: 3 });

            await evaluate();
            expect(await instances(regression.id)).to.have.length(0);

            const second = await validated(techniqueId, 'not_detected', { retestOf: first, daysAgo: 1 });
            await evaluate();
            const [fired, ...none] = await instances(regression.id);
            expect(none).to.have.length(0);
            expect(fired).to.include({
                rule_type: 'coverage_regression', severity: 'high', subject_type: 'technique', subject_id: techniqueId, technique_id: techniqueId,
                test_ids: [second.id, first.id], status: 'open', title: `Coverage regression on ${techniqueId}: alerted before, not_detected now`
            });
            expect(fired!.details).to.include({ test_id: second.id, previous_test_id: first.id, outcome: 'not_detected', previous_outcome: 'alerted', drop: 2 });
            expect(await instances(steep.id)).to.have.length(0);          // alerted -> not_detected is two levels, not three

            // Announced, and the blue leads told (not the red ones, nor the technicians)
            expect(await context.knex('domain_events').where({ type: 'alert.fired', entity_id: fired!.id }).first()).to.exist();
            const notified = await context.knex('notifications').where({ type: 'alert.fired', entity_id: fired!.id }).pluck('user_id');
            expect(notified).to.include(context.users.blue_lead.id);
            expect(notified).to.not.include([context.users.red_lead.id, context.users.blue_tech.id, context.users.admin.id]);

            // Again: nothing new
            expect((await evaluate()).fired).to.equal(0);
            expect(await instances(regression.id)).to.have.length(1);

            // A retest of the retest detects again: the regression is over
            await validated(techniqueId, 'prevented', { retestOf: second });
            await evaluate();
            const [resolved] = await instances(regression.id);
            expect(resolved).to.include({ status: 'resolved', resolved_by: null, note: 'Resolved by evaluation: the latest validated outcome is no longer worse than the one before it in its retest chain' });
            expect(resolved!.resolved_at).to.be.a.date();
        });

        it('coverage_regression takes the validation before in the same chain (branches included, other chains and not_applicable left out), by the roots the trigger keeps', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const a1 = await validated(techniqueId, 'prevented', { daysAgo: 10 });
            const a2 = await validated(techniqueId, 'logged', { retestOf: a1, daysAgo: 8 });
            const a3 = await validated(techniqueId, 'alerted', { retestOf: a1, daysAgo: 6 });          // a second branch of a1
            const b1 = await validated(techniqueId, 'prevented', { daysAgo: 4 });                      // another chain, same technique
            const a5 = await validated(techniqueId, 'not_applicable', { retestOf: a3, daysAgo: 3 });   // no evidence: not in the order
            const a4 = await validated(techniqueId, 'not_detected', { retestOf: a2, daysAgo: 2 });     // the latest: a retest of a retest

            const roots = await context.knex('tests').whereIn('id', [a1, a2, a3, a4, a5, b1].map((test) => test.id)).select('id', context.knex.raw('coalesce(retest_root_id, id) as chain'));
            const chainOf = new Map(roots.map((row: { id: string; chain: string }) => [row.id, row.chain]));
            expect([a1, a2, a3, a4, a5].map((test) => chainOf.get(test.id))).to.equal([a1.id, a1.id, a1.id, a1.id, a1.id]);
            expect(chainOf.get(b1.id)).to.equal(b1.id);
            expect(await context.knex('tests').where('id', a4.id).first('retest_root_id')).to.equal({ retest_root_id: a1.id });

            // The chain's validations by date: a1 prevented, a2 logged, a3 alerted, a4 not_detected; before a4 is a3
            const regression = await rule('coverage_regression', { technique_ids: [techniqueId] });
            await evaluate();
            const [fired] = await instances(regression.id);
            expect(fired).to.include({ subject_id: techniqueId, test_ids: [a4.id, a3.id], status: 'open' });
            expect(fired!.details).to.include({ test_id: a4.id, previous_test_id: a3.id, outcome: 'not_detected', previous_outcome: 'alerted', drop: 2 });
            expect(JSON.parse((await request('admin', 'GET', `/tests/${a4.id}`)).payload)).to.not.include('retest_root_id');
        });

        it('coverage_regression fires from the relay on the validation itself (the alerts consumer), once', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const first = await validated(techniqueId, 'logged', { daysAgo: 2 });
            const regression = await rule('coverage_regression', { technique_ids: [techniqueId] });
            await context.relay.drain();

            await validated(techniqueId, 'not_detected', { retestOf: first });
            await context.relay.drain();
            const fired = await instances(regression.id);
            expect(fired.map((item) => item.status)).to.equal(['open']);
            expect(fired[0]!.details).to.include({ previous_outcome: 'logged', outcome: 'not_detected', drop: 1 });
        });

        it('evaluates, on an event\'s technique, a rule watching every technique, and skips one watching others', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const other = await uniqueTechnique(context.knex);
            const test = await validated(techniqueId, 'not_detected');
            const everywhere = await rule('detection_failure', {});
            const elsewhere = await rule('detection_failure', { technique_ids: [other] });
            try {
                const result = await context.services.alerts.evaluate(systemActor, { techniques: [techniqueId] });
                expect(result.fired).to.equal(1);
                expect((await instances(everywhere.id)).map((item) => item.subject_id)).to.equal([test.id]);
                expect(await instances(elsewhere.id)).to.have.length(0);
                expect((await AlertRule.query(context.knex).findById(elsewhere.id))!.last_evaluated_at).to.be.null();

                // And everywhere on the scheduled run (the instances of other scripts' techniques go with the rule)
                await context.services.alerts.evaluate(systemActor);
                expect((await instances(everywhere.id)).filter((item) => item.technique_id === techniqueId).map((item) => item.status)).to.equal(['open']);
            }
            finally {
                await AlertRule.query(context.knex).delete().whereIn('id', [everywhere.id, elsewhere.id]);
            }
        });

        it('stale_validation fires on a technique last validated too long ago, for both leads, and resolves when it is validated again', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            await validated(techniqueId, 'alerted', { daysAgo: 400 });
            const stale = await rule('stale_validation', { technique_ids: [techniqueId], max_age_days: 365 });
            const lenient = await rule('stale_validation', { technique_ids: [techniqueId], max_age_days: 500 });

            await evaluate();
            const [fired] = await instances(stale.id);
            expect(fired).to.include({ subject_type: 'technique', subject_id: techniqueId, test_ids: [], title: `${techniqueId} was last validated 400 days ago (more than 365)` });
            expect(fired!.details).to.include({ age_days: 400, max_age_days: 365 });
            expect(await instances(lenient.id)).to.have.length(0);
            expect(await context.knex('notifications').where({ type: 'alert.fired', entity_id: fired!.id }).pluck('user_id')).to.include([context.users.red_lead.id, context.users.blue_lead.id]);

            await validated(techniqueId, 'alerted');
            await evaluate();
            expect((await instances(stale.id)).map((item) => item.status)).to.equal(['resolved']);
        });

        it('detection_failure fires on the failed test a technique\'s coverage comes from, and resolves when a later validation detects', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const failed = await validated(techniqueId, 'logged', { daysAgo: 1 });
            const strict = await rule('detection_failure', { technique_ids: [techniqueId], outcomes: ['not_detected', 'logged'] });
            const missed = await rule('detection_failure', { technique_ids: [techniqueId] });

            await evaluate();
            const [fired] = await instances(strict.id);
            expect(fired).to.include({ subject_type: 'test', subject_id: failed.id, technique_id: techniqueId, test_ids: [failed.id], title: `Detection failed on ${techniqueId}: the latest validated test was logged` });
            expect(await instances(missed.id)).to.have.length(0);          // logged is not a miss by default

            await validated(techniqueId, 'alerted');
            await evaluate();
            expect((await instances(strict.id)).map((item) => item.status)).to.equal(['resolved']);
        });

        it('risk_threshold fires when the stored risk (risk_profiles) is above the threshold, and resolves when coverage lowers it', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            await context.knex('techniques').where('mitre_id', techniqueId).update({ impact: 5 });
            const actors = await context.knex('threat_actors').insert([1, 2].map((n) => ({ name: `Alerts actor ${n} ${techniqueId}`, tracked: true }))).returning('id');
            await context.knex('threat_actor_techniques').insert(actors.map((actor: { id: string }) => ({ threat_actor_id: actor.id, technique_id: techniqueId })));
            const untracked = await context.knex('threat_actors').insert({ name: `Alerts untracked ${techniqueId}`, tracked: false }).returning('id');
            await context.knex('threat_actor_techniques').insert({ threat_actor_id: untracked[0].id, technique_id: techniqueId });
            const recompute = () => context.services.risk.recompute(systemActor);

            // Untested, 2 tracked actors: likelihood 1 + 4 x ln(3) / ln(32) = 2.27 (saturation 31), impact 5, score 0:
            // 2.27 x 5 x 1 = 11.35 (posture.md's formula, stored by the recompute)
            await recompute();
            expect(await risksAbove(context.knex, 0, [techniqueId])).to.equal([{ technique_id: techniqueId, risk: 11.35, band: 'high', likelihood: 2.27, impact: 5, score: null }]);
            const high = await rule('risk_threshold', { technique_ids: [techniqueId], min_risk: 10 }, { severity: 'critical' });
            const higher = await rule('risk_threshold', { technique_ids: [techniqueId], min_risk: 11.35 });          // above, not at

            await evaluate();
            const [fired] = await instances(high.id);
            expect(fired).to.include({ subject_type: 'technique', subject_id: techniqueId, severity: 'critical', title: `Risk of ${techniqueId} is 11.35 (above 10)` });
            expect(fired!.details).to.equal({ technique_id: techniqueId, risk: 11.35, band: 'high', likelihood: 2.27, impact: 5, score: null, min_risk: 10 });
            expect(await instances(higher.id)).to.have.length(0);

            // Logged today (score 40 x decay 1): 2.27 x 5 x 0.6 = 6.81, below 10; the rule reads the stored risk, so
            // only after the recompute
            await validated(techniqueId, 'logged');
            await evaluate();
            expect((await instances(high.id)).map((item) => item.status)).to.equal(['open']);
            await recompute();
            expect(await risksAbove(context.knex, 0, [techniqueId])).to.equal([{ technique_id: techniqueId, risk: 6.81, band: 'medium', likelihood: 2.27, impact: 5, score: 40 }]);
            await evaluate();
            expect((await instances(high.id)).map((item) => item.status)).to.equal(['resolved']);

            // Alerted (score 90), impact unset and no tactic (3): 2.27 x 3 x 0.1 = 0.681, stored 0.68
            await context.knex('techniques').where('mitre_id', techniqueId).update({ impact: null });
            await validated(techniqueId, 'alerted');
            await recompute();
            expect(await risksAbove(context.knex, 0.5, [techniqueId])).to.equal([{ technique_id: techniqueId, risk: 0.68, band: 'low', likelihood: 2.27, impact: 3, score: 90 }]);
            expect(await risksAbove(context.knex, 0.68, [techniqueId])).to.equal([]);
        });

        it('risk_threshold is evaluated by the risk-recompute job on the risks it stores, and a config or impact change queues an evaluation', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const actors = await context.knex('threat_actors').insert([1, 2].map((n) => ({ name: `Recompute actor ${n} ${techniqueId}`, tracked: true }))).returning('id');
            await context.knex('threat_actor_techniques').insert(actors.map((actor: { id: string }) => ({ threat_actor_id: actor.id, technique_id: techniqueId })));
            await recomputeRisk(context.services, { reason: 'manual' });
            const watch = await rule('risk_threshold', { technique_ids: [techniqueId], min_risk: 8 });
            const other = await rule('detection_failure', { technique_ids: [techniqueId] });

            // Impact 5 and a failed detection, not recomputed yet: the stored risk is still the first recompute's,
            // untested with impact 3 (no tactic): 2.27 x 3 x 1 = 6.81, below 8
            await context.knex('techniques').where('mitre_id', techniqueId).update({ impact: 5 });
            await validated(techniqueId, 'not_detected');
            expect(await risksAbove(context.knex, 0, [techniqueId])).to.equal([{ technique_id: techniqueId, risk: 6.81, band: 'medium', likelihood: 2.27, impact: 3, score: null }]);

            // The job: the recompute stores 2.27 x 5 x (1 - 0/100) = 11.35, and the risk_threshold rules fire on it at
            // once; the other rule types wait for their own evaluation (the detection failure has not fired)
            const run = await recomputeRisk(context.services, { reason: 'coverage' });
            expect(run.alerts.rules).to.be.at.least(1);
            expect((await instances(watch.id)).map((item) => [item.status, item.details.risk])).to.equal([['open', 11.35]]);
            expect(await instances(other.id)).to.have.length(0);

            // Detected again: the next recompute clears it, with its note
            await validated(techniqueId, 'prevented');
            await recomputeRisk(context.services, { reason: 'coverage' });
            const [cleared] = await instances(watch.id);
            expect(cleared).to.include({ status: 'resolved', resolved_by: null });
            expect(cleared!.note).to.match(/^Resolved by evaluation/);

            // A recompute outside the worker (an impact change) queues one debounced evaluation of every rule
            await context.knex('agenda_jobs').where('name', 'alerts.evaluate').whereRaw(`data->>'debounce_key' = 'risk'`).delete();
            expect((await request('admin', 'PATCH', `/risk/impact/${techniqueId}`, { impact: 4 })).statusCode).to.equal(200);
            expect((await request('admin', 'PATCH', `/risk/impact/${techniqueId}`, { impact: 5 })).statusCode).to.equal(200);
            const queued = await context.knex('agenda_jobs').where('name', 'alerts.evaluate').whereRaw(`data->>'debounce_key' = 'risk'`).select('data', 'next_run_at');
            expect(queued.map((job: { data: { reason: string } }) => job.data.reason)).to.equal(['risk']);
            await context.knex('agenda_jobs').where('name', 'alerts.evaluate').whereRaw(`data->>'debounce_key' = 'risk'`).delete();
            await context.services.alerts.removeRule(systemActor, watch.id);
            await context.services.alerts.removeRule(systemActor, other.id);
        });

        it('sla_breach fires on a remediation past its due date (after the grace days), and resolves when it is resolved', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const due = internals.dateOnly(new Date(Date.now() - 10 * internals.day));
            const late = await validated(techniqueId, 'not_detected', { overrides: { remediation_status: 'in_progress', remediation_due: due } });
            await validated(techniqueId, 'not_detected', { overrides: { remediation_status: 'open', remediation_due: internals.dateOnly(new Date(Date.now() + 10 * internals.day)) } });
            await validated(techniqueId, 'not_detected', { overrides: { remediation_status: 'accepted_risk', remediation_due: due } });
            const breach = await rule('sla_breach', { technique_ids: [techniqueId] });
            const graceful = await rule('sla_breach', { technique_ids: [techniqueId], grace_days: 10 });

            await evaluate();
            const fired = await instances(breach.id);
            expect(fired).to.have.length(1);
            expect(fired[0]).to.include({ subject_type: 'test', subject_id: late.id, test_ids: [late.id], title: `Remediation past due on a test of ${techniqueId}: due ${due}, 10 days late` });
            expect(fired[0]!.details).to.equal({ test_id: late.id, remediation_due: due, remediation_status: 'in_progress', days_late: 10, grace_days: 0 });
            expect(await instances(graceful.id)).to.have.length(0);          // 10 days late is within 10 days of grace

            await context.knex('tests').where('id', late.id).update({ remediation_status: 'resolved' });
            await evaluate();
            expect((await instances(breach.id)).map((item) => item.status)).to.equal(['resolved']);
        });
        it('sla_breach on campaigns fires on an active campaign past its end date (after the grace days), for both leads, and resolves when its end date moves or it completes', async () => {

            const campaignIn = async (status: 'draft' | 'active', endDaysAgo: number) => {

                const campaign = json(await request('red_lead', 'POST', '/campaigns', { name: `Alerted campaign ${Crypto.randomBytes(4).toString('hex')}` }));
                const test = await testRow(context.knex);
                expect((await request('red_lead', 'POST', `/campaigns/${campaign.id}/tests`, { test_id: test.id })).statusCode).to.equal(201);
                if (status === 'active') {
                    expect((await request('admin', 'POST', `/campaigns/${campaign.id}/activate`)).statusCode).to.equal(200);
                }

                const end = internals.dateOnly(new Date(Date.now() - endDaysAgo * internals.day));
                await context.knex('campaigns').where('id', campaign.id).update({ end_date: end });
                return { id: campaign.id as string, name: campaign.name as string, end };
            };

            const late = await campaignIn('active', 5);
            const draft = await campaignIn('draft', 5);
            const endsToday = await campaignIn('active', 0);
            const ours = [late.id, draft.id, endsToday.id];
            const mine = async (ruleId: string) => (await instances(ruleId)).filter((item) => ours.includes(item.subject_id));

            const breach = await rule('sla_breach', { subjects: ['campaign'] }, { severity: 'high' });
            const both = await rule('sla_breach', { subjects: ['remediation', 'campaign'], grace_days: 4 });
            const graceful = await rule('sla_breach', { subjects: ['campaign'], grace_days: 5 });
            const remediation = await rule('sla_breach', { technique_ids: [await uniqueTechnique(context.knex)] });
            const watching = [breach.id, both.id, graceful.id];

            // They watch every campaign of the shared database: disabled when done, so that no other test counts theirs
            try {
                await evaluate();
                const [fired, ...others] = await mine(breach.id);
                expect(others).to.equal([]);
                expect(fired).to.include({ subject_type: 'campaign', subject_id: late.id, technique_id: null, test_ids: [], status: 'open', severity: 'high', title: `Campaign "${late.name}" is past its end date: ended ${late.end}, 5 days late` });
                expect(fired!.details).to.equal({ campaign_id: late.id, end_date: late.end, days_late: 5, grace_days: 0 });
                expect((await mine(both.id)).map((item) => item.subject_id)).to.equal([late.id]);             // 5 days late, 4 of grace
                expect(await mine(graceful.id)).to.equal([]);                                                  // 5 days late is within 5 of grace
                expect(await mine(remediation.id)).to.equal([]);                                               // remediation only (the default)

                // A campaign is the red lead's to complete: both leads are told
                const told = await context.knex('notifications').where({ entity_id: fired!.id }).pluck('user_id');
                expect(told).to.include([context.users.red_lead.id, context.users.blue_lead.id]);

                // Visible to every role (it refers to no test)
                expect(json(await request('viewer', 'GET', `/alerts/${fired!.id}`))).to.include({ subject_type: 'campaign', subject_id: late.id });
                expect(json(await request('viewer', 'GET', `/alerts?rule_id=${breach.id}&subject_type=campaign&limit=500`)).items.map((item: { id: string }) => item.id)).to.include(fired!.id);

                // The end date moves: an evaluation on an event's techniques leaves the campaign alone, the whole one resolves it
                expect((await request('red_lead', 'PATCH', `/campaigns/${late.id}/schedule`, { end_date: internals.dateOnly(new Date(Date.now() + 3 * internals.day)) })).statusCode).to.equal(200);
                await context.services.alerts.evaluate(systemActor, { techniques: [await uniqueTechnique(context.knex)] });
                expect((await mine(breach.id)).map((item) => item.status)).to.equal(['open']);
                await evaluate();
                expect((await mine(breach.id)).map((item) => [item.status, item.note, item.resolved_by])).to.equal([['resolved', 'Resolved by evaluation: the campaign is completed or no longer past its end date', null]]);

                // Past due again: a new instance; completed: resolved
                await context.knex('campaigns').where('id', late.id).update({ end_date: late.end });
                await evaluate();
                expect((await mine(breach.id)).map((item) => item.status)).to.equal(['resolved', 'open']);
                expect((await request('admin', 'POST', `/campaigns/${late.id}/complete`)).statusCode).to.equal(200);
                await evaluate();
                expect((await mine(breach.id)).map((item) => item.status)).to.equal(['resolved', 'resolved']);
                expect((await mine(both.id)).map((item) => item.status)).to.equal(['resolved', 'resolved']);
            }
            finally {
                await AlertRule.query(context.knex).patch({ enabled: false }).whereIn('id', watching);
            }
        });
    });

    describe('instances', () => {

        // A technique with a test past its remediation date, and an sla_breach rule on it that has fired
        const breached = async (overrides: Partial<Test> = {}) => {

            const techniqueId = await uniqueTechnique(context.knex);
            const test = await validated(techniqueId, 'not_detected', { overrides: { remediation_status: 'open', remediation_due: internals.dateOnly(new Date(Date.now() - 3 * internals.day)), ...overrides } });
            const created = await rule('sla_breach', { technique_ids: [techniqueId] });
            await evaluate();
            const [alert] = await instances(created.id);
            return { techniqueId, test, rule: created, alert: alert! };
        };

        it('lists, filters and reads instances, and counts them in the summary', async () => {

            const earlier = json(await request('viewer', 'GET', '/alerts/summary'));
            const { rule: created, alert, techniqueId } = await breached();
            const later = json(await request('viewer', 'GET', '/alerts/summary'));
            expect(later.total - earlier.total).to.equal(1);
            expect(later.by_status.open - earlier.by_status.open).to.equal(1);
            expect(later.by_severity.medium - earlier.by_severity.medium).to.equal(1);
            expect(later.by_rule_type.sla_breach - earlier.by_rule_type.sla_breach).to.equal(1);
            expect(later.active_by_severity.medium - earlier.active_by_severity.medium).to.equal(1);
            expect(Object.keys(later.by_status)).to.equal(['open', 'acknowledged', 'resolved', 'dismissed']);

            const read = json(await request('viewer', 'GET', `/alerts/${alert.id}`));
            expect(read).to.include({ id: alert.id, rule_id: created.id, status: 'open', subject_id: alert.subject_id, technique_id: techniqueId, note: null, acknowledged_at: null });

            const listed = json(await request('red_tech', 'GET', `/alerts?rule_id=${created.id}&status=open&severity=medium&rule_type=sla_breach&subject_type=test&technique_id=${techniqueId}`));
            expect(listed).to.equal({ items: [read], total: 1, limit: 50, offset: 0 });
            expect(json(await request('red_tech', 'GET', `/alerts?rule_id=${created.id}&status=resolved`)).total).to.equal(0);

            for (const query of ['status=closed', 'severity=urgent', 'rule_type=any', 'rule_id=1', 'technique_id=T1', 'sort=title', 'order=up', 'offset=-1']) {
                expect((await request('viewer', 'GET', `/alerts?${query}`)).statusCode, query).to.equal(400);
            }

            expect((await request('viewer', 'GET', `/alerts/${Crypto.randomUUID()}`)).statusCode).to.equal(404);
            expect((await request('viewer', 'GET', '/alerts/not-an-id')).statusCode).to.equal(400);
        });

        it('goes open -> acknowledged -> resolved, or dismissed, and refuses any other move with 409 writing nothing', async () => {

            const { alert } = await breached();
            const acknowledged = json(await request('blue_lead', 'POST', `/alerts/${alert.id}/acknowledge`, { note: 'Looking into it' }));
            expect(acknowledged).to.include({ status: 'acknowledged', acknowledged_by: context.users.blue_lead.id, note: 'Looking into it' });

            const audits = await count('audit_logs', { entity_id: alert.id });
            const again = await request('red_lead', 'POST', `/alerts/${alert.id}/acknowledge`);
            expect(again.statusCode).to.equal(409);
            expect(json(again)).to.include({ code: 'invalid_alert_transition' });
            expect(await Alert.query(context.knex).findById(alert.id)).to.include({ status: 'acknowledged', updated_at: new Date(acknowledged.updated_at) });

            const resolved = json(await request('admin', 'POST', `/alerts/${alert.id}/resolve`));
            expect(resolved).to.include({ status: 'resolved', resolved_by: context.users.admin.id, note: 'Looking into it' });
            for (const action of ['acknowledge', 'resolve', 'dismiss']) {
                const res = await request('admin', 'POST', `/alerts/${alert.id}/${action}`, {});
                expect(res.statusCode, action).to.equal(409);
            }

            expect(await count('audit_logs', { entity_id: alert.id })).to.equal(audits + 1);
            expect(await context.knex('audit_logs').where('entity_id', alert.id).orderBy('created_at').pluck('action')).to.equal(['alert.acknowledge', 'alert.resolve']);

            for (const action of ['acknowledge', 'resolve', 'dismiss']) {
                expect((await request('admin', 'POST', `/alerts/${Crypto.randomUUID()}/${action}`)).statusCode).to.equal(404);
                expect((await request('admin', 'POST', `/alerts/${alert.id}/${action}`, { note: 'x'.repeat(2001) })).statusCode).to.equal(400);
                expect((await request('admin', 'POST', `/alerts/${alert.id}/${action}`, { status: 'open' })).statusCode).to.equal(400);
                expect((await request('blue_tech', 'POST', `/alerts/${alert.id}/${action}`)).statusCode).to.equal(403);
            }
        });

        it('keeps a dismissed subject quiet until its condition clears, and raises it again when it comes back', async () => {

            const { alert, rule: created, test } = await breached();
            expect(json(await request('red_lead', 'POST', `/alerts/${alert.id}/dismiss`, { note: 'Known, tracked elsewhere' }))).to.include({ status: 'dismissed', dismissed_by: context.users.red_lead.id });

            await evaluate();
            expect((await instances(created.id)).map((item) => item.status)).to.equal(['dismissed']);

            await context.knex('tests').where('id', test.id).update({ remediation_status: 'resolved' });
            await evaluate();
            const [cleared] = await instances(created.id);
            expect(cleared).to.include({ status: 'dismissed' });
            expect(cleared!.cleared_at).to.be.a.date();

            await context.knex('tests').where('id', test.id).update({ remediation_status: 'open' });
            await evaluate();
            expect((await instances(created.id)).map((item) => item.status)).to.equal(['dismissed', 'open']);
        });

        it('raises one instance per rule and subject when evaluations run at once (the partial unique index)', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            const tests: Test[] = [];
            for (let i = 0; i < 5; ++i) {
                tests.push(await validated(techniqueId, 'not_detected', { overrides: { remediation_status: 'open', remediation_due: internals.dateOnly(new Date(Date.now() - 5 * internals.day)) } }));
            }

            const created = await rule('sla_breach', { technique_ids: [techniqueId] });
            const results = await Promise.all([evaluate(), evaluate(), evaluate()]);
            expect(results.reduce((sum, result) => sum + result.fired, 0)).to.equal(5);
            const fired = await instances(created.id);
            expect(fired.map((item) => item.subject_id).sort()).to.equal(tests.map((test) => test.id).sort());
            expect(Number((await context.knex('domain_events').where('type', 'alert.fired').whereIn('entity_id', fired.map((item) => item.id)).count('* as n'))[0]!.n)).to.equal(5);

            // The database itself refuses a second live instance of a subject
            const [first] = fired;
            const duplicate = { rule_id: first!.rule_id, rule_type: first!.rule_type, severity: first!.severity, subject_type: first!.subject_type, subject_id: first!.subject_id, title: 'duplicate' };
            await expect(context.knex('alerts').insert(duplicate)).to.reject(/alerts_one_live_per_subject/);
            await context.knex('alerts').insert({ ...duplicate, status: 'resolved', resolved_at: new Date() });
        });

        it('writes the events and notifications of tens of thousands of new instances, past PostgreSQL\'s 65,535 parameters a statement', { timeout: 60_000 }, async () => {

            // As one evaluation raising 14,000 instances would (sla_breach at a million tests), rolled back: the shared
            // outbox and inboxes stay as they were
            const marker = Crypto.randomUUID();
            const many = 14_000;
            await expect(context.knex.transaction(async (trx) => {

                await context.services.events.emit(trx, systemActor, Array.from({ length: many }, (_, i) => ({ type: 'alert.fired' as const, entity_type: 'alert', entity_id: `${marker}-${i}`, payload: {} })));
                await context.services.notifications.notify(trx, Array.from({ length: many }, (_, i) => ({ user_id: context.users.blue_lead.id, type: 'alert.fired', title: `${marker} ${i}`, body: 'bulk', entity_type: 'alert', entity_id: Crypto.randomUUID() })));
                expect(Number((await trx('domain_events').where('entity_id', 'like', `${marker}-%`).count('* as n'))[0]!.n)).to.equal(many);
                expect(Number((await trx('notifications').where('title', 'like', `${marker} %`).count('* as n'))[0]!.n)).to.equal(many);
                throw new Error('roll back');
            })).to.reject('roll back');
            expect(Number((await context.knex('domain_events').where('entity_id', 'like', `${marker}-%`).count('* as n'))[0]!.n)).to.equal(0);
        });

        it('skips a rule deleted while an evaluation was on its way to it, instead of failing the evaluation', async () => {

            const techniqueId = await uniqueTechnique(context.knex);
            await validated(techniqueId, 'not_detected', { overrides: { remediation_status: 'open', remediation_due: internals.dateOnly(new Date(Date.now() - 5 * internals.day)) } });
            const created = await rule('sla_breach', { technique_ids: [techniqueId] });

            // An admin's delete holds the rule while the evaluation reaches it, then commits
            const trx = await context.knex.transaction();
            await trx('alert_rules').where('id', created.id).forUpdate().first();
            const evaluation = context.services.alerts.evaluate(systemActor, { techniques: [techniqueId] });
            await new Promise((resolve) => setTimeout(resolve, 300));
            await trx('alert_rules').where('id', created.id).delete();
            await trx.commit();

            expect(await evaluation).to.include({ fired: 0 });
            expect(await instances(created.id)).to.have.length(0);
        });

        it('hides an instance that refers to a test the caller may not see, from every read and action', async () => {

            const { alert: restricted } = await breached({ data_classification: 'restricted' });
            const { alert: confidential } = await breached({ data_classification: 'confidential' });

            for (const role of ['viewer', 'red_tech', 'blue_tech'] as const) {
                expect((await request(role, 'GET', `/alerts/${restricted.id}`)).statusCode, role).to.equal(404);
                const listed = json(await request(role, 'GET', `/alerts?rule_id=${restricted.rule_id}`));
                expect(listed.total, role).to.equal(0);
            }

            expect((await request('viewer', 'GET', `/alerts/${confidential.id}`)).statusCode).to.equal(404);
            expect(json(await request('red_tech', 'GET', `/alerts/${confidential.id}`)).id).to.equal(confidential.id);
            expect(json(await request('blue_lead', 'GET', `/alerts/${restricted.id}`)).id).to.equal(restricted.id);

            // The summary counts what the caller sees: a viewer's does not move when an instance they may not see fires
            const viewerBefore = json(await request('viewer', 'GET', '/alerts/summary'));
            const adminBefore = json(await request('admin', 'GET', '/alerts/summary'));
            await breached({ data_classification: 'restricted' });
            expect(json(await request('viewer', 'GET', '/alerts/summary')).total).to.equal(viewerBefore.total);
            expect(json(await request('admin', 'GET', '/alerts/summary')).total).to.equal(adminBefore.total + 1);
        });
    });

    describe('evaluation', () => {

        it('queues an evaluation job for a lead, and answers the queued one to a second request', async () => {

            await context.knex('agenda_jobs').where('name', 'alerts.evaluate').whereNull('last_run_at').delete().catch(() => undefined);
            const first = await request('red_lead', 'POST', '/alerts/evaluate');
            expect(first.statusCode, first.payload).to.equal(202);
            expect(json(first)).to.equal({ job_id: json(first).job_id, status: 'queued' });
            expect(json(await request('blue_lead', 'POST', '/alerts/evaluate'))).to.equal({ job_id: json(first).job_id, status: 'already_queued' });
            expect(await context.knex('audit_logs').where({ action: 'alerts.evaluation_requested', entity_id: json(first).job_id }).first()).to.exist();
            expect((await request('viewer', 'POST', '/alerts/evaluate')).statusCode).to.equal(403);
        });

        it('e-mails the leads who asked for alert e-mail, through the alert-mail consumer', async () => {

            const received: { to: string[]; subject: string | undefined }[] = [];
            const smtp = new SMTPServer({
                disabledCommands: ['STARTTLS'], disableReverseLookup: true, authOptional: true, logger: false,
                onData: (stream, session, callback) => {

                    simpleParser(stream).then((mail) => {

                        received.push({ to: session.envelope.rcptTo.map((item) => item.address), subject: mail.subject });
                        callback();
                    }, callback);
                }
            });

            await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
            const port = ((smtp as unknown as { server: Net.Server }).server.address() as Net.AddressInfo).port;
            const mailing = await init({ redis: false, env: { SMTP_URL: `smtp://127.0.0.1:${port}`, SMTP_FROM: 'aegis@example.test' } });
            try {
                const email = `lead-${Crypto.randomBytes(4).toString('hex')}@example.test`;
                await mailing.knex('users').where('id', mailing.users.blue_lead.id).update({ email, preferences: { notifications: { events: { 'alert.fired': { email: true } } } } });
                await mailing.knex('users').where('id', mailing.users.red_lead.id).update({ email: `quiet-${email}` });           // no e-mail asked for

                const techniqueId = await uniqueTechnique(mailing.knex);
                await validated(techniqueId, 'alerted', { daysAgo: 3 });
                const created = await mailing.services.alerts.createRule(mailing.actor('blue_lead'), { name: `stale_validation ${Crypto.randomBytes(3).toString('hex')}`, rule_type: 'stale_validation', parameters: { technique_ids: [techniqueId], max_age_days: 1 } });
                await mailing.relay.drain();
                await mailing.services.alerts.evaluate(systemActor);
                await mailing.relay.drain();

                const [alert] = await instances(created.id);
                const mine = received.filter((item) => item.subject?.includes(techniqueId));
                expect(mine).to.equal([{ to: [email], subject: `[Aegis] medium alert: ${alert!.title}` }]);
            }
            finally {
                // No later alert of the run e-mails this lead
                await mailing.knex('users').where('id', mailing.users.blue_lead.id).update({ is_active: false });
                await mailing.stop();
                await new Promise<void>((resolve) => smtp.close(() => resolve()));
            }
        });

        it('sends nothing for an instance gone or without SMTP, and hands a delivery failure to the relay to retry', async () => {

            const event = (id: string) => ({ id: Crypto.randomUUID(), seq: 1, xid: '1', type: 'alert.fired' as const, entity_type: 'alert', entity_id: id, payload: {} as never, actor_id: null, created_at: new Date() });
            expect(await context.services.alerts.mailFired(event(Crypto.randomUUID()))).to.equal(0);

            const techniqueId = await uniqueTechnique(context.knex);
            await validated(techniqueId, 'alerted', { daysAgo: 5 });
            const created = await rule('stale_validation', { technique_ids: [techniqueId], max_age_days: 1 }, { enabled: false });
            await context.knex('alert_rules').where('id', created.id).update({ enabled: true });
            await evaluate();
            await context.knex('alert_rules').where('id', created.id).update({ enabled: false });
            const [alert] = await instances(created.id);

            const lead = await context.createUser('red_lead');
            await context.knex('users').where('id', lead.id).update({ email: `${lead.username}@example.test`, preferences: { notifications: { email: true } } });
            const unreachable = await init({ redis: false, env: { SMTP_URL: 'smtp://127.0.0.1:9', SMTP_FROM: 'aegis@example.test' } });
            try {
                await context.knex('settings').where('key', 'smtp').delete();
                expect(await context.services.alerts.mailFired(event(alert!.id))).to.equal(0);            // not configured: nothing to send
                await expect(unreachable.services.alerts.mailFired(event(alert!.id))).to.reject(/./);
            }
            finally {
                await context.knex('users').where('id', lead.id).update({ is_active: false });
                await unreachable.stop();
            }
        });
    });
});
