// Resident memory of the sidecar's Node.js process, connected and idle, then under
// DNS load through the forwarder, side by side in one lab and one invocation:
//   - sidecar: bin/mullvad-sidecar (the shipped bundle and node flags)
//   - unbundled: the same flags running tsc's output (dist/src/cli/main.js)
//   - bare node: the same flags, an empty event loop (the floor)
//   - with --flags "F": the bin script run by node with the same flags plus F (a V8
//     flag measured side by side before it goes into the bin script)
//   - with --bin P: another build's bin script, run as it is (e.g. a checkout of the
//     commit before a change: before and after in one run)
//   - with --variant "K=V ... --flag ...", repeatable: node with the same flags plus
//     the given ones, in an environment with K=V added (e.g. "MALLOC_ARENA_MAX=2":
//     glibc tunables are environment variables); without flags, the launcher itself in
//     that environment (e.g. "LOW_MEMORY=true")
//   node dist/bench/memory.js [--runs N] [--idle-seconds S] [--dns-seconds S] [--flags "F"] [--variant "V"]... [--bin P] [--no-unbundled]
import { fileURLToPath } from 'node:url';
import type { Lab } from '../src/lab/lab.js';
import { BIN, startSidecarInLab } from '../src/lab/run-sidecar.js';
import { DNS_LOAD, podTool, TUNED } from './controller.js';
import type { DnsLoadResult } from './lib/dns-load.js';
import { freshPod } from './lib/pod.js';
import { ProcSampler } from './lib/proc.js';
import { runStandalone } from './lib/standalone.js';
import { arg, fmt, say, sleep, summary, type Summary } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=64'];
const UNBUNDLED = [process.execPath, ...NODE_FLAGS, '--input-type=module', '-e', `import('${ROOT}dist/src/cli/main.js').then((m) => m.main(['run']))`];

export interface MemoryFigures {
  /** Median RSS of each run's samples, MiB. */
  idle: Summary;
  /** Median anonymous RSS (what one replica alone costs; the rest is the node binary's pages, shared), MiB. */
  idleAnon: Summary;
  /** Peak RSS of each run under DNS load, MiB. */
  dnsPeak: Summary;
  /** Peak anonymous RSS under DNS load, MiB. */
  dnsPeakAnon: Summary;
  qps: Summary;
  /** The sidecar's CPU time per 1,000 answered queries under DNS load, ms: throughput as cost, steadier than q/s on a loaded machine. */
  cpuPerKq: Summary;
}

interface RunFigures {
  idle: number;
  idleAnon: number;
  dnsPeak: number;
  dnsPeakAnon: number;
  qps: number;
  cpuPerKq: number;
}

async function oneRun(lab: Lab, argv: string[] | undefined, env: Record<string, string>, o: { idleSeconds: number; dnsSeconds: number }): Promise<RunFigures> {
  await freshPod(lab);
  const sc = startSidecarInLab(lab, { ...TUNED, LOG_LEVEL: 'info', ...env }, argv);
  try {
    await sc.waitReady(30_000);
    await sleep(5000); // start-up garbage and JIT settle
    let sampler = new ProcSampler(sc.child.pid, 1000);
    await sleep(o.idleSeconds * 1000);
    const idleCost = await sampler.stop();
    const idle = idleCost.rssMiB.median;
    const idleAnon = idleCost.anonMiB.median;
    let dnsPeak = NaN;
    let dnsPeakAnon = NaN;
    let qps = NaN;
    let cpuPerKq = NaN;
    if (o.dnsSeconds > 0) {
      sampler = new ProcSampler(sc.child.pid, 500);
      const r = await podTool<DnsLoadResult>(lab, DNS_LOAD, { server: lab.clusterDns, seconds: o.dnsSeconds, concurrency: 32 });
      qps = r.qps;
      const load = await sampler.stop();
      cpuPerKq = ((load.cpuPercent / 100) * load.seconds * 1000) / (r.answered / 1000);
      dnsPeak = load.rssMiB.max;
      dnsPeakAnon = load.anonMiB.max;
    }
    return { idle, idleAnon, dnsPeak, dnsPeakAnon, qps, cpuPerKq };
  } finally {
    await sc.stop('SIGTERM');
    await freshPod(lab);
  }
}

async function bareNode(lab: Lab, seconds: number): Promise<RunFigures> {
  const child = lab.podSpawn([process.execPath, ...NODE_FLAGS, '-e', 'setInterval(() => {}, 1000)']);
  try {
    await sleep(1000);
    const sampler = new ProcSampler(child.pid, 1000);
    await sleep(seconds * 1000);
    const c = await sampler.stop();
    return { idle: c.rssMiB.median, idleAnon: c.anonMiB.median, dnsPeak: NaN, dnsPeakAnon: NaN, qps: NaN, cpuPerKq: NaN };
  } finally {
    await child.stop(500);
  }
}

