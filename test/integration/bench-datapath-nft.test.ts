// bench/datapath.ts swaps whole rulesets between iperf3 runs; a variant nft
// refuses would only show up as a FAILED line in `npm run bench` (it did once,
// when the rendered transaction's header changed under a line-slicing variant).
// nft loads every variant here, in order, in a throwaway namespace.
import { describe, test } from 'node:test';
import { variants } from '../../bench/datapath.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';

describe('bench/datapath: nft loads every ruleset variant (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test('each variant, twice, after every other', async () => {
    await withNetns(async (ns) => {
      await ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'net1']);
      const net = { podIp: '10.10.0.2', clusterDns: '10.96.0.10', relay: { ip: '10.20.0.2', port: 51820 } };
      const vs = variants(net, 'wgq0', [{ family: 4, address: '10.64.0.2', prefix: 32 }], ['eth0', 'net1']);
      for (const v of [...vs, ...vs]) await ns.run(['nft', '-f', '-'], { stdin: v.ruleset });
    });
  });
});
