// Time to ready: from process start to the first HTTP request through the tunnel
// succeeding (and to /readyz = 200), the sidecar versus `wg-quick up` plus an
// equivalent nftables kill switch, alternating, in one lab. Every run starts from
// a fresh pod namespace state (no table, no tunnel) like a new pod.
// `--compare DIR`: also another build of the sidecar (DIR/bin/mullvad-sidecar, e.g. a
// copy of main's bin and dist/bundle), in the same alternation: before/after in one run.
//   node dist/bench/ready.js [--runs N] [--compare DIR]
import { fileURLToPath } from 'node:url';
import type { Lab, LabRelay } from '../src/lab/lab.js';
import { labUp } from '../src/lab/lab.js';
import { BIN, startSidecarInLab } from '../src/lab/run-sidecar.js';
import { makeBaseline } from './lib/baseline.js';
import { freshPod } from './lib/pod.js';
import type { ReadyProbeConfig, ReadyProbeResult } from './lib/ready-probe.js';
import { arg, fmt, say, sleep, summary, type Summary } from './lib/stats.js';

const PROBE = fileURLToPath(new URL('./lib/ready-probe.js', import.meta.url));

/** Where the sidecar's time goes: ms after spawn of the first line of its log with each message. */
const MILESTONES: Record<string, RegExp> = {
  'kill switch installed': /^firewall applied$/,
  'connecting (interface next)': /^state blocked → connecting$/,
  'connected (handshake done)': /^state connecting → connected$/,
  'exit verified': /^exit verified$/,
};

function milestones(logs: string, t0: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of logs.split('\n')) {
    try {
      const j = JSON.parse(line) as { time?: string; msg?: string };
      for (const [name, re] of Object.entries(MILESTONES)) if (out[name] === undefined && re.test(j.msg ?? '') && j.time) out[name] = Date.parse(j.time) - t0;
    } catch {
      // not a log line
    }
  }
  return out;
}

export interface ReadyResult {
  runs: number;
  /** Median ms after spawn of each milestone of the sidecar's log. */
  breakdown: Record<string, Summary>;
  sidecarHttpMs: Summary;
  sidecarReadyMs: Summary;
  baselineHttpMs: Summary;
  /** sidecar median / baseline median (first tunnelled HTTP). */
  ratio: number;
  /** The other build (--compare), measured in the same alternation. */
  compare?: { bin: string; breakdown: Record<string, Summary>; httpMs: Summary; readyMs: Summary; ratio: number };
}

async function startProbe(lab: Lab, cfg: ReadyProbeConfig): Promise<() => Promise<ReadyProbeResult>> {
  const child = lab.podSpawn([process.execPath, PROBE, JSON.stringify(cfg)]);
  const t0 = Date.now();
  while (!child.output().includes('PROBING')) {
    if (!child.running || Date.now() - t0 > 10_000) throw new Error(`ready probe did not start: ${child.output()}`);
    await sleep(5);
  }
  return async () => {
    await child.exited;
    const line = child.output().split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`ready probe gave no result: ${child.output()}`);
    return JSON.parse(line.slice(7)) as ReadyProbeResult;
  };
}

interface SidecarRun {
  http: number;
  ready: number;
  steps: Record<string, number>;
}

async function sidecarRun(lab: Lab, relay: LabRelay, bin = BIN): Promise<SidecarRun> {
  await freshPod(lab);
  const done = await startProbe(lab, { url: lab.checkUrl, relayIps: lab.relays.map((r) => r.ip), readyUrl: 'http://127.0.0.1:9999/readyz' });
  const t0 = Date.now();
  const sc = startSidecarInLab(lab, { SERVER: relay.name, LOG_LEVEL: 'info', LOG_FORMAT: 'json' }, [bin, 'run']);
  try {
    const r = await done();
    if (r.firstTunnelHttp === undefined || r.firstReady === undefined) throw new Error(`sidecar not ready: ${JSON.stringify(r)}\n${sc.logs()}`);
    return { http: r.firstTunnelHttp - t0, ready: r.firstReady - t0, steps: milestones(sc.logs(), t0) };
  } finally {
    await sc.stop('SIGTERM');
  }
}

