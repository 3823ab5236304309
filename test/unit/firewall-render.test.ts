// The rendered ruleset of every state is the kill switch's security argument:
// golden files (reviewed by eye) plus invariants that must hold in every case.
// That nft accepts and loads each of them: test/integration/firewall-render-nft.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRemoval, renderTransaction, summarize } from '../../src/firewall/render.js';
import { assertGolden } from './helpers/golden.js';
import { INVARIANTS } from './helpers/ruleset-invariants.js';
import { RENDER_CASES as CASES, dual } from './helpers/render-cases.js';
import { policyFor } from './helpers/servers.js';

describe('firewall render: golden files', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      await assertGolden(`firewall/${c.name}.nft`, renderTransaction(c.policy));
    });
  }
  test('a guard chain of a device no longer guarded is deleted, the others rewritten in place', async () => {
    await assertGolden('firewall/blocked-uplink-guard-obsolete.nft', renderTransaction(policyFor('blocked', undefined, { uplinks: ['eth0'] }), ['egress_eth0', 'egress_net1', 'egress_x_6e65742d32']));
  });
  test('removal', async () => {
    await assertGolden('firewall/removal.nft', renderRemoval());
  });
});

describe('firewall render: invariants of every state', () => {
  for (const c of CASES) {
    const text = renderTransaction(c.policy);
    for (const inv of INVARIANTS) test(`${c.name}: ${inv.name}`, () => inv.check(c.policy, text));
  }

  test('summary names state, endpoint and a disabled kill switch', () => {
    assert.equal(summarize(CASES[2]!.policy), 'state=blocked bypass=10.244.0.0/16,10.96.0.0/12,fd00:10:244::/56 dns=unmanaged');
    assert.match(summarize(policyFor('connected', dual, { killSwitch: false })), /endpoint=185\.213\.154\.68:51820 tunnel=wg0 dns=unmanaged KILL-SWITCH-OFF$/);
  });
});
