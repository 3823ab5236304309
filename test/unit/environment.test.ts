import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, ConfigErrors } from '../../src/errors.js';
import { parseCidr } from '../../src/config/cidr.js';
import { parseWgQuick } from '../../src/config/wgconf.js';
import { detectEnvironment, describeEnvironment, type Environment } from '../../src/environment/detect.js';
import { fsProbe } from '../../src/environment/probe.js';
import { parseResolvConf } from '../../src/environment/resolv.js';
import { addressOrigin, parseIpAddr, readInterfaces } from '../../src/environment/interfaces.js';
import { checkBypassCidrs, planBypass, type BypassInput } from '../../src/environment/bypass.js';
import { FakeRunner } from '../../src/system/runner.js';

const ROOT = new URL('../../../test/fixtures/environment/', import.meta.url).pathname;
const read = (tree: string, file: string): string => readFileSync(`${ROOT}${tree}/${file}`, 'utf8');
const probeOf = (tree: string) => fsProbe(JSON.parse(read(tree, 'env.json')) as Record<string, string>, ROOT + tree);

test('detectEnvironment from fixture trees', async (t) => {
  const cases: { tree: string; want: Environment; line: string }[] = [
    {
      tree: 'kubernetes',
      want: { kind: 'kubernetes', runtime: undefined, namespace: 'media', kubernetesServiceHost: '10.96.0.1', reasons: ['KUBERNETES_SERVICE_HOST is set (10.96.0.1)', '/var/run/secrets/kubernetes.io/serviceaccount exists'] },
      line: 'Kubernetes pod in namespace media: KUBERNETES_SERVICE_HOST is set (10.96.0.1), /var/run/secrets/kubernetes.io/serviceaccount exists',
    },
    {
      tree: 'kubernetes-calico',
      want: { kind: 'kubernetes', runtime: undefined, namespace: undefined, kubernetesServiceHost: '10.96.0.1', reasons: ['KUBERNETES_SERVICE_HOST is set (10.96.0.1)'] },
      line: 'Kubernetes pod: KUBERNETES_SERVICE_HOST is set (10.96.0.1)',
    },
    {
      tree: 'compose-docker',
      want: { kind: 'container', runtime: 'docker', namespace: undefined, kubernetesServiceHost: undefined, reasons: ['/.dockerenv exists'] },
      line: 'docker container (Compose or plain): /.dockerenv exists',
    },
    {
      tree: 'podman',
      want: { kind: 'container', runtime: 'podman', namespace: undefined, kubernetesServiceHost: undefined, reasons: ['/run/.containerenv exists', 'container=podman is set'] },
      line: 'podman container (Compose or plain): /run/.containerenv exists, container=podman is set',
    },
    {
      tree: 'plain',
      want: { kind: 'linux', runtime: undefined, namespace: undefined, kubernetesServiceHost: undefined, reasons: ['no Kubernetes or container markers found'] },
      line: 'plain Linux: no Kubernetes or container markers found',
    },
  ];
  for (const c of cases)
    await t.test(c.tree, async () => {
      const env = await detectEnvironment(probeOf(c.tree));
      assert.deepEqual(env, c.want);
      assert.equal(describeEnvironment(env), c.line);
    });
});

