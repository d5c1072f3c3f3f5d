import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { coverageOf, outcomeWeights, rollUp, scoreOf } from '../../server/services/coverage';


const lab = Lab.script();
export { lab };
const { describe, it } = lab;


describe('Coverage rules', () => {

    it('maps the latest validated outcome to a status and a score (domain.md defaults)', () => {

        expect(outcomeWeights).to.equal({ prevented: 100, alerted: 90, logged: 40, not_detected: 0 });
        expect(['prevented', 'alerted', 'logged', 'not_detected', 'not_applicable', null].map((outcome) => [coverageOf(outcome), scoreOf(outcome)])).to.equal([
            ['covered', 100], ['covered', 90], ['partial', 40], ['not_covered', 0], ['untested', null], ['untested', null]
        ]);
    });

    it('rolls a parent up from its own result and its sub-techniques\', by the hand-computed examples of docs/attack.md', () => {

        const untested = { coverage_status: 'untested' as const, score: null };
        const covered = { coverage_status: 'covered' as const, score: 90 };
        const prevented = { coverage_status: 'covered' as const, score: 100 };
        const partial = { coverage_status: 'partial' as const, score: 40 };
        const missed = { coverage_status: 'not_covered' as const, score: 0 };

        // Without (active) sub-techniques a technique has its own figure
        expect(rollUp(untested, [])).to.equal(untested);
        expect(rollUp(partial, [])).to.equal(partial);

        // The parent untested itself: its sub-techniques decide, untested ones being gaps
        expect(rollUp(untested, [untested, untested])).to.equal({ coverage_status: 'untested', score: null });
        expect(rollUp(untested, [covered, prevented])).to.equal({ coverage_status: 'covered', score: 95 });             // (90 + 100) / 2
        expect(rollUp(untested, [covered, untested])).to.equal({ coverage_status: 'partial', score: 45 });              // (90 + 0) / 2
        expect(rollUp(untested, [missed, untested, untested])).to.equal({ coverage_status: 'not_covered', score: 0 });
        expect(rollUp(untested, [missed, partial, covered])).to.equal({ coverage_status: 'partial', score: 43 });      // 130 / 3 = 43.3

        // The parent tested itself: its result is one more member and stands for the sub-techniques not tested on their own
        expect(rollUp(covered, [untested, untested, untested])).to.equal({ coverage_status: 'covered', score: 90 });
        expect(rollUp(covered, [prevented, untested])).to.equal({ coverage_status: 'covered', score: 93 });           // (90 + 100 + 90) / 3 = 93.3
        expect(rollUp(covered, [missed, untested])).to.equal({ coverage_status: 'partial', score: 60 });               // (90 + 0 + 90) / 3
        expect(rollUp(partial, [covered, covered])).to.equal({ coverage_status: 'partial', score: 73 });               // (40 + 90 + 90) / 3 = 73.3
        expect(rollUp(missed, [untested, untested])).to.equal({ coverage_status: 'not_covered', score: 0 });
        expect(rollUp(missed, [covered, covered])).to.equal({ coverage_status: 'partial', score: 60 });                // (0 + 90 + 90) / 3
    });
});
