import * as Lab from '@hapi/lab';
import { expect } from '@hapi/code';

import { LockKey } from '../../server/locks';


const lab = Lab.script();
const { describe, it } = lab;
export { lab };


describe('advisory lock keys', () => {

    it('are declared once each, no two features sharing one', () => {

        const keys = Object.values(LockKey);
        expect(new Set(keys).size).to.equal(keys.length);
        expect(keys.every((key) => Number.isSafeInteger(key) && key > 0)).to.be.true();
    });
});
