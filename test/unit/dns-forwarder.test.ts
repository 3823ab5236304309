// The forwarder against fake upstream servers on 127.0.0.x (real sockets,
// loopback only): routing by side, source ports, cache, truncation, timeouts,
// tunnel down.
import assert from 'node:assert/strict';
import { parseCidr } from '../../src/config/cidr.js';
import { after, before, beforeEach, test } from 'node:test';
import type { Answer } from 'dns-packet';
import { DNS_UPSTREAM_PORTS } from '../../src/firewall/policy.js';
import { silentLogger } from '../../src/log/logger.js';
import { stubQuery } from '../../src/dns/client.js';
import { defaultAnswerer, soa, startFakeUpstream, type FakeUpstream } from '../../src/dns/fake-upstream.js';
import { startDnsService, type DnsService, type QueryResult, type QueryUpstream } from '../../src/dns/index.js';
import { rcodeOf, RCODE } from '../../src/dns/message.js';

const TIMEOUT = 600;
let cluster: FakeUpstream;
let tunnel: FakeUpstream;
let tunnel2: FakeUpstream;
let dns: DnsService;
const events: [QueryUpstream, QueryResult][] = [];

before(async () => {
  cluster = await startFakeUpstream('127.0.0.71', 0, (q) => (q.name.endsWith('cluster.local') || q.name.endsWith('corp.internal') || !q.name.includes('.') ? defaultAnswerer(q, 'udp') : { rcode: RCODE.REFUSED }));
  tunnel = await startFakeUpstream('127.0.0.72', cluster.port);
  tunnel2 = await startFakeUpstream('127.0.0.73', cluster.port);
  dns = await startDnsService({
    mode: 'split',
    listenPort: 0,
    clusterResolvers: ['127.0.0.71'],
    clusterDomains: ['cluster.local', 'Corp.Internal.'],
    searchDomains: [],
    ndots: 1,
    tunnelResolvers: ['127.0.0.72'],
    timeoutMs: TIMEOUT,
    log: silentLogger,
    onQuery: (u, r) => events.push([u, r]),
    tunnelUp: true,
    upstreamPort: cluster.port,
    // The fake engine resolver sits on "our own subnet" (loopback here): dotless names go to it.
    localNetworks: [parseCidr('127.0.0.0/8')!],
  });
});

after(async () => {
  await dns?.stop();
  await Promise.all([cluster, tunnel, tunnel2].map((s) => s?.close()));
});

beforeEach(() => {
  dns.flushCache();
  dns.setTunnelUp(true);
  dns.setTunnelResolvers(['127.0.0.72']);
  for (const s of [cluster, tunnel, tunnel2]) {
    s.log.length = 0;
    s.answer = defaultAnswerer;
  }
  cluster.answer = defaultAnswerer;
  events.length = 0;
});

const ask = (name: string, o: { type?: 'A' | 'AAAA' | 'TXT'; tcp?: boolean; server?: string; edns?: number; timeoutMs?: number } = {}) =>
  stubQuery({ name, type: o.type ?? 'A', server: o.server ?? '127.0.0.1', port: dns.port, tcp: o.tcp, ednsUdpSize: o.edns, timeoutMs: o.timeoutMs ?? 3000 });

test('each name goes to its side: cluster domains to cluster DNS, the rest through the tunnel', async () => {
  const cases: [string, 'cluster' | 'tunnel'][] = [
    ['kubernetes.default.svc.cluster.local', 'cluster'],
    ['Other.Default.svc.CLUSTER.local.', 'cluster'],
    ['db.corp.internal', 'cluster'],
    ['db', 'cluster'],
    ['notcluster.local', 'tunnel'],
    ['example.com', 'tunnel'],
    ['cluster.local.example.com', 'tunnel'],
  ];
  for (const [name, side] of cases) {
    cluster.log.length = 0;
    tunnel.log.length = 0;
    const r = await ask(name);
    assert.equal(rcodeOf(r.packet), RCODE.NOERROR, name);
    assert.equal(cluster.log.length, side === 'cluster' ? 1 : 0, `${name}: cluster DNS queries`);
    assert.equal(tunnel.log.length, side === 'tunnel' ? 1 : 0, `${name}: tunnel resolver queries`);
  }
});

