// End to end, as root: SOCKS5 UDP ASSOCIATE through the REAL sidecar's exit pool
// (tunnel to relay 1 se-sto-wg-001). The client is a real process in pod2
// (another node's subnet) or the pod; the fake relays relay UDP like Mullvad's
// proxies; the internet host echoes each datagram with the source address it
// saw (port 7). Which exit carried a datagram is read from that address and
// from which relay's SOCKS5 log saw it; refusals and drops from the client's
// answers, /status and packets captured on the wire.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { lastResult, socksUdpIn, socksUdpSpawn } from '../../src/lab/exit-pool.js';
import type { SocksUdpRequest, SocksUdpResult } from '../../src/lab/tools/socks-udp.js';
import { UDP_ECHO_PORT } from '../../src/lab/servers/udp-echo.js';
import type { ChildHandle } from '../../src/system/process.js';
import { isRoot } from './helpers/sidecar.js';
import { capture, DEAD_RELAY, PASSWORD, PROXY_PORT, sleep, socksMarks, socksSince, startPool, USER, WRONG_PASSWORD, type PoolSidecar } from './exit-pool-lab.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const INTERNET = '172.30.0.2';

interface UdpStatus {
  udpAssociations: number;
  udpDropped: Record<string, number>;
  connections: Record<string, number>;
}

