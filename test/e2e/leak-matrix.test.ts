// The leak matrix (issue 6): one lab, one walk through every scenario the issue
// names, an application in the pod making HTTP (IPv4 + IPv6) and DNS requests the
// whole time, and a table of scenario × leaked packets. Every cell must be 0.
//
// What "leaked" means (bench/lib/leaks.ts): packets from the pod that reached the
// internet host (IPv4, IPv6) without passing through a relay, counted on the
// router; DNS packets from the pod to any resolver past the router, queries at the
// public resolver from anyone but a relay, non-cluster names at cluster DNS;
// packets from the pod to a relay other than the tunnel itself (an app's own
// datagram to the relay's WireGuard port included, recognised by its payload).
//
// The start-up scenarios assert from the moment the sidecar's first nftables
// transaction is visible in the namespace. Before it nothing is installed: a
// process cannot protect packets sent before it ran. Kubernetes' native sidecar
// ordering (and Compose's depends_on: service_healthy) keeps the app from running
// then; the row's note reports how many packets the lab saw in that window.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { REFUSED, isRoot, podProcesses, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';
import { startApp, summarize, typicalApp } from '../../bench/lib/app.js';
import type { AppLoopConfig, AppLoopStats } from '../../bench/lib/app-loop.js';
import { freshPod } from '../../bench/lib/pod.js';
import { captureRelayDirect, installExtraCounters, LeakWindow, type LeakCount } from '../../bench/lib/leaks.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const TUNED = { CHECK_INTERVAL: '1s', FAILOVER_AFTER: '3s', PROBE_TIMEOUT: '1s', CONNECT_TIMEOUT: '3s', MAX_BACKOFF: '2s', LOG_LEVEL: 'info' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  scenario: string;
  leaks?: LeakCount;
  app?: AppLoopStats;
  note: string;
  error?: string;
  at: string;
}