test('upstream queries leave from the exempt source-port range, with our own IDs', async () => {
  for (let i = 0; i < 20; i++) await ask(`n${i}.example.com`);
  await ask('x.svc.cluster.local', { tcp: true });
  const ports = [...tunnel.log, ...cluster.log].map((l) => l.sourcePort);
  assert.equal(ports.length, 21);
  for (const p of ports) assert.ok(p >= DNS_UPSTREAM_PORTS.from && p <= DNS_UPSTREAM_PORTS.to, `source port ${p}`);
  assert.ok(new Set(ports).size > 1, 'more than one source port in use');
});

test('answers are cached per side and served with the client ID', async () => {
  await ask('cached.example.com');
  const r = await ask('CACHED.example.com');
  assert.equal(tunnel.log.length, 1);
  assert.equal(r.packet.questions?.[0]?.name, 'CACHED.example.com');
  assert.deepEqual(events, [
    ['tunnel', 'ok'],
    ['cache', 'ok'],
  ]);
  dns.flushCache();
  await ask('cached.example.com');
  assert.equal(tunnel.log.length, 2);
  assert.ok(dns.stats().cacheHits >= 1);
});

test('negative answers are cached until the SOA minimum', async () => {
  tunnel.answer = () => ({ rcode: RCODE.NXDOMAIN, authorities: [soa('example.com', 1)] });
  const a = await ask('nx.example.com');
  assert.equal(rcodeOf(a.packet), RCODE.NXDOMAIN);
  await ask('nx.example.com');
  assert.equal(tunnel.log.length, 1);
  await new Promise((r) => setTimeout(r, 1050));
  await ask('nx.example.com');
  assert.equal(tunnel.log.length, 2);
  assert.deepEqual(events.map((e) => e[1]), ['nxdomain', 'nxdomain', 'nxdomain']);
});

test('tunnel down: external names SERVFAIL at once, nothing sent; cluster names still resolve', async () => {
  await ask('before.example.com'); // cached while up
  dns.setTunnelUp(false);
  tunnel.log.length = 0;
  const t0 = performance.now();
  for (const name of ['before.example.com', 'other.example.com']) {
    const r = await ask(name);
    assert.equal(rcodeOf(r.packet), RCODE.SERVFAIL, name);
  }
  assert.ok(performance.now() - t0 < TIMEOUT, 'answered before any upstream timeout');
  assert.equal(tunnel.log.length, 0);
  const c = await ask('api.svc.cluster.local');
  assert.equal(rcodeOf(c.packet), RCODE.NOERROR);
  assert.deepEqual(events.slice(1), [
    ['local', 'servfail'],
    ['local', 'servfail'],
    ['cluster', 'ok'],
  ]);
});

test('tunnel going down ends queries in flight with SERVFAIL', async () => {
  tunnel.answer = () => ({ drop: true });
  const pending = ask('slow.example.com');
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  dns.setTunnelUp(false);
  const r = await pending;
  assert.equal(rcodeOf(r.packet), RCODE.SERVFAIL);
  assert.ok(performance.now() - t0 < TIMEOUT, 'before the upstream timeout');
});

test('an upstream that never answers: SERVFAIL within the timeout, retransmitted', async () => {
  tunnel.answer = () => ({ drop: true });
  const t0 = performance.now();
  const r = await ask('lost.example.com');
  const ms = performance.now() - t0;
  assert.equal(rcodeOf(r.packet), RCODE.SERVFAIL);
  assert.ok(ms >= TIMEOUT - 50 && ms < TIMEOUT + 2000, `${ms} ms`);
  assert.equal(tunnel.log.length, 3, 'three attempts within the timeout');
  assert.deepEqual(events, [['tunnel', 'timeout']]);
});

