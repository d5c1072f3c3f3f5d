import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { matchTechnique, parseMapex, type KnownTechnique } from '../../server/services/compliance-mapping';
import { bandOf, decayOf, impactOf, likelihoodOf, meanScore, ownScore, reasonOf, riskOf, scoreTechniques, type ScoreConfig } from '../../server/services/scoring';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


// Hand-computed examples of docs/posture.md and docs/compliance.md
describe('Scoring formulas', () => {

    const day = 86_400_000;
    const now = new Date('2026-12-01T00:00:00.000Z');
    const ago = (days: number) => new Date(now.getTime() - days * day);
    const config: ScoreConfig = { weights: { prevented: 100, alerted: 90, logged: 40, not_detected: 0 }, half_life_days: 180 };

    it('decays by half each half-life, never above 1', () => {

        expect(decayOf(now, now, 180)).to.equal(1);
        expect(decayOf(ago(180), now, 180)).to.equal(0.5);
        expect(decayOf(ago(360), now, 180)).to.equal(0.25);
        expect(decayOf(ago(45), now, 90)).to.equal(Math.SQRT1_2);
        expect(decayOf(new Date(now.getTime() + day), now, 180)).to.equal(1);
    });

    it('weighs the outcome, decays it and applies the confidence factor (1 without detection validations)', () => {

        // alerted 90 x 0.5^(90/180) = 90 x 0.70711 = 63.64 -> 64
        expect(ownScore({ mitre_id: 'T1', outcome: 'alerted', validated_at: ago(90) }, config, now)).to.equal({ own_score: 64, decay: 0.7071, confidence: 1 });
        // logged 40 x 0.25 = 10
        expect(ownScore({ mitre_id: 'T1', outcome: 'logged', validated_at: ago(360) }, config, now)).to.equal({ own_score: 10, decay: 0.25, confidence: 1 });
        expect(ownScore({ mitre_id: 'T1', outcome: 'not_detected', validated_at: now }, config, now)).to.equal({ own_score: 0, decay: 1, confidence: 1 });
        expect(ownScore({ mitre_id: 'T1', outcome: null, validated_at: null }, config, now)).to.equal({ own_score: null, decay: null, confidence: 1 });
    });

    it('applies the detection confidence where the technique has detection validations, else 1', () => {

        // prevented today with a detection confidence of 0.5 (an alert validation one detection half-life old): 100 x 1 x 0.5 = 50
        expect(ownScore({ mitre_id: 'T1', outcome: 'prevented', validated_at: now, detection_confidence: 0.5 }, config, now)).to.equal({ own_score: 50, decay: 1, confidence: 0.5 });
        // alerted 90 days ago, confidence 0.1946 (a prevention 425 days old): 90 x 0.70711 x 0.1946 = 12.38 -> 12
        expect(ownScore({ mitre_id: 'T1', outcome: 'alerted', validated_at: ago(90), detection_confidence: 0.19459 }, config, now)).to.equal({ own_score: 12, decay: 0.7071, confidence: 0.1946 });
        // validations all invalidated: confidence 0, the score 0 whatever the test said
        expect(ownScore({ mitre_id: 'T1', outcome: 'prevented', validated_at: now, detection_confidence: 0 }, config, now)).to.equal({ own_score: 0, decay: 1, confidence: 0 });
        // no detection validation at all (null): factor 1, the test-based score stands
        expect(ownScore({ mitre_id: 'T1', outcome: 'prevented', validated_at: now, detection_confidence: null }, config, now)).to.equal({ own_score: 100, decay: 1, confidence: 1 });
        // untested keeps a null score, the factor shown
        expect(ownScore({ mitre_id: 'T1', outcome: null, validated_at: null, detection_confidence: 0.25 }, config, now)).to.equal({ own_score: null, decay: null, confidence: 0.25 });
    });

    it('rolls scores up over sub-techniques by the coverage rule', () => {

        const scores = scoreTechniques([
            { mitre_id: 'P', parent_id: null, own_coverage_status: 'untested', outcome: null, validated_at: null },
            { mitre_id: 'P.001', parent_id: 'P', own_coverage_status: 'covered', outcome: 'prevented', validated_at: now },
            { mitre_id: 'P.002', parent_id: 'P', own_coverage_status: 'partial', outcome: 'logged', validated_at: ago(180) },
            { mitre_id: 'P.003', parent_id: 'P', own_coverage_status: 'untested', outcome: null, validated_at: null },
            { mitre_id: 'Q', parent_id: null, own_coverage_status: 'covered', outcome: 'alerted', validated_at: now },
            { mitre_id: 'Q.001', parent_id: 'Q', own_coverage_status: 'covered', outcome: 'prevented', validated_at: now },
            { mitre_id: 'Q.002', parent_id: 'Q', own_coverage_status: 'partial', outcome: 'logged', validated_at: ago(180) },
            { mitre_id: 'Q.003', parent_id: 'Q', own_coverage_status: 'untested', outcome: null, validated_at: null }
        ], config, now);

        // P: members P.001 (100), P.002 (40 x 0.5 = 20), P.003 untested standing on P's own (untested: 0): 120 / 3 = 40
        expect(scores.get('P')).to.equal({ own_score: null, decay: null, confidence: 1, score: 40 });
        expect(scores.get('P.002')).to.equal({ own_score: 20, decay: 0.5, confidence: 1, score: 20 });
        // Q: its own 90, Q.001 100, Q.002 20, Q.003 standing on Q's own 90: 300 / 4 = 75
        expect(scores.get('Q')!.score).to.equal(75);
        expect(scores.get('Q.003')!.score).to.equal(null);
    });

    it('averages scores with untested ones counting 0', () => {

        expect(meanScore([100, null, 50])).to.equal(50);
        expect(meanScore([64, 20, 0])).to.equal(28);
        expect(meanScore([10, 15, 0])).to.equal(8.3);
        expect(meanScore([])).to.equal(null);
    });

    it('grows likelihood with the tracked threat actors, logarithmically up to the saturation', () => {

        // 1 + 4 x ln(1 + n) / ln(32): n = 1 -> 1 + 4/5, n = 3 -> 1 + 8/5, n = 7 -> 1 + 12/5
        expect(likelihoodOf(0, 31)).to.equal(1);
        expect(likelihoodOf(1, 31)).to.equal(1.8);
        expect(likelihoodOf(3, 31)).to.equal(2.6);
        expect(likelihoodOf(7, 31)).to.equal(3.4);
        expect(likelihoodOf(31, 31)).to.equal(5);
        expect(likelihoodOf(200, 31)).to.equal(5);
        // saturation 3: n = 1 -> 1 + 4 x ln2/ln4 = 3
        expect(likelihoodOf(1, 3)).to.equal(3);
        // OSINT prevalence, when it exists, wins when higher: 1 + 4 x 0.75 = 4
        expect(likelihoodOf(0, 31, 0.75)).to.equal(4);
        expect(likelihoodOf(31, 31, 0.1)).to.equal(5);
    });

    it('takes the impact set on the technique, else the highest of its tactics, else 3', () => {

        expect(impactOf(2, ['impact'])).to.equal({ impact: 2, source: 'technique' });
        expect(impactOf(null, ['discovery', 'credential-access', 'execution'])).to.equal({ impact: 4, source: 'tactic:credential-access' });
        expect(impactOf(null, ['reconnaissance'])).to.equal({ impact: 1, source: 'tactic:reconnaissance' });
        expect(impactOf(null, ['something-else'])).to.equal({ impact: 3, source: 'default' });
        expect(impactOf(null, [])).to.equal({ impact: 3, source: 'default' });
    });

    it('computes risk = likelihood x impact x (1 - score/100) and its band', () => {

        expect(riskOf(2.6, 4, 64)).to.equal(3.74);          // 2.6 x 4 x 0.36 = 3.744
        expect(riskOf(2.6, 4, null)).to.equal(10.4);        // untested: the whole exposure
        expect(riskOf(5, 5, 0)).to.equal(25);
        expect(riskOf(5, 5, 100)).to.equal(0);
        expect(riskOf(1.8, 3, 40)).to.equal(3.24);          // 1.8 x 3 x 0.6

        expect(bandOf(25)).to.equal('critical');
        expect(bandOf(15)).to.equal('critical');
        expect(bandOf(14.99)).to.equal('high');
        expect(bandOf(8)).to.equal('high');
        expect(bandOf(4)).to.equal('medium');
        expect(bandOf(3.99)).to.equal('low');
        expect(bandOf(0)).to.equal('low');
    });

    it('explains a rank in words and numbers', () => {

        expect(reasonOf({ coverage_status: 'untested', outcome: null, validated_at: null, score: null, actor_count: 1, likelihood: 1.8, impact: 3, impact_source: 'default', risk: 5.4 }))
            .to.equal('Never validated (score 0 of 100); used by 1 tracked threat actor (likelihood 1.80 of 5); impact 3 of 5 (default): risk 5.40 of 25');
        expect(reasonOf({ coverage_status: 'partial', outcome: 'logged', validated_at: ago(180), score: 20, actor_count: 3, likelihood: 2.6, impact: 5, impact_source: 'tactic:exfiltration', risk: 10.4 }))
            .to.equal('Latest validation on 2026-06-04 was only logged; coverage partial, score 20 of 100 after decay; used by 3 tracked threat actors (likelihood 2.60 of 5); impact 5 of 5 (from tactic exfiltration): risk 10.40 of 25');
        expect(reasonOf({ coverage_status: 'not_covered', outcome: null, validated_at: null, score: 0, actor_count: 0, likelihood: 1, impact: 4, impact_source: 'technique', risk: 4 }))
            .to.equal('Coverage not covered from its sub-techniques, score 0 of 100; used by 0 tracked threat actors (likelihood 1.00 of 5); impact 4 of 5 (set for the technique): risk 4.00 of 25');
    });
});


