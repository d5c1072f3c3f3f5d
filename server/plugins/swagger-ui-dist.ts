import { Module } from 'module';
import * as Path from 'path';


// hapi-swagger requires `swagger-ui-dist` only for the folder of swagger-ui's files (`getAbsoluteFSPath()`), but that
// package's entry also loads swagger-ui's whole browser bundle into the process (swagger-api/swagger-ui#3291): 23 MB of
// RSS and 10 MB of heap that the API never runs (docs/performance.md, Memory). Imported before hapi-swagger, this
// registers the package's entry as what hapi-swagger uses of it: the package's own absolute-path function, which is
// all the upstream issue recommends loading in Node. The files hapi-swagger serves (/swaggerui/...) are unchanged.
// Resolved from hapi-swagger's own folder, so that it is the copy hapi-swagger requires, hoisted or not
const entry = require.resolve('swagger-ui-dist', { paths: [Path.dirname(require.resolve('hapi-swagger'))] });
if (!require.cache[entry]) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's own path function, see above
    const absolutePath = require(Path.join(Path.dirname(entry), 'absolute-path.js')) as () => string;

    const module = new Module(entry);
    module.filename = entry;
    module.loaded = true;
    module.exports = { absolutePath, getAbsoluteFSPath: absolutePath };

    require.cache[entry] = module;
}
