'use strict';

// lab settings shared by `npm test` and CI: TypeScript through lab's transform, coverage over the three source
// trees, and a test with zero assertions counts as a failure.
module.exports = {
    typescript: true,
    sourcemaps: true,
    coverage: true,
    'coverage-path': '.',
    'coverage-exclude': ['node_modules', 'test', 'dist', 'bench', 'migrations', 'bin'],
    threshold: 90,
    'default-plan-threshold': 1,
    assert: '@hapi/code',
    timeout: 60000,
    'context-timeout': 120000,
    globals: 'CSS,__core-js_shared__,Symbol(react-redux-context),__extends,__assign,__rest,__decorate,__param,__metadata,__awaiter,__generator,__exportStar,__values,__read,__spread,__spreadArrays,__spreadArray,__await,__asyncGenerator,__asyncDelegator,__asyncValues,__makeTemplateObject,__importStar,__importDefault,__classPrivateFieldGet,__classPrivateFieldSet,__createBinding,__setFunctionName,__propKey,__esDecorate,__runInitializers,__addDisposableResource,__disposeResources,__rewriteRelativeImportExtension,__classPrivateFieldIn,URLPattern,DOMMatrix,navigator,pdfjsWorker,_pdfjsTestingUtils,pdfjsLib',
    paths: ['test']
};
