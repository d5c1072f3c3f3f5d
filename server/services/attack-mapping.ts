import {
    detectionLinks, type AttackBundle, type AttackDomain, type AttackObjectRecord, type AttackRecord, type D3fendData
} from '../../integrations/attack';

import type { Column, LinkSpec, Row, TableSpec } from './bulk-upsert';


// The pure half of the ATT&CK and D3FEND import: which table each part of a parsed bundle goes to, and its rows.
// No database here: the writes (bulk-upsert.ts) and the run (attack-import.ts) are the service's.

// STIX id → row id (a uuid, or the MITRE id of a technique), filled as the objects are written, read by the later steps
export type IdMap = Map<string, string>;

export type ImportStep =
    { name: string; kind: 'objects'; spec: TableSpec; key: 'id' | 'mitre_id'; rows: (ids: IdMap) => Row[] } |
    { name: string; kind: 'links'; spec: LinkSpec; rows: (ids: IdMap) => Row[]; left: (ids: IdMap) => string[]; right: (ids: IdMap) => string[] | null };


const internals = {
    stix: [
        { name: 'stix_id', type: 'text' }, { name: 'mitre_id', type: 'text' }, { name: 'domain', type: 'text' }, { name: 'domains', type: 'text[]' },
        { name: 'name', type: 'text' }, { name: 'description', type: 'text' }, { name: 'url', type: 'text' }, { name: 'version', type: 'text' },
        { name: 'revoked', type: 'boolean' }, { name: 'deprecated', type: 'boolean' }, { name: 'modified', type: 'timestamptz' }, { name: 'attack_version', type: 'text' }
    ] as Column[],

    // Every ATT&CK table: an object seen in another domain adds that domain, and a new ATT&CK release alone does not
    // rewrite an unchanged object
    attackTable: (spec: Omit<TableSpec, 'union' | 'uncompared'>): TableSpec => ({ ...spec, union: 'domains', uncompared: ['attack_version'] }),

    // Objects shared by several bundles list their domains; relationships and older objects list none
    domainsOf(record: AttackRecord, domain: AttackDomain): AttackDomain[] {

        return record.domains.length ? record.domains : [domain];
    },

    base(record: AttackObjectRecord, domain: AttackDomain, version: string | null): Row {

        return {
            stix_id: record.stix_id,
            mitre_id: record.mitre_id,
            domain,
            domains: internals.domainsOf(record, domain),
            name: record.name,
            description: record.description,
            url: record.url,
            version: record.version,
            revoked: record.revoked,
            deprecated: record.deprecated,
            modified: record.modified || null,
            attack_version: version
        };
    },

    active(record: AttackRecord): boolean {

        return !record.revoked && !record.deprecated;
    }
};


