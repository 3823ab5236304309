// The health port under abuse, without the lab: the health server alone in a
// process (bench/lib/health-server-child.ts), abused by another (1,000 requests in
// bursts or kept in flight, 200 slowloris, malformed requests) while a third probes
// /healthz every 50 ms as the kubelet would. Variants of the server's limits run
// alternately in one invocation, so their figures compare side by side:
//
//   node dist/bench/health.js [--rounds N] [--seconds S] [--mode burst|sustained] [--variants a,b] [--base DIST]
//                             [--probe-source 127.0.0.2] [--netns NAME] [--node-flags "F"]...
//
// The abuser connects from 127.0.0.1; `--probe-source` puts the prober on another
// source address (as the kubelet, from the node's IP, is), so admission by source
// can tell them apart. `--netns NAME` (root) runs every variant in a fresh network
// namespace of that name (lo only, removed at the end), which the `kernel-cap`
// variant needs: it loads an nftables table there that caps new connections per
// source address (`ct count`) before the accept queue.
//
// --node-flags "F" (repeatable) adds a variant named "+F": the shipped limits, node run with
// the sidecar's flags plus F (e.g. "--max-opt=1 --optimize-for-size", LOW_MEMORY's).
//
// Prints, per variant: probes and their statuses, p50/p99/max over all rounds
// (median [min–max] of the per-round p99), the flood's statuses, and the server's CPU.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startChild, type ChildHandle } from '../src/system/process.js';
import { ExecRunner } from '../src/system/runner.js';
import { renderHealthCapRules, renderHealthCapSets } from '../src/firewall/health-cap.js';
import { HEALTH_CAP_PER_SOURCE } from '../src/firewall/policy.js';
import type { Limits } from '../src/health/server.js';
import type { AbuseConfig, AbuseResult } from './lib/health-abuse-client.js';
import type { ProbeResult } from './lib/health-prober.js';
import { ProcSampler } from './lib/proc.js';
import { arg, fmt, percentile, say, sleep, summary } from './lib/stats.js';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const SERVER = here('./lib/health-server-child.js');
const ABUSE = here('./lib/health-abuse-client.js');
const PROBER = here('./lib/health-prober.js');
/** The V8 flags the sidecar runs with (bin/mullvad-sidecar's exec line): a 1 MiB young generation collects often under a flood. */
export const SIDECAR_NODE_FLAGS = (/^exec node ((?:--\S+ )*)"/m.exec(readFileSync(here('../../bin/mullvad-sidecar'), 'utf8'))?.[1] ?? '').trim().split(' ').filter(Boolean);

/**
 * Limits of each variant, all of this build. `--base DIST` adds 'base': the same child
 * script run from another build's dist (e.g. main before a change; copy
 * dist/bench/lib/health-server-child.js into it).
 */
export interface Variant {
  limits: Partial<Limits>;
  script?: string;
  flags?: string[];
  floor?: boolean;
  /** An nftables ruleset loaded in the bench's namespace for this variant's rounds (needs --netns). */
  nft?: string;
}

/** The port the server listens on inside --netns (a fresh namespace: free), so the cap's rules can name it. */
const NETNS_PORT = 9999;
/**
 * The sidecar's own cap (src/firewall/health-cap.ts: the same sets and rules) in a table of its
 * own, on every interface: in the sidecar, loopback is accepted before it; here the abuser and
 * the prober stand for two addresses of the pod's network (the kubelet's and a flooder's).
 */
const KERNEL_CAP_TABLE = [
  'table inet bench_health_cap {',
  ...renderHealthCapSets(),
  '\tchain input {',
  '\t\ttype filter hook input priority filter; policy accept;',
  ...renderHealthCapRules({ port: NETNS_PORT, perSource: HEALTH_CAP_PER_SOURCE }).map((r) => `\t\t${r}`),
  '\t}',
  '}',
  '',
].join('\n');

export const VARIANTS: Record<string, Variant> = {
  'no-cache': { limits: { renderCacheMs: 0 } },
  cache: { limits: { renderCacheMs: 250 } },
  /** What the sidecar's small young generation costs under a flood (not a shipped variant). */
  'cache-v8-defaults': { limits: { renderCacheMs: 250 }, flags: [] },
  /** 127.0.0.0/8 treated as the pod's network: the sidecar's cap per source address (32) applies at accept. */
  'source-cap': { limits: { renderCacheMs: 250, trustLoopback: false } },
  /** The kernel drops SYNs beyond HEALTH_CAP_PER_SOURCE connections per source address, as the sidecar's ruleset does (needs --netns). */
  'kernel-cap': { limits: { renderCacheMs: 250 }, nft: KERNEL_CAP_TABLE },
  /** Not a server: a fixed 200 from `net` (no HTTP parser, no limits), Node's floor per connection. */
  'net-floor': { limits: {}, floor: true },
};

async function waitLine(child: ChildHandle, prefix: string, what: string): Promise<string> {
  for (;;) {
    const line = child.output().split('\n').find((l) => l.startsWith(prefix));
    if (line) return line.slice(prefix.length);
    if (!child.running) throw new Error(`${what} exited: ${child.output().slice(-500)}`);
    await sleep(20);
  }
}

/** `ip netns exec NAME` before every child's argv when --netns is given. */
let inNs: string[] = [];

async function tool<T>(script: string, cfg: unknown): Promise<T> {
  const child = startChild([...inNs, process.execPath, script, JSON.stringify(cfg)]);
  await child.exited;
  return JSON.parse(await waitLine(child, 'RESULT ', script)) as T;
}

interface Round {
  probe: ProbeResult;
  abuse: AbuseResult;
  cpuPercent: number;
  /** The server's CPU time per request it answered (flood, malformed, probes), µs: what the load on the machine does not change. */
  usPerRequest: number;
}

const runner = new ExecRunner();

async function round(v: Variant, mode: 'burst' | 'sustained', seconds: number, probeSource: string): Promise<Round> {
  if (v.nft) await runner.run([...inNs, 'nft', '-f', '-'], { stdin: v.nft });
  const server = startChild([...inNs, process.execPath, ...(v.flags ?? SIDECAR_NODE_FLAGS), v.script ?? SERVER, JSON.stringify({ limits: v.limits, floor: v.floor ?? false, ...(inNs.length ? { port: NETNS_PORT } : {}) })]);
  try {
    const port = Number(await waitLine(server, 'PORT ', 'health server'));
    await sleep(500);
    const sampler = new ProcSampler(server.pid, 1000);
    const abuseCfg: AbuseConfig = { host: '127.0.0.1', port, seconds, slowloris: 200, flood: 1000, floodMode: mode, burstEveryMs: 2000, probeEveryMs: 1000 };
    const [abuse, probe] = await Promise.all([tool<AbuseResult>(ABUSE, abuseCfg), tool<ProbeResult>(PROBER, { host: '127.0.0.1', port, seconds, everyMs: 50, ...(probeSource ? { localAddress: probeSource } : {}) })]);
    const cost = await sampler.stop();
    const requests = abuse.floodDone + abuse.malformedSent + abuse.probes + probe.probes;
    return { probe, abuse, cpuPercent: cost.cpuPercent, usPerRequest: ((cost.cpuPercent / 100) * cost.seconds * 1e6) / requests };
  } finally {
    await server.stop(2000);
    if (v.nft) await runner.run([...inNs, 'nft', 'delete', 'table', 'inet', 'bench_health_cap'], { allowFailure: true });
  }
}

export async function main(argv: string[]): Promise<void> {
  const rounds = Number(arg(argv, '--rounds', '3'));
  const seconds = Number(arg(argv, '--seconds', '10'));
  const mode = arg(argv, '--mode', 'burst') as 'burst' | 'sustained';
  const base = arg(argv, '--base', '');
  if (base) VARIANTS['base'] = { limits: {}, script: `${base.replace(/\/$/, '')}/bench/lib/health-server-child.js` };
  const probeSource = arg(argv, '--probe-source', '');
  const netns = arg(argv, '--netns', '');
  const extra = argv.flatMap((a, i) => (a === '--node-flags' && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));
  for (const f of extra) VARIANTS[`+${f}`] = { limits: {}, flags: [...SIDECAR_NODE_FLAGS, ...f.split(' ').filter(Boolean)] };
  const names = [...arg(argv, '--variants', Object.keys(VARIANTS).filter((n) => !VARIANTS[n]!.nft && !n.startsWith('+')).join(',')).split(',').filter(Boolean), ...extra.map((f) => `+${f}`)];
  for (const n of names) if (!VARIANTS[n]) throw new Error(`unknown variant ${n}; known: ${Object.keys(VARIANTS).join(', ')}`);
  if (!netns && names.some((n) => VARIANTS[n]!.nft)) throw new Error('a variant with an nftables table needs --netns NAME (it is never loaded in this namespace)');
  if (netns) {
    await runner.run(['ip', 'netns', 'add', netns]);
    inNs = ['ip', 'netns', 'exec', netns];
    await runner.run([...inNs, 'ip', 'link', 'set', 'lo', 'up']);
  }
  try {
    await rounds_(names, rounds, seconds, mode, probeSource);
  } finally {
    if (netns) await runner.run(['ip', 'netns', 'delete', netns], { allowFailure: true });
  }
}

async function rounds_(names: string[], rounds: number, seconds: number, mode: 'burst' | 'sustained', probeSource: string): Promise<void> {
  say(`server: node ${SIDECAR_NODE_FLAGS.join(' ')} (the sidecar's flags) unless the variant says otherwise`);
  if (probeSource) say(`the prober connects from ${probeSource}, the abuser from 127.0.0.1`);
  say(`health port under abuse (${mode}: 1,000 ${mode === 'burst' ? 'concurrent every 2 s' : 'in flight'} + 200 slowloris + malformed), ${rounds} rounds of ${seconds} s per variant, alternating; /healthz every 50 ms from its own process`);
  const results = new Map<string, Round[]>(names.map((n) => [n, []]));
  for (let i = 0; i < rounds; i++)
    for (const n of i % 2 ? [...names].reverse() : names) {
      const r = await round(VARIANTS[n]!, mode, seconds, probeSource);
      results.get(n)!.push(r);
      say(`  round ${i + 1} ${n}: ${r.probe.probes} probes ${JSON.stringify(r.probe.statuses)}, p50 ${percentile(r.probe.ms, 50)} ms, p99 ${percentile(r.probe.ms, 99)} ms, max ${Math.max(...r.probe.ms)} ms; flood ${r.abuse.floodDone} ${JSON.stringify(r.abuse.floodStatuses)}; server CPU ${r.cpuPercent.toFixed(0)}%, ${r.usPerRequest.toFixed(0)} µs per request`);
    }
  say('\nsummary (per-round figures: median [min–max]; all probes pooled for the overall p99):');
  for (const [n, rs] of results) {
    const all = rs.flatMap((r) => r.probe.ms);
    const statuses: Record<string, number> = {};
    const flood: Record<string, number> = {};
    for (const r of rs) {
      for (const [k, v] of Object.entries(r.probe.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.abuse.floodStatuses)) flood[k] = (flood[k] ?? 0) + v;
    }
    say(
      `  ${n.padEnd(12)} probes ${all.length} ${JSON.stringify(statuses)}; p50 ${fmt(summary(rs.map((r) => percentile(r.probe.ms, 50))), ' ms', 1)}; ` +
        `p99 ${fmt(summary(rs.map((r) => percentile(r.probe.ms, 99))), ' ms', 1)} (pooled ${percentile(all, 99)} ms); max ${Math.max(...all)} ms; ` +
        `flood ${JSON.stringify(flood)}; server CPU ${fmt(summary(rs.map((r) => r.cpuPercent)), '%')}, ${fmt(summary(rs.map((r) => r.usPerRequest)), ' µs')} per request`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`bench/health: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  });
