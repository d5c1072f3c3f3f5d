import * as Fs from 'fs';
import * as Inspector from 'inspector';
import * as Path from 'path';


// Preloaded into a process the bench starts (`NODE_OPTIONS=--require .../cpu-profile.js`, as `--cpu-prof` is not
// allowed there): profiles the whole process and writes `<CPU_PROFILE_DIR>/<name>-<pid>.cpuprofile` when it exits.
const session = new Inspector.Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 200 });
session.post('Profiler.start');

process.on('exit', () => {

    // An in-process session answers synchronously, so the profile is written before the process ends
    session.post('Profiler.stop', (err, result) => {

        if (!err) {
            Fs.writeFileSync(Path.join(process.env.CPU_PROFILE_DIR ?? '.', `server-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
        }
    });
});
