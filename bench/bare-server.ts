import * as Hapi from '@hapi/hapi';
import * as Pg from 'pg';


// The baseline of the foundation benchmark: bare hapi routes that run the same SQL as Aegis with pg directly,
// without authentication, validation, services or the ORM.
const main = async () => {

    const pool = new Pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
    const server = Hapi.server({ host: '127.0.0.1', port: Number(process.env.PORT) });

    server.route({
        method: 'GET',
        path: '/bare/me/{id}',
        handler: async (request) => (await pool.query('select * from users where id = $1', [request.params.id])).rows[0]
    });

    server.route({
        method: 'GET',
        path: '/bare/users',
        handler: async () => {

            const [items, total] = await Promise.all([
                pool.query('select * from users order by username asc, id asc limit 50 offset 0'),
                pool.query('select count(*) from users')
            ]);

            return { items: items.rows, total: Number(total.rows[0].count), limit: 50, offset: 0 };
        }
    });

    await server.start();
    process.stdout.write('bare listening\n');
    process.on('SIGTERM', async () => {

        await server.stop();
        await pool.end();
        process.exit(0);
    });
};


main().catch((err) => {

    process.stderr.write(String(err));
    process.exit(1);
});
