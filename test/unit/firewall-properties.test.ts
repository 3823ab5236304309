// Property test: the ruleset invariants hold for generated policies of every
// state (random bypass networks, endpoints v4/v6, tunnel addresses, DNS on/off,
// kill switch on/off, uplinks), not only for the golden cases.
import { test } from 'node:test';
import fc from 'fast-check';
import { renderTransaction } from '../../src/firewall/render.js';
import { policy } from './helpers/policy-arbitrary.js';
import { INVARIANTS } from './helpers/ruleset-invariants.js';

for (const inv of INVARIANTS) {
  test(`every generated policy: ${inv.name}`, () => {
    fc.assert(fc.property(policy, (p) => inv.check(p, renderTransaction(p))), { numRuns: 300 });
  });
}
