// The rulesets the sidecar really installs, rendered from the real plan
// (planSidecar over settings and the facts an environment probe would see):
// every state, the lockdown with uplinks, with and without DNS, kill switch
// off. Golden files (reviewed by eye) under test/fixtures/plan; the plan's
// own decisions (RA prefixes, the probe's fallback) as assertions.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSettings } from '../../src/config/settings.js';
import { ConfigError } from '../../src/errors.js';
import type { ServerConfig } from '../../src/config/types.js';
import type { NetInterface } from '../../src/environment/interfaces.js';
import { lockdownPolicy } from '../../src/firewall/lockdown.js';
import { renderTransaction } from '../../src/firewall/render.js';
import { planSidecar, MULLVAD_TUNNEL_RESOLVER, type PlannedState } from '../../src/supervisor/plan.js';
import type { SidecarFacts } from '../../src/supervisor/facts.js';
import { assertGolden } from './helpers/golden.js';
import { INVARIANTS } from './helpers/ruleset-invariants.js';
import { fakeServer } from './helpers/servers.js';

// A Kubernetes pod as the probe sees it: eth0 with the pod address (static,
// from the CNI), a global IPv6 address a router advertisement gave it, and
// a second interface (Multus) with a DHCP lease.
const INTERFACES: NetInterface[] = [
  { name: 'lo', flags: ['LOOPBACK', 'UP'], linkType: 'loopback', addresses: [{ family: 4, local: '127.0.0.1', prefixlen: 8, scope: 'host', peer: undefined, origin: 'static' }] },
  {
    name: 'eth0',
    flags: ['BROADCAST', 'UP'],
    linkType: 'ether',
    addresses: [
      { family: 4, local: '10.42.0.2', prefixlen: 24, scope: 'global', peer: undefined, origin: 'static' },
      { family: 6, local: '2001:db8:66:1::2', prefixlen: 64, scope: 'global', peer: undefined, origin: 'ra' },
      { family: 6, local: 'fe80::1', prefixlen: 64, scope: 'link', peer: undefined, origin: 'static' },
    ],
  },
  { name: 'net1', flags: ['BROADCAST', 'UP'], linkType: 'ether', addresses: [{ family: 4, local: '192.168.50.7', prefixlen: 24, scope: 'global', peer: undefined, origin: 'dhcp' }] },
];

