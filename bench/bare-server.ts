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