describe('Compliance mapping', () => {

    const known = (rows: [string, Partial<KnownTechnique>][]) => new Map(rows.map(([id, row]) => [id, { mitre_id: id, revoked: false, deprecated: false, revoked_by_id: null, ...row }]));

    it('matches an old ATT&CK id to today\'s technique through revocations, and says why when it cannot', () => {

        const techniques = known([
            ['T1001', {}],
            ['T1002', { revoked: true, revoked_by_id: 'T1001' }],
            ['T1003', { revoked: true, revoked_by_id: 'T1002' }],
            ['T1004', { deprecated: true }],
            ['T1005', { revoked: true, revoked_by_id: null }],
            ['T1006', { revoked: true, revoked_by_id: 'T1004' }],
            ['T1007', { revoked: true, revoked_by_id: 'T9999' }]
        ]);

        expect(matchTechnique('T1001', techniques)).to.equal({ technique_id: 'T1001', match: 'exact', unmatched_reason: null });
        expect(matchTechnique('T1002', techniques)).to.equal({ technique_id: 'T1001', match: 'revoked', unmatched_reason: null });
        expect(matchTechnique('T1003', techniques)).to.equal({ technique_id: 'T1001', match: 'revoked', unmatched_reason: null });
        expect(matchTechnique('T1004', techniques)).to.equal({ technique_id: null, match: 'unmatched', unmatched_reason: 'deprecated' });
        expect(matchTechnique('T1005', techniques)).to.equal({ technique_id: null, match: 'unmatched', unmatched_reason: 'revoked' });
        expect(matchTechnique('T1006', techniques)).to.equal({ technique_id: null, match: 'unmatched', unmatched_reason: 'deprecated' });
        expect(matchTechnique('T1007', techniques)).to.equal({ technique_id: null, match: 'unmatched', unmatched_reason: 'revoked' });
        expect(matchTechnique('T1008', techniques)).to.equal({ technique_id: null, match: 'unmatched', unmatched_reason: 'unknown' });

        // A revocation loop ends as unmatched, not as a hang
        const loop = known([['T2001', { revoked: true, revoked_by_id: 'T2002' }], ['T2002', { revoked: true, revoked_by_id: 'T2001' }]]);
        expect(matchTechnique('T2001', loop)).to.equal({ technique_id: null, match: 'unmatched', unmatched_reason: 'revoked' });
    });

    it('reads controls, families, descriptions and mappings of a Mappings Explorer file', () => {

        const parsed = parseMapex({
            metadata: { mapping_framework: 'nist_800_53', mapping_framework_version: 'rev5', attack_version: '16.1', technology_domain: 'enterprise', last_update: '04/16/2025', capability_groups: { AC: 'Access Control' } },
            mapping_objects: [
                { capability_id: 'AC-02', capability_group: 'AC', capability_description: 'Account Management', mapping_type: 'mitigates', attack_object_id: 'T1078', attack_object_name: 'Valid Accounts', comments: ' why ', status: 'complete' },
                { capability_id: 'AC-02', capability_group: 'AC', capability_description: 'Account Management', mapping_type: 'mitigates', attack_object_id: 'T1078', attack_object_name: 'Valid Accounts', status: 'complete' },
                { capability_id: null, capability_group: null, capability_description: null, mapping_type: null, attack_object_id: 'T1496.002', attack_object_name: 'Bandwidth Hijacking', status: 'non_mappable' },
                { capability_id: 'PL-01', capability_group: 'PL', capability_description: 'Policy', mapping_type: 'non_mappable', attack_object_id: null, attack_object_name: null, status: 'non_mappable' }
            ]
        }, { file: 'f.json', provenance: 'p', licence: 'Apache-2.0', descriptions: new Map([['AC-2', 'Manage accounts.']]) });

        expect(parsed).to.include({ key: 'nist_800_53-rev5', name: 'NIST SP 800-53', version: 'rev5', attack_version: '16.1', attack_domain: 'enterprise', mapping_updated: '04/16/2025' });
        expect(parsed.controls).to.equal([
            { control_id: 'AC-02', family: 'AC', family_name: 'Access Control', name: 'Account Management', description: 'Manage accounts.', mappable: true },
            { control_id: 'PL-01', family: 'PL', family_name: null, name: 'Policy', description: null, mappable: false }
        ]);
        expect(parsed.mappings).to.equal([{ control_id: 'AC-02', attack_id: 'T1078', attack_name: 'Valid Accounts', mapping_type: 'mitigates', comments: null }]);
    });
});
