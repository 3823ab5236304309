// Renders the results of `npm run bench` into BENCHMARKS.md (the whole file is
// generated; edit this renderer, not the file).
import { readFile, writeFile } from 'node:fs/promises';
import type { ControllerResult } from './controller.js';
import type { DatapathFigures } from './datapath.js';
import type { MemoryFigures } from './memory.js';
import type { ReadyResult } from './ready.js';
import type { ThroughputResult } from './throughput.js';
import { fmt, type Machine, type Summary } from './lib/stats.js';

export interface Report {
  machine: Machine;
  quick: boolean;
  options: Record<string, number>;
  killswitch: Record<string, Summary> | undefined;
  ready: ReadyResult | undefined;
  throughput: ThroughputResult | undefined;
  datapath: Record<string, DatapathFigures> | undefined;
  memory: Record<string, MemoryFigures> | undefined;
  controller: ControllerResult | undefined;
  failover: string;
  dns: string;
  /** Output of bench/proxy.ts (exit pool vs the plain tunnel). */
  proxy: string;
  image: string;
  errors: string[];
}

const met = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? '**met**' : '**not met**');
const ms = (s: Summary) => fmt(s, ' ms');
const mbit = (s: Summary) => fmt(s, ' Mbit/s');
const mib = (s: Summary) => fmt(s, ' MiB', 1);

function summaryRows(r: Report): string[] {
  const rows: string[] = [];
  const { ready: rd, throughput: tp, controller: c } = r;
  const ks = r.killswitch;
  if (ks) {
    const [sc, guard, floor] = [ks['sidecar (bin/mullvad-sidecar)'], ks['sidecar (bin/mullvad-sidecar): guard chain'], ks['floor: node -e + nft -f']];
    if (sc) rows.push(`| 0 | Process start → kill switch installed (our table exists, seen by \`nft monitor\`) | ${ms(sc)}${guard ? `; uplink guard's chain ${ms(guard)}` : ''}${floor ? `; floor (node -e + nft -f) ${ms(floor)}, ratio ${(sc.median / floor.median).toFixed(2)}` : ''} | ≤ 80 ms | ${met(sc.median <= 80)} |`);
  }
  if (rd) {
    rows.push(
      `| 1 | Time to first HTTP through the tunnel: sidecar (process start → first answer via the relay) | ${ms(rd.sidecarHttpMs)} | < 500 ms | ${met(rd.sidecarHttpMs.median < 500)} |`,
      `| 1 | Time to \`/readyz\` = 200 | ${ms(rd.sidecarReadyMs)} | < 500 ms | ${met(rd.sidecarReadyMs.median < 500)} |`,
      `| 1 | Baseline: \`nft -f\` kill switch + \`wg-quick up\` (wireguard-go) → first answer | ${ms(rd.baselineHttpMs)} | | |`,
      `| 1 | Ratio sidecar / baseline (medians) | ${rd.ratio.toFixed(2)} | ≤ 1.5 | ${met(rd.ratio <= 1.5)} |`,
    );
  }
  if (tp) {
    rows.push(
      `| 2 | iperf3 pod → internet, sidecar vs wg-quick (MTU ${tp.mtu}, chosen by the sidecar) | ${mbit(tp.sidecarUp)} vs ${mbit(tp.baselineUp)}: ratio ${tp.ratioUp.toFixed(2)} | ≥ 0.98 | ${met(tp.ratioUp >= 0.98)} |`,
      `| 2 | iperf3 internet → pod (\`-R\`) | ${mbit(tp.sidecarDown)} vs ${mbit(tp.baselineDown)}: ratio ${tp.ratioDown.toFixed(2)} | ≥ 0.97 | ${met(tp.ratioDown >= 0.97)} |`,
    );
  }
  const m = r.memory?.['sidecar (bin/mullvad-sidecar)'];
  if (m) {
    const bare = r.memory?.['bare node'];
    rows.push(
      `| 4 | Idle RSS, connected (\`bench/memory.ts\`) | ${mib(m.idle)}, anonymous ${mib(m.idleAnon)}${bare ? `; bare \`node\` ${mib(bare.idle)}, anonymous ${mib(bare.idleAnon)}` : ''} | ≤ 50 MiB | ${met(m.idle.median <= 50)} |`,
      `| 4 | Peak RSS under DNS load | ${mib(m.dnsPeak)}, anonymous ${mib(m.dnsPeakAnon)}, at ${fmt(m.qps, ' q/s')} | ≤ 64 MiB | ${met(m.dnsPeak.median <= 64)} |`,
    );
    const low = r.memory?.['sidecar + LOW_MEMORY=true'];
    if (low)
      rows.push(
        `| 4 | the same with \`LOW_MEMORY=true\` (opt-in: no TurboFan) | idle ${mib(low.idle)}; DNS load peak ${mib(low.dnsPeak)} at ${fmt(low.qps, ' q/s')}, sidecar CPU ${fmt(low.cpuPerKq, ' ms')} per 1000 queries (default: ${fmt(m.cpuPerKq, ' ms')}) | ≤ 50 / ≤ 64 MiB | ${met(low.idle.median <= 50 && low.dnsPeak.median <= 64)} |`,
      );
  }
  rows.push(`| 3 | Failover gap, defaults and tuned | see [below](#3-failover-gap) | < 2.5 s median (tuned) | |`);
  if (c) {
    rows.push(
      `| 4 | RSS idle (${c.idle.seconds.toFixed(0)} s, 1 sample/s) | ${mib(c.idle.rssMiB)}, CPU ${c.idle.cpuPercent.toFixed(1)} % of a core | < 60 MiB | ${met(c.idle.rssMiB.median < 60)} |`,
      `| 4 | RSS during ${c.failover.count} failovers (${c.failover.seconds.toFixed(0)} s) | ${mib(c.failover.cost.rssMiB)}, CPU ${c.failover.cost.cpuPercent.toFixed(1)} % | < 60 MiB | ${met(c.failover.cost.rssMiB.max < 60)} |`,
    );
    if (c.dns) rows.push(`| 4 | RSS during DNS load (${c.dns.load.qps.toFixed(0)} q/s through the forwarder) | ${mib(c.dns.cost.rssMiB)}, CPU ${c.dns.cost.cpuPercent.toFixed(1)} % | < 60 MiB | ${met(c.dns.cost.rssMiB.max < 60)} |`);
    const burst = c.health.find((h) => h.mode.startsWith('burst'));
    if (burst) rows.push(`| 4 | \`/healthz\` latency under 1,000 concurrent requests + slowloris + malformed | p50 ${burst.p50} ms, p99 ${burst.p99} ms, max ${burst.max} ms; ${JSON.stringify(burst.statuses)} | < 50 ms | ${met(burst.p99 < 50)} |`);
  }
  rows.push(`| 5 | DNS forwarder throughput and latency | see [below](#5-dns-forwarder) | | |`, `| 6 | Image size | ${r.image} | ≤ 150 MB | ${met(imageMB(r.image) === undefined ? undefined : imageMB(r.image)! <= 150)} |`);
  return rows;
}

