import * as ChildProcess from 'child_process';
import * as Path from 'path';


export const distDir = Path.join(__dirname, '..', '..', 'dist');


export interface Spawned {
    child: ChildProcess.ChildProcess;
    lines: () => Record<string, any>[];
    waitFor: (predicate: (line: Record<string, any>) => boolean, timeoutMs?: number) => Promise<Record<string, any>>;
    exit: () => Promise<number | null>;
}


// Runs a compiled entry (npm test builds dist/ first) and collects its JSON log lines.
export const spawnEntry = (entry: string, env: Record<string, string>): Spawned => {

    const child = ChildProcess.spawn(process.execPath, [Path.join(distDir, entry)], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, any>[] = [];
    let buffer = '';
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    child.stdout!.on('data', (chunk: Buffer) => {

        buffer += chunk.toString();
        const parts = buffer.split('\n');
        buffer = parts.pop()!;
        for (const part of parts) {
            try {
                lines.push(JSON.parse(part));
            }
            catch {
                lines.push({ msg: part });
            }
        }
    });

    child.stderr!.on('data', (chunk: Buffer) => {

        stderr += chunk.toString();
    });

    return {
        child,
        lines: () => lines,
        waitFor: async (predicate, timeoutMs = 30_000) => {

            const deadline = Date.now() + timeoutMs;
            while (Date.now() < deadline) {
                const found = lines.find(predicate);
                if (found) {
                    return found;
                }

                if (child.exitCode !== null) {
                    throw new Error(`${entry} exited with ${child.exitCode}: ${stderr}`);
                }

                await new Promise((resolve) => setTimeout(resolve, 50));
            }

            throw new Error(`timed out waiting on ${entry}; stderr: ${stderr}`);
        },
        exit: () => exited
    };
};
