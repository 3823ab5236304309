// The exit pool on an IPv6 front, end to end as root: the real sidecar listens on
// 0.0.0.0 and [::] (PROXY_LISTEN), a client in pod2 reaches it over IPv6 and gets
// CONNECT (SOCKS5 and HTTP) and UDP ASSOCIATE exits where its username says, to
// IPv4 and IPv6 targets. The UDP port is bound per address, so BND is the pod's
// IPv6 address a client reached; a client outside PROXY_ALLOWED_CIDRS (the
// router, on the pod's own /64) gets nothing, not even an ICMP error.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { socksUdpIn } from '../../src/lab/exit-pool.js';
import { POD, POD2 } from '../../src/lab/plan.js';
import type { SocksUdpRequest, SocksUdpResult } from '../../src/lab/tools/socks-udp.js';
import { UDP_ECHO_PORT } from '../../src/lab/servers/udp-echo.js';
import { isRoot } from './helpers/sidecar.js';
import { capture, PASSWORD, PROXY_PORT, proxyGet, startPool, USER, type PoolSidecar } from './exit-pool-lab.js';

/** An IPv6 address in its compressed form (the client prints BND.ADDR's 16 bytes in full). */
const canonical6 = (a: string): string => new URL(`http://[${a}]/`).hostname.slice(1, -1);
const skip = isRoot() ? false : 'needs root (network namespaces)';

