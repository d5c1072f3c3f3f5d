import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { createAgenda } from '../../server/jobs';
import { Alert } from '../../server/models';
import { defineAlertJobs, scheduleAlertJobs } from '../../worker/jobs/alerts';

import { testRow, uniqueTechnique } from '../helpers/factories';
import { testDatabaseUrl } from '../helpers/db';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('alerts.evaluate job', () => {

    let context: TestContext;

    before(async () => {

        context = await init({ redis: false });
    });

    after(async () => {

        await context.stop();
    });

    it('runs in the worker every 15 minutes and on POST /alerts/evaluate, raising the instances of the enabled rules', { timeout: 60_000 }, async () => {

        const techniqueId = await uniqueTechnique(context.knex);
        const at = new Date(Date.now() - 40 * 86_400_000);
        await testRow(context.knex, { technique_id: techniqueId, state: 'validated', validated_at: at, red_validated_at: at, blue_validated_at: at } as never);
        await context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [techniqueId]));
        const rule = await context.services.alerts.createRule(context.actor('admin'), { name: `Job ${techniqueId}`, rule_type: 'stale_validation', parameters: { technique_ids: [techniqueId], max_age_days: 30 } });

        const { agenda, close } = await createAgenda({ databaseUrl: await testDatabaseUrl(), name: 'alerts-test' });
        try {
            defineAlertJobs(agenda, context.services, {});
            await agenda.start();
            await scheduleAlertJobs(agenda);

            // The request queues a job (or answers one already queued by another script of the run); Agenda runs it
            const res = await context.server.inject({ method: 'POST', url: '/api/v1/alerts/evaluate', auth: context.as('admin') });
            expect(res.statusCode).to.equal(202);
            const deadline = Date.now() + 45_000;
            let fired: Alert[] = [];
            while (!fired.length && Date.now() < deadline) {
                fired = await Alert.query(context.knex).where('rule_id', rule.id);
                await new Promise((resolve) => setTimeout(resolve, 200));
            }

            expect(fired.map((alert) => [alert.subject_id, alert.status])).to.equal([[techniqueId, 'open']]);
            expect((await context.knex('alert_rules').where('id', rule.id).first()).last_evaluated_at).to.be.a.date();

            const scheduler = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/scheduler', auth: context.as('admin') })).payload);
            const recurring = scheduler.items.filter((item: { name: string; schedule: string | null }) => item.name === 'alerts.evaluate' && item.schedule !== null);
            expect(recurring.map((item: { schedule: string }) => item.schedule)).to.equal(['15 minutes']);
        }
        finally {
            await close();
            await context.services.alerts.removeRule(context.actor('admin'), rule.id);
        }
    });
});
