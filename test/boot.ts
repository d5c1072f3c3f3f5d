import * as Fs from 'fs';
import * as Net from 'net';
import * as Os from 'os';
import * as Path from 'path';

import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { spawnEntry } from './helpers/processes';


const lab = Lab.script();
export { lab };
const { describe, it, after } = lab;


describe('npm start on the embedded default', () => {

    const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), 'aegis-boot-'));

    after(() => {

        Fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('starts embedded PostgreSQL, the API and the worker with no DATABASE_URL, serves health, stops on Ctrl-C and starts again on the same data', { timeout: 240_000 }, async () => {

        // Two loopback ports that were free, both held at once so that they differ: the API's, and one nothing listens on
        const listen = () => new Promise<Net.Server>((resolve) => {

            const server = Net.createServer().listen(0, '127.0.0.1', () => resolve(server));
        });

        const servers = [await listen(), await listen()];
        const [port, closed] = servers.map((server) => (server.address() as Net.AddressInfo).port);
        await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));

        const offline = `http://127.0.0.1:${closed}/enterprise-attack.json`;
        const remedy = 'Set ATTACK_SOURCE to a URL this machine can reach, or to a local copy of the ATT&CK Enterprise bundle (.json or .json.gz): see the README, "Air-gapped installs".';
        const started = async (env: Record<string, string> = {}) => {

            const start = spawnEntry('bin/start.js', { AEGIS_DATA_DIR: dataDir, PORT: String(port), WORKER_HEARTBEAT_SECONDS: '1', ATTACK_SOURCE: offline, ...env });
            let health: { status: number; body: any } = { status: 0, body: null };
            const deadline = Date.now() + 90_000;
            while (Date.now() < deadline) {
                try {
                    const res = await fetch(`http://127.0.0.1:${port}/api/v1/system/health`);
                    health = { status: res.status, body: await res.json() };
                    if (health.status === 200 && health.body.dependencies.worker.status === 'ok') {
                        break;
                    }
                }
                catch { }

                await new Promise((resolve) => setTimeout(resolve, 250));
            }

            return { start, health };
        };

        // The closed port is on loopback, which outbound HTTP reaches only when the operator allows it
        const { start, health } = await started({ OUTBOUND_ALLOW_HOSTS: '127.0.0.1', OUTBOUND_ALLOW_HTTP: 'true' });
        expect(health.status).to.equal(200);
        expect(health.body.dependencies.database.status).to.equal('ok');
        expect(health.body.dependencies.object_storage.status).to.equal('ok');
        expect(health.body.dependencies.redis.status).to.equal('not_configured');
        expect(health.body.dependencies.worker.status).to.equal('ok');
        expect(Fs.existsSync(Path.join(dataDir, 'jwt-secret'))).to.be.true();
        expect(start.lines().some((line) => /First start: created user "admin"/.test(line.msg ?? ''))).to.be.true();

        // npm start gives the API its heap bound (API_HEAP_MB, 1024 MiB by default; the limit adds the young generation)
        const listening = start.lines().find((line) => line.msg === 'api listening')!;
        expect(listening.heap_limit_mb as number).to.be.between(1024, 1152);
        expect(start.lines().some((line) => /without its heap bound/.test(line.msg ?? ''))).to.be.false();

        // A first start without internet says what failed, from where and what to do, as a JSON line: the output is a
        // pipe, so npm start chose JSON for both children
        const failed = await start.waitFor((line) => line.job === 'attack-sync' && line.level === 50);
        expect(failed).to.include({
            name: 'aegis-worker',
            msg: `attack-sync failed: ATT&CK import failed: ${offline}: could not be reached: connection refused by 127.0.0.1:${closed} (ECONNREFUSED). ${remedy}`
        });

        // Ctrl-C: everything drains and stops, nothing keeps the port
        start.child.kill('SIGINT');
        expect(await start.exit()).to.equal(0);
        await expect(fetch(`http://127.0.0.1:${port}/api/v1/system/health`)).to.reject();

        // The same data directory starts again, with what the first run wrote (the first admin) and no second admin
        // and, without the operator's allow list, says that the outbound rules refuse the source
        const again = await started();
        expect(again.health.status).to.equal(200);
        expect(again.start.lines().some((line) => /First start/.test(line.msg ?? ''))).to.be.false();
        expect(await again.start.waitFor((line) => line.job === 'attack-sync' && line.level === 50)).to.include({
            name: 'aegis-worker',
            msg: `attack-sync failed: ATT&CK import failed: ${offline}: is not allowed by the outbound rules (The scheme http is not allowed (https only)); a mirror on the local network must be added to OUTBOUND_ALLOW_HOSTS, and an http:// URL needs OUTBOUND_ALLOW_HTTP=true. ${remedy}`
        });
        again.start.child.kill('SIGTERM');
        expect(await again.start.exit()).to.equal(0);
    });
});