test('parseResolvConf', async (t) => {
  const cases: { name: string; text: string; want: ReturnType<typeof parseResolvConf> }[] = [
    { name: 'kubernetes', text: read('kubernetes', 'etc/resolv.conf'), want: { nameservers: ['10.96.0.10'], search: ['media.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], options: { ndots: 5, raw: ['ndots:5'] } } },
    { name: 'docker embedded DNS', text: read('compose-docker', 'etc/resolv.conf'), want: { nameservers: ['127.0.0.11'], search: [], options: { ndots: 0, raw: ['ndots:0'] } } },
    { name: 'zone id stripped', text: read('podman', 'etc/resolv.conf'), want: { nameservers: ['10.89.0.1', 'fe80::1'], search: ['dns.podman'], options: { ndots: undefined, raw: [] } } },
    { name: 'domain, ; comments, IPv6', text: read('plain', 'etc/resolv.conf'), want: { nameservers: ['192.168.1.1', '2001:db8:1::53'], search: ['home.arpa'], options: { ndots: undefined, raw: ['edns0', 'trust-ad'] } } },
    { name: 'last search wins, junk ignored, ndots capped', text: 'search a.example\nsearch B.example. c.example\nnameserver not-an-ip\nnameserver\nnameserver 1.1.1.1 # x\nnameserver 1.1.1.1\noptions ndots:99\n', want: { nameservers: ['1.1.1.1'], search: ['b.example', 'c.example'], options: { ndots: 15, raw: ['ndots:99'] } } },
    { name: 'empty', text: '', want: { nameservers: [], search: [], options: { ndots: undefined, raw: [] } } },
  ];
  for (const c of cases) await t.test(c.name, () => assert.deepEqual(parseResolvConf(c.text), c.want));
});

test('parseIpAddr and readInterfaces', async () => {
  const ifs = parseIpAddr(read('plain', 'ip-addr.json'));
  assert.deepEqual(ifs.map((i) => i.name), ['lo', 'enp3s0', 'docker0', 'wg0', 'ppp0']);
  assert.deepEqual(ifs[4]!.addresses, [{ family: 4, local: '100.64.7.1', prefixlen: 32, scope: 'global', peer: '100.64.7.254', origin: 'static' }]);
  const runner = new FakeRunner((argv) => (argv.join(' ') === 'ip -j addr show' ? { stdout: read('kubernetes', 'ip-addr.json') } : { code: 1 }));
  const got = await readInterfaces(runner);
  assert.deepEqual(runner.calls, [{ argv: ['ip', '-j', 'addr', 'show'] }]);
  assert.deepEqual(got[1], {
    name: 'eth0',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    linkType: 'ether',
    addresses: [
      { family: 4, local: '10.244.1.5', prefixlen: 24, scope: 'global', peer: undefined, origin: 'static' },
      { family: 6, local: 'fe80::a8b1:2ff:fe33:4455', prefixlen: 64, scope: 'link', peer: undefined, origin: 'static' },
    ],
  });
  await assert.rejects(readInterfaces(new FakeRunner(() => ({ stdout: 'not json' }))), /^SidecarError: reading network interfaces: /);
  await assert.rejects(readInterfaces(new FakeRunner(() => ({ stdout: '{}' }))), /reading network interfaces: ip -j addr show did not print a JSON array/);
});

test('address origin: what iproute2 6.1 (dynamic, mngtmpaddr) and 6.2+ (protocol) print', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ family: 'inet6', dynamic: true }, 'ra'],
    [{ family: 'inet6', mngtmpaddr: true }, 'ra'],
    [{ family: 'inet6', temporary: true, dynamic: true }, 'ra'],
    [{ family: 'inet6', protocol: 'kernel_ra' }, 'ra'],
    [{ family: 'inet', protocol: 'dhcp' }, 'dhcp'],
    [{ family: 'inet', dynamic: true }, 'dhcp'],
    [{ family: 'inet6' }, 'static'],
    [{ family: 'inet', protocol: 'kernel_lo' }, 'static'],
  ];
  for (const [a, want] of cases) assert.equal(addressOrigin(a), want, JSON.stringify(a));
});

const SETTINGS = { bypassRoutes: true, bypassCidrs: [], wgInterface: 'wg0' };
const K8S_NOTE =
  "Kubernetes: Services and pods are reached directly when the cluster names them (cluster DNS answers, *_SERVICE_HOST); an address used without a name (a hard-coded Service or pod IP) goes through the tunnel unless BYPASS_CIDRS lists its network (e.g. 10.244.0.0/16,10.96.0.0/12)";

async function inputOf(tree: string, settings: Partial<BypassInput['settings']> = {}, servers?: BypassInput['servers']): Promise<BypassInput> {
  return {
    env: await detectEnvironment(probeOf(tree)),
    interfaces: parseIpAddr(read(tree, 'ip-addr.json')),
    resolv: parseResolvConf(read(tree, 'etc/resolv.conf')),
    settings: { ...SETTINGS, ...settings },
    ...(servers ? { servers } : {}),
  };
}

const cidrs = (...list: string[]) => list.map((c) => parseCidr(c)!);

const HOST_IP_NOTE =
  'Kubernetes: HOST_IP is not set; if kubelet probes come from an address outside the bypass networks (Calico, Cilium), they get no answer: set HOST_IP from the downward API (status.hostIP)';

