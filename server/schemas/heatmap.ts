import Joi from 'joi';

import { text, uuid } from './common';
import { coverageStatus, coverageStatuses, domain, platform } from './techniques';


const tests = Joi.object({ total: Joi.number().integer().required(), validated: Joi.number().integer().required() });

const cell = Joi.object({
    technique_id: Joi.string().required(),
    name: Joi.string().required(),
    coverage_status: coverageStatus.required(),
    score: Joi.number().allow(null).required(),
    own_coverage_status: coverageStatus.required(),
    own_score: Joi.number().allow(null).required(),
    needs_review: Joi.boolean().required(),
    tests: tests.required()
});


export const heatmap = Joi.object({
    domain: Joi.string().required(),
    attack_version: Joi.string().allow(null).required(),
    filters: Joi.object({ platform: Joi.string().allow(null), threat_actor_id: Joi.string().allow(null) }).required(),
    tactics: Joi.array().items(Joi.object({
        id: Joi.string().allow(null).required(),
        shortname: Joi.string().required(),
        name: Joi.string().required(),
        order: Joi.number().integer().allow(null).required(),
        techniques: Joi.array().items(cell.keys({
            rollup: Joi.object({ coverage_status: coverageStatus.required(), score: Joi.number().allow(null).required(), tests: tests.required() }).required(),
            subtechniques: Joi.array().items(cell).required()
        })).required()
    })).required(),
    summary: Joi.object({ techniques: Joi.number().integer(), subtechniques: Joi.number().integer(), by_status: Joi.object(Object.fromEntries(coverageStatuses.map((status) => [status, Joi.number().integer()]))) }).required()
}).label('Heatmap');


export const navigatorLayer = Joi.object({
    name: Joi.string().required(),
    versions: Joi.object({ attack: Joi.string().required(), navigator: Joi.string().required(), layer: Joi.string().valid('4.5').required() }).required(),
    domain: Joi.string().required(),
    techniques: Joi.array().items(Joi.object({
        techniqueID: Joi.string().required(),
        tactic: Joi.string(),
        score: Joi.number(),
        color: Joi.string().allow(''),
        comment: Joi.string().allow(''),
        enabled: Joi.boolean(),
        metadata: Joi.array().items(Joi.object({ name: Joi.string(), value: Joi.string() })),
        showSubtechniques: Joi.boolean()
    })).required(),
    gradient: Joi.object({ colors: Joi.array().items(Joi.string()), minValue: Joi.number(), maxValue: Joi.number() }).required(),
    legendItems: Joi.array().items(Joi.object({ label: Joi.string(), color: Joi.string() })).required(),
    metadata: Joi.array().items(Joi.object({ name: Joi.string(), value: Joi.string() })).required()
}).label('NavigatorLayer');


export const layerImport = Joi.object({
    layer: Joi.object({ name: Joi.string().allow(''), domain: Joi.string(), layer_version: Joi.string().allow(null), attack_version: Joi.string().allow(null) }).required(),
    reason: Joi.string().required(),
    marked: Joi.array().items(Joi.string()).required(),
    unknown: Joi.array().items(Joi.string()).required(),
    skipped_disabled: Joi.number().integer().required()
}).label('LayerImportResult');


export const syncRequest = Joi.object({ job_id: Joi.string().required(), status: Joi.string().valid('queued', 'already_queued').required() }).label('SyncRequest');


// A full Enterprise matrix exported by the Navigator (887 technique-tactic entries) is about 450 KB pretty-printed with
// short comments; 4 MiB leaves room for long comments and metadata (DeTT&CT layers) without opening every route
export const layerMaxBytes = 4 * 1024 * 1024;

// The Navigator's file as exported, or the older { layer, reason } wrapper; the layer itself is read by the one
// parser (services/navigator-layer.ts), which names what is wrong with it
// (one object schema with a condition rather than alternatives, which the OpenAPI generator cannot describe)
export const layerImportPayload = Joi.object({ layer: Joi.object().unknown(true), reason: text(1000).min(1) })
    .unknown(true)
    .when(Joi.object({ layer: Joi.exist() }).unknown(), { then: Joi.object({ layer: Joi.required() }).unknown(false) })
    .required().label('NavigatorLayerImport');


export const heatmapQuery = Joi.object({
    domain,
    platform,
    threat_actor_id: uuid,
    include_subtechniques: Joi.boolean()
});


// A Navigator layer always holds the sub-techniques
export const layerQuery = heatmapQuery.keys({ include_subtechniques: Joi.forbidden() });


export const layerImportQuery = Joi.object({ reason: text(1000).min(1) });


// What a Navigator layer must look like to be read (services/navigator-layer.ts): the Navigator's own files carry much
// more, which is ignored.
export const navigatorLayerFile = Joi.object({
    name: Joi.string().max(500).allow('').default(''),
    domain: Joi.string().valid('enterprise-attack', 'mobile-attack', 'ics-attack').default('enterprise-attack'),
    versions: Joi.object({ layer: Joi.string().max(20), attack: Joi.string().max(20), navigator: Joi.string().max(20) }).unknown(true),
    techniques: Joi.array().max(20_000).items(Joi.object({
        techniqueID: Joi.string().max(20).required(),
        tactic: Joi.string().max(100).allow(''),
        score: Joi.number().allow(null),
        comment: Joi.string().max(10_000).allow(''),
        enabled: Joi.boolean()
    }).unknown(true)).required()
}).unknown(true);
