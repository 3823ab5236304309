// Soak (`npm run soak`, default 10 minutes; `--minutes N` or SOAK_MINUTES=N;
// `--write` puts the figures into BENCHMARKS.md's soak section):
// relays flap dark/undark at random intervals while an app in the pod keeps
// making HTTP (v4+v6) and DNS requests. Checks at the end, exit 1 on any violation:
// - zero leaked packets (router counters, DNS logs, pod → relay outside the tunnel);
// - no RSS growth beyond noise: median of the last third of the samples at most
//   10 % + 5 MiB above the median of the first third;
// - no orphaned wireguard-go: exactly one in the pod;
// - no duplicated nftables rules, ip rules or routes: the same counts (and, for
//   ip rules and routes, the same entries) as right after the first connect;
// - failovers_total consistent with the flaps: at least one failover for every
//   time the relay in use went dark and stayed dark longer than the detection time
//   (FAILOVER_AFTER 3 s + CHECK_INTERVAL 1 s + two PROBE_TIMEOUTs 2 s + 2 s margin
//   = 8 s). Shorter dark spells may or may not cause one, and while every relay is
//   dark the sidecar keeps trying (more failovers), so there is no upper bound.
import { fileURLToPath } from 'node:url';
import { labUp, type Lab } from '../src/lab/lab.js';
import { isRoot, podProcesses, startSidecarInLab, type RunningSidecar } from '../src/lab/run-sidecar.js';
import { parsePromText } from '../src/health/prom-text.js';
import { startApp, summarize, typicalApp } from './lib/app.js';
import { captureRelayDirect, installExtraCounters, LeakWindow, totalLeaks } from './lib/leaks.js';
import { ProcSampler, sidecarPid } from './lib/proc.js';
import { arg, say as sayOut, sleep, summary } from './lib/stats.js';
import { writeSoakSection } from './report.js';
import { TUNED } from './controller.js';

const DETECT_MS = 8000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Shape {
  nftRules: number;
  ipRules: string[];
  routes: string[];
}

async function shape(lab: Lab): Promise<Shape> {
  const nft = JSON.parse((await lab.podExec(['nft', '-j', 'list', 'table', 'inet', 'mullvad_sidecar'], { readOnly: true })).stdout) as { nftables: { rule?: unknown }[] };
  const rules: string[] = [];
  const routes: string[] = [];
  for (const fam of ['-4', '-6']) {
    for (const r of JSON.parse((await lab.podExec(['ip', '-j', fam, 'rule'], { readOnly: true })).stdout) as Record<string, unknown>[]) rules.push(`${fam} ${JSON.stringify(r)}`);
    const rt = await lab.podExec(['ip', '-j', fam, 'route', 'show', 'table', '51820'], { readOnly: true, allowFailure: true });
    for (const r of rt.code === 0 ? (JSON.parse(rt.stdout || '[]') as Record<string, unknown>[]) : []) routes.push(`${fam} ${JSON.stringify(r)}`);
  }
  return { nftRules: nft.nftables.filter((x) => x.rule).length, ipRules: rules.sort(), routes: routes.sort() };
}

async function failoversTotal(sc: RunningSidecar): Promise<number> {
  const r = await sc.get('/metrics');
  return parsePromText(r.body ?? '')
    .filter((s) => s.name === 'mullvad_sidecar_failovers_total')
    .reduce((a, s) => a + s.value, 0);
}

interface StatusSample {
  t: number;
  state: string;
  server: string | undefined;
}

