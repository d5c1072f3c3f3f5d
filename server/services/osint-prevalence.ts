// OSINT prevalence per technique (docs/osint.md), pure and unit-tested with hand-computed examples
// (test/services/osint.ts). The risk recompute reads it as the `prevalence` of likelihoodOf (scoring.ts).

export interface UsageFact {
    technique_id: string;               // the technique reported, or its parent (a sub-technique's report counts for it too)
    threat_actor_id: string;
    feed_id: string;
    last_seen: Date;
}

export interface Prevalence {
    technique_id: string;
    actors: number;                     // distinct active actors that the feeds say use it
    feeds: number;                      // distinct feeds that report it
    weighted_actors: number;            // sum over those actors of the recency weight of their latest report
    prevalence: number;                 // 0-1
    last_reported_at: Date;
}


export const prevalenceSettings = {
    halfLifeDays: 365,                  // a report a year old weighs half
    saturation: 10,                     // ten actors reported today, by one feed, make prevalence 1
    feedBonus: 0.25                     // each further feed that agrees adds a quarter
} as const;


const internals = {
    dayMs: 86_400_000,
    round: (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits
};


// The recency weight of a report: 0.5 ^ (age in days / half-life), 1 for one seen today (or in the future)
export const recencyWeight = (lastSeen: Date, now: Date, halfLifeDays: number = prevalenceSettings.halfLifeDays): number => 0.5 ** (Math.max(0, now.getTime() - lastSeen.getTime()) / internals.dayMs / halfLifeDays);


// prevalence = min(1, weighted_actors × (1 + feedBonus × (feeds − 1)) / saturation), where weighted_actors sums, per
// distinct actor, the weight of its most recent report (any feed). Four decimals; weighted_actors too.
export const prevalenceOf = (facts: UsageFact[], now: Date, settings: typeof prevalenceSettings = prevalenceSettings): Prevalence[] => {

    const byTechnique = new Map<string, { actors: Map<string, Date>; feeds: Set<string>; last: Date }>();
    for (const fact of facts) {
        const entry = byTechnique.get(fact.technique_id) ?? { actors: new Map(), feeds: new Set(), last: fact.last_seen };
        const latest = entry.actors.get(fact.threat_actor_id);
        if (!latest || latest < fact.last_seen) {
            entry.actors.set(fact.threat_actor_id, fact.last_seen);
        }

        entry.feeds.add(fact.feed_id);
        if (entry.last < fact.last_seen) {
            entry.last = fact.last_seen;
        }

        byTechnique.set(fact.technique_id, entry);
    }

    return [...byTechnique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([techniqueId, entry]) => {

        const weighted = [...entry.actors.values()].reduce((sum, seen) => sum + recencyWeight(seen, now, settings.halfLifeDays), 0);
        const prevalence = Math.min(1, weighted * (1 + settings.feedBonus * (entry.feeds.size - 1)) / settings.saturation);
        return {
            technique_id: techniqueId,
            actors: entry.actors.size,
            feeds: entry.feeds.size,
            weighted_actors: internals.round(weighted, 4),
            prevalence: internals.round(prevalence, 4),
            last_reported_at: entry.last
        };
    });
};