test('planBypass per environment', async (t) => {
  const cases: { name: string; tree: string; settings?: Partial<BypassInput['settings']>; want: string[]; notes: string[] }[] = [
    {
      name: 'kubernetes pod with a /24',
      tree: 'kubernetes',
      want: ['10.244.1.0/24  subnet of eth0 (10.244.1.5/24)', '10.96.0.1/32  Kubernetes API service (KUBERNETES_SERVICE_HOST)', '10.96.0.10/32  nameserver in resolv.conf'],
      notes: [HOST_IP_NOTE, K8S_NOTE],
    },
    {
      name: 'kubernetes pod with HOST_IP from the downward API',
      tree: 'kubernetes',
      settings: { hostIps: ['192.168.1.10'] },
      want: ['10.244.1.0/24  subnet of eth0 (10.244.1.5/24)', '10.96.0.1/32  Kubernetes API service (KUBERNETES_SERVICE_HOST)', '10.96.0.10/32  nameserver in resolv.conf', '192.168.1.10/32  node address (HOST_IP): kubelet probes come from there'],
      notes: [K8S_NOTE],
    },
    {
      name: 'kubernetes pod with /32 and /128 (Calico), BYPASS_CIDRS given',
      tree: 'kubernetes-calico',
      settings: { bypassCidrs: cidrs('10.96.0.0/12', '192.168.0.0/16', 'fd5f:1::/64') },
      want: [
        '10.96.0.0/12  nameserver in resolv.conf; Kubernetes API service (KUBERNETES_SERVICE_HOST); BYPASS_CIDRS',
        '192.168.0.0/16  address of eth0 (a /32: only itself); BYPASS_CIDRS',
        'fd5f:1::/64  address of eth0 (a /128: only itself); BYPASS_CIDRS',
      ],
      notes: ["eth0 has a host address (/32 or /128, as routed pod networks give): other pods and Services are reached directly only when the cluster names them (cluster DNS, *_SERVICE_HOST); list the cluster's networks in BYPASS_CIDRS for addresses used without a name", HOST_IP_NOTE],
    },
    {
      name: 'compose with the Docker embedded resolver',
      tree: 'compose-docker',
      want: ['172.18.0.0/16  subnet of eth0 (172.18.0.3/16)'],
      notes: ['nameserver 127.0.0.11 is on loopback, which is always reachable'],
    },
    {
      name: 'podman: IPv6 subnet kept, link-local address skipped, covered nameserver folded in',
      tree: 'podman',
      want: ['10.89.0.0/24  subnet of eth0 (10.89.0.5/24); nameserver in resolv.conf', 'fd00:89::/64  subnet of eth0 (fd00:89::5/64)', 'fe80::1/128  nameserver in resolv.conf'],
      notes: [],
    },
    {
      name: 'plain Linux: down links and the tunnel skipped, point-to-point peer kept',
      tree: 'plain',
      want: ['100.64.7.254/32  point-to-point peer of ppp0', '192.168.1.0/24  subnet of enp3s0 (192.168.1.20/24); nameserver in resolv.conf', '2001:db8:1::/64  subnet of enp3s0 (2001:db8:1::20/64); nameserver in resolv.conf'],
      notes: [],
    },
    {
      name: 'ENABLE_BYPASS_ROUTES=false: loopback only',
      tree: 'kubernetes',
      settings: { bypassRoutes: false, bypassCidrs: cidrs('10.96.0.0/12') },
      want: [],
      notes: ['ENABLE_BYPASS_ROUTES=false: nothing but loopback stays outside the tunnel', 'BYPASS_CIDRS is ignored because ENABLE_BYPASS_ROUTES=false'],
    },
  ];
  for (const c of cases)
    await t.test(c.name, async () => {
      const plan = planBypass(await inputOf(c.tree, c.settings));
      assert.deepEqual(plan.cidrs.map((e) => `${e.cidr.text}  ${e.reason}`), c.want);
      assert.deepEqual(plan.notes, c.notes);
    });
});

const SERVER = parseWgQuick(
  ['[Interface]', 'PrivateKey = cHSSk6b9qaJoAsjTqJY8l6nsLhW6tPmlGwmC+AaD42Y=', 'Address = 10.68.1.2/32', 'DNS = 100.64.0.7', '[Peer]', 'PublicKey = 0Gpt6THpuiDb/1Il2D821ziFcxeM8VToGifUs48/40Y=', 'AllowedIPs = 0.0.0.0/0', 'Endpoint = 172.18.5.5:51820'].join('\n'),
  'se-sto-wg-001.conf',
);

