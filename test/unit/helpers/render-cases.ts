// Every state the firewall renders, as named cases: the golden files and
// invariants (test/unit/firewall-render.test.ts) and the real nft load
// (test/integration/firewall-render-nft.test.ts) run over the same list.
import { PROXY_REPLY_MARK, type FirewallPolicy } from '../../../src/firewall/policy.js';
import { parseCidr } from '../../../src/config/cidr.js';
import { lockdownPolicy } from '../../../src/firewall/lockdown.js';
import { CLUSTER_DNS, PRESHARED_KEY, V4_ADDR, fakeServer, policyFor } from './servers.js';

export const dual = fakeServer('se-sto-wg-001', { presharedKey: PRESHARED_KEY });
const v4only = fakeServer('se-got-wg-002', { endpointIp: '185.213.154.69', addresses: [V4_ADDR] });
const v6endpoint = fakeServer('de-fra-wg-003', { endpointIp: '2a03:1b20:3:f011::a03f', port: 3401 });

const PROXY = { ports: [1080], clients: ['10.0.0.0/8', '100.64.0.0/10', 'fc00::/7'].map((c) => parseCidr(c)!), mark: PROXY_REPLY_MARK };

export interface RenderCase {
  name: string;
  policy: FirewallPolicy;
}

export const RENDER_CASES: RenderCase[] = [
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
  // Path ".": nft resolves it in its own /sys/fs/cgroup (a container's cgroup namespace root), which the nft load test has too.
  { name: 'blocked-dns-cgroup', policy: policyFor('blocked', undefined, { dns: { ...CLUSTER_DNS, cgroup: { path: '.', level: 4 } } }) },
  { name: 'connected-dns-cgroup', policy: policyFor('connected', dual, { dns: { ...CLUSTER_DNS, cgroup: { path: '.', level: 2 } } }) },
  // The health port capped per source address before the accept queue (firewall/health-cap.ts); loopback is not.
  { name: 'connected-health-cap', policy: { ...policyFor('connected', dual, { dns: CLUSTER_DNS, uplinks: ['eth0'] }), healthCap: { port: 9999, perSource: 32 } } },
  { name: 'connected-killswitch-off', policy: policyFor('connected', dual, { killSwitch: false, dns: CLUSTER_DNS, uplinks: ['eth0'] }) },
];