export interface MemoryOptions {
  idleSeconds: number;
  dnsSeconds: number;
  /** More node flags for an extra variant of the bin script (e.g. '--max-opt=1'). */
  flags?: string[];
  /** More variants, each "K=V ... --flag ...": environment additions and node flags. */
  variants?: string[];
  /** Another build's bin/mullvad-sidecar, run with the same flags. */
  otherBin?: string;
  unbundled?: boolean;
}

export async function benchMemory(lab: Lab, runs: number, o: MemoryOptions): Promise<Record<string, MemoryFigures>> {
  const variants: [string, string[] | undefined, Record<string, string>][] = [['sidecar (bin/mullvad-sidecar)', undefined, {}]];
  // The launcher's node command with more flags (the Node.js lockdown-first instead of the launcher's: the same memory).
  const withNode = (flags: string[]): string[] => [process.execPath, ...NODE_FLAGS, ...flags, `${BIN}.mjs`, 'run'];
  if (o.flags?.length) variants.push([`sidecar + ${o.flags.join(' ')}`, withNode(o.flags), {}]);
  for (const v of o.variants ?? []) {
    const words = v.split(' ').filter(Boolean);
    const env = Object.fromEntries(words.filter((w) => !w.startsWith('-')).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
    const flags = words.filter((w) => w.startsWith('-'));
    // Environment alone: the launcher itself (e.g. "LOW_MEMORY=true", which it reads).
    variants.push([`sidecar + ${v}`, flags.length ? withNode(flags) : undefined, env]);
  }
  if (o.otherBin) variants.push([`other build (${o.otherBin})`, [o.otherBin, 'run'], {}]);
  if (o.unbundled !== false) variants.push(['unbundled (dist/src/cli/main.js)', UNBUNDLED, {}]);
  const raw: Record<string, RunFigures[]> = { 'bare node': [] };
  for (const [name] of variants) raw[name] = [];
  for (let i = 1; i <= runs; i++) {
    for (const [name, argv, env] of variants) raw[name]!.push(await oneRun(lab, argv, env, o));
    raw['bare node']!.push(await bareNode(lab, Math.min(o.idleSeconds, 5)));
    say(`  run ${i}: ${Object.entries(raw).map(([k, xs]) => `${k} idle ${xs.at(-1)!.idle.toFixed(1)} MiB (anon ${xs.at(-1)!.idleAnon.toFixed(1)})${Number.isFinite(xs.at(-1)!.dnsPeak) ? `, DNS load peak ${xs.at(-1)!.dnsPeak.toFixed(1)} MiB (anon ${xs.at(-1)!.dnsPeakAnon.toFixed(1)}) at ${xs.at(-1)!.qps.toFixed(0)} q/s, CPU ${xs.at(-1)!.cpuPerKq.toFixed(0)} ms per 1000` : ''}`).join('; ')}`);
  }
  const of = (xs: RunFigures[], f: keyof RunFigures): Summary => summary(xs.map((x) => x[f]));
  const out = Object.fromEntries(Object.entries(raw).map(([k, xs]) => [k, { idle: of(xs, 'idle'), idleAnon: of(xs, 'idleAnon'), dnsPeak: of(xs, 'dnsPeak'), dnsPeakAnon: of(xs, 'dnsPeakAnon'), qps: of(xs, 'qps'), cpuPerKq: of(xs, 'cpuPerKq') }]));
  for (const [k, f] of Object.entries(out)) say(`  ${k.padEnd(44)} idle ${fmt(f.idle, ' MiB', 1)}, of it anonymous ${fmt(f.idleAnon, ' MiB', 1)}${f.dnsPeak.n ? `; DNS load peak ${fmt(f.dnsPeak, ' MiB', 1)}, of it anonymous ${fmt(f.dnsPeakAnon, ' MiB', 1)}, at ${fmt(f.qps, ' q/s')}, sidecar CPU ${fmt(f.cpuPerKq, ' ms')} per 1000 queries` : ''}`);
  return out;
}

await runStandalone(import.meta.url, (lab, argv) =>
  benchMemory(lab, Number(arg(argv, '--runs', '3')), {
    idleSeconds: Number(arg(argv, '--idle-seconds', '20')),
    dnsSeconds: Number(arg(argv, '--dns-seconds', '10')),
    flags: arg(argv, '--flags', '').split(' ').filter(Boolean),
    variants: argv.flatMap((a, i) => (a === '--variant' && argv[i + 1] !== undefined ? [argv[i + 1]!] : [])),
    otherBin: arg(argv, '--bin', '') || undefined,
    unbundled: !argv.includes('--no-unbundled'),
  }),
);
