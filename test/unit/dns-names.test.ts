import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCidr, type Cidr } from '../../src/config/cidr.js';
import { defaultClusterDomains, defaultSingleLabel, isUnder, normaliseName, reverseNameNetwork, routeName, searchCandidates, type RoutingConfig } from '../../src/dns/names.js';

const nets = (...c: string[]): Cidr[] => c.map((x) => parseCidr(x)!);
const split: RoutingConfig = {
  mode: 'split',
  clusterDomains: ['cluster.local', 'corp.internal', 'default.svc.cluster.local'],
  clusterNetworks: nets('10.96.0.0/12', '10.244.0.0/16', 'fd00:10:96::/108'),
  singleLabel: 'cluster',
};

test('normaliseName lowercases and strips trailing dots', () => {
  for (const [input, want] of [
    ['Example.COM.', 'example.com'],
    ['example.com', 'example.com'],
    ['.', ''],
    ['', ''],
    ['A.B.C..', 'a.b.c'],
  ] as const)
    assert.equal(normaliseName(input), want, input);
});

test('isUnder matches on label boundaries only', () => {
  for (const [name, domain, want] of [
    ['cluster.local', 'cluster.local', true],
    ['svc.cluster.local', 'cluster.local', true],
    ['a.b.svc.cluster.local', 'cluster.local', true],
    ['notcluster.local', 'cluster.local', false],
    ['cluster.local.evil.com', 'cluster.local', false],
    ['local', 'cluster.local', false],
    ['xcorp.internal', 'corp.internal', false],
    ['anything', '', true],
  ] as const)
    assert.equal(isUnder(name, domain), want, `${name} under ${domain}`);
});

test('routeName in split mode', () => {
  const cases: [string, string][] = [
    // cluster domains, any case, trailing dot already stripped by normaliseName
    ['kubernetes.default.svc.cluster.local', 'cluster'],
    [normaliseName('KUBERNETES.Default.SVC.Cluster.Local.'), 'cluster'],
    ['cluster.local', 'cluster'],
    ['db.corp.internal', 'cluster'],
    ['corp.internal', 'cluster'],
    // look-alikes are external
    ['notcluster.local', 'tunnel'],
    ['cluster.local.example.com', 'tunnel'],
    ['corp.internal.example.com', 'tunnel'],
    ['example.com', 'tunnel'],
    ['www.example.com', 'tunnel'],
    ['', 'tunnel'],
    // dotless names follow singleLabel
    ['db', 'cluster'],
    // reverse names: the tunnel unless a PTR query for a known address (see the PTR test below)
    ['10.0.96.10.in-addr.arpa', 'tunnel'],
    ['96.10.in-addr.arpa', 'tunnel'],
    ['8.8.8.8.in-addr.arpa', 'tunnel'],
    // special-use names never leave
    ['localhost', 'local'],
    ['foo.localhost', 'local'],
    ['x.onion', 'local'],
    ['bad.invalid', 'local'],
  ];
  for (const [name, want] of cases) assert.equal(routeName(name, split), want, name);
});

test('routeName: reverse names go to cluster DNS only as PTR, only for whole known addresses', () => {
  const known = new Set(['10.42.2.11', 'fd42::7']);
  const cfg: RoutingConfig = { ...split, isClusterAddress: (ip) => known.has(ip) };
  const cases: [string, string, string][] = [
    ['10.0.96.10.in-addr.arpa', 'PTR', 'cluster'], // inside a known network (10.96.0.0/12 in split)
    ['10.0.96.10.in-addr.arpa', 'A', 'tunnel'], // not a PTR query: a name nobody vouched for
    ['10.0.96.10.in-addr.arpa', 'TXT', 'tunnel'],
    ['11.2.42.10.in-addr.arpa', 'PTR', 'cluster'], // learned
    ['12.2.42.10.in-addr.arpa', 'PTR', 'tunnel'], // next door, not learned
    ['96.10.in-addr.arpa', 'PTR', 'tunnel'], // partial: covers addresses nobody named
    ['10.in-addr.arpa', 'PTR', 'tunnel'],
    ['8.8.8.8.in-addr.arpa', 'PTR', 'tunnel'],
    ['7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.4.d.f.ip6.arpa', 'PTR', 'cluster'], // fd42::7, learned
    ['8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.4.d.f.ip6.arpa', 'PTR', 'tunnel'], // 64 bits an app could pick
    ['a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa', 'PTR', 'cluster'], // fd00:10:96::a in fd00:10:96::/108
  ];
  for (const [name, type, want] of cases) assert.equal(routeName(name, cfg, type), want, `${name} ${type}`);
});

test('routeName: dotless names go to the engine only as A/AAAA (Compose)', () => {
  assert.equal(routeName('db', split, 'A'), 'cluster');
  assert.equal(routeName('db', split, 'AAAA'), 'cluster');
  for (const type of ['NS', 'SOA', 'TXT', 'MX', 'ANY', 'PTR']) assert.equal(routeName('com', split, type), 'tunnel', `com ${type}`);
});