describe('exit pool over UDP: SOCKS5 UDP ASSOCIATE through the real sidecar', { skip }, () => {
  let lab: Lab;
  let pool: PoolSidecar;
  const status = async (): Promise<UdpStatus> => ((await pool.sc.get('/status')).json as { proxy: UdpStatus }).proxy;
  const udp = (ns: string, req: Omit<SocksUdpRequest, 'proxy'>): Promise<SocksUdpResult> => socksUdpIn(lab, ns, { proxy: { host: lab.pod.ip, port: PROXY_PORT }, waitMs: 3000, ...req });
  const echo = (data: string) => ({ host: INTERNET, port: UDP_ECHO_PORT, data });
  const echoed = (r: SocksUdpResult, i = 0): { ip: string; echo: string } => {
    const a = r.answers[i];
    assert.ok(a, `an answer to datagram ${i}: ${JSON.stringify(r)}`);
    assert.deepEqual([a.from, a.port], [INTERNET, UDP_ECHO_PORT], 'the answer names the target it came from');
    return JSON.parse(a.data) as { ip: string; echo: string };
  };

  /** Until a spawned client holds its association (it printed "holding"). */
  const holding = async (c: ChildHandle): Promise<void> => {
    const end = Date.now() + 15_000;
    while (!c.output().includes('"holding"')) {
      if (!c.running || Date.now() > end) assert.fail(`the client did not get to hold: ${c.output()}`);
      await sleep(100);
    }
  };

  before(async () => {
    lab = await labUp({ relays: 3 });
    // pod2 and the pod may use the proxy; the router (10.42.0.1, on the pod's own subnet) may not.
    pool = await startPool(lab, { HEALTH_PORT: '9972', PROXY_ALLOWED_CIDRS: `${lab.pod.ip}/32,10.42.1.0/24`, PROXY_CONNECT_TIMEOUT: '2s', FAILOVER_AFTER: '10s' });
    await pool.sc.waitReady();
    await pool.sc.waitFor((s) => ((s['proxy'] as { relayList?: { relays: number } } | undefined)?.relayList?.relays ?? 0) === 4, 10_000, 'the cached relay list');
  });
  after(async () => {
    await pool?.stop();
    await lab?.down();
  });

  test('datagrams exit where the username says: Gothenburg and Frankfurt at once, from pod2; replies come back the way they came in, never through the tunnel', async () => {
    const inside = await capture(lab, lab.ns.pod, lab.sidecarInterface, 'udp-wg');
    const marks = await socksMarks(lab);
    let got: SocksUdpResult;
    let fra: SocksUdpResult;
    try {
      [got, fra] = await Promise.all([
        udp(lab.ns.pod2, { user: `${USER}-country-se-city-got`, password: PASSWORD, datagrams: [echo('hello got'), echo('again got')] }),
        udp(lab.ns.pod2, { user: `${USER}-country-de`, password: PASSWORD, announce: true, datagrams: [echo('hello fra')] }),
      ]);
    } finally {
      await inside.stop();
    }
    assert.deepEqual(got.bound, { host: lab.pod.ip, port: PROXY_PORT }, 'BND: the address pod2 reached, the proxy port');
    assert.deepEqual([echoed(got).ip, echoed(got).echo, echoed(got, 1).echo], [lab.relays[1]!.ip, 'hello got', 'again got'], 'Gothenburg (relay 2) exit address');
    assert.deepEqual([echoed(fra).ip, echoed(fra).echo], [lab.relays[2]!.ip, 'hello fra'], 'Frankfurt (relay 3) exit address');
    const seen = await socksSince(lab, marks);
    assert.deepEqual(seen.map((s) => [s.index, s.entries.filter((e) => e.udp).length]), [[2, 2], [3, 1]], 'which relays\' proxies relayed the datagrams');
    assert.deepEqual(await inside.lines(`host ${lab.pod2.ip}`), [], 'no packet to or from pod2 in the tunnel');
    const metrics = (await pool.sc.get('/metrics')).body ?? '';
    assert.match(metrics, /mullvad_sidecar_proxy_connections_total\{country="se",city="got",result="ok"\} [1-9]/);
    assert.match(metrics, /mullvad_sidecar_proxy_bytes_total\{direction="up"\} [1-9]/);
    await pool.sc.waitFor((s) => (s['proxy'] as UdpStatus).udpAssociations === 0, 5000, 'the associations to end with their control connections');
  });

  test('a DOMAIN target (a DNS query to internet.test:53) is resolved at the exit only: never by the cluster DNS or a tunnel resolver', async () => {
    const norm = (n: string) => n.toLowerCase().replace(/\.$/, '');
    const cluster0 = (await lab.clusterDnsLog()).length;
    const tunnel0 = await Promise.all(lab.relays.map(async (r) => (await lab.relayDnsLog(r.index)).length));
    const public0 = (await lab.publicDnsLog()).length;
    const marks = await socksMarks(lab);
    const query = dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'example.com' }] });
    const r = await udp(lab.ns.pod2, { user: `${USER}-country-de`, password: PASSWORD, datagrams: [{ host: 'internet.test', port: 53, data: query.toString('base64'), base64: true }] });
    const a = r.answers[0];
    assert.ok(a, JSON.stringify(r));
    assert.deepEqual([a.from, a.port], [INTERNET, 53], 'the answer came from the address the exit resolved');
    const answer = dnsPacket.decode(Buffer.from(a.base64, 'base64'));
    assert.deepEqual([answer.id, (answer.answers ?? []).map((x) => (x as { data?: unknown }).data)], [4242, [INTERNET]]);
    const seen = await socksSince(lab, marks);
    assert.deepEqual(seen.map((s) => [s.index, s.entries.map((e) => [e.name, e.resolved])]), [[3, [['internet.test', INTERNET]]]], 'the exit got the name, not an address');
    const pub = (await lab.publicDnsLog()).slice(public0).filter((e) => ['internet.test', 'example.com'].includes(norm(e.name)));
    assert.deepEqual([...new Set(pub.map((e) => `${norm(e.name)} from ${e.source}`))].sort(), [`example.com from ${lab.relays[2]!.ip}`, `internet.test from ${lab.relays[2]!.ip}`]);
    const names = (l: { name: string }[]) => l.map((e) => norm(e.name)).filter((n) => n === 'internet.test' || n === 'example.com');
    assert.deepEqual(names((await lab.clusterDnsLog()).slice(cluster0)), [], 'cluster DNS');
    for (const relay of lab.relays) assert.deepEqual(names((await lab.relayDnsLog(relay.index)).slice(tunnel0[relay.index - 1])), [], `relay ${relay.index}'s tunnel resolver (the pod's forwarder upstream)`);
  });

  test('a datagram from another port or another IP than the association\'s client is dropped and counted, never relayed', async () => {
    const before = (await status()).udpDropped['unknown-source'] ?? 0;
    const marks = await socksMarks(lab);
    const holder = socksUdpSpawn(lab, lab.ns.pod2, { proxy: { host: lab.pod.ip, port: PROXY_PORT }, user: `${USER}-country-de`, password: PASSWORD, announce: true, stranger: true, waitMs: 1500, holdMs: 8000, timeoutMs: 30_000, datagrams: [echo('mine')] });
    try {
      await holding(holder);
      // Another IP (the pod itself, allowed by PROXY_ALLOWED_CIDRS) throws a datagram at the same port.
      const other = await udp(lab.ns.pod, { datagrams: [echo('from elsewhere')], waitMs: 1500 });
      assert.deepEqual(other.answers, [null], 'no answer to another IP');
      const end = Date.now() + 15_000;
      while (holder.running && Date.now() < end) await sleep(100);
    } finally {
      await holder.stop(1000);
    }
    const r = lastResult(holder.output());
    assert.equal(r.closedAfterMs, undefined, 'the association lived through the hold');
    assert.equal(r.strangerAnswered, false, 'another port of pod2: no answer');
    assert.equal(echoed(r).echo, 'mine');
    const s = await status();
    assert.equal((s.udpDropped['unknown-source'] ?? 0) - before, 2, 'both strangers counted');
    const relayed = (await socksSince(lab, marks)).flatMap((x) => x.entries).filter((e) => e.udp);
    assert.equal(relayed.length, 1, 'only the client\'s own datagram reached an exit');
    const metrics = (await pool.sc.get('/metrics')).body ?? '';
    assert.match(metrics, /mullvad_sidecar_proxy_udp_dropped_datagrams_total\{reason="unknown-source"\} [1-9]/);
  });

  test('refusals: wrong password (no association), the dead exit (no fallback outside its city, never answered), a client outside PROXY_ALLOWED_CIDRS (UDP never answered, the proxy never sees it)', async () => {
    const marks = await socksMarks(lab);
    const wrong = await udp(lab.ns.pod2, { user: `${USER}-country-de`, password: WRONG_PASSWORD, datagrams: [echo('x')] });
    assert.equal(wrong.authFailed, true, JSON.stringify(wrong));
    const deadOnly = await udp(lab.ns.pod2, { user: `${USER}-relay-${DEAD_RELAY}`, password: PASSWORD, datagrams: [echo('x')] });
    assert.equal(deadOnly.reply, 4, `host unreachable: ${JSON.stringify(deadOnly)}`);
    assert.deepEqual(await socksSince(lab, marks), [], 'no exit relayed anything');
    const dropped0 = (await status()).udpDropped;
    const link = await capture(lab, lab.ns.pod, `${lab.prefix}p0`, 'udp-outsider');
    let outsider: SocksUdpResult;
    try {
      outsider = await udp(lab.ns.router, { datagrams: [echo('outsider')], waitMs: 1500 });
    } finally {
      await link.stop();
    }
    assert.deepEqual(outsider.answers, [null]);
    const router = '10.42.0.1';
    assert.ok((await link.lines(`udp and src host ${router} and dst port ${PROXY_PORT}`)).length >= 1, 'the datagram reached the pod');
    assert.deepEqual(await link.lines(`dst host ${router} and (udp or icmp)`), [], 'nothing answered, not even ICMP');
    assert.deepEqual((await status()).udpDropped, dropped0, 'dropped by the firewall before the proxy');
    const seen = [pool.sc.logs(), (await pool.sc.get('/status')).body ?? '', (await pool.sc.get('/metrics')).body ?? ''].join('\n');
    for (const secret of [PASSWORD, WRONG_PASSWORD, 'another-secret']) assert.ok(!seen.includes(secret), `${secret} appeared in logs, /status or /metrics`);
  });

  test('a server push after conntrack forgot the flow is dropped by the firewall (only replies leave the UDP port) and counted as send-failed; with the entry kept it arrives', async () => {
    // Datagram 0 asks the echo for a push 3 s later and is answered at once; datagram 1 goes to a port that
    // never answers, so whatever comes next (the push, or nothing) is its answer.
    const pushRun = (ns: string) =>
      socksUdpSpawn(lab, ns, { proxy: { host: lab.pod.ip, port: PROXY_PORT }, user: `${USER}-country-se-city-got`, password: PASSWORD, datagrams: [echo('push-after-ms:3000 hi'), { host: INTERNET, port: 9, data: 'silence' }], waitMs: 6000, timeoutMs: 20_000 });
    const finished = async (c: ChildHandle): Promise<SocksUdpResult> => {
      const end = Date.now() + 20_000;
      while (c.running && Date.now() < end) await sleep(100);
      return lastResult(c.output());
    };
    // Control: the entry stays, the push arrives.
    const kept = await finished(pushRun(lab.ns.pod2));
    assert.equal(echoed(kept).echo, 'push-after-ms:3000 hi');
    assert.match(kept.answers[1]?.data ?? '', /"push":"push-after-ms:3000 hi"/, `the push arrives while conntrack knows the flow: ${JSON.stringify(kept)}`);
    // The flow forgotten between the answer and the push.
    const failed0 = (await status()).udpDropped['send-failed'] ?? 0;
    const link = await capture(lab, lab.ns.pod, `${lab.prefix}p0`, 'udp-push');
    const inside = await capture(lab, lab.ns.pod, lab.sidecarInterface, 'udp-push-wg');
    let forgotten: SocksUdpResult;
    try {
      const c = pushRun(lab.ns.pod2);
      const end = Date.now() + 15_000;
      while (!c.output().includes('"answered":0') && c.running && Date.now() < end) await sleep(20);
      await lab.podExec(['conntrack', '-D', '-p', 'udp', '--orig-src', lab.pod2.ip, '--orig-port-dst', String(PROXY_PORT)], { allowFailure: true });
      forgotten = await finished(c);
    } finally {
      await link.stop();
      await inside.stop();
    }
    assert.equal(echoed(forgotten).echo, 'push-after-ms:3000 hi', `the first answer came before the entry went: ${JSON.stringify(forgotten)}`);
    assert.equal(forgotten.answers[1], null, `the push did not reach the client: ${JSON.stringify(forgotten)}`);
    await pool.sc.waitFor((s) => ((s['proxy'] as UdpStatus).udpDropped['send-failed'] ?? 0) > failed0, 5000, 'send-failed counted');
    const fromPort = `udp and src host ${lab.pod.ip} and src port ${PROXY_PORT} and dst host ${lab.pod2.ip}`;
    assert.equal((await link.lines(fromPort)).length, 1, 'only the immediate answer left the UDP port, not the push');
    assert.deepEqual(await inside.lines(`host ${lab.pod2.ip}`), [], 'nothing for pod2 went into the tunnel');
  });

  test('the tunnel goes dark: a new ASSOCIATE is refused at once, the held association ends when the tunnel is down, and not one datagram leaves outside WireGuard', async () => {
    const holder = socksUdpSpawn(lab, lab.ns.pod2, { proxy: { host: lab.pod.ip, port: PROXY_PORT }, user: `${USER}-country-se-city-got`, password: PASSWORD, datagrams: [echo('before dark')], holdMs: 120_000, timeoutMs: 130_000 });
    try {
      await holding(holder);
      assert.equal((await status()).udpAssociations, 1);
      await lab.setRelayDark(1, true);
      await pool.sc.waitFor((s) => s['state'] !== 'connected', 30_000, 'the tunnel to leave connected');
      const refused = await udp(lab.ns.pod2, { user: `${USER}-country-de`, password: PASSWORD, datagrams: [echo('x')] });
      assert.equal(refused.reply, 3, `network unreachable: ${JSON.stringify(refused)}`);
      assert.ok(refused.ms < 2000, `refused at once, not after ${refused.ms} ms`);
      await pool.sc.waitFor((s) => !['connected', 'degraded'].includes(s['state'] as string), 60_000, 'the tunnel to be declared down');
      const closedBy = Date.now() + 5000;
      while (holder.running && Date.now() < closedBy) await sleep(100);
      const held = lastResult(holder.output());
      assert.ok(held.closedAfterMs !== undefined, `the proxy closed the association: ${holder.output()}`);
      assert.equal((await status()).udpAssociations, 0);
      // Down: datagrams thrown at the proxy's port and a new ASSOCIATE, with the uplink watched.
      await lab.resetLeaks();
      const uplink = await capture(lab, lab.ns.router, `${lab.prefix}rp`, 'udp-dark');
      try {
        const again = await udp(lab.ns.pod2, { user: `${USER}-country-de`, password: PASSWORD, datagrams: [echo('x')] });
        assert.equal(again.reply, 3);
        const thrown = await udp(lab.ns.pod2, { datagrams: [echo('into the dark'), { host: 'internet.test', port: UDP_ECHO_PORT, data: 'by name' }], waitMs: 1000 });
        assert.deepEqual(thrown.answers, [null, null]);
      } finally {
        await uplink.stop();
      }
      assert.deepEqual(await uplink.lines(`ip and src host ${lab.pod.ip} and not (udp and dst port 51820) and not dst host ${lab.pod2.ip}`), [], 'packets from the pod outside WireGuard');
      assert.ok((await uplink.lines(`udp and src host ${lab.pod2.ip} and dst port ${PROXY_PORT}`)).length >= 1, 'the capture saw pod2\'s datagrams reach the proxy over this link');
      assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    } finally {
      await holder.stop(1000);
      await lab.setRelayDark(1, false);
    }
  });
});