describe('exit pool on IPv6: CONNECT and UDP ASSOCIATE through [pod]:port', { skip }, () => {
  let lab: Lab;
  let pool: PoolSidecar;
  const proxy6 = () => ({ host: lab.pod.ip6, port: PROXY_PORT });
  const udp6 = (ns: string, req: Omit<SocksUdpRequest, 'proxy'>): Promise<SocksUdpResult> => socksUdpIn(lab, ns, { proxy: proxy6(), waitMs: 3000, ...req });
  const seenIp = (r: SocksUdpResult, i = 0): string => {
    const a = r.answers[i];
    assert.ok(a, `an answer to datagram ${i}: ${JSON.stringify(r)}`);
    return (JSON.parse(a.data) as { ip: string }).ip;
  };

  before(async () => {
    lab = await labUp({ relays: 3 });
    pool = await startPool(lab, {
      HEALTH_PORT: '9973',
      PROXY_LISTEN: `0.0.0.0:${PROXY_PORT},[::]:${PROXY_PORT}`,
      PROXY_ALLOWED_CIDRS: `${POD2.net},${POD2.net6}`,
      PROXY_CONNECT_TIMEOUT: '2s',
      FAILOVER_AFTER: '10s',
    });
    await pool.sc.waitReady();
    await pool.sc.waitFor((s) => ((s['proxy'] as { relayList?: { relays: number } } | undefined)?.relayList?.relays ?? 0) === 4, 10_000, 'the cached relay list');
  });
  after(async () => {
    await pool?.stop();
    await lab?.down();
  });

  test('CONNECT over IPv6 from pod2: SOCKS5 and HTTP CONNECT exit where the username says, to IPv4 and IPv6 targets', async () => {
    const socks = await proxyGet(lab, lab.ns.pod2, { proxy: proxy6(), mode: 'socks5', user: `${USER}-country-se-city-got`, password: PASSWORD, url: lab.checkUrl, timeoutMs: 20_000 });
    assert.equal(socks.ok, true, JSON.stringify(socks));
    assert.equal((socks.json as { ip?: string }).ip, lab.relays[1]!.ip, 'Gothenburg (relay 2)');
    const connect6 = await proxyGet(lab, lab.ns.pod2, { proxy: proxy6(), mode: 'connect', user: `${USER}-country-de`, password: PASSWORD, url: lab.checkUrl6, timeoutMs: 20_000 });
    assert.equal(connect6.ok, true, JSON.stringify(connect6));
    assert.equal((connect6.json as { ip?: string }).ip, lab.relays[2]!.ip6, 'Frankfurt (relay 3), over IPv6 to the target');
  });

  test('UDP ASSOCIATE over IPv6 from pod2: BND is the pod\'s IPv6 address; IPv4 and IPv6 targets exit where the username says', async () => {
    const r = await udp6(lab.ns.pod2, {
      user: `${USER}-country-se-city-got`,
      password: PASSWORD,
      datagrams: [
        { host: lab.internet.ip, port: UDP_ECHO_PORT, data: 'v4 target' },
        { host: lab.internet.ip6, port: UDP_ECHO_PORT, data: 'v6 target' },
      ],
    });
    assert.deepEqual(r.bound && { host: canonical6(r.bound.host), port: r.bound.port }, { host: lab.pod.ip6, port: PROXY_PORT }, `BND: the address pod2 reached: ${JSON.stringify(r)}`);
    assert.deepEqual([seenIp(r, 0), seenIp(r, 1)], [lab.relays[1]!.ip, lab.relays[1]!.ip6], 'Gothenburg (relay 2), both families');
    const st = ((await pool.sc.get('/status')).json as { proxy: { udpDropped: Record<string, number> } }).proxy;
    assert.equal(Object.values(st.udpDropped).reduce((a, b) => a + b, 0), 0, `no datagram dropped: ${JSON.stringify(st.udpDropped)}`);
  });

  test('docs/exit-pool.md\'s UDP client example, run as written (lab addresses put in), exits where its username says', async () => {
    const docs = readFileSync(fileURLToPath(new URL('../../../docs/exit-pool.md', import.meta.url)), 'utf8');
    const block = /```js\n([\s\S]*?)```/.exec(docs.slice(docs.indexOf('## UDP')))?.[1];
    assert.ok(block, 'docs/exit-pool.md has a js block under "## UDP"');
    // pod2 reaches the pool over IPv6; the echo's name resolves at the exit (the lab's public DNS).
    const code = block
      .replace("'pool.default.svc'", JSON.stringify(lab.pod.ip6))
      .replace("'PASSWORD'", JSON.stringify(PASSWORD))
      .replace("'scraper-country-de'", JSON.stringify(`${USER}-country-de`))
      .replace("'echo.example.net', port: 7", `${JSON.stringify(lab.internet.ip)}, port: ${UDP_ECHO_PORT}`);
    for (const placeholder of ['pool.default.svc', "'PASSWORD'", 'echo.example.net']) assert.ok(!code.includes(placeholder), `${placeholder} was replaced`);
    // Next to node_modules, so `import 'socks'` resolves as it would in the user's project.
    const file = fileURLToPath(new URL(`./udp-client-example-${process.pid}.mjs`, import.meta.url));
    writeFileSync(file, code);
    try {
      const r = await lab.nsExec(lab.ns.pod2, [process.execPath, file], { allowFailure: true, readOnly: true, timeoutMs: 20_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const m = /^(\S+):(\d+) answered (.*)$/m.exec(r.stdout);
      assert.ok(m, r.stdout + r.stderr);
      assert.deepEqual([m[1], Number(m[2])], [lab.internet.ip, UDP_ECHO_PORT]);
      const echoed = JSON.parse(m[3]!) as { ip: string; echo: string };
      assert.deepEqual([echoed.ip, echoed.echo], [lab.relays[2]!.ip, 'hello'], 'Frankfurt (relay 3) exit, the datagram echoed');
    } finally {
      rmSync(file, { force: true });
    }
  });

  test('a client outside PROXY_ALLOWED_CIDRS over IPv6 (the router, on the pod\'s /64): TCP and UDP get nothing, not even ICMP', async () => {
    const link = await capture(lab, lab.ns.router, `${lab.prefix}rp`, 'v6-outsider');
    let tcp;
    let udp;
    try {
      tcp = await proxyGet(lab, lab.ns.router, { proxy: proxy6(), mode: 'socks5', user: `${USER}-country-de`, password: PASSWORD, url: lab.checkUrl, timeoutMs: 2000 });
      udp = await udp6(lab.ns.router, { datagrams: [{ host: lab.internet.ip, port: UDP_ECHO_PORT, data: 'outsider' }], waitMs: 1500 });
    } finally {
      await link.stop();
    }
    assert.equal(tcp.ok, false, JSON.stringify(tcp));
    assert.equal(udp.answers.filter((a) => a !== null).length, 0, JSON.stringify(udp));
    assert.ok((await link.lines(`ip6 and src host ${POD.gw6} and udp and dst port ${PROXY_PORT}`)).length >= 1, 'the datagram reached the pod');
    assert.deepEqual(await link.lines(`ip6 and dst host ${POD.gw6} and (udp or icmp6 and ip6[40] == 1 or tcp[tcpflags] & tcp-syn != 0)`), [], 'no answer of any kind: no UDP, no ICMPv6 unreachable, no SYN-ACK');
  });
});
