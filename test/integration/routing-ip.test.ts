// Routing.apply/remove against the real `ip` in a throwaway namespace (root):
// the same rules after a second run, and remove leaves the namespace as it was.
// The exact argv against a fake `ip` is unit-tested (test/unit/routing-apply.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Routing } from '../../src/routing/apply.js';
import { planRouting } from '../../src/routing/plan.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';
import { cidr } from '../unit/helpers/servers.js';

const plan = planRouting({ interface: 'wg0', table: 51820, fwmark: 51820, bypass: [cidr('10.96.0.0/12'), cidr('fd00:10:96::/112')], ipv6: true });

describe('Routing against the real ip (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test('apply twice gives the same rules; remove leaves the namespace as it was', async () => {
    await withNetns(async (ns) => {
      // A veth named like the tunnel stands in for it: routes need the device to exist.
      await ns.run(['ip', 'link', 'add', 'wg0', 'type', 'veth', 'peer', 'name', 'msut-peer']);
      await ns.run(['ip', 'link', 'set', 'wg0', 'up']);
      const show = async () => {
        const out: string[] = [];
        for (const f of [4, 6]) {
          out.push((await ns.run(['ip', `-${f}`, 'rule', 'show'])).stdout, (await ns.run(['ip', `-${f}`, 'route', 'show', 'table', 'all'])).stdout);
        }
        return out.join('');
      };
      const before = await show();
      const routing = new Routing(ns);
      assert.equal(await routing.chooseTable(undefined, 'wg0'), 51820);
      await routing.apply(plan);
      const once = await show();
      await routing.apply(plan);
      assert.equal(await show(), once, 'no duplicates after a second run');
      const rules4 = (await ns.run(['ip', '-4', 'rule', 'show'])).stdout;
      assert.match(rules4, /^5200:\tfrom all to 10\.96\.0\.0\/12 lookup main/m);
      assert.match(rules4, /^5290:\tfrom all lookup main suppress_prefixlength 0/m);
      assert.match(rules4, /^5291:\tnot from all fwmark 0xca6c lookup 51820/m);
      assert.equal(await routing.chooseTable(undefined, 'wg0'), 51820, 'our own table is reused');
      assert.equal(await routing.chooseTable(undefined, 'eth9'), 51821, 'taken by another interface');
      await routing.remove(51820);
      await routing.remove(51820);
      assert.equal(await show(), before);
    });
  });
});
