import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { OutboundHttp } from '../../integrations/http';
import { AuditLog, OsintFeed, OsintImport } from '../../server/models';
import { systemActor, type Role } from '../../server/policy';
import { resolveSecretKey } from '../../server/runtime';
import { OsintService } from '../../server/services/osint';

import { json, uniqueTechnique } from '../helpers/factories';
import { startFeedServer, startTaxiiServer, type FeedServer } from '../helpers/osint-servers';
import { sharedDir } from '../helpers/reference';
import { init, type TestContext } from '../helpers/server';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


const internals = {
    galaxyFile: Path.join(sharedDir, 'data', 'threat-actors', 'misp-galaxy-threat-actor.json'),
    day: 86_400_000,
    uuid: () => Crypto.randomUUID(),
    unique: (prefix: string) => `${prefix} ${Crypto.randomBytes(4).toString('hex')}`
};


describe('OSINT feeds', () => {

    let context: TestContext;
    let feedDir: string;
    let files: FeedServer;
    const request = (role: Role, method: string, url: string, payload?: object) => context.server.inject({ method, url: `/api/v1${url}`, auth: context.as(role), ...(payload ? { payload } : {}) });

    const countOf = async (query: ReturnType<TestContext['knex']>) => Number((await query.count({ c: '*' }).first() as { c: string }).c);

    const counts = async () => ({
        feeds: await OsintFeed.query(context.knex).resultSize(),
        imports: await OsintImport.query(context.knex).resultSize(),
        actorFacts: await countOf(context.knex('osint_actor_facts')),
        techniqueFacts: await countOf(context.knex('osint_technique_facts')),
        actors: await countOf(context.knex('threat_actors'))
    });

    // A feed through the API, then an import run as the worker runs it
    const createFeed = async (payload: Record<string, unknown>) => {

        const res = await request('red_lead', 'POST', '/osint/feeds', { name: internals.unique('Feed'), ...payload });
        expect(res.statusCode, res.payload).to.equal(201);
        return json(res);
    };

    const runNow = async (feedId: string, now?: Date) => {

        const res = await request('blue_lead', 'POST', `/osint/feeds/${feedId}/run`);
        expect(res.statusCode, res.payload).to.equal(202);
        const queued = json(res);
        expect(queued).to.include({ feed_id: feedId, status: 'queued', trigger: 'manual', requested_by: context.users.blue_lead.id });
        await context.services.osint.runImport(systemActor, queued.id, now ? { now } : {});
        return json(await request('admin', 'GET', `/osint/imports/${queued.id}`));
    };

    const writeBundle = (name: string, objects: object[]) => {

        Fs.writeFileSync(Path.join(feedDir, name), JSON.stringify({ type: 'bundle', id: `bundle--${internals.uuid()}`, objects }));
        return name;
    };

    before(async () => {

        feedDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), 'aegis-osint-'));
        context = await init({ redis: false, env: { OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: '1', OSINT_FEED_DIR: feedDir } });
        await context.services.attackImport.importAttack(systemActor, Path.join(sharedDir, 'data', 'attack', 'attack-enterprise-mini.json'));
        files = await startFeedServer({ '/galaxy.json': Fs.readFileSync(internals.galaxyFile) });
    });

    after(async () => {

        await files.close();
        await context.stop();
        Fs.rmSync(feedDir, { recursive: true, force: true });
    });

    it('creates, reads, lists, changes and deletes feeds; credentials are write-only and never in audit rows', async () => {

        const secret = `s3cret-${Crypto.randomBytes(8).toString('hex')}`;
        const name = internals.unique('TAXII feed');
        const res = await request('admin', 'POST', '/osint/feeds', { name, kind: 'taxii_collection', url: `${files.url}/taxii2/`, collection: 'enterprise', auth_type: 'basic', username: 'aegis', secret, interval_minutes: 60 });
        expect(res.statusCode, res.payload).to.equal(201);
        const feed = json(res);
        expect(feed).to.equal({
            id: feed.id, name, kind: 'taxii_collection', url: `${files.url}/taxii2/`, file_path: null, collection: 'enterprise', auth_type: 'basic', username: 'aegis',
            api_key_header: null, has_secret: true, cron: null, interval_minutes: 60, enabled: true, next_run_at: feed.next_run_at, last_run_at: null, last_succeeded_at: null,
            created_by: context.users.admin.id, created_at: feed.created_at, updated_at: feed.updated_at
        });
        expect(new Date(feed.next_run_at).getTime() - Date.now()).to.be.within(59 * 60_000, 60 * 60_000);
        expect(res.payload).to.not.include(secret);

        expect(json(await request('red_lead', 'GET', `/osint/feeds/${feed.id}`))).to.equal(feed);
        const listed = json(await request('blue_lead', 'GET', `/osint/feeds?kind=taxii_collection&enabled=true&search=${encodeURIComponent(name)}`));
        expect(listed).to.equal({ items: [feed], total: 1, limit: 50, offset: 0 });
        expect(json(await request('admin', 'GET', `/osint/feeds?kind=misp_galaxy&search=${encodeURIComponent(name)}`)).total).to.equal(0);

        const row = await context.knex('osint_feeds').where('id', feed.id).first();
        expect(row.secret_ciphertext.toString('latin1')).to.not.include(secret);

        // A cron replaces the interval; a new secret replaces the old one, never shown
        const patched = json(await request('red_lead', 'PATCH', `/osint/feeds/${feed.id}`, { cron: '0 3 * * *', secret: `${secret}-2` }));
        expect(patched).to.include({ cron: '0 3 * * *', interval_minutes: null, has_secret: true });
        expect(new Date(patched.next_run_at).getUTCHours()).to.equal(3);
        // Switching to a file drops the credentials with the URL
        const local = json(await request('red_lead', 'PATCH', `/osint/feeds/${feed.id}`, { kind: 'stix_bundle', collection: null, file_path: 'x.json', auth_type: 'none', username: null }));
        expect(local).to.include({ kind: 'stix_bundle', url: null, file_path: 'x.json', collection: null, auth_type: 'none', username: null, has_secret: false });
        expect(json(await request('red_lead', 'PATCH', `/osint/feeds/${feed.id}`, { enabled: false }))).to.include({ enabled: false, next_run_at: null });

        expect((await request('blue_lead', 'DELETE', `/osint/feeds/${feed.id}`)).statusCode).to.equal(204);
        expect((await request('admin', 'GET', `/osint/feeds/${feed.id}`)).statusCode).to.equal(404);
        const audits = await AuditLog.query(context.knex).where('entity_id', feed.id).orderBy('created_at');
        expect(audits.map((item) => item.action)).to.equal(['osint.feed.create', 'osint.feed.update', 'osint.feed.update', 'osint.feed.update', 'osint.feed.delete']);
        expect(JSON.stringify(audits)).to.not.include(secret);
    });

    it('refuses bad input with a clear 400, 404 or 409, and writes nothing', async () => {

        const existing = await createFeed({ kind: 'misp_galaxy', url: `${files.url}/galaxy.json` });
        const initial = await counts();
        const cases: [object, number, string][] = [
            [{ kind: 'misp_galaxy' }, 400, 'osint_feed_location'],
            [{ kind: 'misp_galaxy', url: `${files.url}/a`, file_path: 'a.json' }, 400, 'osint_feed_location'],
            [{ kind: 'stix_bundle', file_path: '../outside.json' }, 400, 'path_outside_feed_dir'],
            [{ kind: 'stix_bundle', file_path: '/etc/passwd' }, 400, 'path_outside_feed_dir'],
            [{ kind: 'stix_bundle', url: 'http://10.1.2.3/bundle.json' }, 400, 'url_not_allowed'],
            [{ kind: 'stix_bundle', url: 'http://169.254.169.254/latest/meta-data/' }, 400, 'url_not_allowed'],
            [{ kind: 'stix_bundle', url: 'ftp://example.com/x' }, 400, 'validation_failed'],
            [{ kind: 'taxii_collection', url: `${files.url}/taxii2/` }, 400, 'osint_feed_taxii'],
            [{ kind: 'stix_bundle', file_path: 'a.json', collection: 'x' }, 400, 'osint_feed_collection'],
            [{ kind: 'stix_bundle', url: `${files.url}/a`, auth_type: 'basic', secret: 'x' }, 400, 'osint_feed_credentials'],
            [{ kind: 'stix_bundle', url: `${files.url}/a`, auth_type: 'api_key' }, 400, 'osint_feed_credentials'],
            [{ kind: 'stix_bundle', url: `${files.url}/a`, secret: 'x' }, 400, 'osint_feed_credentials'],
            [{ kind: 'stix_bundle', file_path: 'a.json', auth_type: 'api_key', secret: 'x' }, 400, 'osint_feed_credentials'],
            [{ kind: 'stix_bundle', file_path: 'a.json', cron: 'every day' }, 400, 'osint_feed_schedule'],
            [{ kind: 'stix_bundle', file_path: 'a.json', cron: '0 3 * * *', interval_minutes: 60 }, 400, 'osint_feed_schedule'],
            [{ kind: 'stix_bundle', file_path: 'a.json', interval_minutes: 1 }, 400, 'validation_failed'],
            [{ kind: 'rss', file_path: 'a.json' }, 400, 'validation_failed'],
            [{ kind: 'stix_bundle', file_path: 'a.json', name: existing.name.toUpperCase() }, 409, 'osint_feed_name_taken']
        ];

        for (const [payload, status, code] of cases) {
            const res = await request('admin', 'POST', '/osint/feeds', { name: internals.unique('Bad'), ...payload });
            expect(res.statusCode, JSON.stringify(payload)).to.equal(status);
            expect(json(res).code, JSON.stringify(payload)).to.equal(code);
            expect((json(res).message as string).length).to.be.above(20);
        }

        expect((await request('admin', 'PATCH', `/osint/feeds/${existing.id}`, { file_path: '../../x' })).statusCode).to.equal(400);
        expect((await request('admin', 'PATCH', `/osint/feeds/${existing.id}`, {})).statusCode).to.equal(400);
        expect((await request('admin', 'PATCH', `/osint/feeds/${internals.uuid()}`, { enabled: false })).statusCode).to.equal(404);
        expect((await request('admin', 'DELETE', `/osint/feeds/${internals.uuid()}`)).statusCode).to.equal(404);
        expect((await request('admin', 'POST', `/osint/feeds/${internals.uuid()}/run`)).statusCode).to.equal(404);
        expect((await request('admin', 'GET', `/osint/imports/${internals.uuid()}`)).statusCode).to.equal(404);
        expect((await request('admin', 'GET', '/osint/feeds/not-a-uuid')).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/osint/imports?feed_id=x')).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/osint/prevalence?min_prevalence=2')).statusCode).to.equal(400);
        expect((await request('admin', 'GET', '/osint/prevalence?technique_id=T1')).statusCode).to.equal(400);
        // Roles: RL, BL and A only
        for (const role of ['red_tech', 'blue_tech', 'viewer'] as const) {
            expect((await request(role, 'POST', '/osint/feeds', { name: internals.unique('Role'), kind: 'stix_bundle', file_path: 'a.json' })).statusCode).to.equal(403);
            expect((await request(role, 'POST', `/osint/feeds/${existing.id}/run`)).statusCode).to.equal(403);
        }

        expect(await counts()).to.equal(initial);

        // Run refused while one is queued, and on a disabled feed
        const queued = json(await request('admin', 'POST', `/osint/feeds/${existing.id}/run`));
        const again = await request('admin', 'POST', `/osint/feeds/${existing.id}/run`);
        expect(again.statusCode).to.equal(409);
        expect(json(again)).to.include({ code: 'osint_import_running' });
        await context.knex('osint_imports').where('id', queued.id).update({ status: 'failed', error: 'test' });
        await request('admin', 'PATCH', `/osint/feeds/${existing.id}`, { enabled: false });
        const disabled = await request('admin', 'POST', `/osint/feeds/${existing.id}/run`);
        expect(disabled.statusCode).to.equal(409);
        expect(json(disabled)).to.include({ code: 'osint_feed_disabled' });
        expect(await OsintImport.query(context.knex).where('feed_id', existing.id).resultSize()).to.equal(1);
        await request('admin', 'DELETE', `/osint/feeds/${existing.id}`);
    });

    it('imports the real MISP galaxy over HTTP: merged with the ATT&CK groups, never duplicated; a re-import writes nothing; changes are counted and removals marked', async () => {

        const galaxy = JSON.parse(Fs.readFileSync(internals.galaxyFile, 'utf8')) as { values: { uuid: string; value: string; description?: string; meta: Record<string, unknown> }[] };
        const apt28 = galaxy.values.find((item) => item.value === 'APT28')!;
        const group = await context.knex('threat_actors').where({ mitre_id: 'G0007', source: 'mitre' }).first();
        const groupLinks = await context.knex('threat_actor_techniques').where('threat_actor_id', group.id).select('technique_id', 'updated_at').orderBy('technique_id');

        const feed = await createFeed({ kind: 'misp_galaxy', url: `${files.url}/galaxy.json` });
        const first = await runNow(feed.id);
        expect(first, JSON.stringify(first.rejections)).to.include({ status: 'succeeded', source: `${files.url}/galaxy.json`, rejected: 0, removed: 0, error: null });
        expect(first.added + first.updated + first.unchanged).to.equal(galaxy.values.length);
        expect(files.requests.at(-1)!.headers.accept).to.equal('application/json');

        // APT28 is MITRE's G0007: the galaxy's cluster points at it, no actor named APT28 (or its synonyms) was created
        const fact = await context.knex('osint_actor_facts').where({ feed_id: feed.id, item_id: apt28.uuid }).first();
        expect(fact).to.include({ threat_actor_id: group.id, name: 'APT28', mitre_id: 'G0007', removed_at: null });
        expect(fact.aliases).to.include(['Sofacy', 'FANCY BEAR']);
        expect(await countOf(context.knex('threat_actors').where('source', 'misp').whereRaw('lower(name) in (?, ?, ?)', ['apt28', 'sofacy', 'fancy bear']))).to.equal(0);
        expect(await countOf(context.knex('threat_actors').where('mitre_id', 'G0007'))).to.equal(1);
        // The ATT&CK group's own facts are untouched
        expect(await context.knex('threat_actor_techniques').where('threat_actor_id', group.id).select('technique_id', 'updated_at').orderBy('technique_id')).to.equal(groupLinks);
        expect((await context.knex('threat_actors').where('id', group.id).first()).aliases).to.equal(group.aliases);

        // Actors no group is are created once each, untracked, with the feed's reference
        const created = await context.knex('osint_actor_facts as f').join('threat_actors as a', 'a.id', 'f.threat_actor_id').where('f.feed_id', feed.id).where('a.source', 'misp').select('a.*');
        expect(created.length).to.be.above(500);
        expect(created.every((actor) => actor.tracked === false && actor.created_by === null)).to.be.true();
        const distinctActors = await context.knex('osint_actor_facts').where('feed_id', feed.id).countDistinct({ c: 'threat_actor_id' }).first();
        expect(Number(distinctActors!.c)).to.be.at.most(galaxy.values.length);

        // Again, unchanged: nothing is written
        const riskJobs = () => context.knex('agenda_jobs').where('name', 'risk-recompute').whereRaw(`data->>'debounce_key' = 'osint'`);
        expect(await countOf(riskJobs())).to.equal(1);                  // the first import asked for one
        await riskJobs().delete();
        const prior = await counts();
        const stamps = await context.knex('osint_actor_facts').where('feed_id', feed.id).max({ m: 'updated_at' }).first();
        const second = await runNow(feed.id);
        expect(second).to.include({ status: 'succeeded', added: 0, updated: 0, removed: 0, rejected: 0, unchanged: first.added + first.updated + first.unchanged });
        expect({ ...await counts(), imports: prior.imports }).to.equal(prior);
        expect(await countOf(riskJobs())).to.equal(0);                  // nothing changed: no risk recompute
        expect(await context.knex('osint_actor_facts').where('feed_id', feed.id).max({ m: 'updated_at' }).first()).to.equal(stamps);

        // One cluster gone, one changed, one malformed: counted, marked, rejected with the reason
        const [gone, changed] = galaxy.values.filter((item) => item.value !== 'APT28').slice(0, 2);
        const next = {
            ...galaxy,
            values: [...galaxy.values.filter((item) => item !== gone).map((item) => (item === changed ? { ...item, description: `${item.description ?? ''} (updated)` } : item)), { value: 'No uuid here' }]
        };
        files.files.set('/galaxy.json', JSON.stringify(next));
        const third = await runNow(feed.id);
        expect(third).to.include({ status: 'succeeded', added: 0, updated: 1, removed: 1, rejected: 1 });
        expect(third.rejections).to.equal([{ item: `values[${next.values.length - 1}]`, reason: 'has no "uuid" (a UUID): the cluster cannot be followed from one import to the next' }]);
        const removed = await context.knex('osint_actor_facts').where({ feed_id: feed.id, item_id: gone!.uuid }).first();
        expect(removed.removed_at).to.be.a.date();
        expect((await context.knex('osint_actor_facts').where({ feed_id: feed.id, item_id: changed!.uuid }).first()).description as string).to.endWith('(updated)');

        // It comes back: no longer marked, first_seen kept
        files.files.set('/galaxy.json', Fs.readFileSync(internals.galaxyFile));
        const fourth = await runNow(feed.id);
        expect(fourth).to.include({ added: 0, updated: 2, removed: 0, rejected: 0 });
        const back = await context.knex('osint_actor_facts').where({ feed_id: feed.id, item_id: gone!.uuid }).first();
        expect(back.removed_at).to.be.null();
        expect(back.first_seen).to.equal(removed.first_seen);

        // The history, newest first, with a filter by feed
        const history = json(await request('admin', 'GET', `/osint/imports?feed_id=${feed.id}&status=succeeded`));
        expect(history.total).to.equal(4);
        expect(history.items.map((item: { id: string }) => item.id)).to.equal([fourth.id, third.id, second.id, first.id]);
        expect(history.items[0]).to.not.include('rejections');
        expect(json(await request('red_lead', 'GET', `/osint/feeds/${feed.id}`)).last_succeeded_at).to.be.a.string();
    });

    it('imports STIX 2.1 bundles from the feed directory: technique usage with provenance, prevalence, the risk likelihood, and each feed kept to its own facts', async () => {

        const now = new Date(Math.floor(Date.now() / 1000) * 1000);
        const iso = (days: number) => new Date(now.getTime() - days * internals.day).toISOString();
        const [t1, t2] = [await uniqueTechnique(context.knex), await uniqueTechnique(context.knex)];
        const custom = (await context.knex('threat_actors').insert({ name: internals.unique('Custom actor'), aliases: [internals.unique('Alias')], source: 'custom' }).returning('*'))[0];
        const group = await context.knex('threat_actors').where({ mitre_id: 'G0094', source: 'mitre' }).first();                   // Kimsuky
        const pattern = (id: string) => ({ type: 'attack-pattern', id: `attack-pattern--${internals.uuid()}`, name: id, external_references: [{ source_name: 'mitre-attack', external_id: id }] });
        const [p1, p2] = [pattern(t1), pattern(t2)];
        const byGroup = { type: 'intrusion-set', id: `intrusion-set--${internals.uuid()}`, name: 'Velvet Chollima', external_references: [{ source_name: 'mitre-attack', external_id: 'G0094' }] };
        const byAlias = { type: 'threat-actor', id: `threat-actor--${internals.uuid()}`, name: custom.aliases[0], aliases: [] };
        const fresh = { type: 'intrusion-set', id: `intrusion-set--${internals.uuid()}`, name: internals.unique('New set'), aliases: ['NS'] };
        const uses = (source: { id: string }, target: { id: string }, days: number) => ({ type: 'relationship', id: `relationship--${internals.uuid()}`, relationship_type: 'uses', source_ref: source.id, target_ref: target.id, modified: iso(days) });
        const r1 = uses(byGroup, p1, 0);
        const r2 = uses(fresh, p1, 365);
        const r3 = uses(byAlias, p2, 0);
        const unknown = { ...uses(fresh, { id: `attack-pattern--${internals.uuid()}` }, 0) };
        const orphan = uses({ id: `intrusion-set--${internals.uuid()}` }, p2, 0);
        const objects = [byGroup, byAlias, fresh, p1, p2, r1, r2, r3, unknown, orphan, { type: 'indicator', id: `indicator--${internals.uuid()}` }, { id: 'broken' }];

        const feed = await createFeed({ kind: 'stix_bundle', file_path: writeBundle(`a-${internals.uuid()}.json`, objects) });
        const first = await runNow(feed.id, now);
        expect(first).to.include({ status: 'succeeded', added: 6, updated: 0, unchanged: 0, removed: 0, rejected: 3 });
        expect(first.source as string).to.startWith('file:a-');
        expect(first.rejections).to.equal([
            { item: 'broken', reason: 'has no valid STIX "type" and "id" (<type>--<UUID>)' },
            { item: orphan.id, reason: `"source_ref" ${orphan.source_ref} is not an actor of this feed (missing or rejected)` },
            { item: unknown.id, reason: `names a technique Aegis does not know (${unknown.target_ref}): import ATT&CK first, or the feed is newer than it` }
        ]);

        const facts = await context.knex('osint_technique_facts').where('feed_id', feed.id).orderBy('item_id');
        const actorOf = async (item: { id: string }) => (await context.knex('osint_actor_facts').where({ feed_id: feed.id, item_id: item.id }).first()).threat_actor_id;
        expect(await actorOf(byGroup)).to.equal(group.id);
        expect(await actorOf(byAlias)).to.equal(custom.id);
        const created = await context.knex('threat_actors').where('id', await actorOf(fresh)).first();
        expect(created).to.include({ source: 'osint', name: fresh.name, aliases: ['NS'], tracked: false });
        expect(facts.map((item) => [item.item_id, item.technique_id, item.last_seen.toISOString(), item.removed_at])).to.equal([
            [r1.id, t1, iso(0), null], [r2.id, t1, iso(365), null], [r3.id, t2, iso(0), null]
        ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
        // The provenance never touches the ATT&CK facts
        expect(await countOf(context.knex('threat_actor_techniques').whereIn('technique_id', [t1, t2]))).to.equal(0);

        // Prevalence by hand: t1 = actors Kimsuky (today, 1) and the new set (a year ago, 0.5), one feed: 1.5 / 10
        const prevalence = async (id: string) => json(await request('blue_lead', 'GET', `/osint/prevalence?technique_id=${id}`)).items[0];
        expect(await prevalence(t1)).to.equal({ technique_id: t1, actors: 2, feeds: 1, weighted_actors: 1.5, prevalence: 0.15, last_reported_at: iso(0), computed_at: now.toISOString() });
        expect(await prevalence(t2)).to.include({ actors: 1, feeds: 1, weighted_actors: 1, prevalence: 0.1 });

        // A second feed reports t1 for the custom actor today: (1 + 0.5 + 1) x 1.25 / 10 = 0.3125
        const r4 = uses(byAlias, p1, 0);
        const other = await createFeed({ kind: 'stix_bundle', file_path: writeBundle(`b-${internals.uuid()}.json`, [byAlias, p1, r4, r1, byGroup]) });
        expect(await runNow(other.id, now)).to.include({ added: 4, rejected: 0 });
        expect(await prevalence(t1)).to.include({ actors: 3, feeds: 2, weighted_actors: 2.5, prevalence: 0.3125 });

        // The risk recompute reads it: likelihood 1 + 4 x 0.3125 = 2.25 (no tracked actor has t1 in ATT&CK)
        await context.services.risk.recompute(systemActor);
        expect((await context.knex('risk_profiles').where('technique_id', t1).first()).likelihood).to.equal(2.25);

        // The second feed drops r1: only its own fact is marked; the first feed's r1 stays current
        writeBundle(other.file_path, [byAlias, p1, r4]);
        expect(await runNow(other.id, now)).to.include({ added: 0, updated: 0, unchanged: 2, removed: 2 });
        const r1Facts = await context.knex('osint_technique_facts').where('item_id', r1.id).orderBy('feed_id');
        expect(r1Facts.map((item) => [item.feed_id, item.removed_at === null])).to.equal([[feed.id, true], [other.id, false]].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
        expect(await prevalence(t1)).to.include({ actors: 3, feeds: 2 });

        // Disabling a feed takes it out of prevalence; deleting it removes its facts
        const off = await request('admin', 'PATCH', `/osint/feeds/${other.id}`, { enabled: false });
        expect(off.statusCode, off.payload).to.equal(200);
        expect(await prevalence(t1)).to.include({ actors: 2, feeds: 1, prevalence: 0.15 });
        expect((await request('admin', 'DELETE', `/osint/feeds/${feed.id}`)).statusCode).to.equal(204);
        expect(await prevalence(t1)).to.be.undefined();
        expect(await countOf(context.knex('osint_technique_facts').where('feed_id', feed.id))).to.equal(0);
        expect(await context.knex('threat_actors').where('id', created.id).first()).to.exist();
        await request('admin', 'DELETE', `/osint/feeds/${other.id}`);
    });

    it('reads a TAXII 2.1 collection page by page with basic auth; failures name the cause and write nothing', async () => {

        const technique = await uniqueTechnique(context.knex);
        const set = { type: 'intrusion-set', id: `intrusion-set--${internals.uuid()}`, name: internals.unique('TAXII set') };
        const pattern = { type: 'attack-pattern', id: `attack-pattern--${internals.uuid()}`, name: 'p', external_references: [{ source_name: 'mitre-attack', external_id: technique }] };
        const relationship = { type: 'relationship', id: `relationship--${internals.uuid()}`, relationship_type: 'uses', source_ref: set.id, target_ref: pattern.id };
        const password = `pw-${Crypto.randomBytes(8).toString('hex')}`;
        const taxii = await startTaxiiServer({ collections: [{ id: internals.uuid(), title: 'Enterprise', objects: [set, pattern, relationship, { type: 'identity', id: `identity--${internals.uuid()}`, name: 'x' }, { type: 'note', id: `note--${internals.uuid()}` }] }], pageSize: 2, basic: { username: 'aegis', password } });
        try {
            const feed = await createFeed({ kind: 'taxii_collection', url: taxii.discovery, collection: 'Enterprise', auth_type: 'basic', username: 'aegis', secret: password });
            const done = await runNow(feed.id);
            expect(done, done.error).to.include({ status: 'succeeded', added: 2, rejected: 0, source: `${taxii.apiRoot}collections/${taxii.options.collections[0]!.id}/` });
            const pages = taxii.requests.filter((item) => item.url.includes('/objects/'));
            expect(pages.map((item) => new URL(item.url, taxii.url).searchParams.get('next'))).to.equal([null, '2', '4']);
            expect(taxii.requests.every((item) => item.headers.accept === 'application/taxii+json;version=2.1')).to.be.true();
            expect(await countOf(context.knex('osint_technique_facts').where({ feed_id: feed.id, technique_id: technique }))).to.equal(1);

            // Wrong password, unknown collection, paging without `next`: failed runs with the reason, nothing written
            const prior = await counts();
            await request('admin', 'PATCH', `/osint/feeds/${feed.id}`, { secret: 'wrong' });
            const refused = await runNow(feed.id);
            expect(refused).to.include({ status: 'failed', error: `${taxii.url}/taxii2/ answered HTTP 401: check the feed's credentials`, added: 0 });
            await request('admin', 'PATCH', `/osint/feeds/${feed.id}`, { secret: password, collection: 'Mobile' });
            const missing = await runNow(feed.id);
            expect(missing.error).to.equal(`${taxii.apiRoot} has no collection "Mobile" (it offers: ${taxii.options.collections[0]!.id})`);
            await request('admin', 'PATCH', `/osint/feeds/${feed.id}`, { collection: 'Enterprise' });
            taxii.options.brokenPaging = true;
            const broken = await runNow(feed.id);
            expect(broken.error).to.match(/says there is more but gives no new "next"$/);
            expect({ ...await counts(), imports: prior.imports }).to.equal(prior);

            // The secret is in no answer, import row or audit row
            const everything = JSON.stringify([await OsintImport.query(context.knex).where('feed_id', feed.id), await AuditLog.query(context.knex).where('entity_id', feed.id), json(await request('admin', 'GET', `/osint/feeds/${feed.id}`))]);
            expect(everything).to.not.include(password);
        }
        finally {
            await taxii.close();
        }
    });

    it('fails a run on a feed that cannot be read or is not of its kind, and refuses internal addresses at run time unless allowed', async () => {

        const notJson = await createFeed({ kind: 'stix_bundle', file_path: 'not-json.json' });
        Fs.writeFileSync(Path.join(feedDir, 'not-json.json'), 'nope');
        expect(await runNow(notJson.id)).to.include({ status: 'failed', error: 'not-json.json is not JSON' });
        Fs.writeFileSync(Path.join(feedDir, 'not-json.json'), JSON.stringify({ values: [] }));
        expect(await runNow(notJson.id)).to.include({ status: 'failed', error: 'The feed is not a STIX 2.1 bundle: the document has no "type": "bundle" with an "objects" list' });
        Fs.rmSync(Path.join(feedDir, 'not-json.json'));
        expect((await runNow(notJson.id)).error).to.equal('not-json.json does not exist in the feed directory (OSINT_FEED_DIR): copy the feed file there');
        // A symbolic link out of the feed directory is refused when read
        Fs.symlinkSync(internals.galaxyFile, Path.join(feedDir, 'link.json'));
        const linked = await createFeed({ kind: 'misp_galaxy', file_path: 'link.json' });
        expect((await runNow(linked.id)).error).to.equal('link.json leads outside the feed directory (a symbolic link)');

        // The same feed through an outbound client without the operator's allow list: refused at run time
        const remote = await createFeed({ kind: 'misp_galaxy', url: `${files.url}/galaxy.json` });
        const strict = new OsintService({ knex: context.knex, audit: context.services.audit, outbound: new OutboundHttp({ allowHttp: true, ports: [Number(new URL(files.url).port)] }), queue: context.queue, secretKey: resolveSecretKey(context.config), feedDir });
        const queued = await OsintImport.query(context.knex).insert({ feed_id: remote.id, trigger: 'manual', status: 'queued' });
        const refused = await strict.runImport(systemActor, queued.id);
        expect(refused.status).to.equal('failed');
        expect(refused.error!).to.startWith(`${files.url}/galaxy.json is not allowed by the outbound rules (`);
        expect(await countOf(context.knex('osint_actor_facts').where('feed_id', remote.id))).to.equal(0);
        await expect(strict.runImport(systemActor, queued.id)).to.reject('Queued import not found');
        for (const id of [notJson.id, linked.id, remote.id]) {
            await request('admin', 'DELETE', `/osint/feeds/${id}`);
        }
    });

    it('sends an API key in the header the feed names, and never shows it', async () => {

        const key = `key-${Crypto.randomBytes(12).toString('hex')}`;
        const set = { type: 'intrusion-set', id: `intrusion-set--${internals.uuid()}`, name: internals.unique('Keyed set') };
        files.files.set('/keyed.json', JSON.stringify({ type: 'bundle', id: `bundle--${internals.uuid()}`, objects: [set] }));
        const feed = await createFeed({ kind: 'stix_bundle', url: `${files.url}/keyed.json?token=abc`, auth_type: 'api_key', api_key_header: 'X-Api-Key', secret: key });
        expect(feed).to.include({ auth_type: 'api_key', api_key_header: 'X-Api-Key', has_secret: true, username: null });
        const done = await runNow(feed.id);
        expect(done).to.include({ status: 'succeeded', added: 1, source: `${files.url}/keyed.json` });
        expect(files.requests.at(-1)!.headers['x-api-key']).to.equal(key);
        expect(files.requests.at(-1)!.url).to.equal('/keyed.json?token=abc');
        const shown = JSON.stringify([done, json(await request('admin', 'GET', `/osint/feeds/${feed.id}`)), await AuditLog.query(context.knex).where('entity_id', feed.id)]);
        expect(shown).to.not.include(key);
        await request('admin', 'DELETE', `/osint/feeds/${feed.id}`);
    });

    it('queues the imports of feeds whose time has come, once, and moves their next run', async () => {

        const feed = await createFeed({ kind: 'stix_bundle', file_path: 'scheduled.json', interval_minutes: 30 });
        const idle = await createFeed({ kind: 'stix_bundle', file_path: 'idle.json', interval_minutes: 30, enabled: false });
        const now = new Date(Date.now() + 31 * 60_000);
        expect(await context.services.osint.tick(systemActor, now)).to.be.at.least(1);
        const queued = await OsintImport.query(context.knex).where('feed_id', feed.id);
        expect(queued.map((item) => [item.trigger, item.status])).to.equal([['schedule', 'queued']]);
        expect((await OsintFeed.query(context.knex).findById(feed.id))!.next_run_at!.getTime()).to.equal(now.getTime() + 30 * 60_000);
        expect(await OsintImport.query(context.knex).where('feed_id', idle.id).resultSize()).to.equal(0);

        // Due again while its import still waits: no second one
        await context.knex('osint_feeds').where('id', feed.id).update({ next_run_at: new Date(now.getTime() - 1000) });
        await context.services.osint.tick(systemActor, now);
        expect(await OsintImport.query(context.knex).where('feed_id', feed.id).resultSize()).to.equal(1);
        for (const id of [feed.id, idle.id]) {
            await request('admin', 'DELETE', `/osint/feeds/${id}`);
        }
    });
});