// The steps of an ATT&CK import, in order: the objects, then the links between them (technique_data_components,
// which has its own shape, is detectionRows()).
export const attackSteps = (bundle: AttackBundle): ImportStep[] => {

    const { domain } = bundle;
    const version = bundle.attack_version;
    const stix = (extra: Column[]): Column[] => [...internals.stix, ...extra];
    const steps: ImportStep[] = [];
    const objects = (name: string, spec: Omit<TableSpec, 'table' | 'union' | 'uncompared'>, rows: (ids: IdMap) => Row[], key: 'id' | 'mitre_id' = 'id') => {

        steps.push({ name, kind: 'objects', spec: internals.attackTable({ table: name, ...spec }), key, rows });
    };

    // Objects
    objects('tactics', { conflict: 'stix_id', insertOnly: ['domain'], columns: stix([{ name: 'shortname', type: 'text' }, { name: 'matrix_order', type: 'integer' }]) },
        () => bundle.tactics.map((tactic) => ({ ...internals.base(tactic, domain, version), shortname: tactic.shortname, matrix_order: tactic.order })));

    const inBundle = new Set(bundle.techniques.map((technique) => technique.mitre_id));
    const successors = new Map(bundle.revocations.filter((revocation) => revocation.object_type === 'attack-pattern').map((revocation) => [revocation.stix_id, revocation.final_mitre_id]));
    const techniques = [...bundle.techniques].filter((technique) => technique.mitre_id).sort((a, b) => Number(a.is_subtechnique) - Number(b.is_subtechnique));
    objects('techniques', {
        conflict: 'mitre_id',
        insertOnly: ['domain'],
        guard: 'not techniques.is_custom and (techniques.stix_id is null or techniques.stix_id = excluded.stix_id)',     // a placeholder row is adopted
        columns: stix([
            { name: 'is_subtechnique', type: 'boolean' }, { name: 'parent_id', type: 'text' }, { name: 'platforms', type: 'text[]' },
            { name: 'detection', type: 'text' }, { name: 'legacy_data_sources', type: 'text[]' }, { name: 'revoked_by_id', type: 'text' }
        ])
    }, () => techniques.map((technique) => ({
        ...internals.base(technique, domain, version),
        // A sub-technique whose parent is not in the bundle (the parser warns) stands alone: a flag without a parent
        // would be a row the database refuses
        is_subtechnique: Boolean(technique.parent_mitre_id && inBundle.has(technique.parent_mitre_id)),
        parent_id: technique.parent_mitre_id && inBundle.has(technique.parent_mitre_id) ? technique.parent_mitre_id : null,
        platforms: technique.platforms,
        detection: technique.detection,
        legacy_data_sources: technique.data_sources,
        revoked_by_id: successors.get(technique.stix_id) ?? null
    })), 'mitre_id');

    objects('mitigations', { conflict: 'stix_id', insertOnly: ['domain'], columns: internals.stix },
        () => bundle.mitigations.map((mitigation) => internals.base(mitigation, domain, version)));

    objects('software', {
        conflict: 'stix_id', insertOnly: ['domain'],
        columns: stix([{ name: 'type', type: 'text' }, { name: 'aliases', type: 'text[]' }, { name: 'platforms', type: 'text[]' }])
    }, () => bundle.software.map((software) => ({ ...internals.base(software, domain, version), type: software.type, aliases: software.aliases, platforms: software.platforms })));

    objects('data_sources', {
        conflict: 'stix_id', insertOnly: ['domain'],
        columns: stix([{ name: 'platforms', type: 'text[]' }, { name: 'collection_layers', type: 'text[]' }])
    }, () => bundle.data_sources.map((source) => ({ ...internals.base(source, domain, version), platforms: source.platforms, collection_layers: source.collection_layers })));

    // The organisation's view of a component (collected, quality, notes, assessed_*) is never in the column list
    objects('data_components', {
        conflict: 'stix_id', insertOnly: ['domain'],
        columns: stix([{ name: 'data_source_id', type: 'uuid' }, { name: 'log_sources', type: 'jsonb' }])
    }, (ids) => bundle.data_components.map((component) => ({
        ...internals.base(component, domain, version),
        data_source_id: component.data_source_stix_id ? ids.get(component.data_source_stix_id) ?? null : null,
        log_sources: component.log_sources
    })));

    objects('detection_strategies', { conflict: 'stix_id', insertOnly: ['domain'], columns: internals.stix },
        () => bundle.detection_strategies.map((strategy) => internals.base(strategy, domain, version)));

    const strategyOf = new Map<string, string>();
    for (const strategy of bundle.detection_strategies) {
        for (const analytic of strategy.analytic_stix_ids) {
            if (!strategyOf.has(analytic)) {
                strategyOf.set(analytic, strategy.stix_id);
            }
        }
    }

    objects('analytics', {
        conflict: 'stix_id', insertOnly: ['domain'],
        columns: stix([{ name: 'detection_strategy_id', type: 'uuid' }, { name: 'platforms', type: 'text[]' }, { name: 'log_source_references', type: 'jsonb' }])
    }, (ids) => bundle.analytics.map((analytic) => ({
        ...internals.base(analytic, domain, version),
        detection_strategy_id: ids.get(strategyOf.get(analytic.stix_id) ?? '') ?? null,
        platforms: analytic.platforms,
        log_source_references: analytic.log_source_references
    })));

    // Groups: the organisation's columns (tracked, country, motivations) are never in the column list
    objects('threat_actors', {
        conflict: 'stix_id', insertOnly: ['source'],
        columns: [
            { name: 'stix_id', type: 'text' }, { name: 'mitre_id', type: 'text' }, { name: 'source', type: 'text' }, { name: 'domains', type: 'text[]' },
            { name: 'name', type: 'text' }, { name: 'aliases', type: 'text[]' }, { name: 'description', type: 'text' }, { name: 'url', type: 'text' },
            { name: 'references', type: 'jsonb' }, { name: 'revoked', type: 'boolean' }, { name: 'deprecated', type: 'boolean' },
            { name: 'modified', type: 'timestamptz' }, { name: 'attack_version', type: 'text' }
        ]
    }, () => bundle.groups.map((group) => ({
        stix_id: group.stix_id,
        mitre_id: group.mitre_id,
        source: 'mitre',
        domains: internals.domainsOf(group, domain),
        name: group.name,
        aliases: group.aliases,
        description: group.description,
        url: group.url,
        references: group.mitre_id ? [{ source_name: 'mitre-attack', external_id: group.mitre_id, url: group.url }] : [],
        revoked: group.revoked,
        deprecated: group.deprecated,
        modified: group.modified || null,
        attack_version: version
    })));

    objects('attack_campaigns', {
        conflict: 'stix_id', insertOnly: ['domain'],
        columns: stix([{ name: 'aliases', type: 'text[]' }, { name: 'first_seen', type: 'text' }, { name: 'last_seen', type: 'text' }])
    }, () => bundle.campaigns.map((campaign) => ({ ...internals.base(campaign, domain, version), aliases: campaign.aliases, first_seen: campaign.first_seen, last_seen: campaign.last_seen })));

    // Links, from the active relationships
    const relationships = bundle.relationships.filter(internals.active);
    const pairs = (type: string, sourceTypes: string[], targetTypes: string[]) => relationships.filter((relationship) => relationship.type === type && sourceTypes.includes(relationship.source_type) && targetTypes.includes(relationship.target_type));
    const universe = (records: { stix_id: string }[]) => {

        return (ids: IdMap) => records.map((item) => ids.get(item.stix_id)).filter((id): id is string => Boolean(id));
    };

    const techniqueIds = universe(bundle.techniques);
    const software = ['malware', 'tool'];
    const links = (spec: LinkSpec, rows: (ids: IdMap) => Row[], left: (ids: IdMap) => string[], right: (ids: IdMap) => string[] | null) => {

        steps.push({ name: spec.table, kind: 'links', spec, rows, left, right });
    };

    const tacticByShortname = new Map(bundle.tactics.map((tactic) => [tactic.shortname, tactic.stix_id]));
    links({ table: 'technique_tactics', left: { name: 'technique_id', type: 'text' }, right: { name: 'tactic_id', type: 'uuid' } },
        (ids) => bundle.techniques.flatMap((technique) => technique.tactics.map((shortname) => ({ technique_id: ids.get(technique.stix_id), tactic_id: ids.get(tacticByShortname.get(shortname) ?? '') }))),
        techniqueIds, universe(bundle.tactics));

    links({ table: 'technique_mitigations', left: { name: 'technique_id', type: 'text' }, right: { name: 'mitigation_id', type: 'uuid' }, extra: [{ name: 'description', type: 'text' }] },
        (ids) => pairs('mitigates', ['course-of-action'], ['attack-pattern']).map((relationship) => ({ technique_id: ids.get(relationship.target_stix_id), mitigation_id: ids.get(relationship.source_stix_id), description: relationship.description })),
        techniqueIds, universe(bundle.mitigations));

    links({
        table: 'threat_actor_techniques', left: { name: 'threat_actor_id', type: 'uuid' }, right: { name: 'technique_id', type: 'text' },
        extra: [{ name: 'source', type: 'text' }, { name: 'description', type: 'text' }], scope: 'source = \'mitre\''
    }, (ids) => pairs('uses', ['intrusion-set'], ['attack-pattern']).map((relationship) => ({ threat_actor_id: ids.get(relationship.source_stix_id), technique_id: ids.get(relationship.target_stix_id), source: 'mitre', description: relationship.description })),
    universe(bundle.groups), techniqueIds);

    links({ table: 'software_techniques', left: { name: 'software_id', type: 'uuid' }, right: { name: 'technique_id', type: 'text' } },
        (ids) => pairs('uses', software, ['attack-pattern']).map((relationship) => ({ software_id: ids.get(relationship.source_stix_id), technique_id: ids.get(relationship.target_stix_id) })),
        universe(bundle.software), techniqueIds);

    links({ table: 'threat_actor_software', left: { name: 'threat_actor_id', type: 'uuid' }, right: { name: 'software_id', type: 'uuid' } },
        (ids) => pairs('uses', ['intrusion-set'], software).map((relationship) => ({ threat_actor_id: ids.get(relationship.source_stix_id), software_id: ids.get(relationship.target_stix_id) })),
        universe(bundle.groups), universe(bundle.software));

    links({ table: 'attack_campaign_techniques', left: { name: 'attack_campaign_id', type: 'uuid' }, right: { name: 'technique_id', type: 'text' } },
        (ids) => pairs('uses', ['campaign'], ['attack-pattern']).map((relationship) => ({ attack_campaign_id: ids.get(relationship.source_stix_id), technique_id: ids.get(relationship.target_stix_id) })),
        universe(bundle.campaigns), techniqueIds);

    links({ table: 'attack_campaign_actors', left: { name: 'attack_campaign_id', type: 'uuid' }, right: { name: 'threat_actor_id', type: 'uuid' } },
        (ids) => pairs('attributed-to', ['campaign'], ['intrusion-set']).map((relationship) => ({ attack_campaign_id: ids.get(relationship.source_stix_id), threat_actor_id: ids.get(relationship.target_stix_id) })),
        universe(bundle.campaigns), universe(bundle.groups));

    return steps;
};


