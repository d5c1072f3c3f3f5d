import * as Path from 'path';

import Pino from 'pino';
import * as Pg from 'pg';

import { OutboundHttp } from '../integrations/http';
import { loadConfig } from '../server/config';
import { createKnex, migrate } from '../server/db';
import { AgendaQueue, createAgenda } from '../server/jobs';
import { systemActor } from '../server/policy';
import { serviceDeps } from '../server/runtime';
import { createServer } from '../server/server';
import { createServices } from '../server/services';

import { createDatabase, timeRuns } from './lib';
import type { Suite } from './suites';


const internals = {
    bundle: Path.join(__dirname, '..', '..', '..', 'shared', 'data', 'attack', 'enterprise-attack.json.gz'),
    progressTests: 10_000,
    technicianRule: '(t.data_classification in (\'public\', \'internal\', \'confidential\') or (t.data_classification = \'restricted\' and (t.red_assignee_id = $2 or t.blue_assignee_id = $2)))',

    row: (name: string, value: { p50: number; p99: number }) => `  ${name.padEnd(34)} p50 ${value.p50.toFixed(1).padStart(8)} ms   p99 ${value.p99.toFixed(1).padStart(8)} ms`,

    print: (title: string, aegis: { p50: number; p99: number }, bare: { p50: number; p99: number }) => {

        process.stdout.write(`${title}\n${internals.row('aegis', aegis)}\n${internals.row('baseline: bare SQL through pg', bare)}\n  ratio p50 ${(aegis.p50 / bare.p50).toFixed(2)}\n`);
    },

    // from-threat-actor as bare SQL: the campaign, one test per usable technique from its best template (or none),
    // their timeline and audit rows, the memberships and their history, in one transaction
    generateSql: `
        with campaign as (
            insert into campaigns (name, type, threat_actor_id, created_by) values ($1 || ' bare', 'threat_actor', $2, $3) returning id
        ),
        techniques as (
            select t.mitre_id, t.name from threat_actor_techniques tat join techniques t on t.mitre_id = tat.technique_id
            where tat.threat_actor_id = $2 and not t.revoked and not t.deprecated
        ),
        best as (
            select distinct on (w.mitre_id) w.mitre_id, tt.id, tt.name, tt.procedure, tt.tool, tt.command
            from techniques w join test_templates tt on tt.technique_ids @> array[w.mitre_id]
            order by w.mitre_id, cardinality(tt.technique_ids), tt.updated_at desc
        ),
        created as (
            insert into tests (title, objective, technique_id, template_id, procedure, tool, command, created_by)
            select coalesce(b.name, w.mitre_id || ' ' || w.name), 'Emulate ' || $1 || ': ' || w.name, w.mitre_id, b.id, b.procedure, b.tool, b.command, $3
            from techniques w left join best b on b.mitre_id = w.mitre_id
            returning id
        ),
        timeline as (
            insert into test_timeline (test_id, actor_id, actor_role, action, to_state) select id, $3, 'red_lead', 'create', 'draft' from created
        ),
        audit as (
            insert into audit_logs (actor_id, actor_role, action, entity_type, entity_id, outcome, details)
            select $3, 'red_lead', 'test.create', 'test', id, 'success', '{}'::jsonb from created
            union all select $3, 'red_lead', a, 'campaign', campaign.id, 'success', '{}'::jsonb from campaign, unnest(array['campaign.create', 'campaign.add-test', 'campaign.generate']) a
        ),
        members as (
            insert into campaign_tests (campaign_id, test_id, added_by) select campaign.id, created.id, $3 from campaign, created returning test_id
        )
        insert into campaign_history (campaign_id, actor_id, actor_role, action, test_id)
        select campaign.id, $3, 'red_lead', 'add-test', members.test_id from campaign, members`,

    // $2: the visibility rule of a technician (policy.ts testAccess), true for a lead
    progressSql: (visibility: string) => `
        with members as materialized (
            select t.state, t.detection_outcome, t.technique_id from campaign_tests ct join tests t on t.id = ct.test_id where ct.campaign_id = $1 and ${visibility}
        )
        select 'state', state, count(*), count(*) filter (where state = 'validated') from members group by state
        union all
        select 'outcome', detection_outcome, count(*), count(*) from members where state = 'validated' group by detection_outcome
        union all
        select 'tactic', ta.shortname, count(*), count(*) filter (where m.state = 'validated')
            from members m left join technique_tactics tt on tt.technique_id = m.technique_id left join tactics ta on ta.id = tt.tactic_id group by ta.shortname`
};


