'use strict';

const HapiPlugin = require('@hapi/eslint-plugin');
const NodePlugin = require('eslint-plugin-n');
const TsEslint = require('typescript-eslint');


const internals = {
    httpLayer: {
        group: ['@hapi/hapi', '@hapi/inert', '@hapi/vision', 'hapi-swagger', '**/server/routes/**', '**/server/plugins/**', '**/routes/**', '**/plugins/**'],
        message: 'Domain code must not depend on the HTTP layer.'
    },
    joi: { name: 'joi', message: 'joi schemas live in server/schemas (docs/architecture.md, "How to build a module").' }
};


module.exports = TsEslint.config(
    { ignores: ['dist/', 'coverage/', 'node_modules/', '.data/'] },
    ...HapiPlugin.configs.module,
    {
        files: ['**/*.ts'],
        extends: [TsEslint.configs.recommended],
        languageOptions: { sourceType: 'module' },
        plugins: { n: NodePlugin },
        rules: {
            'strict': 'off',
            'no-undef': 'off',
            'no-unused-vars': 'off',
            'no-redeclare': 'off',
            'no-dupe-class-members': 'off',
            '@typescript-eslint/no-unused-vars': ['warn', { varsIgnorePattern: '^internals$', args: 'none', ignoreRestSiblings: true }],
            '@typescript-eslint/no-explicit-any': 'off',
            '@hapi/scope-start': 'off',
            'n/no-process-env': 'error'
        }
    },
    {
        // Only the configuration module, the entry points and the tests read the environment.
        files: ['server/config.ts', 'bin/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts'],
        rules: { 'n/no-process-env': 'off' }
    },
    {
        // The layering rule: domain code (services, models, integrations, the worker) never depends on the HTTP layer.
        files: ['server/services/**/*.ts', 'server/models/**/*.ts', 'server/*.ts', 'worker/**/*.ts', 'integrations/**/*.ts'],
        ignores: ['server/index.ts', 'server/server.ts'],
        rules: {
            'no-restricted-imports': ['error', { patterns: [internals.httpLayer] }]
        }
    },
    {
        // One place for joi: routes and services name the schemas of server/schemas and build none (route.ts's empty
        // query is the routing machinery's own). A later block replaces the rule, so the layering rule is repeated.
        files: ['server/services/**/*.ts', 'server/models/**/*.ts'],
        rules: { 'no-restricted-imports': ['error', { patterns: [internals.httpLayer], paths: [internals.joi] }] }
    },
    {
        files: ['server/routes/**/*.ts'],
        ignores: ['server/routes/route.ts'],
        rules: { 'no-restricted-imports': ['error', { paths: [internals.joi] }] }
    }
);