export const detectionColumns: Column[] = [
    { name: 'technique_id', type: 'text' }, { name: 'data_component_id', type: 'uuid' }, { name: 'detection_strategy_id', type: 'uuid' },
    { name: 'analytic_id', type: 'uuid' }, { name: 'source', type: 'text' }
];


// technique ← detection strategy → analytic → data component (v18), plus legacy "Source: Component" names (older
// bundles); only the rows whose technique and component were written
export const detectionRows = (bundle: AttackBundle, ids: IdMap): Row[] => {

    const rows: Row[] = detectionLinks(bundle).map((link) => ({
        technique_id: ids.get(link.technique_stix_id),
        data_component_id: ids.get(link.data_component_stix_id),
        detection_strategy_id: ids.get(link.detection_strategy_stix_id),
        analytic_id: ids.get(link.analytic_stix_id),
        source: 'detection_strategy'
    }));

    const sourceNames = new Map(bundle.data_sources.map((source) => [source.stix_id, source.name]));
    const byName = new Map<string, string>();
    for (const component of bundle.data_components) {
        const sourceName = component.data_source_stix_id ? sourceNames.get(component.data_source_stix_id) : undefined;
        if (sourceName) {
            byName.set(`${sourceName}: ${component.name}`.toLowerCase(), component.stix_id);
        }

        byName.set(component.name.toLowerCase(), component.stix_id);
    }

    for (const technique of bundle.techniques) {
        for (const name of new Set(technique.data_sources)) {
            const component = byName.get(name.toLowerCase()) ?? byName.get(name.split(':').pop()!.trim().toLowerCase());
            if (component) {
                rows.push({ technique_id: ids.get(technique.stix_id), data_component_id: ids.get(component), detection_strategy_id: null, analytic_id: null, source: 'legacy' });
            }
        }
    }

    return rows.filter((row) => row.technique_id && row.data_component_id);
};


