// The rendered ruleset of every state is the kill switch's security argument:
// golden files (reviewed by eye) plus invariants that must hold in every case.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROXY_REPLY_MARK, type FirewallPolicy } from '../../src/firewall/policy.js';
import { parseCidr } from '../../src/config/cidr.js';
import { lockdownPolicy } from '../../src/firewall/lockdown.js';
import { renderRemoval, renderTransaction, summarize } from '../../src/firewall/render.js';
import { assertGolden } from './helpers/golden.js';
import { INVARIANTS } from './helpers/ruleset-invariants.js';
import { isRoot, withNetns } from './helpers/netns.js';
import { CLUSTER_DNS, PRESHARED_KEY, V4_ADDR, fakeServer, policyFor } from './helpers/servers.js';

const dual = fakeServer('se-sto-wg-001', { presharedKey: PRESHARED_KEY });
const v4only = fakeServer('se-got-wg-002', { endpointIp: '185.213.154.69', addresses: [V4_ADDR] });
const v6endpoint = fakeServer('de-fra-wg-003', { endpointIp: '2a03:1b20:3:f011::a03f', port: 3401 });

const PROXY = { ports: [1080], clients: ['10.0.0.0/8', '100.64.0.0/10', 'fc00::/7'].map((c) => parseCidr(c)!), mark: PROXY_REPLY_MARK };

interface Case {
  name: string;
  policy: FirewallPolicy;
}

const CASES: Case[] = [
  // The very first transaction, before any config is read, and what a dying process leaves (lockdown.ts).
  { name: 'lockdown', policy: lockdownPolicy([]) },
  { name: 'lockdown-uplinks', policy: lockdownPolicy(['eth0', 'net1']) },
  { name: 'blocked', policy: policyFor('blocked', undefined) },
  { name: 'blocked-dns', policy: policyFor('blocked', undefined, { dns: CLUSTER_DNS }) },
  { name: 'connecting', policy: policyFor('connecting', dual) },
  { name: 'connecting-dns', policy: policyFor('connecting', dual, { dns: CLUSTER_DNS }) },
  { name: 'connecting-v4only', policy: policyFor('connecting', v4only) },
  { name: 'connected', policy: policyFor('connected', dual) },
  { name: 'connected-dns', policy: policyFor('connected', dual, { dns: CLUSTER_DNS }) },
  { name: 'connected-v4only-dns', policy: policyFor('connected', v4only, { dns: CLUSTER_DNS }) },
  { name: 'connected-ipv6-endpoint', policy: policyFor('connected', v6endpoint, { dns: CLUSTER_DNS, fwmark: 0xca6d, interface: 'wg-mullvad' }) },
  // The uplink guard (netdev egress, against raw packet sockets) on the pod's own interfaces.
  { name: 'blocked-uplink-guard', policy: policyFor('blocked', undefined, { uplinks: ['eth0', 'net1'] }) },
  { name: 'connected-uplink-guard-dns', policy: policyFor('connected', dual, { dns: CLUSTER_DNS, uplinks: ['eth0', 'net1'] }) },
  { name: 'blocked-killswitch-off', policy: policyFor('blocked', undefined, { killSwitch: false, dns: CLUSTER_DNS }) },
  // The exit pool's port (PROXY_LISTEN): PROXY_ALLOWED_CIDRS only, replies routed back by ct mark.
  { name: 'blocked-proxy', policy: { ...policyFor('blocked', undefined, { dns: CLUSTER_DNS }), proxy: PROXY } },
  { name: 'connected-proxy', policy: { ...policyFor('connected', dual, { dns: CLUSTER_DNS, uplinks: ['eth0'] }), proxy: PROXY } },
  // The forwarder identified by its cgroup v2 AND its ports (src/dns/identity.ts): a bound or forged port is not enough.
  // Path ".": nft resolves it in its own /sys/fs/cgroup (a container's cgroup namespace root), which the load test below has too.
  { name: 'blocked-dns-cgroup', policy: policyFor('blocked', undefined, { dns: { ...CLUSTER_DNS, cgroup: { path: '.', level: 4 } } }) },
  { name: 'connected-dns-cgroup', policy: policyFor('connected', dual, { dns: { ...CLUSTER_DNS, cgroup: { path: '.', level: 2 } } }) },
  { name: 'connected-killswitch-off', policy: policyFor('connected', dual, { killSwitch: false, dns: CLUSTER_DNS, uplinks: ['eth0'] }) },
];

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

describe('firewall render: nft accepts every golden (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test('nft -c -f and a real load of each transaction', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msut-nft-'));
    try {
      await withNetns(async (ns) => {
        // The uplink guard's egress hooks need their devices to exist.
        await ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'net1']);
        for (const c of [...CASES, { name: 'removal', policy: undefined }]) {
          const file = join(dir, `${c.name}.nft`);
          await writeFile(file, c.policy ? renderTransaction(c.policy) : renderRemoval());
          await ns.run(['nft', '-c', '-f', file]);
          // A real load twice: the add/delete/add swap must work with and without the table.
          await ns.run(['nft', '-f', file]);
          await ns.run(['nft', '-f', file]);
        }
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