const FACTS: SidecarFacts = {
  env: { kind: 'kubernetes', runtime: undefined, namespace: 'scrapers', kubernetesServiceHost: '10.43.0.1', reasons: ['service account mount'] },
  interfaces: INTERFACES,
  resolv: { nameservers: ['10.43.0.10'], search: ['scrapers.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'c.project.internal'], options: { ndots: 5, raw: ['ndots:5'] } },
  search: ['scrapers.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'c.project.internal'],
  ndots: 5,
  table: 51820,
  endpointRouteMtu: 1500,
  // The cgroup self-test failed here (a v1-only host): the goldens above show the source-port identity.
  dnsIdentity: { kind: 'ports', reason: 'no cgroup v2 mount in this namespace (cgroup v1 only?)' },
};

/** The same pod where the self-test found the sidecar's own cgroup (a container's cgroup namespace: level 0). */
const CGROUP_FACTS: SidecarFacts = { ...FACTS, dnsIdentity: { kind: 'cgroup', path: '.', level: 0 } };

const SERVERS: ServerConfig[] = [fakeServer('se-sto-wg-001'), fakeServer('se-got-wg-002', { endpointIp: '185.213.154.69' })];

const settings = (env: Record<string, string> = {}) => loadSettings({ WG_CONFIG_DIR: '/config', ...env });

interface Case {
  readonly name: string;
  readonly env?: Record<string, string>;
  readonly state: PlannedState;
  /** Servers other than SERVERS (multihop: the exit's peer through the entry's address). */
  readonly servers?: ServerConfig[];
}

// Multihop (MULTIHOP_ENTRY=se-sto, SERVER=se-got-wg-002): the endpoint is the entry's
// address with the exit's multihop port; the kill switch allows only that.
const MULTIHOP: ServerConfig[] = [{ ...fakeServer('se-got-wg-002', { endpointIp: '185.213.154.68', port: 3002 }), entry: 'se-sto-wg-001' }];

const CASES: Case[] = [
  { name: 'blocked', state: 'blocked' },
  { name: 'connecting', state: 'connecting' },
  { name: 'connected', state: 'connected' },
  { name: 'blocked-no-dns', env: { DNS_MODE: 'off' }, state: 'blocked' },
  { name: 'connected-no-dns', env: { DNS_MODE: 'off' }, state: 'connected' },
  { name: 'connected-killswitch-off', env: { ENABLE_KILL_SWITCH: 'false' }, state: 'connected' },
  { name: 'connected-no-bypass-routes', env: { ENABLE_BYPASS_ROUTES: 'false' }, state: 'connected' },
  { name: 'connecting-multihop', state: 'connecting', servers: MULTIHOP },
  { name: 'connected-multihop', state: 'connected', servers: MULTIHOP },
  { name: 'connected-exit-pool', env: { PROXY_LISTEN: '0.0.0.0:1080', PROXY_USERS_FILE: '/run/secrets/users' }, state: 'connected' },
];

describe('the real plan: every ruleset the sidecar installs (golden files)', () => {
  for (const c of CASES) {
    const servers = c.servers ?? SERVERS;
    const plan = planSidecar(settings(c.env), FACTS, servers);
    const policy = plan.policyFor(c.state, servers[0]);
    const text = renderTransaction(policy);
    test(c.name, async () => assertGolden(`plan/${c.name}.nft`, text));
    for (const inv of INVARIANTS) test(`${c.name}: ${inv.name}`, () => inv.check(policy, text));
  }
  test('lockdown (crash, exit 78, shutdown deadline) with the pod\'s uplinks', async () => {
    const plan = planSidecar(settings(), FACTS, SERVERS);
    await assertGolden('plan/lockdown-uplinks.nft', renderTransaction(lockdownPolicy(plan.uplinks)));
  });
  for (const state of ['blocked', 'connected'] as const)
    test(`${state}, the forwarder identified by its cgroup`, async () => {
      const policy = planSidecar(settings(), CGROUP_FACTS, SERVERS).policyFor(state, SERVERS[0]);
      const text = renderTransaction(policy);
      await assertGolden(`plan/${state}-cgroup.nft`, text);
      for (const inv of INVARIANTS) inv.check(policy, text);
    });
  // QUANTUM_RESISTANT: connecting is "negotiating", the tunnel takes the sidecar's negotiation only (with and without DNS).
  for (const [name, env] of [['connecting-negotiating', {}], ['connecting-negotiating-no-dns', { DNS_MODE: 'off' }]] as const)
    test(`${name}: only the negotiation may use a tunnel that is not yet quantum-resistant`, async () => {
      const plan = planSidecar(settings({ QUANTUM_RESISTANT: 'true', ...env }), CGROUP_FACTS, SERVERS);
      const policy = plan.policyFor('connecting', SERVERS[0]);
      const text = renderTransaction(policy);
      await assertGolden(`plan/${name}.nft`, text);
      for (const inv of INVARIANTS) inv.check(policy, text);
      // Once upgraded, connected is the usual ruleset.
      assert.equal(renderTransaction(plan.policyFor('connected', SERVERS[0])), renderTransaction(planSidecar(settings(env), CGROUP_FACTS, SERVERS).policyFor('connected', SERVERS[0])));
    });
  test('QUANTUM_RESISTANT without the cgroup identity is refused (exit 78), never weakened to source ports', () => {
    assert.throws(() => planSidecar(settings({ QUANTUM_RESISTANT: 'true' }), FACTS, SERVERS), (e: unknown) => e instanceof ConfigError && /QUANTUM_RESISTANT/.test(e.message) && /cgroup v2/.test(e.message));
  });
  test('a guard follows an interface that appeared after the plan', () => {
    const plan = planSidecar(settings(), FACTS, SERVERS);
    const text = renderTransaction(plan.policyFor('blocked', undefined, [...plan.uplinks, 'veth9']));
    assert.match(text, /add chain netdev mullvad_sidecar egress_veth9 /);
  });
});

describe('the real plan: decisions', () => {
  const plan = planSidecar(settings(), FACTS, SERVERS);
  test('the guarded uplinks are every interface but loopback and the tunnel', () => {
    assert.deepEqual(plan.uplinks, ['eth0', 'net1']);
  });
  test('a prefix learned from a router advertisement is never a bypass network', () => {
    const texts = plan.bypass.map((b) => b.cidr.text);
    assert.ok(!texts.some((t) => t.startsWith('2001:db8:66:1')), `RA prefix bypassed: ${texts.join(', ')}`);
    assert.ok(texts.includes('10.42.0.0/24'), `pod subnet missing: ${texts.join(', ')}`);
  });
  test('with no DNS line and no PROBE_TARGET the probe asks Mullvad\'s in-tunnel resolver', () => {
    const noDns = fakeServer('ch-zrh-wg-001', { dns: [] });
    assert.deepEqual(plan.probeTarget(noDns), { kind: 'dns', resolver: MULLVAD_TUNNEL_RESOLVER });
    const withTarget = planSidecar(settings({ PROBE_TARGET: '10.64.0.1:53' }), FACTS, SERVERS);
    assert.deepEqual(withTarget.probeTarget(noDns), { kind: 'tcp', target: '10.64.0.1:53' });
  });
  test('learned cluster addresses carry one mark in routes and firewall, and none without bypass routes', () => {
    assert.ok(plan.learnedMark !== undefined);
    assert.ok(plan.routes.rules.some((r) => r.args.includes(`0x${plan.learnedMark!.toString(16)}/0x${plan.learnedMark!.toString(16)}`)));
    const off = planSidecar(settings({ ENABLE_BYPASS_ROUTES: 'false' }), FACTS, SERVERS);
    assert.equal(off.learnedMark, undefined);
    assert.doesNotMatch(renderTransaction(off.policyFor('connected', SERVERS[0])), /addresses the cluster named/);
  });
  test('the plan is pure: the same inputs give the same rulesets', () => {
    const again = planSidecar(settings(), FACTS, SERVERS);
    for (const s of ['blocked', 'connecting', 'connected'] as const) assert.equal(renderTransaction(again.policyFor(s, SERVERS[0])), renderTransaction(plan.policyFor(s, SERVERS[0])));
  });
});
