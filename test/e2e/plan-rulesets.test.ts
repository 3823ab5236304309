// Every ruleset rendered from the real plan (test/fixtures/plan, pinned by
// test/unit/sidecar-plan.test.ts) loads into a real kernel, in the order the
// sidecar installs them, and the uplink guard is there after every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { fixturePath } from '../unit/helpers/golden.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';

const ORDER = ['lockdown-uplinks', 'blocked', 'connecting', 'connected', 'blocked', 'connecting-multihop', 'connected-multihop', 'blocked-cgroup', 'connecting-negotiating', 'connected-cgroup', 'connecting-negotiating-no-dns', 'connected-exit-pool', 'connected-no-dns', 'blocked-no-dns', 'connected-no-bypass-routes', 'connected-killswitch-off', 'lockdown-uplinks'];

test('the plan\'s rulesets load in sequence, each keeping the uplink guard', { skip: isRoot ? false : 'needs root (ip netns)' }, async () => {
  const files = (await readdir(fixturePath('plan'))).map((f) => f.replace(/\.nft$/, ''));
  // Every golden is exercised: a new state without a place in the sequence fails here.
  assert.deepEqual([...new Set(ORDER)].sort(), files.sort());
  await withNetns(async (ns) => {
    await ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'net1']);
    for (const name of ORDER) {
      const file = fixturePath(`plan/${name}.nft`);
      await ns.run(['nft', '-c', '-f', file]);
      await ns.run(['nft', '-f', file]);
      const chains = (await ns.run(['nft', '-j', 'list', 'chains', 'netdev'])).stdout;
      // ENABLE_KILL_SWITCH=false is the one state without a guard: the user asked for leaks.
      const guarded = name !== 'connected-killswitch-off';
      for (const dev of ['eth0', 'net1']) assert.equal(new RegExp(`"name": ?"egress_${dev}"`).test(chains), guarded, `${name}: guard on ${dev} should be ${guarded ? 'present' : 'absent'}`);
      if (!guarded) continue;
      const policy = (await ns.run(['nft', 'list', 'chain', 'inet', 'mullvad_sidecar', 'output'])).stdout;
      assert.match(policy, /policy drop;/, `${name}: the output chain does not drop by default`);
    }
  });
});