test('planBypass refuses bypasses that would swallow the tunnel', async (t) => {
  const HINT = '(list only the cluster or Compose networks, e.g. 10.96.0.0/12 for Kubernetes Services)';
  const cases: { name: string; tree: string; bypass?: string[]; servers?: boolean; errors: string[] }[] = [
    { name: 'all of 10/8 holds the tunnel resolver', tree: 'kubernetes', bypass: ['10.0.0.0/8'], errors: [`BYPASS_CIDRS: '10.0.0.0/8' contains the tunnel resolver 10.64.0.1: DNS meant for the tunnel would leave through the local network ${HINT}`] },
    { name: 'default routes', tree: 'kubernetes', bypass: ['0.0.0.0/0', '::/0'], errors: [`BYPASS_CIDRS: '0.0.0.0/0' would send all traffic around the tunnel ${HINT}`, `BYPASS_CIDRS: '::/0' would send all traffic around the tunnel ${HINT}`] },
    { name: "a network holding the config's DNS", tree: 'plain', bypass: ['100.64.0.0/10'], servers: true, errors: [`BYPASS_CIDRS: '100.64.0.0/10' contains the tunnel resolver 100.64.0.7: DNS meant for the tunnel would leave through the local network ${HINT}`] },
    {
      name: 'a discovered subnet holding the endpoint',
      tree: 'compose-docker',
      servers: true,
      errors: ['ENABLE_BYPASS_ROUTES: 172.18.0.0/16 (subnet of eth0 (172.18.0.3/16)) contains the endpoint 172.18.5.5 of se-sto-wg-001: any process could reach the relay outside the tunnel, and only the WireGuard socket may (set ENABLE_BYPASS_ROUTES=false and list the networks to bypass in BYPASS_CIDRS)'],
    },
  ];
  for (const c of cases)
    await t.test(c.name, async () => {
      const input = await inputOf(c.tree, { bypassCidrs: cidrs(...(c.bypass ?? [])) }, c.servers ? [SERVER] : undefined);
      let caught: unknown;
      try {
        planBypass(input);
      } catch (e) {
        caught = e;
      }
      const list = caught instanceof ConfigErrors ? caught.errors : caught instanceof ConfigError ? [caught] : assert.fail(`expected a ConfigError, got ${String(caught)}`);
      assert.deepEqual(list.map((e) => e.message), c.errors);
    });
});

test('a nameserver that is the tunnel resolver is not bypassed', () => {
  const plan = planBypass({
    env: { kind: 'linux', runtime: undefined, namespace: undefined, kubernetesServiceHost: undefined, reasons: [] },
    interfaces: [],
    resolv: parseResolvConf('nameserver 10.64.0.1\nnameserver ::1\n'),
    settings: SETTINGS,
  });
  assert.deepEqual(plan.cidrs, []);
  assert.deepEqual(plan.notes, ['nameserver 10.64.0.1 is the tunnel resolver: it is reached through the tunnel, not bypassed', 'nameserver ::1 is on loopback, which is always reachable']);
});

test('a prefix learned from a router advertisement is never a bypass (anyone on the link can send one)', () => {
  const ifc = (addr_info: Record<string, unknown>[]) => parseIpAddr(JSON.stringify([{ ifname: 'eth0', flags: ['UP'], link_type: 'ether', addr_info }]));
  const plan = planBypass({
    env: { kind: 'linux', runtime: undefined, namespace: undefined, kubernetesServiceHost: undefined, reasons: [] },
    interfaces: ifc([
      { family: 'inet', local: '10.244.1.5', prefixlen: 24, scope: 'global' },
      { family: 'inet6', local: '2001:db8:66::5', prefixlen: 64, scope: 'global', dynamic: true, valid_life_time: 3598 },
      { family: 'inet6', local: '2001:db8:77::5', prefixlen: 64, scope: 'global', protocol: 'kernel_ra' },
      { family: 'inet6', local: 'fd00:10:244::5', prefixlen: 64, scope: 'global' },
    ]),
    resolv: parseResolvConf(''),
    settings: SETTINGS,
  });
  assert.deepEqual(plan.cidrs.map((c) => c.cidr.text), ['10.244.1.0/24', 'fd00:10:244::/64']);
  assert.equal(plan.notes.filter((n) => /router advertisement/.test(n)).length, 2);
});

test('checkBypassCidrs after endpoints are resolved', () => {
  assert.deepEqual(checkBypassCidrs(cidrs('10.96.0.0/12', '172.16.0.0/12'), [SERVER]).map((e) => e.where + ' ' + e.problem), [
    "BYPASS_CIDRS '172.16.0.0/12' contains the endpoint 172.18.5.5 of se-sto-wg-001: any process could reach the relay outside the tunnel, and only the WireGuard socket may",
  ]);
  assert.deepEqual(checkBypassCidrs(cidrs('10.96.0.0/12'), [SERVER]), []);
});
