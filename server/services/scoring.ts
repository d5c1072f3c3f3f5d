import { rollUp, type CoverageFigure, type CoverageStatus } from './coverage';


// The formulas of docs/posture.md, pure and unit-tested with hand-computed examples (test/services/scoring.ts).

export type Outcome = 'prevented' | 'alerted' | 'logged' | 'not_detected';

export type OutcomeWeights = Record<Outcome, number>;

export type RiskBand = 'critical' | 'high' | 'medium' | 'low';


export interface ScoreConfig {
    weights: OutcomeWeights;
    half_life_days: number;
}


export interface TechniqueFacts {
    mitre_id: string;
    parent_id: string | null;
    own_coverage_status: CoverageStatus;
    outcome: Outcome | null;                    // of the latest validated test that counts
    validated_at: Date | null;
    // The detection confidence (0-1) of docs/detection.md when the technique has any detection validation (valid or
    // invalidated; 0 when none counts), null/absent when it has none
    detection_confidence?: number | null;
}


export interface TechniqueScore {
    own_score: number | null;                   // the technique's own latest validation, weighted, decayed, confidence applied
    score: number | null;                       // own_score rolled up over the sub-techniques (coverage.ts rollUp)
    decay: number | null;
    confidence: number;
}


const internals = {
    dayMs: 86_400_000,

    // The default impact of a technique by its tactics (the worst one counts): what an attacker achieves at that stage
    tacticImpacts: {
        'reconnaissance': 1,
        'resource-development': 1,
        'discovery': 2,
        'collection': 3,
        'execution': 3,
        'persistence': 3,
        'defense-evasion': 3,
        'evasion': 3,
        'network-effects': 3,
        'remote-service-effects': 3,
        'initial-access': 4,
        'privilege-escalation': 4,
        'credential-access': 4,
        'lateral-movement': 4,
        'command-and-control': 4,
        'exfiltration': 5,
        'impact': 5,
        'inhibit-response-function': 5,
        'impair-process-control': 5
    } as Record<string, number>,

    defaultImpact: 3,

    round: (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits
};


export const tacticImpacts: Readonly<Record<string, number>> = internals.tacticImpacts;


// The confidence factor of the score (docs/posture.md): the technique's detection confidence (docs/detection.md, 0-1,
// computed by technique_detection_confidence and passed in by the recompute) when it has detection validations, else 1:
// a technique nobody registered a detection asset for keeps its test-based score rather than dropping to 0.
export const detectionConfidence = (facts: Pick<TechniqueFacts, 'detection_confidence'>): number => (facts.detection_confidence === null || facts.detection_confidence === undefined ? 1 : internals.round(facts.detection_confidence, 4));


// OSINT prevalence (docs/osint.md): the 0-1 figure of osint_technique_prevalence, recomputed after every import that
// changed something; the risk recompute reads the table once and passes it here. null for a technique no feed
// reports, and then likelihood rests on the threat actors alone.
export const osintPrevalence = (prevalence: ReadonlyMap<string, number>, techniqueId: string): number | null => prevalence.get(techniqueId) ?? null;


// 0.5 ^ (age / half-life): 1 on the day of the validation, 0.5 after one half-life, 0.25 after two
export const decayOf = (validatedAt: Date, now: Date, halfLifeDays: number): number => {

    const ageDays = Math.max(0, (now.getTime() - validatedAt.getTime()) / internals.dayMs);
    return 0.5 ** (ageDays / halfLifeDays);
};


// A technique's own score: weight of its outcome x decay x confidence, 0-100 rounded; null while untested
export const ownScore = (facts: Pick<TechniqueFacts, 'outcome' | 'validated_at' | 'mitre_id' | 'detection_confidence'>, config: ScoreConfig, now: Date): Omit<TechniqueScore, 'score'> => {

    const confidence = detectionConfidence(facts);
    if (!facts.outcome || !facts.validated_at) {
        return { own_score: null, decay: null, confidence };
    }

    const decay = decayOf(facts.validated_at, now, config.half_life_days);
    return { own_score: Math.round(config.weights[facts.outcome] * decay * confidence), decay: internals.round(decay, 4), confidence };
};


// Every technique's score: its own, then the roll-up of coverage.ts over its active sub-techniques (the same members
// and rule as coverage: an untested sub-technique stands on the parent's own result; untested members count 0)
export const scoreTechniques = (techniques: TechniqueFacts[], config: ScoreConfig, now: Date): Map<string, TechniqueScore> => {

    const own = new Map(techniques.map((technique) => [technique.mitre_id, ownScore(technique, config, now)]));
    const figure = (technique: TechniqueFacts): CoverageFigure => ({ coverage_status: technique.own_coverage_status, score: own.get(technique.mitre_id)!.own_score });
    const subsOf = new Map<string, CoverageFigure[]>();
    for (const technique of techniques) {
        if (technique.parent_id && own.has(technique.parent_id)) {
            subsOf.set(technique.parent_id, [...subsOf.get(technique.parent_id) ?? [], figure(technique)]);
        }
    }

    const scores = new Map<string, TechniqueScore>();
    for (const technique of techniques) {
        const mine = own.get(technique.mitre_id)!;
        scores.set(technique.mitre_id, { ...mine, score: rollUp(figure(technique), subsOf.get(technique.mitre_id) ?? []).score });
    }

    return scores;
};


// The mean of technique scores, untested ones counting 0, one decimal; null when there is no technique
export const meanScore = (scores: (number | null)[]): number | null => (scores.length ? internals.round(scores.reduce<number>((sum, score) => sum + (score ?? 0), 0) / scores.length, 1) : null);


// 1 + 4 x min(1, ln(1 + actors) / ln(1 + saturation)), or from OSINT prevalence (1 + 4 x prevalence) when higher
export const likelihoodOf = (actorCount: number, saturation: number, prevalence: number | null = null): number => {

    const fromActors = 1 + 4 * Math.min(1, Math.log(1 + actorCount) / Math.log(1 + saturation));
    const fromOsint = prevalence === null ? 1 : 1 + 4 * Math.min(1, Math.max(0, prevalence));
    return internals.round(Math.max(fromActors, fromOsint), 2);
};


// The technique's own impact when an admin set one, else the highest default of its tactics, else 3
export const impactOf = (own: number | null, tactics: string[]): { impact: number; source: string } => {

    if (own) {
        return { impact: own, source: 'technique' };
    }

    let best: { impact: number; source: string } | null = null;
    for (const tactic of tactics) {
        const impact = internals.tacticImpacts[tactic];
        if (impact !== undefined && (!best || impact > best.impact)) {
            best = { impact, source: `tactic:${tactic}` };
        }
    }

    return best ?? { impact: internals.defaultImpact, source: 'default' };
};


// likelihood (1-5) x impact (1-5) x (1 - score/100), an untested technique scoring 0: 0 to 25, two decimals
export const riskOf = (likelihood: number, impact: number, score: number | null): number => internals.round(likelihood * impact * (1 - (score ?? 0) / 100), 2);


export const bandOf = (risk: number): RiskBand => (risk >= 15 ? 'critical' : risk >= 8 ? 'high' : risk >= 4 ? 'medium' : 'low');


const outcomeWords: Record<Outcome, string> = {
    prevented: 'prevented',
    alerted: 'alerted on',
    logged: 'only logged',
    not_detected: 'not detected'
};


// Why a technique ranks where it does, in words and numbers
export const reasonOf = (input: { coverage_status: CoverageStatus; outcome: Outcome | null; validated_at: Date | null; score: number | null; actor_count: number; likelihood: number; impact: number; impact_source: string; risk: number }): string => {

    const parts: string[] = [];
    if (input.coverage_status === 'untested') {
        parts.push('Never validated (score 0 of 100)');
    }
    else if (input.outcome && input.validated_at) {
        parts.push(`Latest validation on ${input.validated_at.toISOString().slice(0, 10)} was ${outcomeWords[input.outcome]}; coverage ${input.coverage_status.replace('_', ' ')}, score ${input.score ?? 0} of 100 after decay`);
    }
    else {
        parts.push(`Coverage ${input.coverage_status.replace('_', ' ')} from its sub-techniques, score ${input.score ?? 0} of 100`);
    }

    parts.push(`used by ${input.actor_count} tracked threat actor${input.actor_count === 1 ? '' : 's'} (likelihood ${input.likelihood.toFixed(2)} of 5)`);
    const source = input.impact_source === 'technique' ? 'set for the technique' : input.impact_source === 'default' ? 'default' : `from tactic ${input.impact_source.slice('tactic:'.length)}`;
    parts.push(`impact ${input.impact} of 5 (${source})`);
    return `${parts.join('; ')}: risk ${input.risk.toFixed(2)} of 25`;
};
