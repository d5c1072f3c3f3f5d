import type { AttackBundle, AttackDetectionLink, AttackRecord, AttackRevocation } from './stix-types';


// The id (STIX or ATT&CK) an object was revoked into, following chains such as T1150 → T1547.011 → T1647.
export const successorOf = (bundle: AttackBundle, id: string): AttackRevocation | null => {

    return bundle.revocations.find((revocation) => revocation.stix_id === id || revocation.mitre_id === id) ?? null;
};


// Every object that was revoked into this one, directly or through a chain.
export const revokedInto = (bundle: AttackBundle, id: string): AttackRevocation[] => {

    return bundle.revocations.filter((revocation) => revocation.final_stix_id === id || revocation.final_mitre_id === id);
};


// The v18 detection chain, flattened: technique ← detects ← strategy → analytic → data component.
export const detectionLinks = (bundle: AttackBundle, options: { includeInactive?: boolean } = {}): AttackDetectionLink[] => {

    const usable = <T extends AttackRecord>(record: T | undefined): record is T => {

        return record !== undefined && (options.includeInactive === true || (!record.revoked && !record.deprecated));
    };

    const strategies = new Map(bundle.detection_strategies.map((strategy) => [strategy.stix_id, strategy]));
    const analytics = new Map(bundle.analytics.map((analytic) => [analytic.stix_id, analytic]));
    const components = new Map(bundle.data_components.map((component) => [component.stix_id, component]));
    const techniques = new Map(bundle.techniques.map((technique) => [technique.stix_id, technique]));

    const links: AttackDetectionLink[] = [];
    const seen = new Set<string>();
    for (const relationship of bundle.relationships) {
        const strategy = strategies.get(relationship.source_stix_id);
        if (relationship.type !== 'detects' || !usable(relationship) || !usable(strategy) || !usable(techniques.get(relationship.target_stix_id))) {
            continue;
        }

        for (const analyticId of strategy.analytic_stix_ids) {
            const analytic = analytics.get(analyticId);
            if (!usable(analytic)) {
                continue;
            }

            for (const componentId of analytic.data_component_stix_ids) {
                const key = `${relationship.target_stix_id} ${strategy.stix_id} ${analyticId} ${componentId}`;
                if (usable(components.get(componentId)) && !seen.has(key)) {
                    seen.add(key);
                    links.push({
                        technique_stix_id: relationship.target_stix_id,
                        detection_strategy_stix_id: strategy.stix_id,
                        analytic_stix_id: analyticId,
                        data_component_stix_id: componentId
                    });
                }
            }
        }
    }

    return links;
};
