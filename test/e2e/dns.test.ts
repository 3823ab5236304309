// End to end, as root, in the lab: split DNS never leaks a name. The lab's
// cluster DNS (10.43.0.10) forwards external names to the public DNS server
// (172.30.0.2) outside the tunnel: exactly the leak the forwarder must prevent.
// The public server logs the source of every query: through the tunnel that
// source is a relay's address, never the pod. The router's `leakdns` counter
// counts every port-53 packet from the pod that crosses it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labUp, type DnsLogEntry, type Lab } from '../../src/lab/lab.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const PROBE_TIMEOUT_MS = 1000;

const norm = (n: string): string => n.toLowerCase().replace(/\.$/, '');
const named = (log: DnsLogEntry[], name: string): DnsLogEntry[] => log.filter((e) => norm(e.name) === norm(name));

describe('dns: split DNS in the lab', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar;
  let relayIps: string[];

  before(async () => {
    lab = await labUp({ relays: 2 });
    relayIps = lab.relays.flatMap((r) => [r.ip, r.ip6]);
    sc = startSidecarInLab(lab, {
      HEALTH_PORT: '9953',
      CLUSTER_DOMAINS: 'cluster.local,corp.internal',
      PROBE_TIMEOUT: `${PROBE_TIMEOUT_MS}ms`,
      PROBE_INTERVAL: '500ms',
      CHECK_INTERVAL: '500ms',
      FAILOVER_AFTER: '2s',
    });
    await sc.waitReady();
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  /** Every query the public server saw came through a relay (the tunnel), and no DNS packet crossed the router. */
  async function assertNoDnsLeak(what: string): Promise<void> {
    const pub = await lab.publicDnsLog();
    const direct = pub.filter((e) => !relayIps.includes(e.source));
    assert.deepEqual(direct, [], `${what}: queries reached the public DNS server outside the tunnel`);
    assert.equal((await lab.leaks()).dns, 0, `${what}: port-53 packets from the pod crossed the router`);
  }

  test('(a) an external name through the default resolver reaches the public server from a relay, never cluster DNS', async () => {
    const r = await lab.dnsFromPod('example.com');
    assert.equal(r.ok, true, `example.com: ${r.rcode ?? r.error}`);
    assert.deepEqual(r.answers, ['172.30.0.2']);
    const pub = named(await lab.publicDnsLog(), 'example.com');
    assert.ok(pub.length >= 1, 'the public server answered it');
    for (const e of pub) assert.ok(relayIps.includes(e.source), `source ${e.source} is a relay`);
    assert.deepEqual(named(await lab.clusterDnsLog(), 'example.com'), [], 'cluster DNS never saw it');

    // glibc with the pod's search list and ndots:5: the search expansions are
    // cluster names; the bare name still goes through the tunnel only.
    const g = await lab.podExec(['getent', 'ahostsv4', 'www.example.com'], { allowFailure: true });
    assert.equal(g.code, 0, `getent: ${g.stderr}`);
    assert.match(g.stdout, /172\.30\.0\.2/);
    assert.deepEqual(named(await lab.clusterDnsLog(), 'www.example.com'), [], 'cluster DNS never saw the bare name');
    await assertNoDnsLeak('(a)');
  });

  test('(b) cluster names and a custom cluster domain resolve through cluster DNS', async () => {
    for (const name of ['internal.default.svc.cluster.local', 'db.corp.internal']) {
      const r = await lab.dnsFromPod(name);
      assert.equal(r.ok, true, `${name}: ${r.rcode ?? r.error}`);
      assert.deepEqual(r.answers, [lab.internalService], name);
      const seen = named(await lab.clusterDnsLog(), name);
      assert.ok(seen.length >= 1, `cluster DNS answered ${name}`);
      for (const e of seen) assert.equal(e.source, lab.pod.ip, `${name} asked from the pod over the bypass`);
      assert.deepEqual(named(await lab.publicDnsLog(), name), [], `${name} never reached the public server`);
    }
    const short = await lab.podExec(['getent', 'ahostsv4', 'internal'], { allowFailure: true });
    assert.ok(short.stdout.includes(lab.internalService), 'a short name through the search list');
    await assertNoDnsLeak('(b)');
  });

  test('(c) hard-coded resolvers are intercepted: public DNS directly, cluster DNS for an external name', async () => {
    const direct = await lab.dnsFromPod('www.example.com', { server: lab.internet.ip });
    assert.equal(direct.ok, true, `to ${lab.internet.ip}: ${direct.rcode ?? direct.error}`);
    const viaCluster = await lab.dnsFromPod('internet.test', { server: lab.clusterDns });
    assert.equal(viaCluster.ok, true, `to ${lab.clusterDns}: ${viaCluster.rcode ?? viaCluster.error}`);
    assert.deepEqual(viaCluster.answers, ['172.30.0.2']);
    assert.deepEqual(named(await lab.clusterDnsLog(), 'internet.test'), [], 'cluster DNS never saw internet.test');
    const pub = named(await lab.publicDnsLog(), 'internet.test');
    assert.ok(pub.length >= 1 && pub.every((e) => relayIps.includes(e.source)), `internet.test came through a relay: ${JSON.stringify(pub)}`);
    await assertNoDnsLeak('(c)');
  });

  test('(d) over TCP too, and a truncated answer is completed over TCP', async () => {
    for (const server of [lab.internet.ip, lab.clusterDns, '127.0.0.1']) {
      const r = await lab.dnsFromPod('tcp.example.com', { server, tcp: true });
      // tcp.example.com is not in the public zone: NXDOMAIN is the public server's real answer.
      assert.equal(r.rcode, 'NXDOMAIN', `TCP to ${server}: ${r.rcode ?? r.error}`);
    }
    const c = await lab.dnsFromPod('db.corp.internal', { server: lab.clusterDns, tcp: true });
    assert.equal(c.ok, true, `cluster name over TCP: ${c.rcode ?? c.error}`);
    const udp = await lab.dnsFromPod('big.example.com', { type: 'TXT' });
    assert.equal(udp.truncated, true, 'a 1.1 kB TXT answer is truncated for a 512-byte UDP client');
    const tcp = await lab.dnsFromPod('big.example.com', { type: 'TXT', tcp: true });
    assert.equal(tcp.ok, true, `big TXT over TCP: ${tcp.rcode ?? tcp.error}`);
    assert.deepEqual(named(await lab.clusterDnsLog(), 'tcp.example.com'), []);
    assert.deepEqual(named(await lab.clusterDnsLog(), 'big.example.com'), []);
    await assertNoDnsLeak('(d)');
  });

  test('(f) IPv6 transport: the forwarder on ::1 and a hard-coded IPv6 resolver', async () => {
    const lo6 = await lab.dnsFromPod('example.com', { server: '::1', type: 'AAAA' });
    assert.equal(lo6.ok, true, `[::1]: ${lo6.rcode ?? lo6.error}`);
    assert.deepEqual(lo6.answers, ['fd30::2']);
    for (const tcp of [false, true]) {
      const r = await lab.dnsFromPod('www.example.com', { server: lab.internet.ip6, tcp });
      assert.equal(r.ok, true, `[${lab.internet.ip6}] tcp=${tcp}: ${r.rcode ?? r.error}`);
    }
    const c6 = await lab.dnsFromPod('db.corp.internal', { server: '::1', tcp: true });
    assert.equal(c6.ok, true, `cluster name over [::1] TCP: ${c6.rcode ?? c6.error}`);
    await assertNoDnsLeak('(f)');
  });

  test('(e) tunnel down: external names fail within the timeout, nothing reaches the public server, cluster names still resolve', async () => {
    const before = (await lab.publicDnsLog()).length;
    for (const r of lab.relays) await lab.setRelayDark(r.index, true);
    try {
      // The sidecar has not noticed yet: the forwarder's query dies in the dark tunnel.
      const first = await lab.dnsFromPod('dark1.example.com', { timeoutMs: 5000 });
      assert.equal(first.ok, false);
      assert.equal(first.rcode, 'SERVFAIL', `dark tunnel: ${first.rcode ?? first.error}`);
      assert.ok(first.ms < PROBE_TIMEOUT_MS + 2500, `SERVFAIL within the timeout (${first.ms} ms)`);
      const cluster = await lab.dnsFromPod('internal.default.svc.cluster.local');
      assert.equal(cluster.ok, true, `cluster name while the tunnel is dark: ${cluster.rcode ?? cluster.error}`);

      // Once the supervisor declares the tunnel down: SERVFAIL at once, not even a packet into the tunnel.
      await sc.waitFor((s) => s['state'] !== 'connected' && s['state'] !== 'degraded', 30_000, 'the tunnel declared down');
      for (const [name, opts] of [
        ['dark2.example.com', {}],
        ['dark3.example.com', { tcp: true }],
        ['dark4.example.com', { server: lab.internet.ip }],
        ['dark5.example.com', { server: lab.clusterDns }],
        ['dark6.example.com', { server: lab.internet.ip6 }],
      ] as const) {
        const r = await lab.dnsFromPod(name, { ...opts, timeoutMs: 5000 });
        assert.equal(r.rcode, 'SERVFAIL', `${name} ${JSON.stringify(opts)}: ${r.rcode ?? r.error}`);
        assert.ok(r.ms < PROBE_TIMEOUT_MS + 2500, `${name}: ${r.ms} ms`);
      }
      const cluster2 = await lab.dnsFromPod('db.corp.internal');
      assert.equal(cluster2.ok, true, `cluster name with the tunnel down: ${cluster2.rcode ?? cluster2.error}`);
      const after = await lab.publicDnsLog();
      assert.deepEqual(after.slice(before), [], 'nothing reached the public DNS server by any path');
      assert.deepEqual((await lab.clusterDnsLog()).filter((e) => /^dark\d/.test(e.name)), [], 'no dark name went to cluster DNS');
      await assertNoDnsLeak('(e)');
    } finally {
      for (const r of lab.relays) await lab.setRelayDark(r.index, false);
    }
    // And back: external names resolve again once the tunnel is up.
    await sc.waitReady(60_000);
    const back = await lab.dnsFromPod('example.com');
    assert.equal(back.ok, true, `after recovery: ${back.rcode ?? back.error}`);
    await assertNoDnsLeak('(e) recovered');
  });
});