const imageMB = (s: string): number | undefined => {
  const x = / (\d+(?:\.\d+)?) MB/.exec(s);
  return x ? Number(x[1]) : undefined;
};

function details(r: Report): string[] {
  const L: string[] = [];
  const { ready: rd, throughput: tp, controller: c } = r;
  L.push('## 0. Kill switch latency', '');
  if (r.killswitch) {
    L.push('From spawning the process in an empty namespace with one veth (no configuration: the lockdown goes in first, then `run` exits 78) to the kernel\'s events that our table, and the uplink guard\'s chain on the veth, were added, read by `nft monitor` from outside; alternating (`bench/killswitch.ts`).', '', '| Variant | ms after spawn |', '|---|---|');
    for (const [k, v] of Object.entries(r.killswitch)) L.push(`| ${k} | ${ms(v)} |`);
    L.push('');
  } else L.push('not run', '');
  L.push('## 1. Time to ready', '');
  if (rd) {
    L.push(
      `${rd.runs} runs each, alternating, after one unmeasured round each; every run starts from a fresh pod namespace (no table, no tunnel).`,
      'A probe in the pod (four staggered HTTP loops, 150 ms timeout, 3 ms apart, plus a `/readyz` loop) timestamps the first answer from the internet host that reports a relay as the caller.',
      '- **sidecar**: from spawning `mullvad-sidecar run` (defaults, `SERVER` = the first relay) — Node.js start-up included.',
      '- **baseline**: from starting `nft -f` of an equivalent kill switch (blocked + endpoint + tunnel) followed by `wg-quick up` (`WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go`, the same config without its `DNS` line: wg-quick would call `resolvconf`, which a pod lacks).',
      `- Where the sidecar's time goes (median ms after spawn, from its own log): ${Object.entries(rd.breakdown ?? {}).map(([k, v]) => `${k} ${fmt(v, ' ms')}`).join('; ')}. Before the first line, Node.js starts and loads the modules.`,
      '- The baseline\'s endpoint rule matches address and port, not the fwmark: wg-quick sets the fwmark only after `ip link set up`, and with a mark rule installed first its first handshake was dropped and retried 5 s later.',
      '',
    );
  } else L.push('not run', '');
  L.push('## 2. Throughput', '');
  if (tp) L.push(`iperf3, server in the internet namespace, client in the pod, ${tp.seconds} s each direction, ${tp.runs} runs alternating sidecar / wg-quick; both tunnels use the same \`wireguard-go\` binary, the same relay and the MTU the sidecar chose (${tp.mtu}). Each side runs with its kill switch in place. On a 2-core VM the relay's and the pod's wireguard-go compete for the cores: compare the ratio, not the absolute figures.`, '');
  else L.push('not run', '');
  L.push('### 2b. Data path, one chain or hook at a time', '');
  if (r.datapath) {
    const ref = r.datapath['wg-quick kill switch'];
    L.push('One wg-quick tunnel stays up; only the pod\'s ruleset changes between iperf3 runs (pod → internet), rotated order per round (`bench/datapath.ts`). CPU per MB: the pod\'s iperf3 and wireguard-go, user + system, per MB carried.', '', '| Ruleset | Throughput | Ratio | CPU per MB | Ratio |', '|---|---|---|---|---|');
    for (const [k, f] of Object.entries(r.datapath))
      L.push(`| ${k} | ${mbit(f.mbit)} | ${ref ? (f.mbit.median / ref.mbit.median).toFixed(3) : ''} | ${fmt(f.cpuMsPerMB, ' ms', 2)} | ${ref ? (f.cpuMsPerMB.median / ref.cpuMsPerMB.median).toFixed(3) : ''} |`);
    L.push('');
  } else L.push('not run', '');
  L.push('## 3. Failover gap', '', 'Output of `bench/failover.ts` (owned by the health work), run by `npm run bench`:', '', '```', r.failover, '```', '');
  L.push('## 4. Controller cost', '');
  if (r.memory) {
    L.push('### Memory, side by side (`bench/memory.ts`)', '', 'VmRSS of the Node.js process: median of 1 sample/s while connected and idle (after 5 s of settling), peak while a pod-side client sends cold names through the forwarder (32 outstanding). Anonymous: the part of the idle RSS that is this process’s own (RssAnon); the rest is file pages of the node binary, which every container of the same image on a node shares through the page cache.', '', '| Variant | Idle RSS | of it anonymous | Peak RSS under DNS load | of it anonymous | DNS q/s | sidecar CPU per 1000 queries |', '|---|---|---|---|---|---|---|');
    for (const [k, f] of Object.entries(r.memory)) L.push(`| ${k} | ${mib(f.idle)} | ${mib(f.idleAnon)} | ${f.dnsPeak.n ? mib(f.dnsPeak) : ''} | ${f.dnsPeakAnon.n ? mib(f.dnsPeakAnon) : ''} | ${f.qps.n ? fmt(f.qps) : ''} | ${f.cpuPerKq.n ? fmt(f.cpuPerKq, ' ms') : ''} |`);
    L.push('');
  }
  if (c) {
    L.push(
      'VmRSS and utime+stime of the sidecar\'s Node.js process, read from `/proc/<pid>/status` and `/proc/<pid>/stat`, with the tuned settings (`CHECK_INTERVAL=1s FAILOVER_AFTER=3s PROBE_TIMEOUT=1s CONNECT_TIMEOUT=3s MAX_BACKOFF=2s`), `LOG_LEVEL=info`.',
      '',
      '| Phase | RSS median [min–max] | CPU (% of one core) | Notes |',
      '|---|---|---|---|',
      `| idle, connected | ${mib(c.idle.rssMiB)} | ${c.idle.cpuPercent.toFixed(1)} | ${c.idle.seconds.toFixed(0)} s, after 5 s of settling |`,
      `| failovers | ${mib(c.failover.cost.rssMiB)} | ${c.failover.cost.cpuPercent.toFixed(1)} | ${c.failover.count} failovers in ${c.failover.seconds.toFixed(0)} s (target 100, bounded by --failover-seconds ${r.options['failoverSeconds']}); relay dark → connected through another ${fmt(c.failover.detectMs, ' ms')}; an app makes requests meanwhile |`,
    );
    if (c.dns) L.push(`| DNS load | ${mib(c.dns.cost.rssMiB)} | ${c.dns.cost.cpuPercent.toFixed(1)} | ${c.dns.load.qps.toFixed(0)} q/s of new names through the forwarder and the tunnel, 32 outstanding, p50 ${c.dns.load.p50.toFixed(1)} ms, p99 ${c.dns.load.p99.toFixed(1)} ms, lost ${c.dns.load.lost} |`);
    for (const h of c.health) L.push(`| health port: ${h.mode} | ${mib(h.cost.rssMiB)} | ${h.cost.cpuPercent.toFixed(1)} | /healthz every 50 ms: ${h.probes} probes ${JSON.stringify(h.statuses)}, p50 ${h.p50} ms, p99 ${h.p99} ms, max ${h.max} ms |`);
    L.push('', 'Memory growth over time is measured by the soak (`npm run soak`): first third vs last third of the RSS samples.', '');
  } else L.push('not run', '');
  L.push('## 5. DNS forwarder', '', 'Output of `bench/dns.ts` (owned by the DNS work; loopback, forwarder vs its upstream directly):', '', '```', r.dns, '```', '');
  L.push('## 5b. Exit pool', '', 'Output of `bench/proxy.ts` (the pool\'s SOCKS5 proxy vs a plain connection through the tunnel, one lab):', '', '```', r.proxy, '```', '');
  L.push('## 6. Image size', '', r.image, '');
  return L;
}

