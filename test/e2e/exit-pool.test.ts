// End to end, as root: the exit pool of the REAL sidecar (`mullvad-sidecar run`
// in the lab's pod, tunnel to relay 1 se-sto-wg-001), with a real proxy client
// in the pod or in pod2 (another node's subnet). Four relays run Mullvad-style
// in-tunnel SOCKS5 fakes (src/lab/servers/socks5.ts); the relay list adds a
// listed relay whose proxy never answers. Which exit carried a request is read
// from WHICH relay's SOCKS5 log saw it and from the source address the internet
// host saw; refusals from the proxy's own answers and from packets captured.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labUp, type Lab } from '../../src/lab/lab.js';
import type { ProxyGetResult } from '../../src/lab/tools/proxy-get.js';
import { isRoot } from './helpers/sidecar.js';
import { capture, DEAD_RELAY, PASSWORD, PROXY_PORT, proxyGet, socksMarks, socksSince, startPool, USER, WRONG_PASSWORD, type PoolSidecar } from './exit-pool-lab.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const MODES = ['socks5', 'connect', 'absolute'] as const;
type Mode = (typeof MODES)[number];

interface ProxyStatus {
  relayList: { relays: number; exits: number };
  restingExits: string[];
  exitFailures: number;
  connections: Record<string, number>;
}

