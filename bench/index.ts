import { suites } from './suites';


// `npm run bench [suite...]`: each suite measures Aegis beside a baseline in the same run and prints the ratio.
const main = async () => {

    const wanted = process.argv.slice(2);
    for (const [name, suite] of Object.entries(suites)) {
        if (wanted.length && !wanted.includes(name)) {
            continue;
        }

        process.stdout.write(`\n== ${name}: ${suite.description}\n`);
        await suite.run();
    }
};


main().then(() => process.exit(0), (err) => {

    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
});