describe('leak matrix', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar | undefined;
  const dirs: string[] = [];
  const rows: Row[] = [];
  let capture: ReturnType<typeof captureRelayDirect> | undefined;

  before(async () => {
    lab = await labUp({ relays: 2 });
    await installExtraCounters(lab);
    capture = captureRelayDirect(lab);
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  function start(env: Record<string, string> = {}): RunningSidecar {
    sc = startSidecarInLab(lab, { ...TUNED, ...env });
    return sc;
  }
  const status = async () => ((await sc!.get('/status')).json ?? {}) as { state?: string; server?: { name?: string }; reconnects?: number; failovers?: number };
  const activeRelay = async () => {
    const name = (await status()).server?.name;
    const r = lab.relays.find((x) => x.name === name);
    assert.ok(r, `an active relay (status server ${name})`);
    return r;
  };
  const tableExists = async () => (await lab.podExec(['nft', 'list', 'table', 'inet', 'mullvad_sidecar'], { allowFailure: true, readOnly: true })).code === 0;
  async function waitTable(timeoutMs = 10_000): Promise<number> {
    const t0 = Date.now();
    while (!(await tableExists())) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`no nft table after ${timeoutMs} ms\n${sc?.logs()}`);
      await sleep(2);
    }
    return Date.now() - t0;
  }
  async function configCopy(edit: (text: string, dir: string) => string = (t) => t): Promise<string> {
    const dir = await mkdtemp('/tmp/ms-leakmatrix-');
    dirs.push(dir);
    for (const f of await readdir(lab.configDir)) await writeFile(join(dir, f), edit(await readFile(join(lab.configDir, f), 'utf8'), dir), { mode: 0o600 });
    return dir;
  }

  /**
   * Runs `during` with the app running and the leak window open, records the row.
   * `opening` (optional) runs first and may start the window itself (start-up scenarios).
   */
  async function scenario(name: string, during: (w: LeakWindow) => Promise<string | void>, o: { app?: Partial<AppLoopConfig>; preStarted?: boolean } = {}): Promise<void> {
    const w = new LeakWindow(lab);
    if (!o.preStarted) await w.start();
    const app = startApp(lab, typicalApp(lab, o.app));
    const row: Row = { scenario: name, note: '', at: new Date().toISOString() };
    rows.push(row);
    try {
      row.note = (await during(w)) ?? '';
    } catch (e) {
      row.error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    } finally {
      row.app = await app.stop();
      row.leaks = await w.read();
    }
  }

  test('every scenario: 0 leaked packets (IPv4, IPv6, DNS, relay direct)', { timeout: 300_000 }, async () => {
    // 1. The app and the sidecar start at the same moment in a namespace with no kill switch yet.
    {
      const w = new LeakWindow(lab);
      const app = startApp(lab, typicalApp(lab));
      start();
      const row: Row = { scenario: 'app sending while the sidecar starts', note: '', at: new Date().toISOString() };
      rows.push(row);
      try {
        const ms = await waitTable();
        const pre = await lab.leaks();
        await w.start();
        await sc!.waitReady(30_000);
        await sleep(1000);
        row.note = `counted from the first nft transaction (${ms} ms after spawn; ${pre.v4 + pre.v6 + pre.dns} packets before it, not asserted)`;
      } catch (e) {
        row.error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      } finally {
        row.app = await app.stop();
        row.leaks = await w.read();
      }
    }

    await scenario('connected', async () => {
      await sleep(3000);
    });

    const dark = await activeRelay();
    await scenario('relay goes dark (before failover)', async () => {
      await lab.setRelayDark(dark.index, true);
      await sleep(2500);
      return `${dark.name} dark`;
    });
    await scenario('failover', async () => {
      const s = await sc!.waitFor((x) => x['state'] === 'connected' && (x['server'] as { name?: string } | undefined)?.name !== dark.name, 60_000, 'failover');
      await sleep(1000);
      return `now ${(s['server'] as { name: string }).name}, failovers ${String(s['failovers'])}`;
    });
    await lab.setRelayDark(dark.index, false);

    await scenario('every relay dark', async () => {
      for (const r of lab.relays) await lab.setRelayDark(r.index, true);
      await sleep(5000);
      const st = await status();
      for (const r of lab.relays) await lab.setRelayDark(r.index, false);
      return `state ${st.state}`;
    });
    await sc!.waitReady(60_000);

    await scenario('wireguard-go SIGKILL', async () => {
      const before = (await status()).reconnects ?? 0;
      const pids = await podProcesses(lab, 'wireguard-go');
      assert.equal(pids.length, 1, 'one wireguard-go in the pod');
      process.kill(Number(pids[0]), 'SIGKILL');
      await sc!.waitFor((s) => Number(s['reconnects']) > before && s['state'] === 'connected', 30_000, 'reconnect');
      await sc!.waitReady(30_000);
      await sleep(1000);
      return 'tunnel recreated';
    });

    await scenario('sidecar SIGKILL', async () => {
      await sc!.stop('SIGKILL');
      await sleep(3000);
      const orphans = await podProcesses(lab, 'wireguard-go');
      assert.equal(orphans.length, 0, 'wireguard-go dies with the sidecar');
      return 'no orphaned wireguard-go';
    });

    await scenario('restart after crash', async () => {
      start();
      await sc!.waitReady(30_000);
      await sleep(1000);
      return `${(await podProcesses(lab, 'wireguard-go')).length} wireguard-go`;
    });

    await scenario('sidecar SIGTERM', async () => {
      const code = await sc!.stop('SIGTERM');
      assert.equal(code, 0, 'exit 0');
      await sleep(2000);
      return 'exit 0';
    });

    // A config error in a fresh namespace (our tables removed first, no app running then).
    {
      await freshPod(lab);
      const bad = await configCopy((_, dir) => `[Interface]\nPrivateKey = nope\nAddress = 10.66.0.2/32\nPostUp = touch ${dir}/hook-ran\n[Peer]\nPublicKey = x\nEndpoint = 172.20.1.2:51820\nAllowedIPs = 0.0.0.0/0\n`);
      const w = new LeakWindow(lab);
      const app = startApp(lab, typicalApp(lab));
      start({ WG_CONFIG_DIR: bad });
      const row: Row = { scenario: 'config error (fresh namespace)', note: '', at: new Date().toISOString() };
      rows.push(row);
      try {
        const ms = await waitTable();
        await w.start();
        const code = await sc!.child.exited;
        assert.equal(code, 78, 'exit 78');
        assert.equal(await tableExists(), true, 'table stays after exit 78');
        assert.equal(existsSync(join(bad, 'hook-ran')), false, 'the PostUp hook never ran');
        await sleep(1500);
        row.note = `exit ${code}, counted from the first nft transaction (${ms} ms after spawn)`;
      } catch (e) {
        row.error = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      } finally {
        row.app = await app.stop();
        row.leaks = await w.read();
      }
    }

    await scenario('relay unreachable during connect', async () => {
      for (const r of lab.relays) await lab.setRelayDark(r.index, true);
      start();
      await sleep(6000);
      const st = await status();
      const ready = await sc!.get('/readyz');
      for (const r of lab.relays) await lab.setRelayDark(r.index, false);
      assert.equal(ready.status, 503, 'not ready');
      return `state ${st.state}, /readyz ${ready.status}`;
    });
    await sc!.waitReady(60_000);

    const mtuRelay = await activeRelay();
    await scenario(
      'tunnel MTU black hole',
      async () => {
        await lab.setRelayBlackhole(mtuRelay.index, 1300);
        await sleep(5000);
        const st = await status();
        await lab.setRelayBlackhole(mtuRelay.index, null);
        return `>1300-byte packets to/from ${mtuRelay.name} dropped; state ${st.state} via ${st.server?.name}`;
      },
      { app: { http: [...(typicalApp(lab).http ?? []), `http://${lab.internet.ip}/bytes/20000`, `http://[${lab.internet.ip6}]/bytes/20000`] } },
    );
    await sc!.waitReady(60_000);

    await scenario(
      'app with a hard-coded public resolver',
      async () => {
        await sleep(3000);
      },
      { app: { dnsServers: [`udp:${lab.internet.ip}`, `tcp:${lab.internet.ip}`, `udp:[${lab.internet.ip6}]`, `tcp:[${lab.internet.ip6}]`, `udp:${lab.clusterDns}`] } },
    );

    await scenario(
      "app sending to the relay's endpoint",
      async () => {
        await sleep(3000);
      },
      {
        app: {
          udp: lab.relays.flatMap((r) => [`${r.ip}:${r.port}`, `[${r.ip6}]:${r.port}`]),
          tcp: lab.relays.flatMap((r) => [`${r.ip}:80`, `${r.ip}:${r.port}`, `[${r.ip6}]:80`]),
        },
      },
    );

    // Strangers (a relay we are not using, the internet host) send to closed ports
    // of the pod: it must not answer them outside the tunnel (no ICMP port
    // unreachable, no TCP reset out of the uplink). A relay does this for real when
    // it still holds the port of an earlier wireguard-go.
    await scenario('unsolicited packets from a relay and the internet', async () => {
      const active = (await status()).server?.name;
      const r = lab.relays.find((x) => x.name !== active) ?? lab.relays[0]!;
      const targets = { udp: [`${lab.pod.ip}:9`, `[${lab.pod.ip6}]:9`], tcp: [`${lab.pod.ip}:81`, `[${lab.pod.ip6}]:81`], intervalMs: 100, timeoutMs: 500 };
      const strangers = [startApp(lab, targets, r.ns), startApp(lab, targets, lab.ns.internet)];
      await sleep(3000);
      const got = await Promise.all(strangers.map((s) => s.stop()));
      const answered = got.flatMap((g) => Object.entries(g)).filter(([k, s]) => k.startsWith('tcp') && s.ok > 0);
      assert.deepEqual(answered, [], 'no TCP connection from outside was accepted');
      return `from ${r.name} and the internet host: ${summarize(got[0]!)}`;
    });

    await sc!.stop('SIGTERM');
    const noV6 = await configCopy((t) => t.replace(/^(Address\s*=\s*)(.*)$/m, (_, k: string, v: string) => k + v.split(',').filter((a) => !a.includes(':')).join(',')));
    start({ WG_CONFIG_DIR: noV6 });
    await sc!.waitReady(30_000);
    await scenario('IPv6 when the config has no IPv6 address', async () => {
      await sleep(3000);
    });
    const v6row = rows.at(-1)!;
    await sc!.stop('SIGTERM');

    // --- the table ------------------------------------------------------------
    const cell = (n: number | undefined) => String(n ?? '?').padStart(5);
    const width = Math.max(...rows.map((r) => r.scenario.length));
    const lines = [
      `${'scenario'.padEnd(width)}  IPv4  IPv6   DNS relay  app requests ok/failed  note`,
      ...rows.map((r) => {
        const ok = Object.values(r.app ?? {}).reduce((a, s) => a + s.ok, 0);
        const failed = Object.values(r.app ?? {}).reduce((a, s) => a + s.fail, 0);
        return `${r.scenario.padEnd(width)} ${cell(r.leaks?.v4)} ${cell(r.leaks?.v6)} ${cell(r.leaks?.dns)} ${cell(r.leaks?.relayDirect)}  ${`${ok}/${failed}`.padStart(20)}  ${r.error ? `ERROR: ${r.error}` : r.note}`;
      }),
    ];
    console.log(`\nleak matrix (lab ${lab.prefix}; packets that left the pod outside the tunnel)\n${lines.join('\n')}\n`);
    for (const r of rows) if (r.app) console.log(`  ${r.at} ${r.scenario}: ${summarize(r.app)}`);
    const direct = (await capture?.stop()) ?? '';
    if (direct) console.log(`\npackets from the pod to a relay outside the tunnel (router capture):\n${direct}`);

    for (const r of rows) {
      assert.equal(r.error, undefined, `${r.scenario}: ${r.error}`);
      const l = r.leaks!;
      assert.deepEqual({ v4: l.v4, v6: l.v6, dns: l.dns, relayDirect: l.relayDirect }, { v4: 0, v6: 0, dns: 0, relayDirect: 0 }, `${r.scenario}: leaked ${l.dnsDetail.join('; ')}`);
    }
    // The matrix only means something if the app did get through when it should.
    const connected = rows.find((r) => r.scenario === 'connected')!.app!;
    for (const [k, s] of Object.entries(connected)) assert.ok(s.ok > 0 && s.fail === 0, `connected: ${k} ${JSON.stringify(s)}`);
    const v6 = Object.entries(v6row.app!).find(([k]) => k.includes('[fd30::2]'))![1];
    assert.equal(v6.ok, 0, 'IPv6 without an IPv6 address is refused');
    for (const e of Object.keys(v6.errors)) assert.match(e, REFUSED, 'refused at once, not timed out');
  });
});
