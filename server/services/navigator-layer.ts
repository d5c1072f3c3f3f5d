import { ValidationError } from '../errors';
import { navigatorLayerFile } from '../schemas/heatmap';


// ATT&CK Navigator layers (format 4.x): the one parser and builder, reused by the heatmap and by campaigns.

export const layerFormat = '4.5';
export const navigatorVersion = '5.1.0';

export interface LayerTechnique {
    techniqueID: string;
    tactic?: string;
    score?: number;
    color?: string;
    comment?: string;
    enabled?: boolean;
    metadata?: { name: string; value: string }[];
    showSubtechniques?: boolean;
}

export interface NavigatorLayer {
    name: string;
    versions: { attack: string; navigator: string; layer: string };
    domain: string;
    description: string;
    filters: { platforms: string[] };
    sorting: number;
    layout: { layout: string; aggregateFunction: string; showID: boolean; showName: boolean; showAggregateScores: boolean; countUnscored: boolean };
    hideDisabled: boolean;
    techniques: LayerTechnique[];
    gradient: { colors: string[]; minValue: number; maxValue: number };
    legendItems: { label: string; color: string }[];
    metadata: { name: string; value: string }[];
    links: { label: string; url: string }[];
    showTacticRowBackground: boolean;
    tacticRowBackground: string;
    selectTechniquesAcrossTactics: boolean;
    selectSubtechniquesWithParent: boolean;
    selectVisibleTechniques: boolean;
}

export interface ParsedLayer {
    name: string;
    domain: string;
    layer_version: string | null;
    attack_version: string | null;
    techniques: { technique_id: string; tactic: string | null; score: number | null; comment: string | null; enabled: boolean }[];
}


const internals = {
    techniqueId: /^[A-Z]{1,2}\d{4}(\.\d{3})?$/
};


// `at` is where the layer sits in the request body, for the field names of a refusal
export const parseNavigatorLayer = (input: unknown, at: string[] = ['layer']): ParsedLayer => {

    const field = (...path: (string | number)[]) => [...at, ...path].join('.');
    const { error, value } = navigatorLayerFile.validate(input, { abortEarly: false, convert: true });
    if (error) {
        throw new ValidationError(`Not an ATT&CK Navigator layer: ${error.message}`, error.details.map((detail) => field(...detail.path)));
    }

    const layerVersion = value.versions?.layer ?? null;
    if (layerVersion && !/^4(\.\d+)?$/.test(layerVersion)) {
        throw new ValidationError(`Navigator layer format ${layerVersion} is not supported (4.x is)`, [field('versions', 'layer')]);
    }

    const bad = value.techniques.filter((technique: LayerTechnique) => !internals.techniqueId.test(technique.techniqueID)).map((technique: LayerTechnique) => technique.techniqueID);
    if (bad.length) {
        throw new ValidationError(`Not technique ids: ${bad.slice(0, 10).join(', ')}`, [field('techniques')]);
    }

    return {
        name: value.name,
        domain: value.domain,
        layer_version: layerVersion,
        attack_version: value.versions?.attack ?? null,
        techniques: value.techniques.map((technique: LayerTechnique) => ({
            technique_id: technique.techniqueID,
            tactic: technique.tactic || null,
            score: typeof technique.score === 'number' ? technique.score : null,
            comment: technique.comment || null,
            enabled: technique.enabled !== false
        }))
    };
};


export const buildNavigatorLayer = (input: {
    name: string;
    description: string;
    domain: string;
    attackVersion: string | null;
    platforms: string[];
    techniques: LayerTechnique[];
    legend: { label: string; color: string }[];
    metadata: { name: string; value: string }[];
}): NavigatorLayer => ({
    name: input.name,
    versions: { attack: input.attackVersion?.split('.')[0] ?? '18', navigator: navigatorVersion, layer: layerFormat },
    domain: input.domain,
    description: input.description,
    filters: { platforms: input.platforms },
    sorting: 0,
    layout: { layout: 'side', aggregateFunction: 'average', showID: true, showName: true, showAggregateScores: false, countUnscored: false },
    hideDisabled: false,
    techniques: input.techniques,
    gradient: { colors: ['#ff6666ff', '#ffe766ff', '#8ec843ff'], minValue: 0, maxValue: 100 },
    legendItems: input.legend,
    metadata: input.metadata,
    links: [],
    showTacticRowBackground: false,
    tacticRowBackground: '#dddddd',
    selectTechniquesAcrossTactics: true,
    selectSubtechniquesWithParent: false,
    selectVisibleTechniques: false
});
