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
