import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { createAgenda } from '../../server/jobs';
import { defineCoverageJobs, markStale, scheduleCoverageJobs } from '../../worker/jobs/coverage';

import { testRow, uniqueTechnique } from '../helpers/factories';
import { testDatabaseUrl } from '../helpers/db';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


describe('coverage.mark-stale job', () => {

    let context: TestContext;
    const day = 86_400_000;

    // A technique whose latest validation was `days` ago
    const validatedAgo = async (days: number) => {

        const id = await uniqueTechnique(context.knex);
        const at = new Date(Date.now() - days * day);
        await testRow(context.knex, { technique_id: id, state: 'validated', validated_at: at, red_validated_at: at, blue_validated_at: at } as never);
        await context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [id]));
        return { id, at };
    };

    const review = (id: string) => context.knex('techniques').where('mitre_id', id).first('needs_review', 'review_reason', 'review_requested_by', 'review_requested_at');

    before(async () => {

        context = await init({ redis: false, env: { COVERAGE_STALENESS_DAYS: '30' } });
    });

    after(async () => {

        await context.stop();
    });

    it('flags techniques whose latest validation is older than COVERAGE_STALENESS_DAYS, as the system, once', async () => {

        expect(context.config.coverage).to.equal({ stalenessDays: 30 });
        const stale = await validatedAgo(31);
        const recent = await validatedAgo(29);
        const flagged = await validatedAgo(40);
        expect((await context.server.inject({ method: 'PATCH', url: `/api/v1/techniques/${flagged.id}/review`, auth: context.as('blue_lead'), payload: { needs_review: true, reason: 'EDR replaced' } })).statusCode).to.equal(200);
        const asked = await review(flagged.id);

        const started = Date.now();
        const marked = await markStale(context.services);
        expect(marked).to.include(stale.id);
        expect(marked).to.not.include([recent.id, flagged.id]);

        const row = await review(stale.id);
        expect(row).to.equal({
            needs_review: true,
            review_reason: `Latest validation on ${stale.at.toISOString().slice(0, 10)} is older than the staleness period of 30 days`,
            review_requested_by: null,
            review_requested_at: row.review_requested_at
        });
        expect(Number(row.review_requested_at.getTime())).to.be.within(started - 1000, Date.now());
        expect(await review(recent.id)).to.equal({ needs_review: false, review_reason: null, review_requested_by: null, review_requested_at: null });
        expect(await review(flagged.id)).to.equal(asked);

        const audit = await context.knex('audit_logs').where('action', 'technique.review_stale').orderBy('created_at', 'desc').first('actor_id', 'details');
        expect(audit.actor_id).to.be.null();
        expect(audit.details).to.include({ staleness_days: 30 });
        expect(audit.details.technique_ids).to.include(stale.id);

        // Already flagged: a second run changes nothing; a newer validation answers the review
        expect(await markStale(context.services)).to.not.include(stale.id);
        await testRow(context.knex, { technique_id: stale.id, state: 'validated' });
        await context.knex.transaction((trx) => context.services.coverage.recompute(trx, context.actor('admin'), [stale.id]));
        expect(await review(stale.id)).to.equal({ needs_review: false, review_reason: null, review_requested_by: null, review_requested_at: null });
    });

    it('runs daily in the worker: scheduled every day, listed by GET /system/scheduler, and run by Agenda', { timeout: 60_000 }, async () => {

        const stale = await validatedAgo(60);
        const { agenda, close } = await createAgenda({ databaseUrl: await testDatabaseUrl(), name: 'coverage-test' });
        defineCoverageJobs(agenda, context.services, {});
        await agenda.start();
        await scheduleCoverageJobs(agenda);

        // A run of its own: the run's database is shared with other scripts' workers, which may hold the daily one
        const job = await agenda.now('coverage.mark-stale', {});
        const deadline = Date.now() + 45_000;
        let finished;
        while (!finished && Date.now() < deadline) {
            const { jobs } = await agenda.queryJobs({ id: String(job.attrs._id) });
            finished = jobs[0]?.lastFinishedAt ? jobs[0] : undefined;
            await new Promise((resolve) => setTimeout(resolve, 200));
        }

        await close();
        expect(finished?.failReason ?? null).to.be.null();
        expect(finished?.lastFinishedAt).to.be.a.date();
        expect(await review(stale.id)).to.include({ needs_review: true, review_requested_by: null });

        const scheduler = JSON.parse((await context.server.inject({ method: 'GET', url: '/api/v1/system/scheduler', auth: context.as('admin') })).payload);
        const daily = scheduler.items.filter((item: { name: string; schedule: string | null }) => item.name === 'coverage.mark-stale' && item.schedule !== null);
        expect(daily.map((item: { schedule: string }) => item.schedule)).to.equal(['1 day']);
    });
});
