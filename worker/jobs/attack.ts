import type { Agenda } from 'agenda';

import { SourceError } from '../../integrations/attack';
import type { Config } from '../../server/config';
import type { Jobs } from '../../server/jobs';
import type { Logger } from '../../server/logger';
import { systemActor } from '../../server/policy';
import type { Services } from '../../server/services';


const internals = {
    remedies: {
        attack: 'Set ATTACK_SOURCE to a URL this machine can reach, or to a local copy of the ATT&CK Enterprise bundle (.json or .json.gz): see the README, "Air-gapped installs".',
        d3fend: 'Set D3FEND_SOURCE to a URL this machine can reach, or to a local copy of the D3FEND ontology (d3fend.ttl or .ttl.gz): see the README, "Air-gapped installs".'
    },

    // A source that failed says what failed, from where, and what to do; this message is the job's fail_reason in
    // GET /system/scheduler and the worker's log line. Any other error (the database) is left as it is.
    explain(err: unknown, what: string, remedy: string): unknown {

        return err instanceof SourceError ? new Error(`${what} failed: ${err.message}. ${remedy}`, { cause: err }) : err;
    }
};


// attack-sync: ATT&CK from config.attack.source, then D3FEND from config.attack.d3fendSource; progress through job.touch.
export const defineAttackJobs = (agenda: Agenda, services: Services, options: { attack: Config['attack']; logger?: Logger }) => {

    agenda.define<Jobs['attack-sync']>('attack-sync', async (job) => {

        // Progress is saved one touch after another, and the last before the job ends: a touch still in flight when
        // Agenda saves the job's outcome could land after it and leave a failed job looking locked and running
        let last = -1;
        let touching = Promise.resolve();
        const result = await services.attackImport.importAttack(systemActor, options.attack.source, {
            onProgress: (progress) => {

                if (progress.percent !== last) {
                    last = progress.percent;
                    touching = touching.then(() => job.touch(Math.min(progress.percent, 99))).catch(() => undefined);
                }
            }
        }).catch(async (err: unknown) => {

            await touching;
            throw internals.explain(err, 'ATT&CK import', internals.remedies.attack);
        });

        await touching;

        options.logger?.info({ job: 'attack-sync', reason: job.attrs.data?.reason, attack_version: result.attack_version, changed: result.changed, duration_ms: result.duration_ms }, 'attack import finished');

        // D3FEND is a separate import: its failure (recorded in attack_imports) leaves the ATT&CK import in place
        try {
            const d3fend = await services.attackImport.importD3fend(systemActor, options.attack.d3fendSource);
            options.logger?.info({ job: 'attack-sync', d3fend_version: d3fend.d3fend_version, changed: d3fend.changed }, 'd3fend import finished');
        }
        catch (err) {
            options.logger?.warn({ job: 'attack-sync' }, (internals.explain(err, 'D3FEND import', internals.remedies.d3fend) as Error).message);
        }

        await job.touch(100);
    }, { concurrency: 1, lockLifetime: 30 * 60_000 });
};


// Weekly, and once at first start when the knowledge base is empty (health answers meanwhile: the job runs in the worker).
export const scheduleAttackJobs = async (agenda: Agenda, services: Services) => {

    await agenda.every('1 week', 'attack-sync', { reason: 'schedule' }, { skipImmediate: true });
    if (await services.attackImport.isEmpty() && !(await services.attackImport.pendingSync())) {
        await agenda.now('attack-sync', { reason: 'first-start' });
    }
};
