// Firewall.apply against the real nft in a throwaway namespace (root): every
// state applies and verifies, a refused packet is counted and its counter
// survives table rewrites. The exact argv against a fake nft is unit-tested
// (test/unit/firewall-apply.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Firewall } from '../../src/firewall/apply.js';
import { TABLE } from '../../src/firewall/policy.js';
import { silentLogger } from '../../src/log/logger.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';
import { fakeServer, policyFor } from '../unit/helpers/servers.js';

const server = fakeServer('se-sto-wg-001');

describe('Firewall.apply against the real nft (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test('every state applies and verifies; a refused packet is counted and survives the rewrite', async () => {
    await withNetns(async (ns) => {
      const fw = new Firewall(ns, silentLogger);
      await fw.apply(policyFor('blocked', undefined));
      // A local veth pair gives 192.0.2.0/24 a route, so the packet reaches the output hook.
      await ns.run(['ip', 'link', 'add', 'msut-a', 'type', 'veth', 'peer', 'name', 'msut-b']);
      await ns.run(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'msut-a']);
      await ns.run(['ip', 'link', 'set', 'msut-a', 'up']);
      const send = ['node', '-e', "const s=require('dgram').createSocket('udp4');s.send('leak',9,'192.0.2.9',(e)=>{process.stdout.write(e?e.code:'sent');s.close()})"];
      send[0] = process.execPath;
      const r = await ns.run(send);
      assert.equal(r.stdout, 'EPERM', 'the kill switch refuses the packet at once');
      assert.equal((await fw.blockedPackets()).ipv4, 1);
      for (const p of [policyFor('connecting', server), policyFor('connected', server), policyFor('blocked', undefined)]) {
        await fw.apply(p);
        assert.equal(fw.state, p.state);
      }
      assert.equal((await fw.blockedPackets()).ipv4, 1, 'carried across three table rewrites');
      await fw.apply(policyFor('blocked', undefined, { killSwitch: false }));
      assert.equal((await ns.run(send)).stdout, 'sent', 'kill switch off: the packet leaves');
      await fw.remove();
      const after = await ns.run(['nft', '-j', 'list', 'table', 'inet', TABLE], { allowFailure: true });
      assert.notEqual(after.code, 0, 'our table is gone');
    });
  });
});