test('defaultClusterDomains: the svc.<domain> entry names the cluster; node search domains are not cluster domains', () => {
  assert.deepEqual(defaultClusterDomains(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'c.proj.internal', 'google.internal']), ['cluster.local']);
  assert.deepEqual(defaultClusterDomains(['ns.svc.k8s.example.', 'svc.k8s.example', 'k8s.example', 'eu-west-1.compute.internal']), ['k8s.example']);
  assert.deepEqual(defaultClusterDomains([]), ['cluster.local']);
  assert.deepEqual(defaultClusterDomains(['home.lan']), ['cluster.local'], 'Docker copies the host search list: its resolver forwards those names upstream');
  assert.deepEqual(defaultClusterDomains(['dns.podman']), ['cluster.local', 'dns.podman'], "aardvark-dns's own domain");
  // GKE: every external name tried under the node domains first stays out of cluster DNS.
  const cfg: RoutingConfig = { ...split, clusterDomains: defaultClusterDomains(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'c.proj.internal', 'google.internal']) };
  for (const n of searchCandidates('www.example.com', ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'c.proj.internal', 'google.internal'], 5))
    assert.equal(routeName(n, cfg), n.endsWith('cluster.local') ? 'cluster' : 'tunnel', n);
});

test('routeName: dotless names to the tunnel when singleLabel says so', () => {
  assert.equal(routeName('db', { ...split, singleLabel: 'tunnel' }), 'tunnel');
});

test('routeName in tunnel mode sends every name through the tunnel', () => {
  const t: RoutingConfig = { ...split, mode: 'tunnel' };
  for (const name of ['kubernetes.default.svc.cluster.local', 'db.corp.internal', 'db', 'example.com', '10.0.96.10.in-addr.arpa'])
    assert.equal(routeName(name, t), 'tunnel', name);
  assert.equal(routeName('localhost', t), 'local');
});

test('reverseNameNetwork', () => {
  for (const [name, want] of [
    ['4.3.2.1.in-addr.arpa', '1.2.3.4/32'],
    ['2.1.in-addr.arpa', '1.2.0.0/16'],
    ['in-addr.arpa', '0.0.0.0/0'],
    ['256.1.in-addr.arpa', undefined],
    ['01.1.in-addr.arpa', undefined],
    ['x.1.in-addr.arpa', undefined],
    ['5.4.3.2.1.in-addr.arpa', undefined],
    ['b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa', '4321:0:1:2:3:4:567:89ab/128'],
    ['8.b.d.0.1.0.0.2.ip6.arpa', '2001:db8::/32'],
    ['zz.ip6.arpa', undefined],
    ['example.com', undefined],
  ] as const)
    assert.equal(reverseNameNetwork(name)?.text, want, name);
});

test('searchCandidates follows glibc res_search', () => {
  const search = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];
  assert.deepEqual(searchCandidates('db', search, 5), ['db.default.svc.cluster.local', 'db.svc.cluster.local', 'db.cluster.local', 'db']);
  assert.deepEqual(searchCandidates('example.com', search, 1), ['example.com', 'example.com.default.svc.cluster.local', 'example.com.svc.cluster.local', 'example.com.cluster.local']);
  assert.deepEqual(searchCandidates('example.com.', search, 5), ['example.com']);
  // Every candidate except the bare name is a cluster name under the default cluster domains.
  const cfg: RoutingConfig = { ...split, clusterDomains: ['cluster.local', ...search] };
  const routes = searchCandidates('api.example.com', search, 5).map((n) => routeName(n, cfg));
  assert.deepEqual(routes, ['cluster', 'cluster', 'cluster', 'tunnel']);
});

test('defaultSingleLabel: tunnel in Kubernetes (svc search domain), cluster elsewhere', () => {
  assert.equal(defaultSingleLabel(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']), 'tunnel');
  assert.equal(defaultSingleLabel(['SVC.corp.example.']), 'tunnel');
  assert.equal(defaultSingleLabel([]), 'cluster');
  assert.equal(defaultSingleLabel(['example.com']), 'cluster');
});

test('defaultSingleLabel: dotless names reach only an engine\'s own resolver (Docker 127.0.0.11, or on our own subnet)', () => {
  const eth0 = [parseCidr('10.89.0.0/24')!, parseCidr('fd89::/64')!];
  const side = (resolvers: string[], localNetworks: Cidr[] = eth0) => defaultSingleLabel([], { resolvers, localNetworks });
  assert.equal(side(['127.0.0.11']), 'cluster');
  assert.equal(side(['10.89.0.1']), 'cluster', 'aardvark-dns / dnsname on the network gateway');
  assert.equal(side(['fd89::1']), 'cluster');
  // The host's resolvers, handed to containers when the engine has no DNS: a bare label would leave the host.
  assert.equal(side(['192.168.1.1']), 'tunnel');
  assert.equal(side(['8.8.8.8', '1.1.1.1']), 'tunnel');
  assert.equal(side([]), 'tunnel');
  // A default route's /0 is no subnet of ours.
  assert.equal(side(['8.8.8.8'], [parseCidr('0.0.0.0/0')!]), 'tunnel');
  // Kubernetes stays tunnel whatever the resolvers.
  assert.equal(defaultSingleLabel(['svc.cluster.local'], { resolvers: ['127.0.0.11'], localNetworks: eth0 }), 'tunnel');
});