describe('exit pool: one tunnel, exits at every relay, through the real sidecar', { skip }, () => {
  let lab: Lab;
  let pool: PoolSidecar;
  const proxyStatus = async (): Promise<ProxyStatus> => ((await pool.sc.get('/status')).json as { proxy: ProxyStatus }).proxy;

  before(async () => {
    lab = await labUp({ relays: 4 });
    // The pod and pod2 may use the proxy; the router (10.42.0.1, on the pod's own subnet) may not.
    // FAILOVER_AFTER 30s: the tunnel-dark test has a wide degraded window before the supervisor leaves the relay.
    pool = await startPool(lab, { HEALTH_PORT: '9971', PROXY_ALLOWED_CIDRS: `${lab.pod.ip}/32,10.42.1.0/24`, FAILOVER_AFTER: '30s' });
    await pool.sc.waitReady();
    await pool.sc.waitFor((s) => ((s['proxy'] as ProxyStatus | undefined)?.relayList.relays ?? 0) === 5, 10_000, 'the cached relay list');
  });
  after(async () => {
    await pool?.stop();
    await lab?.down();
  });

  /** A GET of http://www.example.com/json through the proxy as `user`; which relays' proxies saw it. */
  const through = async (mode: Mode, user: string, opts: { ns?: string; url?: string; password?: string; timeoutMs?: number } = {}) => {
    const marks = await socksMarks(lab);
    const r = await proxyGet(lab, opts.ns ?? lab.ns.pod, { mode, user, password: opts.password ?? PASSWORD, url: opts.url ?? 'http://www.example.com/json', timeoutMs: opts.timeoutMs ?? 25_000 });
    return { r, seenBy: await socksSince(lab, marks) };
  };
  /** The request went out at relay `index` only: its proxy saw the target, the internet saw its address. */
  const exitedAt = (res: { r: ProxyGetResult; seenBy: { index: number }[] }, index: number, what: string) => {
    assert.ok(res.r.ok, `${what}: ${JSON.stringify(res.r)}`);
    const relay = lab.relays[index - 1]!;
    assert.deepEqual(res.seenBy.map((s) => s.index), [index], `${what}: relays whose proxy saw it`);
    assert.equal((res.r.json as { ip: string }).ip, relay.ip, `${what}: source address at the internet host`);
    assert.equal((res.r.json as { mullvad_exit_ip_hostname: string }).mullvad_exit_ip_hostname, relay.name);
  };

  test('a dead exit is rested and another relay of the same city answers; the dead relay alone gets no fallback', async () => {
    const only = await through('absolute', `${USER}-relay-${DEAD_RELAY}`);
    assert.equal(only.r.status, 502, JSON.stringify(only.r));
    assert.equal(only.r.proxyError, 'no-exit');
    assert.deepEqual(only.seenBy, [], 'no relay\'s proxy was asked in its place');
    const s = await proxyStatus();
    assert.ok(s.restingExits.includes(DEAD_RELAY), `resting: ${JSON.stringify(s.restingExits)}`);
    assert.ok(s.exitFailures >= 1);
    const metrics = (await pool.sc.get('/metrics')).body ?? '';
    assert.match(metrics, new RegExp(`mullvad_sidecar_proxy_exit_failures_total\\{relay="${DEAD_RELAY}"\\} [1-9]`));
    // Resting now: Gothenburg is served by se-got-wg-002 at once, never by another city.
    for (const mode of MODES) exitedAt(await through(mode, `${USER}-country-se-city-got`), 2, `${mode} -city-got`);
  });

  test('sessions: the same session keeps its exit, a second session takes the other Swedish relay', async () => {
    const first = await through('socks5', `${USER}-country-se-session-a1`);
    assert.ok(first.r.ok, JSON.stringify(first.r));
    const index = first.seenBy[0]!.index;
    assert.ok([1, 2].includes(index), `a Swedish relay, not ${index}`);
    for (const mode of MODES) exitedAt(await through(mode, `${USER}-country-se-session-a1`), index, `${mode}: session a1 again`);
    const other = await through('connect', `${USER}-country-se-session-b2`);
    exitedAt(other, index === 1 ? 2 : 1, 'session b2 spreads to the other Swedish relay');
    exitedAt(await through('absolute', `${USER}-country-se-session-a1`), index, 'session a1 after b2');
  });

  test('every username form over SOCKS5, HTTP CONNECT and absolute-URI picks the exit it names', async () => {
    const forms: [string, number][] = [
      [`${USER}-country-de`, 3],
      [`${USER}-country-se-city-got`, 2],
      [`${USER}-relay-nl-ams-wg-004`, 4],
      [`${USER}-country-de-session-42`, 3],
      // The connected relay exits through 10.64.0.1.
      [`${USER}-country-se-city-sto`, 1],
    ];
    for (const mode of MODES) {
      for (const [user, index] of forms) exitedAt(await through(mode, user), index, `${mode} ${user}`);
      const any = await through(mode, USER);
      assert.ok(any.r.ok, `${mode} no location: ${JSON.stringify(any.r)}`);
      exitedAt(any, any.seenBy.at(-1)!.index, `${mode} no location`);
    }
    const sto = await through('socks5', `${USER}-country-se-city-sto`);
    assert.deepEqual(sto.seenBy[0]!.entries.map((e) => e.proxy), ['10.64.0.1'], 'the connected relay\'s exit is 10.64.0.1:1080');
  });

  test('wrong password: SOCKS5 auth failure, HTTP 407; no exit asked; no password in logs, /status or /metrics', async () => {
    const socks = await through('socks5', `${USER}-country-de`, { password: WRONG_PASSWORD });
    assert.match(socks.r.error ?? '', /Authentication failed/, JSON.stringify(socks.r));
    for (const mode of ['connect', 'absolute'] as const) {
      const h = await through(mode, USER, { password: WRONG_PASSWORD });
      assert.equal(h.r.proxyStatus, 407, JSON.stringify(h.r));
    }
    const none = await through('absolute', 'nobody-country-de', { password: PASSWORD });
    assert.equal(none.r.proxyStatus, 407);
    assert.deepEqual([...socks.seenBy], []);
    assert.ok(((await proxyStatus()).connections['auth-failed'] ?? 0) >= 4);
    const seen = [pool.sc.logs(), (await pool.sc.get('/status')).body ?? '', (await pool.sc.get('/metrics')).body ?? ''].join('\n');
    assert.ok(seen.includes('auth-failed'), 'the refusals are counted');
    for (const secret of [PASSWORD, WRONG_PASSWORD, 'another-secret']) assert.ok(!seen.includes(secret), `${secret} appeared in logs, /status or /metrics`);
  });

  test('an unknown country is refused quickly with the reason, and no exit is asked', async () => {
    const socks = await through('socks5', `${USER}-country-xx`);
    assert.match(socks.r.error ?? '', /HostUnreachable/, JSON.stringify(socks.r));
    const http = await through('connect', `${USER}-country-xx`);
    assert.deepEqual([http.r.proxyStatus, http.r.proxyError], [502, 'unknown-location']);
    assert.deepEqual([...socks.seenBy, ...http.seenBy], []);
    const metrics = (await pool.sc.get('/metrics')).body ?? '';
    assert.match(metrics, /mullvad_sidecar_proxy_connections_total\{country="other",city="",result="unknown-location"\} [1-9]/);
  });

  test('target names are resolved at the exit only: never at the cluster DNS or the tunnel resolver; proxy names through the tunnel resolver', async () => {
    const name = 'internet.test';
    const cluster0 = (await lab.clusterDnsLog()).length;
    const tunnel0 = await Promise.all(lab.relays.map(async (r) => (await lab.relayDnsLog(r.index)).length));
    const public0 = (await lab.publicDnsLog()).length;
    const res = await through('socks5', `${USER}-country-de`, { url: `http://${name}/json` });
    exitedAt(res, 3, 'a name through the German exit');
    assert.deepEqual(res.seenBy[0]!.entries.map((e) => e.name), [name], 'the exit got the name, not an address');
    const norm = (n: string) => n.toLowerCase().replace(/\.$/, '');
    assert.deepEqual((await lab.clusterDnsLog()).slice(cluster0).filter((e) => norm(e.name) === name), [], 'cluster DNS');
    for (const r of lab.relays) {
      const asked = (await lab.relayDnsLog(r.index)).slice(tunnel0[r.index - 1]);
      assert.deepEqual(asked.filter((e) => norm(e.name) === name), [], `relay ${r.index}'s tunnel resolver`);
    }
    const pub = (await lab.publicDnsLog()).slice(public0).filter((e) => norm(e.name) === name);
    assert.ok(pub.length >= 1, 'the exit looked the name up');
    assert.deepEqual([...new Set(pub.map((e) => e.source))], [lab.relays[2]!.ip], 'only from the exit relay');
    // The proxy's own name lookups (socks_name) went to the tunnel resolver of the connected relay.
    const socksNames = (await lab.relayDnsLog(1)).filter((e) => norm(e.name).includes('-wg-socks5-'));
    assert.ok(socksNames.some((e) => norm(e.name) === 'de-fra-wg-socks5-003.relays.mullvad.net'), 'socks_name resolved in the tunnel');
    assert.deepEqual((await lab.clusterDnsLog()).filter((e) => norm(e.name).includes('-wg-socks5-')), [], 'never at cluster DNS');
  });

  test('a cluster address requested through the proxy goes to the exit, never direct', async () => {
    const res = await through('connect', `${USER}-country-de`, { url: `http://${lab.internalService}/` });
    assert.ok(res.r.ok, JSON.stringify(res.r));
    assert.deepEqual(res.seenBy.map((s) => [s.index, s.entries[0]!.ip]), [[3, lab.internalService]]);
    assert.equal((res.r.json as { ip: string }).ip, lab.relays[2]!.ip, 'the Service saw the exit relay, not the pod');
  });

  test('a client on another node\'s subnet (pod2) is served; the replies leave by the interface they came in on, never the tunnel', async () => {
    const inside = await capture(lab, lab.ns.pod, lab.sidecarInterface, 'pool-wg');
    const onLink = await capture(lab, lab.ns.pod, `${lab.prefix}p0`, 'pool-p0');
    let res;
    try {
      res = await through('connect', `${USER}-country-de`, { ns: lab.ns.pod2 });
    } finally {
      await inside.stop();
      await onLink.stop();
    }
    exitedAt(res, 3, 'pod2 through the German exit');
    const replies = await onLink.lines(`src host ${lab.pod.ip} and src port ${PROXY_PORT} and dst host ${lab.pod2.ip}`);
    assert.ok(replies.length >= 3, `replies to pod2 on the pod's link: ${replies.join('\n')}\nall: ${(await onLink.lines('tcp')).join('\n')}`);
    assert.deepEqual(await inside.lines(`host ${lab.pod2.ip}`), [], 'no packet to or from pod2 in the tunnel');
  });

  test('a client outside PROXY_ALLOWED_CIDRS is dropped at the firewall: the SYN arrives, no answer leaves, the proxy never sees it', async () => {
    const before = (await proxyStatus()).connections['refused'] ?? 0;
    const link = await capture(lab, lab.ns.pod, `${lab.prefix}p0`, 'pool-outsider');
    let res;
    try {
      res = await proxyGet(lab, lab.ns.router, { mode: 'connect', user: `${USER}-country-de`, password: PASSWORD, url: 'http://www.example.com/json', timeoutMs: 2000 });
    } finally {
      await link.stop();
    }
    assert.equal(res.ok, false);
    assert.match(res.error ?? '', /timeout/, JSON.stringify(res));
    const router = '10.42.0.1';
    assert.ok((await link.lines(`src host ${router} and dst port ${PROXY_PORT}`)).length >= 1, 'the SYN reached the pod');
    assert.deepEqual(await link.lines(`src port ${PROXY_PORT} and dst host ${router}`), [], 'nothing answered');
    assert.equal((await proxyStatus()).connections['refused'] ?? 0, before, 'the proxy never accepted it');
  });

  test('the tunnel goes dark: degraded, then down, the proxy refuses at once over both protocols without dialling an exit, and not one packet leaves outside WireGuard', async () => {
    await lab.setRelayDark(1, true);
    try {
      // Degraded (probes failing, the relay not yet given up): refused with the reason, not dialled into the dark tunnel.
      await pool.sc.waitFor((s) => s['state'] === 'degraded', 20_000, 'the tunnel to be degraded');
      const tunnel = await capture(lab, lab.ns.pod, lab.sidecarInterface, 'pool-degraded');
      const marks0 = await socksMarks(lab);
      let degraded;
      let degradedHttp;
      try {
        degraded = await proxyGet(lab, lab.ns.pod, { mode: 'socks5', user: `${USER}-country-de`, password: PASSWORD, url: 'http://www.example.com/json', timeoutMs: 15_000 });
        degradedHttp = await proxyGet(lab, lab.ns.pod2, { mode: 'connect', user: `${USER}-country-se`, password: PASSWORD, url: 'http://www.example.com/json', timeoutMs: 15_000 });
      } finally {
        await tunnel.stop();
      }
      assert.equal(((await pool.sc.get('/status')).json as { state?: string } | undefined)?.state, 'degraded', 'still degraded: the refusals came from the state, not from a tunnel already down');
      assert.match(degraded.error ?? '', /NetworkUnreachable/, JSON.stringify(degraded));
      assert.deepEqual([degradedHttp.proxyStatus, degradedHttp.proxyError], [503, 'tunnel-down'], JSON.stringify(degradedHttp));
      assert.deepEqual(await tunnel.lines('tcp and dst port 1080'), [], 'no SYN toward any exit\'s proxy went into the tunnel');
      assert.deepEqual(await socksSince(lab, marks0), []);
      // Down is when the supervisor leaves the relay: the same refusals, and not one packet outside WireGuard.
      await pool.sc.waitFor((s) => !['connected', 'degraded'].includes(s['state'] as string), 60_000, 'the tunnel to be declared down');
      await lab.resetLeaks();
      const uplink = await capture(lab, lab.ns.router, `${lab.prefix}rp`, 'pool-dark');
      const marks = await socksMarks(lab);
      let socks;
      let http;
      let plain;
      try {
        socks = await proxyGet(lab, lab.ns.pod, { mode: 'socks5', user: `${USER}-country-de`, password: PASSWORD, url: 'http://www.example.com/json', timeoutMs: 5000 });
        http = await proxyGet(lab, lab.ns.pod2, { mode: 'connect', user: `${USER}-country-de`, password: PASSWORD, url: 'http://www.example.com/json', timeoutMs: 5000 });
        plain = await proxyGet(lab, lab.ns.pod, { mode: 'absolute', user: USER, password: PASSWORD, url: 'http://172.30.0.2/json', timeoutMs: 5000 });
      } finally {
        await uplink.stop();
      }
      assert.match(socks.error ?? '', /NetworkUnreachable/, JSON.stringify(socks));
      assert.ok(socks.ms < 2000, `refused at once, not after ${socks.ms} ms`);
      assert.deepEqual([http.proxyStatus, http.proxyError], [503, 'tunnel-down'], JSON.stringify(http));
      assert.deepEqual([plain.proxyStatus, plain.proxyError], [503, 'tunnel-down'], JSON.stringify(plain));
      assert.deepEqual(await socksSince(lab, marks), []);
      // On the pod's uplink (router side): only WireGuard to the relays and pod2's own proxy traffic.
      const outside = await uplink.lines(`ip and src host ${lab.pod.ip} and not (udp and dst port 51820) and not dst host ${lab.pod2.ip}`);
      assert.deepEqual(outside, [], 'packets from the pod outside WireGuard');
      assert.ok((await uplink.lines(`src host ${lab.pod2.ip} and dst port ${PROXY_PORT}`)).length >= 1, 'the capture saw pod2 reach the proxy over this link');
      assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    } finally {
      await lab.setRelayDark(1, false);
    }
  });
});
