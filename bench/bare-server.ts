import * as Hapi from '@hapi/hapi';
import { Redis } from 'ioredis';
import * as Pg from 'pg';

import { User } from '../server/models';
import { pageOfRows } from '../server/services/lists';
import { revocationKeys, userLookup } from '../server/services/stores';
import { usersList } from '../server/services/users';


// The baseline of the foundation benchmark: bare hapi routes that send PostgreSQL the very statements Aegis sends for
// the same request (taken from Aegis's own code, so they cannot drift apart), with pg directly: no authentication,
// validation, services, ORM or logging. The token's user id and jti come in the path, since there is no token to
// read. With REDIS_URL set it also asks Redis what Aegis asks it (is the token revoked?), as Aegis does with Redis.
const main = async () => {

    const pool = new Pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
    const redis = process.env.REDIS_URL ? new Redis(process.env.REDIS_URL, { enableAutoPipelining: true }) : null;
    const server = Hapi.server({ host: '127.0.0.1', port: Number(process.env.PORT) });

    const query = async (statement: { text: string; values: unknown[] }) => (await pool.query(statement.text, statement.values)).rows;

    // The per-request lookup of Aegis's revocation stores (stores.ts), one statement or a statement and a Redis read
    const lookup = async (params: { id: string; jti: string }) => {

        if (!redis) {
            return (await query(userLookup.unlessRevoked(params.id, params.jti)))[0];
        }

        const [revoked, rows] = await Promise.all([redis.mget(revocationKeys.loaded, revocationKeys.revoked(params.jti)), query(userLookup.byId(params.id))]);
        return revoked[1] ? null : rows[0];
    };

    // Aegis answers the public fields of the user
    const publicFields = (row: Record<string, unknown>) => Object.fromEntries(User.publicColumns.map((column) => [column, row[column]]));

    server.route({
        method: 'GET',
        path: '/bare/me/{id}/{jti}',
        handler: async (request) => publicFields((await lookup(request.params as { id: string; jti: string }))!)
    });

    server.route({
        method: 'GET',
        path: '/bare/users/{id}/{jti}',
        handler: async (request) => {

            await lookup(request.params as { id: string; jti: string });
            const statement = usersList({ limit: 50 });
            return await pageOfRows(await query(statement.page), statement.window, async () => Number((await query(statement.count))[0]!.count));
        }
    });

    // scores (issue 12): the aggregates of GET /risk/summary and GET /scores, written by hand over risk_profiles
    server.route({
        method: 'GET',
        path: '/bare/risk-summary/{id}/{jti}',
        handler: async (request) => {

            await lookup(request.params as { id: string; jti: string });
            return (await pool.query(`select count(*)::integer as techniques, coalesce(sum(rp.risk), 0)::float as total_risk, coalesce(avg(rp.risk), 0)::float as mean_risk, coalesce(max(rp.risk), 0)::float as max_risk,
                coalesce(sum(rp.likelihood * rp.impact), 0)::float as max_possible, max(rp.computed_at) as computed_at, count(*) filter (where rp.band = 'critical') as critical, count(*) filter (where rp.band = 'high') as high,
                count(*) filter (where rp.band = 'medium') as medium, count(*) filter (where rp.band = 'low') as low, count(*) filter (where rp.coverage_status = 'covered') as covered,
                count(*) filter (where rp.coverage_status = 'untested') as untested from risk_profiles rp join techniques t on t.mitre_id = rp.technique_id where not rp.is_subtechnique`)).rows[0];
        }
    });

    server.route({
        method: 'GET',
        path: '/bare/scores/{id}/{jti}',
        handler: async (request) => {

            await lookup(request.params as { id: string; jti: string });
            const [overall, tactics] = await Promise.all([
                pool.query(`select count(*)::integer as techniques, count(score)::integer as tested, round(avg(coalesce(score, 0))::numeric, 1)::float as score from risk_profiles where domain = 'enterprise-attack' and not is_subtechnique`),
                pool.query(`select ta.mitre_id, ta.name, ta.shortname, ta.matrix_order, count(*)::integer as techniques, count(rp.score)::integer as tested, round(avg(coalesce(rp.score, 0))::numeric, 1)::float as score
                    from tactics ta join technique_tactics tt on tt.tactic_id = ta.id join risk_profiles rp on rp.technique_id = tt.technique_id and not rp.is_subtechnique
                    where ta.domain = 'enterprise-attack' group by ta.id order by ta.matrix_order`)
            ]);
            return { overall: overall.rows[0], tactics: tactics.rows };
        }
    });

    // perf (issue 16): the write path. Each route is one transaction that writes the rows Aegis writes for the same
    // request (the change, its timeline row, its audit row, its events), one plain statement each, after the same
    // token lookup: no checks, no rules, no ORM.
    const transaction = async <T>(work: (client: Pg.PoolClient) => Promise<T>): Promise<T> => {

        const client = await pool.connect();
        try {
            await client.query('begin');
            const result = await work(client);
            await client.query('commit');
            return result;
        }
        catch (err) {
            await client.query('rollback');
            throw err;
        }
        finally {
            client.release();
        }
    };

    const timeline = 'insert into test_timeline (test_id, actor_id, actor_role, action, from_state, to_state, changes) values ($1, $2, $3, $4, $5, $6, $7)';
    const audit = `insert into audit_logs (actor_id, actor_role, action, entity_type, entity_id, outcome, ip, user_agent, request_id, details) values ($1, $2, $3, 'test', $4, 'success', $5, $6, $7, $8)`;
    const event = `insert into domain_events (type, entity_type, entity_id, payload, actor_id) values ($1, 'test', $2, $3, $4)`;

    server.route({
        method: 'POST',
        path: '/bare/tests/{id}/{jti}',
        handler: async (request, h) => {

            const user = (await lookup(request.params as { id: string; jti: string }))!;
            const input = request.payload as { title: string; technique_id: string };
            const test = await transaction(async (client) => {

                await client.query('select mitre_id, revoked, revoked_by_id from techniques where mitre_id = any($1)', [[input.technique_id]]);
                const { rows } = await client.query('insert into tests (title, technique_id, created_by) values ($1, $2, $3) returning *', [input.title, input.technique_id, user.id]);
                const row = rows[0];
                await client.query(timeline, [row.id, user.id, user.role, 'create', null, row.state, { title: { from: null, to: input.title }, technique_id: { from: null, to: input.technique_id } }]);
                await client.query(audit, [user.id, user.role, 'test.create', row.id, request.info.remoteAddress, request.headers['user-agent'] ?? null, request.info.id, { fields: ['title', 'technique_id'] }]);
                return row;
            });

            return h.response(test).code(201);
        }
    });

    // The seven steps of a lifecycle, draft to validated, as Aegis's requests make them (the same columns, rows, events)
    const steps: { action: string; set: string; to?: string; events?: string[]; detections?: boolean; coverage?: boolean }[] = [
        { action: 'start-execution', set: `state = 'red_executing', timer_started_at = now()`, to: 'red_executing', events: ['test.state_changed'] },
        { action: 'update-red', set: `executed_at = now(), attack_result = 'succeeded'` },
        { action: 'submit-red', set: `state = 'blue_evaluating', red_seconds = red_seconds + 1, timer_started_at = now()`, to: 'blue_evaluating', events: ['test.state_changed'] },
        { action: 'update-blue', set: `detections = '[{"tool":"EDR","outcome":"alerted"}]', detection_outcome = 'alerted', detected_at = now()`, detections: true },
        { action: 'submit-blue', set: `state = 'in_review', blue_seconds = blue_seconds + 1, timer_started_at = null`, to: 'in_review', events: ['test.state_changed'] },
        { action: 'validate-red', set: 'red_approved = true, red_validated_by = $2, red_validated_at = now()' },
        { action: 'validate-blue', set: `blue_approved = true, blue_validated_by = $2, blue_validated_at = now(), state = 'validated', validated_at = now()`, to: 'validated', events: ['test.state_changed', 'test.validated'], coverage: true }
    ];

    server.route({
        method: 'POST',
        path: '/bare/tests/{test}/{step}/{id}/{jti}',
        handler: async (request) => {

            const params = request.params as { test: string; step: string; id: string; jti: string };
            const user = (await lookup(params))!;
            const step = steps[Number(params.step)]!;
            return await transaction(async (client) => {

                const current = (await client.query('select * from tests where id = $1 for update', [params.test])).rows[0];
                const { rows } = await client.query(`update tests set ${step.set}, version = version + 1, updated_at = now() where id = $1 and $2::uuid is not null returning *`, [params.test, user.id]);
                const row = rows[0];
                if (step.detections) {
                    await client.query('delete from test_detections where test_id = $1', [params.test]);
                    await client.query(`insert into test_detections (test_id, position, tool, outcome, detected_at, rule_ids) values ($1, 0, 'EDR', 'alerted', now(), '{}')`, [params.test]);
                }

                await client.query(timeline, [params.test, user.id, user.role, step.action, step.to ? current.state : null, step.to ?? null, {}]);
                await client.query(audit, [user.id, user.role, `test.${step.action}`, params.test, request.info.remoteAddress, request.headers['user-agent'] ?? null, request.info.id, step.to ? { from: current.state, to: step.to } : {}]);
                for (const type of step.events ?? []) {
                    await client.query(event, [type, params.test, { test_id: params.test, from: current.state, to: step.to, technique_id: row.technique_id }, user.id]);
                }

                if (step.coverage) {
                    await client.query(`update techniques set own_coverage_status = 'covered', own_score = 80, coverage_status = 'covered', score = 80, latest_validated_test_id = $1, latest_validated_at = now(), coverage_updated_at = now() where mitre_id = $2`, [params.test, row.technique_id]);
                }

                return row;
            });
        }
    });

    await server.start();
    process.stdout.write('bare listening\n');
    process.on('SIGTERM', async () => {

        await server.stop();
        await pool.end();
        redis?.disconnect();
        process.exit(0);
    });
};


main().catch((err) => {

    process.stderr.write(String(err));
    process.exit(1);
});