export const campaigns: Suite = {
    description: 'from-threat-actor for the actor with the most techniques (real Enterprise bundle) and progress of a 10,000-test campaign, each beside bare SQL',
    run: async () => {

        const database = await createDatabase(`aegis_bench_campaigns_${process.pid}`);
        const knex = createKnex({ url: database.url, poolMax: 10 });
        const pg = new Pg.Client({ connectionString: database.url });
        try {
            await migrate(database.url);
            const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: database.url, JWT_SECRET: 'bench-secret-bench-secret-bench-secret-0123', LOG_LEVEL: 'silent', AEGIS_DATA_DIR: `/tmp/aegis-bench-${process.pid}` });
            const { agenda, close } = await createAgenda({ databaseUrl: database.url, name: 'bench' });
            const queue = new AgendaQueue(agenda, close);
            const services = createServices(serviceDeps(config, { knex, queue, outbound: new OutboundHttp(config.outbound), version: 'bench' }));
            await services.attackImport.importAttack(systemActor, internals.bundle);
            const server = await createServer({ config, services, logger: Pino({ level: 'silent' }), version: 'bench' });
            const created = await services.users.create(systemActor, { username: 'bench-lead', password: 'Purple-Quartz-Lantern-8', role: 'red_lead' });
            const lead = await created.$query(knex).patchAndFetch({ must_change_password: false });
            const auth = { strategy: 'jwt-bearer', credentials: { user: lead, scope: ['red_lead'], app: {} } } as never;
            await pg.connect();

            const [top] = (await knex.raw(`select ta.id, ta.name, count(*)::integer as techniques from threat_actors ta join threat_actor_techniques tat on tat.threat_actor_id = ta.id
                join techniques t on t.mitre_id = tat.technique_id where not t.revoked and not t.deprecated group by ta.id order by techniques desc, ta.name limit 1`)).rows;

            const generate = await timeRuns(1, 5, async () => {

                const res = await server.inject({ method: 'POST', url: `/api/v1/campaigns/from-threat-actor/${top.id}`, auth, payload: {} });
                if (res.statusCode !== 201) {
                    throw new Error(`from-threat-actor: ${res.statusCode} ${res.payload.slice(0, 300)}`);
                }
            });
            const generateSql = await timeRuns(1, 5, async () => {

                await pg.query('begin');
                await pg.query(internals.generateSql, [top.name, top.id, lead.id]);
                await pg.query('commit');
            });
            internals.print(`POST /campaigns/from-threat-actor for ${top.name} (${top.techniques} techniques, one test each), 5 sequential runs`, generate, generateSql);

            // A campaign of 10,000 tests in mixed states over the catalogue, generated in bulk
            const [campaign] = await knex('campaigns').insert({ name: 'bench progress', created_by: lead.id }).returning('id');
            await knex.raw(`insert into tests (title, technique_id, state, detection_outcome, validated_at, red_approved, red_validated_at, blue_approved, blue_validated_at)
                select 'progress ' || g, t.mitre_id,
                    case when g % 2 = 0 then 'validated' else 'draft' end,
                    case when g % 2 = 0 then (array['prevented','alerted','logged','not_detected'])[1 + g % 4] end,
                    case when g % 2 = 0 then now() end, case when g % 2 = 0 then true end, case when g % 2 = 0 then now() end,
                    case when g % 2 = 0 then true end, case when g % 2 = 0 then now() end
                from generate_series(1, ${internals.progressTests}) g
                join lateral (select mitre_id from techniques where not revoked and not deprecated order by mitre_id offset (g % 600) limit 1) t on true`);
            await knex.raw('insert into campaign_tests (campaign_id, test_id) select ?, id from tests where title like \'progress %\'', [campaign.id]);
            await knex.raw('analyze');

            // As the lead (every test counts) and as a blue technician (the visibility rule filters the members)
            const technician = await (await services.users.create(systemActor, { username: 'bench-tech', password: 'Purple-Quartz-Lantern-8', role: 'blue_tech' })).$query(knex).patchAndFetch({ must_change_password: false });
            for (const [reader, visibility] of [[lead, 'true'], [technician, internals.technicianRule]] as const) {
                const as = { strategy: 'jwt-bearer', credentials: { user: reader, scope: [reader.role], app: {} } } as never;
                const progress = await timeRuns(10, 200, async () => {

                    const res = await server.inject({ method: 'GET', url: `/api/v1/campaigns/${campaign.id}/progress`, auth: as });
                    if (res.statusCode !== 200 || JSON.parse(res.payload).total !== internals.progressTests) {
                        throw new Error(`progress: ${res.statusCode} ${res.payload.slice(0, 300)}`);
                    }
                });
                const progressSql = await timeRuns(10, 200, () => pg.query(internals.progressSql(visibility), visibility === 'true' ? [campaign.id] : [campaign.id, reader.id]));
                internals.print(`GET /campaigns/{id}/progress as ${reader.role}, a campaign of ${internals.progressTests.toLocaleString('en')} tests, 200 sequential requests`, progress, progressSql);
            }

            await server.stop();
            await queue.stop();
        }
        finally {
            await pg.end().catch(() => undefined);
            await knex.destroy();
            await database.drop();
        }
    }
};
