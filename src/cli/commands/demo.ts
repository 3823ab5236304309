// `mullvad-sidecar demo`: builds the lab, runs the real sidecar in the lab's
// pod namespace and narrates what happens, with real results only: every line
// printed is a measurement, and a step whose result is wrong fails the demo.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { proxyGetIn, seedRelayCache } from '../../lab/exit-pool.js';
import { labUp, type Lab } from '../../lab/lab.js';
import { labRelayListPath } from '../../lab/relay-list.js';
import { startSidecarInLab, type RunningSidecar } from '../../lab/run-sidecar.js';

const isTty = process.stdout.isTTY;
const c = (code: string, s: string): string => (isTty ? `\x1b[${code}m${s}\x1b[0m` : s);
const say = (s = ''): void => void process.stdout.write(s + '\n');
const DEMO_PROXY_PORT = 1080;
const DEMO_PASSWORD = 'demo-pool-password';

export async function run(args: string[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root (it builds network namespaces); run it as root on a Linux host with wireguard-go and nftables (scripts/install-system-deps installs them)\n');
    return 1;
  }
  const keep = args.includes('--keep');
  let failures = 0;
  const check = (ok: boolean, what: string, detail: string): void => {
    if (!ok) failures++;
    say(`   ${ok ? c('32', '✔') : c('31', '✘')} ${what}: ${c('1', detail)}`);
  };
  const step = (n: number, title: string): void => say(`\n${c('36', `${n}.`)} ${c('1', title)}`);

  say(c('1', 'mullvad-sidecar demo') + ' — a pod, a cluster, two fake Mullvad relays and an "internet" host, each a network namespace on this machine.');
  let lab: Lab | undefined;
  let sc: RunningSidecar | undefined;
  try {
    step(1, 'Building the lab');
    const t0 = Date.now();
    lab = await labUp({ relays: 2 });
    say(`   namespaces ${lab.ns.pod}, ${lab.ns.router}, ${lab.relays.map((r) => r.ns).join(', ')}, ${lab.ns.internet} (${Date.now() - t0} ms)`);
    say(`   Mullvad configs: ${lab.relays.map((r) => r.name + '.conf').join(', ')} in ${lab.configDir}`);
    const inet = `http://${lab.internet.ip}/`;
    const relayIps = new Map(lab.relays.map((r) => [r.ip, r.name]));

    step(2, 'Without the sidecar, the application leaves with its own address');
    const before = await lab.httpFromPod(inet);
    check(before.ok && ipOf(before.json) === lab.pod.ip, 'exit address seen by the internet host', `${ipOf(before.json) ?? before.error} (the pod itself)`);
    check((await lab.leaks()).v4 > 0, 'the router counted it as a leak', `${(await lab.leaks()).v4} packets`);
    await lab.resetLeaks();

    step(3, 'Starting `mullvad-sidecar run` in the pod');
    const t1 = Date.now();
    // The exit pool on too (step 5): a users file, and the lab's relay list as if fetched already.
    await writeFile(join(lab.dir, 'proxy-users'), `demo:${DEMO_PASSWORD}\n`, { mode: 0o600 });
    await seedRelayCache(join(lab.dir, 'relays.json'), JSON.parse(await readFile(labRelayListPath(lab.dir), 'utf8')) as unknown[]);
    sc = startSidecarInLab(lab, {
      LOG_LEVEL: 'warn', CHECK_INTERVAL: '1s', FAILOVER_AFTER: '3s', PROBE_TIMEOUT: '1s', CONNECT_TIMEOUT: '3s',
      PROXY_LISTEN: `0.0.0.0:${DEMO_PROXY_PORT}`, PROXY_USERS_FILE: join(lab.dir, 'proxy-users'), PROXY_ALLOWED_CIDRS: `${lab.pod.ip}/32`,
      RELAY_LIST_CACHE: join(lab.dir, 'relays.json'), RELAY_LIST_URL: 'http://relay-list.invalid/',
    });
    await sc.waitReady(30_000);
    const status = (await sc.get('/status')).json as Status;
    check(true, '/readyz answered 200 after', `${Date.now() - t1} ms (state ${status.state}, server ${status.server?.name})`);

    step(4, 'Through the tunnel');
    const after = await lab.httpFromPod(`${inet}json`);
    const exit = after.json as { ip?: string; mullvad_exit_ip?: boolean; mullvad_exit_ip_hostname?: string; city?: string; country?: string } | undefined;
    check(relayIps.has(exit?.ip ?? ''), 'exit address', `${exit?.ip} (relay ${relayIps.get(exit?.ip ?? '')})`);
    check(exit?.mullvad_exit_ip === true, 'am.i.mullvad.net says', `mullvad_exit_ip=${exit?.mullvad_exit_ip} hostname=${exit?.mullvad_exit_ip_hostname} (${exit?.city}, ${exit?.country})`);
    // No BYPASS_CIDRS: the Service network (10.43.0.0/16) is not the pod's subnet; the name's answer opens the way.
    const internal = await lab.httpFromPod('http://internal.default.svc.cluster.local/');
    check(ipOf(internal.json) === lab.pod.ip, 'Service internal.default.svc.cluster.local reached by name, directly (no BYPASS_CIDRS), sees', `${ipOf(internal.json) ?? internal.error}`);
    const headless = await lab.httpFromPod('http://kafka-1.kafka.default.svc.cluster.local/');
    check(ipOf(headless.json) === lab.pod.ip, 'headless Service pod kafka-1 on another node reached directly, sees', `${ipOf(headless.json) ?? headless.error}`);
    const dns = await lab.dnsFromPod('www.example.com', { timeoutMs: 3000 });
    const pub = (await lab.publicDnsLog()).filter((q) => q.name.replace(/\.$/, '') === 'www.example.com');
    check(dns.ok, 'www.example.com through the pod\'s resolver', dns.ok ? dns.answers.join(', ') : `${dns.rcode ?? dns.error}`);
    check(pub.length > 0 && pub.every((q) => relayIps.has(q.source)), 'the public DNS server saw the query from', pub.map((q) => q.source).join(', ') || 'nobody');
    check(sameLeaks(await lab.leaks()), 'leaked packets', fmtLeaks(await lab.leaks()));

    step(5, 'The same pod exits in two cities at once, through the exit pool (one tunnel, one key)');
    const cities = lab.relays.map((r) => ({ relay: r, user: `demo-country-${r.name.slice(0, 2)}-city-${r.name.slice(3, 6)}` }));
    const got = await Promise.all(cities.map(({ user }) => proxyGetIn(lab!, lab!.ns.pod, { mode: 'socks5', proxy: { host: lab!.pod.ip, port: DEMO_PROXY_PORT }, user, password: DEMO_PASSWORD, url: `${inet}json`, timeoutMs: 15_000 })));
    for (const [i, { relay, user }] of cities.entries()) {
      const j = got[i]!.json as { ip?: string; city?: string; mullvad_exit_ip_hostname?: string } | undefined;
      check(got[i]!.ok && j?.ip === relay.ip, `socks5h://${user}:…@${lab.pod.ip}:${DEMO_PROXY_PORT} exits at`, got[i]!.ok ? `${j?.ip} (${j?.mullvad_exit_ip_hostname}, ${j?.city}) in ${got[i]!.ms} ms` : `${got[i]!.error ?? got[i]!.proxyError}`);
    }
    check(new Set(got.map((g) => ipOf(g.json))).size === cities.length, 'different exits for the same pod at the same time', `${cities.length} cities`);
    check(sameLeaks(await lab.leaks()), 'leaked packets', fmtLeaks(await lab.leaks()));

    const current = ((await sc.get('/status')).json as Status).server?.name;
    const dark = lab.relays.find((r) => r.name === current) ?? lab.relays[0]!;
    step(6, `The relay in use, ${dark.name}, goes dark: failover`);
    await lab.setRelayDark(dark.index, true);
    const t2 = Date.now();
    // Keep the application talking: that is how the sidecar notices (tx without rx).
    const traffic = setInterval(() => void lab?.httpFromPod(inet, { timeoutMs: 500 }), 300);
    const moved: unknown = await sc.waitFor((s) => (s as unknown as Status).state === 'connected' && (s as unknown as Status).server?.name !== dark.name, 60_000, 'failover').finally(() => clearInterval(traffic));
    const again = await lab.httpFromPod(`${inet}json`);
    check((moved as unknown as Status).server?.name !== dark.name, 'now connected through', `${(moved as unknown as Status).server?.name} after ${((Date.now() - t2) / 1000).toFixed(1)} s (failovers: ${(moved as unknown as Status).failovers})`);
    check(relayIps.has(ipOf(again.json) ?? ''), 'exit address', `${ipOf(again.json)}`);
    check(sameLeaks(await lab.leaks()), 'leaked packets during the failover', fmtLeaks(await lab.leaks()));

    step(7, 'Every relay dark: the application is refused, nothing leaks');
    for (const r of lab.relays) await lab.setRelayDark(r.index, true);
    const traffic2 = setInterval(() => void lab?.httpFromPod(inet, { timeoutMs: 500 }), 300);
    await sc.waitFor((s) => ['blocked', 'connecting', 'failing-over'].includes((s as unknown as Status).state), 60_000, 'the sidecar to give up on the relays').finally(() => clearInterval(traffic2));
    const refused = await lab.httpFromPod(inet, { timeoutMs: 3000 });
    check(!refused.ok && /REFUSED|UNREACH/.test(refused.error ?? ''), 'application request', `${refused.error} in ${refused.ms} ms`);
    const ready = await sc.get('/readyz');
    check(ready.status === 503, '/readyz', `${ready.status} ${ready.body?.trim()}`);
    // The kill switch's counters are sampled every couple of seconds.
    const blockedSum = (x: unknown): number => ((x as Status).killSwitch.blockedPackets.ipv4 + (x as Status).killSwitch.blockedPackets.ipv6);
    const st = (await sc.waitFor((x) => blockedSum(x) > 0, 5000, 'the blocked-packet counter').catch(async () => (await sc!.get('/status')).json)) as unknown as Status;
    check(sameLeaks(await lab.leaks()), 'leaked packets', `${fmtLeaks(await lab.leaks())} (kill switch refused ${st.killSwitch.blockedPackets.ipv4 + st.killSwitch.blockedPackets.ipv6} packets)`);
    for (const r of lab.relays) await lab.setRelayDark(r.index, false);

    step(8, 'SIGTERM: the sidecar stops, the pod stays blocked');
    const code = await sc.stop('SIGTERM');
    check(code === 0, 'exit code', String(code));
    const afterStop = await lab.httpFromPod(inet, { timeoutMs: 3000 });
    check(!afterStop.ok, 'application request after the sidecar is gone', `${afterStop.error}`);
    check(sameLeaks(await lab.leaks()), 'leaked packets', fmtLeaks(await lab.leaks()));
  } catch (err) {
    failures++;
    say(c('31', `\ndemo failed: ${err instanceof Error ? err.message : String(err)}`));
  } finally {
    if (sc?.child.running) await sc.stop('SIGKILL');
    if (lab && !keep) {
      step(9, 'Tearing the lab down');
      await lab.down();
      say('   every namespace, process and file of the lab removed');
    } else if (lab) say(`\nlab kept: ${lab.prefix} (remove with: mullvad-sidecar lab down ${lab.prefix})`);
  }
  say(failures === 0 ? c('32', '\nAll steps behaved as expected.') : c('31', `\n${failures} step(s) did not behave as expected.`));
  return failures === 0 ? 0 : 1;
}

interface Status {
  state: string;
  server?: { name: string };
  failovers: number;
  killSwitch: { blockedPackets: { ipv4: number; ipv6: number } };
}

function ipOf(j: unknown): string | undefined {
  return j && typeof j === 'object' && 'ip' in j ? String((j as { ip: unknown }).ip) : undefined;
}

function sameLeaks(l: { v4: number; v6: number; dns: number }): boolean {
  return l.v4 === 0 && l.v6 === 0 && l.dns === 0;
}

function fmtLeaks(l: { v4: number; v6: number; dns: number }): string {
  return `IPv4 ${l.v4}, IPv6 ${l.v6}, DNS ${l.dns}`;
}