export async function main(argv: string[]): Promise<number> {
  if (!isRoot()) {
    process.stderr.write('soak: needs root (network namespaces)\n');
    return 1;
  }
  const minutes = Number(arg(argv, '--minutes', process.env['SOAK_MINUTES'] ?? '10'));
  const relays = Number(arg(argv, '--relays', '3'));
  const durationMs = minutes * 60_000;
  const violations: string[] = [];
  const lab = await labUp({ relays });
  let sc: RunningSidecar | undefined;
  try {
    await installExtraCounters(lab);
    const capture = captureRelayDirect(lab);
    sc = startSidecarInLab(lab, { ...TUNED, LOG_LEVEL: 'info' });
    await sc.waitReady(30_000);
    const before = await shape(lab);
    const startFailovers = await failoversTotal(sc);
    const window = new LeakWindow(lab);
    await window.start();
    const app = startApp(lab, typicalApp(lab, { intervalMs: 200 }));
    const sampler = new ProcSampler(await sidecarPid(lab), 5000);
    sayOut(`soak: ${minutes} min, ${relays} relays flapping, lab ${lab.prefix}`);

    const statuses: StatusSample[] = [];
    const darkSpells: { relay: string; from: number; to: number; activeAtStart: boolean }[] = [];
    const dark = new Map<number, { from: number; activeAtStart: boolean }>();
    const end = Date.now() + durationMs;
    let stop = false;
    const poll = (async () => {
      while (!stop) {
        const s = (await sc!.get('/status')).json as { state?: string; server?: { name?: string } } | undefined;
        statuses.push({ t: Date.now(), state: s?.state ?? 'unreachable', server: s?.server?.name });
        await sleep(500);
      }
    })();
    let lastReport = Date.now();
    while (Date.now() < end) {
      await sleep(1000 + Math.random() * 9000);
      const now = statuses.at(-1);
      const active = lab.relays.find((r) => r.name === now?.server && (now?.state === 'connected' || now?.state === 'degraded'));
      const pick = active && Math.random() < 0.6 ? active : lab.relays[Math.floor(Math.random() * lab.relays.length)]!;
      const spell = dark.get(pick.index);
      if (spell) {
        await lab.setRelayDark(pick.index, false);
        darkSpells.push({ relay: pick.name, from: spell.from, to: Date.now(), activeAtStart: spell.activeAtStart });
        dark.delete(pick.index);
      } else {
        await lab.setRelayDark(pick.index, true);
        dark.set(pick.index, { from: Date.now(), activeAtStart: pick === active });
      }
      if (Date.now() - lastReport > 60_000) {
        lastReport = Date.now();
        const l = await window.read();
        sayOut(`  ${new Date().toISOString()} state ${now?.state} via ${now?.server}; dark ${[...dark.keys()].join(',') || 'none'}; spells ${darkSpells.length}; failovers ${(await failoversTotal(sc)) - startFailovers}; leaked ${totalLeaks(l)}`);
      }
    }
    for (const [index, spell] of dark) {
      await lab.setRelayDark(index, false);
      darkSpells.push({ relay: lab.relays.find((r) => r.index === index)!.name, from: spell.from, to: Date.now(), activeAtStart: spell.activeAtStart });
    }
    await sc.waitReady(120_000);
    await sleep(2000);
    stop = true;
    await poll;
    const stats = await app.stop();
    const leaks = await window.read();
    const cost = await sampler.stop();
    const after = await shape(lab);
    const wgs = await podProcesses(lab, 'wireguard-go');
    const failovers = (await failoversTotal(sc)) - startFailovers;
    const direct = await capture.stop();

    // --- verdicts --------------------------------------------------------------
    if (totalLeaks(leaks) > 0) violations.push(`leaked packets: ${JSON.stringify(leaks)}${direct ? `\n${direct}` : ''}`);
    const rss = sampler.samples.map((s) => s.rssKiB / 1024);
    const third = Math.max(1, Math.floor(rss.length / 3));
    const first = summary(rss.slice(0, third)).median;
    const last = summary(rss.slice(-third)).median;
    if (last > first * 1.1 + 5) violations.push(`RSS grew: first third median ${first.toFixed(1)} MiB, last third ${last.toFixed(1)} MiB`);
    if (wgs.length !== 1) violations.push(`wireguard-go processes in the pod: ${wgs.length} (want 1)`);
    if (after.nftRules !== before.nftRules) violations.push(`nft rules: ${before.nftRules} at start, ${after.nftRules} at the end`);
    if (after.ipRules.join('\n') !== before.ipRules.join('\n')) violations.push(`ip rules differ:\n  start ${before.ipRules.join('\n        ')}\n  end   ${after.ipRules.join('\n        ')}`);
    if (after.routes.join('\n') !== before.routes.join('\n')) violations.push(`routes in table 51820 differ:\n  start ${before.routes.join('\n        ')}\n  end   ${after.routes.join('\n        ')}`);
    const qualifying = darkSpells.filter((s) => s.activeAtStart && s.to - s.from >= DETECT_MS).length;
    if (failovers < qualifying) violations.push(`failovers_total ${failovers} < ${qualifying} dark spells of the relay in use longer than ${DETECT_MS / 1000} s`);
    const code = await sc.stop('SIGTERM');
    if (code !== 0) violations.push(`sidecar exit code ${code} on SIGTERM`);

    const figures: string[] = [];
    const say = (line: string): void => {
      figures.push(line);
      sayOut(line);
    };
    say('\nsoak figures');
    say(`  duration ${minutes} min; dark spells ${darkSpells.length} (of the relay in use: ${darkSpells.filter((s) => s.activeAtStart).length}, of which ≥ ${DETECT_MS / 1000} s: ${qualifying})`);
    say(`  failovers_total ${failovers} (≥ ${qualifying} required)`);
    say(`  leaked packets: IPv4 ${leaks.v4}, IPv6 ${leaks.v6}, DNS ${leaks.dns}, relay direct ${leaks.relayDirect}`);
    say(`  RSS: first third median ${first.toFixed(1)} MiB, last third ${last.toFixed(1)} MiB, max ${Math.max(...rss).toFixed(1)} MiB; CPU ${cost.cpuPercent.toFixed(1)}% of a core`);
    // Growth that settles (heap and JIT reaching their steady state) and a leak look alike over thirds; sixths tell them apart.
    const sixth = Math.max(1, Math.ceil(rss.length / 6));
    say(`  RSS by sixth of the run (median, MiB): ${Array.from({ length: Math.ceil(rss.length / sixth) }, (_, i) => summary(rss.slice(i * sixth, (i + 1) * sixth)).median.toFixed(1)).join(' → ')}`);
    say(`  wireguard-go in the pod: ${wgs.length}; nft rules ${before.nftRules} → ${after.nftRules}; ip rules ${before.ipRules.length} → ${after.ipRules.length}; routes ${before.routes.length} → ${after.routes.length}`);
    say(`  app: ${summarize(stats)}`);
    say(`  time connected: ${((statuses.filter((s) => s.state === 'connected').length / Math.max(1, statuses.length)) * 100).toFixed(0)}% of status samples`);
    if (argv.includes('--write')) await writeSoakSection(`${ROOT}BENCHMARKS.md`, minutes, figures.slice(1), violations);
  } catch (e) {
    violations.push(`soak aborted: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab.down();
  }
  if (violations.length) {
    sayOut(`\nSOAK FAILED (${violations.length}):\n- ${violations.join('\n- ')}`);
    return 1;
  }
  sayOut('\nsoak passed: no leak, no growth, no orphan, no duplicate');
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`soak: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
