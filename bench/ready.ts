// Time to ready: from process start to the first HTTP request through the tunnel
// succeeding (and to /readyz = 200), the sidecar versus `wg-quick up` plus an
// equivalent nftables kill switch, alternating, in one lab. Every run starts from
// a fresh pod namespace state (no table, no tunnel) like a new pod.
import { fileURLToPath } from 'node:url';
import type { Lab, LabRelay } from '../src/lab/lab.js';
import { startSidecarInLab } from '../src/lab/run-sidecar.js';
import { makeBaseline } from './lib/baseline.js';
import { freshPod } from './lib/pod.js';
import type { ReadyProbeConfig, ReadyProbeResult } from './lib/ready-probe.js';
import { fmt, say, sleep, summary, type Summary } from './lib/stats.js';

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

async function sidecarRun(lab: Lab, relay: LabRelay): Promise<{ http: number; ready: number; steps: Record<string, number> }> {
  await freshPod(lab);
  const done = await startProbe(lab, { url: lab.checkUrl, relayIps: lab.relays.map((r) => r.ip), readyUrl: 'http://127.0.0.1:9999/readyz' });
  const t0 = Date.now();
  const sc = startSidecarInLab(lab, { SERVER: relay.name, LOG_LEVEL: 'info', LOG_FORMAT: 'json' });
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

export async function benchReady(lab: Lab, runs: number): Promise<ReadyResult> {
  const relay = lab.relays[0]!;
  const sc: { http: number; ready: number; steps: Record<string, number> }[] = [];
  const base: number[] = [];
  // One unmeasured round each: page cache, JIT of the lab tools.
  await sidecarRun(lab, relay);
  await baselineRun(lab, relay);
  for (let i = 1; i <= runs; i++) {
    const s = await sidecarRun(lab, relay);
    const b = await baselineRun(lab, relay);
    sc.push(s);
    base.push(b);
    say(`  run ${i}: sidecar first tunnelled HTTP ${s.http} ms, /readyz 200 ${s.ready} ms; wg-quick + nft ${b} ms`);
  }
  await freshPod(lab);
  const breakdown = Object.fromEntries(Object.keys(MILESTONES).map((k) => [k, summary(sc.map((x) => x.steps[k] ?? NaN))]));
  const result: ReadyResult = {
    runs,
    breakdown,
    sidecarHttpMs: summary(sc.map((x) => x.http)),
    sidecarReadyMs: summary(sc.map((x) => x.ready)),
    baselineHttpMs: summary(base),
    ratio: summary(sc.map((x) => x.http)).median / summary(base).median,
  };
  say(`  sidecar milestones after spawn (median): ${Object.entries(breakdown).map(([k, v]) => `${k} ${v.median.toFixed(0)} ms`).join(', ')}`);
  say(`  sidecar: first HTTP ${fmt(result.sidecarHttpMs, ' ms')}, /readyz ${fmt(result.sidecarReadyMs, ' ms')}; wg-quick: ${fmt(result.baselineHttpMs, ' ms')}; ratio ${result.ratio.toFixed(2)}`);
  return result;
}
