import * as ChildProcess from 'child_process';
import * as Crypto from 'crypto';
import * as Fs from 'fs';
import * as Os from 'os';
import * as Path from 'path';
import * as Util from 'util';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { createKnex } from '../../server/db';
import { createAgenda } from '../../server/jobs';

import { testDatabaseUrl } from '../helpers/db';
import { distDir, spawnEntry, type Spawned } from '../helpers/processes';
import { sharedDir } from '../helpers/reference';


const lab = Lab.script();
export { lab };
const { describe, it, before, after } = lab;


// Issue 11: the Sigma import as the worker's job and as the operator command
describe('Sigma import in the worker and the CLI', () => {

    let url: string;
    let dataDir: string;
    let rulesDir: string;
    let worker: Spawned | undefined;
    const ids: string[] = [];

    before(async () => {

        url = await testDatabaseUrl();
        dataDir = await Fs.promises.mkdtemp(Path.join(Os.tmpdir(), 'aegis-sigma-'));
        rulesDir = Path.join(dataDir, 'rules');
        await Fs.promises.mkdir(rulesDir);

        // Three real rules under fresh ids (the shared database may hold the real ones already), and a broken file
        const index = JSON.parse(await Fs.promises.readFile(Path.join(sharedDir, 'data', 'sigma', 'index.json'), 'utf8')) as { rules: { path: string; id: string }[] };
        for (const rule of index.rules.slice(0, 3)) {
            const id = Crypto.randomUUID();
            ids.push(id);
            const text = await Fs.promises.readFile(Path.join(sharedDir, 'data', 'sigma', rule.path), 'utf8');
            await Fs.promises.writeFile(Path.join(rulesDir, `${id}.yml`), text.replace(rule.id, id));
        }

        await Fs.promises.writeFile(Path.join(rulesDir, 'broken.yml'), 'title: [\n');
    });

    after(async () => {

        worker?.child.kill('SIGKILL');
        await Fs.promises.rm(dataDir, { recursive: true, force: true });
    });

    it('imports rules in the worker process (detection-rules.import-sigma)', { timeout: 120_000 }, async () => {

        worker = spawnEntry('worker/index.js', { DATABASE_URL: url, LOG_LEVEL: 'info', AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'sigma-test-secret-sigma-test-secret-0123456', ATTACK_SOURCE: Path.join(dataDir, 'none.json'), D3FEND_SOURCE: Path.join(dataDir, 'none.json') });
        const { agenda, close } = await createAgenda({ databaseUrl: url, name: 'sigma-test' });
        await agenda.start();
        const job = await agenda.now('detection-rules.import-sigma', { dir: rulesDir });
        const deadline = Date.now() + 60_000;
        let finished: { lastFinishedAt?: Date; failReason?: string } | undefined;
        while (Date.now() < deadline && !finished?.lastFinishedAt) {
            finished = (await agenda.queryJobs({ id: String(job.attrs._id) })).jobs[0];
            await new Promise((resolve) => setTimeout(resolve, 200));
        }

        expect(finished?.lastFinishedAt).to.exist();
        expect(finished?.failReason ?? null).to.be.null();
        const knex = createKnex({ url });
        expect(Number((await knex('detection_rules').where('source', 'sigma').whereIn('source_ref', ids).count('* as n').first())!.n)).to.equal(3);
        await knex.destroy();
        await close();

        worker.child.kill('SIGTERM');
        expect(await worker.exit()).to.equal(0);
        worker = undefined;
    });

    it('imports rules through the CLI, listing the malformed file, idempotently', { timeout: 120_000 }, async () => {

        const run = () => Util.promisify(ChildProcess.execFile)(process.execPath, [Path.join(distDir, 'bin', 'aegis.js'), 'import-sigma', rulesDir], {
            env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, AEGIS_DATA_DIR: dataDir, JWT_SECRET: 'sigma-test-secret-sigma-test-secret-0123456', LOG_LEVEL: 'warn' }
        });

        const first = await run();
        expect(first.stdout).to.match(/^Imported 3 Sigma rules of 4 files \(\d new, \d updated, 1 skipped\)/);
        expect(first.stderr).to.contain('Skipped broken.yml: invalid YAML');
        expect(first.stdout).to.contain('Each rule keeps its author and its licence (its own license field, else DRL-1.1 (Detection Rule License 1.1');
        expect((await run()).stdout).to.contain('(0 new, 3 updated, 1 skipped)');

        const usage = await Util.promisify(ChildProcess.execFile)(process.execPath, [Path.join(distDir, 'bin', 'aegis.js'), 'import-sigma'], { env: { PATH: process.env.PATH ?? '' } }).catch((err) => err);
        expect(usage.code).to.equal(64);
    });
});