async function baselineRun(lab: Lab, relay: LabRelay): Promise<number> {
  await freshPod(lab);
  const b = await makeBaseline(lab, relay);
  const done = await startProbe(lab, { url: lab.checkUrl, relayIps: lab.relays.map((r) => r.ip) });
  const t0 = Date.now();
  try {
    await b.up();
    const r = await done();
    if (r.firstTunnelHttp === undefined) throw new Error(`wg-quick tunnel never carried HTTP: ${JSON.stringify(r)}`);
    return r.firstTunnelHttp - t0;
  } finally {
    await b.cleanup();
  }
}

export async function benchReady(lab: Lab, runs: number, compareBin?: string): Promise<ReadyResult> {
  const relay = lab.relays[0]!;
  const sc: SidecarRun[] = [];
  const other: SidecarRun[] = [];
  const base: number[] = [];
  // One unmeasured round each: page cache, JIT of the lab tools.
  await sidecarRun(lab, relay);
  if (compareBin) await sidecarRun(lab, relay, compareBin);
  await baselineRun(lab, relay);
  for (let i = 1; i <= runs; i++) {
    const s = await sidecarRun(lab, relay);
    const o = compareBin ? await sidecarRun(lab, relay, compareBin) : undefined;
    const b = await baselineRun(lab, relay);
    sc.push(s);
    if (o) other.push(o);
    base.push(b);
    say(`  run ${i}: sidecar first tunnelled HTTP ${s.http} ms, /readyz 200 ${s.ready} ms;${o ? ` other build ${o.http} ms, /readyz ${o.ready} ms;` : ''} wg-quick + nft ${b} ms`);
  }
  await freshPod(lab);
  const breakdownOf = (xs: SidecarRun[]) => Object.fromEntries(Object.keys(MILESTONES).map((k) => [k, summary(xs.map((x) => x.steps[k] ?? NaN))]));
  const breakdown = breakdownOf(sc);
  const baselineHttpMs = summary(base);
  const result: ReadyResult = {
    runs,
    breakdown,
    sidecarHttpMs: summary(sc.map((x) => x.http)),
    sidecarReadyMs: summary(sc.map((x) => x.ready)),
    baselineHttpMs,
    ratio: summary(sc.map((x) => x.http)).median / baselineHttpMs.median,
  };
  if (compareBin) {
    const httpMs = summary(other.map((x) => x.http));
    result.compare = { bin: compareBin, breakdown: breakdownOf(other), httpMs, readyMs: summary(other.map((x) => x.ready)), ratio: httpMs.median / baselineHttpMs.median };
  }
  const show = (b: Record<string, Summary>) => Object.entries(b).map(([k, v]) => `${k} ${fmt(v, ' ms')}`).join(', ');
  say(`  sidecar milestones after spawn: ${show(breakdown)}`);
  say(`  sidecar: first HTTP ${fmt(result.sidecarHttpMs, ' ms')}, /readyz ${fmt(result.sidecarReadyMs, ' ms')}; wg-quick: ${fmt(result.baselineHttpMs, ' ms')}; ratio ${result.ratio.toFixed(2)}`);
  const c = result.compare;
  if (c) {
    say(`  other build (${c.bin}) milestones: ${show(c.breakdown)}`);
    say(`  other build: first HTTP ${fmt(c.httpMs, ' ms')}, /readyz ${fmt(c.readyMs, ' ms')}; ratio ${c.ratio.toFixed(2)}`);
  }
  return result;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const compare = arg(argv, '--compare', '');
  (async () => {
    const lab = await labUp({ relays: 1 });
    try {
      await benchReady(lab, Number(arg(argv, '--runs', '5')), compare ? `${compare}/bin/mullvad-sidecar` : undefined);
    } finally {
      await lab.down();
    }
  })().catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  });
}
