import type { Knex } from 'knex';


export interface TechniqueRisk {
    technique_id: string;
    risk: number;
    likelihood: number;
    impact: number;
    score: number;
}


// What risk_threshold asks of risk: the techniques (of a list, or all) whose risk is above a value, highest first.
export type RiskSource = (knex: Knex | Knex.Transaction, above: number, techniques: string[] | null) => Promise<TechniqueRisk[]>;


// Until the risk profiles of the scores module are merged, risk is computed here from what is stored on each
// technique, with domain.md's formula: risk = likelihood x impact x (1 - score/100), where
//   likelihood = 1 + the number of tracked threat actors that use the technique, at most 5;
//   impact     = the technique's impact (1-5), 3 when unset;
//   score      = the stored coverage score (0-100), 0 while untested.
// So risk runs from 0 (fully covered) to 25. When the risk table lands, this function reads it instead, and the rule's
// min_risk keeps its meaning as long as that table keeps the same 0-25 scale (docs/alerts.md).
export const risksAbove: RiskSource = async (knex, above, techniques) => {

    const { rows } = await knex.raw<{ rows: TechniqueRisk[] }>(`
        select technique_id, likelihood, impact, score, round((likelihood * impact * (1 - score / 100.0))::numeric, 2)::float8 as risk
        from (
            select t.mitre_id as technique_id,
                least(5, 1 + (select count(*) from threat_actor_techniques tat join threat_actors ta on ta.id = tat.threat_actor_id
                              where tat.technique_id = t.mitre_id and ta.tracked and not ta.revoked and not ta.deprecated))::int as likelihood,
                coalesce(t.impact, 3)::int as impact,
                coalesce(t.score, 0)::int as score
            from techniques t
            where not t.revoked and not t.deprecated and (?::text[] is null or t.mitre_id = any(?::text[]))
        ) r
        where round((likelihood * impact * (1 - score / 100.0))::numeric, 2) > ?
        order by risk desc, technique_id`, [techniques, techniques, above]);

    return rows;
};
