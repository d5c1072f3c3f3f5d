import { Module } from 'module';


// hapi-swagger requires `swagger-ui-dist` only for the folder of swagger-ui's files (`getAbsoluteFSPath()`), but that
// package's entry also loads swagger-ui's whole browser bundle into the process (swagger-api/swagger-ui#3291): 23 MB of
// RSS and 10 MB of heap that the API never runs (docs/performance.md, Memory). Imported before hapi-swagger, this
// registers the package's entry as what hapi-swagger uses of it: the package's own absolute-path function, which is
// all the upstream issue recommends loading in Node. The files hapi-swagger serves (/swaggerui/...) are unchanged.
const entry = require.resolve('swagger-ui-dist');
if (!require.cache[entry]) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's own path function, see above
    const absolutePath = require('swagger-ui-dist/absolute-path.js') as () => string;

    const module = new Module(entry);
    module.filename = entry;
    module.loaded = true;
    module.exports = { absolutePath, getAbsoluteFSPath: absolutePath };

    require.cache[entry] = module;
}