test('a silent resolver is skipped for the next one', async () => {
  dns.setTunnelResolvers(['127.0.0.72', '127.0.0.73']);
  tunnel.answer = () => ({ drop: true });
  const r = await ask('second.example.com');
  assert.equal(rcodeOf(r.packet), RCODE.NOERROR);
  assert.equal(tunnel2.log.length, 1);
});

test('upstream TC: asked again over TCP; a UDP client without EDNS gets TC, then the answer over TCP', async () => {
  const many: Answer[] = [];
  for (let i = 0; i < 30; i++) many.push({ type: 'A', name: 'big.example.com', ttl: 60, data: `192.0.2.${i}` });
  tunnel.answer = (q, via) => ({ answers: many, truncateUdp: via === 'udp' && q.name === 'big.example.com' });
  const udp = await ask('big.example.com');
  assert.equal(udp.packet.flag_tc, true);
  assert.equal(udp.packet.answers?.length, 0);
  assert.deepEqual(tunnel.log.map((l) => l.tcp), [false, true]);
  assert.ok(tunnel.log.every((l) => l.sourcePort >= DNS_UPSTREAM_PORTS.from && l.sourcePort <= DNS_UPSTREAM_PORTS.to));
  const tcp = await ask('big.example.com', { tcp: true });
  assert.equal(tcp.packet.flag_tc, false);
  assert.equal(tcp.packet.answers?.length, 30);
  assert.equal(tunnel.log.length, 2, 'the TCP client was served from the cache');
  const edns = await ask('big.example.com', { edns: 4096 });
  assert.equal(edns.packet.answers?.length, 30);
});

test('identical concurrent questions share one upstream query', async () => {
  tunnel.answer = (q) => ({ ...defaultAnswerer(q, 'udp'), delayMs: 100 });
  const rs = await Promise.all(Array.from({ length: 10 }, () => ask('same.example.com')));
  assert.ok(rs.every((r) => r.packet.answers?.length === 1));
  assert.equal(tunnel.log.length, 1);
});

test('IPv6 loopback and TCP listeners answer too', async () => {
  const v6 = await ask('v6.example.com', { server: '::1' });
  assert.equal(rcodeOf(v6.packet), RCODE.NOERROR);
  const v6tcp = await ask('v6.svc.cluster.local', { server: '::1', tcp: true, type: 'AAAA' });
  assert.equal((v6tcp.packet.answers?.[0] as { data?: unknown } | undefined)?.data, '2001:db8::1');
  assert.deepEqual(
    dns.stats().listen.map((s) => `${s.protocol} ${s.address}`),
    ['udp 127.0.0.1', 'tcp 127.0.0.1', 'udp ::1', 'tcp ::1'],
  );
});

test('special-use names are answered locally', async () => {
  const lo = await ask('localhost');
  assert.equal((lo.packet.answers?.[0] as { data?: unknown } | undefined)?.data, '127.0.0.1');
  const onion = await ask('secret.onion');
  assert.equal(rcodeOf(onion.packet), RCODE.NXDOMAIN);
  assert.equal(cluster.log.length + tunnel.log.length, 0);
});

test('tunnel mode: every name through the tunnel, cluster DNS never asked', async () => {
  const t = await startDnsService({
    mode: 'tunnel',
    listenPort: 0,
    listenAddresses: ['127.0.0.1'],
    clusterResolvers: ['127.0.0.71'],
    clusterDomains: ['cluster.local'],
    searchDomains: [],
    ndots: 1,
    tunnelResolvers: ['127.0.0.72'],
    timeoutMs: TIMEOUT,
    log: silentLogger,
    tunnelUp: true,
    upstreamPort: cluster.port,
  });
  try {
    await stubQuery({ name: 'api.svc.cluster.local', server: '127.0.0.1', port: t.port });
    assert.equal(cluster.log.length, 0);
    assert.equal(tunnel.log.length, 1);
  } finally {
    await t.stop();
  }
});