export function renderReport(r: Report): string {
  const m = r.machine;
  return [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\`${r.quick ? ' --quick' : ''} (\`bench/run-all.ts\`) on ${m.date}. Every figure is the median of the runs of one invocation with [min–max]; every comparison is a ratio of medians from the same invocation. Rerun it on your machine: the lab needs root and the packages of \`scripts/install-system-deps\`.`,
    '',
    `**Machine**: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}, Node.js ${m.node}, ${m.wireguardGo}. A shared VM: other work ran at the same time, so absolute figures are noisy; ratios were measured side by side.`,
    '',
    '| # | Measure | Result | Target | |',
    '|---|---|---|---|---|',
    ...summaryRows(r),
    '',
    ...(r.errors.length ? ['**Errors during this run**:', '', ...r.errors.map((e) => `- ${e}`), ''] : []),
    'The other proofs of issue 6 are tests, not figures: the leak matrix (`test/e2e/leak-matrix.test.ts`, part of `npm test`) and the soak (`npm run soak`, `--minutes N`).',
    '',
    ...details(r),
  ].join('\n');
}

const SOAK_BEGIN = '<!-- soak:begin (written by npm run soak -- --write) -->';
const SOAK_END = '<!-- soak:end -->';

async function soakSection(file: string): Promise<string> {
  const old = await readFile(file, 'utf8').catch(() => '');
  const i = old.indexOf(SOAK_BEGIN);
  const j = old.indexOf(SOAK_END);
  return i >= 0 && j > i ? old.slice(i, j + SOAK_END.length) : `${SOAK_BEGIN}\nnot run yet\n${SOAK_END}`;
}

/** The whole file, keeping the soak section an earlier `npm run soak -- --write` left. */
export async function writeReport(file: string, r: Report): Promise<string> {
  await writeFile(file, `${renderReport(r)}\n## Soak\n\n${await soakSection(file)}\n`);
  return file;
}

export async function writeSoakSection(file: string, minutes: number, figures: string[], violations: string[]): Promise<void> {
  const old = await readFile(file, 'utf8').catch(() => '');
  const body = [
    SOAK_BEGIN,
    `\`npm run soak -- --minutes ${minutes} --write\` on ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}: relays flapping at random intervals while an app makes requests (rules: [docs/proof.md](docs/proof.md#soak)). ${violations.length ? `**${violations.length} violation(s)**: ${violations.join('; ')}` : '**Passed.**'}`,
    '',
    '```',
    ...figures.map((l) => l.replace(/^ {2}/, '')),
    '```',
    SOAK_END,
  ].join('\n');
  const i = old.indexOf(SOAK_BEGIN);
  const j = old.indexOf(SOAK_END);
  const next = i >= 0 && j > i ? old.slice(0, i) + body + old.slice(j + SOAK_END.length) : `${old.trimEnd()}\n\n## Soak\n\n${body}\n`;
  await writeFile(file, next);
}