export const d3fendCountermeasures = {
    spec: {
        table: 'd3fend_countermeasures',
        conflict: 'd3fend_id',
        columns: [
            { name: 'd3fend_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'tactic', type: 'text' }, { name: 'parent_id', type: 'text' },
            { name: 'level', type: 'smallint' }, { name: 'definition', type: 'text' }, { name: 'synonyms', type: 'text[]' },
            { name: 'artifact_relations', type: 'jsonb' }, { name: 'd3fend_version', type: 'text' }
        ]
    } as TableSpec,

    rows: (data: D3fendData): Row[] => data.countermeasures.map((countermeasure) => ({
        d3fend_id: countermeasure.d3fend_id,
        name: countermeasure.name,
        tactic: countermeasure.tactic,
        parent_id: countermeasure.parent_d3fend_id,
        level: countermeasure.level,
        definition: countermeasure.definition,
        synonyms: countermeasure.synonyms,
        artifact_relations: countermeasure.artifact_relations,
        d3fend_version: data.d3fend_version
    }))
};


export const d3fendMappings = {
    spec: {
        table: 'd3fend_mappings', left: { name: 'd3fend_id', type: 'text' }, right: { name: 'technique_id', type: 'text' }, extra: [{ name: 'inferences', type: 'jsonb' }]
    } as LinkSpec,

    // The mappings of the countermeasures this ontology holds, and those countermeasures (the left universe)
    rows(data: D3fendData): { rows: Row[]; known: string[] } {

        const known = new Set(data.countermeasures.map((countermeasure) => countermeasure.d3fend_id));
        return {
            rows: data.mappings.filter((mapping) => known.has(mapping.d3fend_id)).map((mapping) => ({ d3fend_id: mapping.d3fend_id, technique_id: mapping.attack_id, inferences: mapping.inferences })),
            known: [...known]
        };
    }
};
