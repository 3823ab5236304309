// Resident memory of the sidecar's Node.js process, connected and idle, then under
// DNS load through the forwarder, side by side in one lab and one invocation:
//   - sidecar: bin/mullvad-sidecar (the shipped bundle and node flags)
//   - unbundled: the same flags running tsc's output (dist/src/cli/main.js)
//   - bare node: the same flags, an empty event loop (the floor)
//   node dist/bench/memory.js [--runs N] [--idle-seconds S] [--dns-seconds S]
import { fileURLToPath } from 'node:url';
import type { Lab } from '../src/lab/lab.js';
import { startSidecarInLab } from '../src/lab/run-sidecar.js';
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
  qps: Summary;
}

interface RunFigures {
  idle: number;
  idleAnon: number;
  dnsPeak: number;
  qps: number;
}

async function oneRun(lab: Lab, argv: string[] | undefined, o: { idleSeconds: number; dnsSeconds: number }): Promise<RunFigures> {
  await freshPod(lab);
  const sc = startSidecarInLab(lab, { ...TUNED, LOG_LEVEL: 'info' }, argv);
  try {
    await sc.waitReady(30_000);
    await sleep(5000); // start-up garbage and JIT settle
    let sampler = new ProcSampler(sc.child.pid, 1000);
    await sleep(o.idleSeconds * 1000);
    const idleCost = await sampler.stop();
    const idle = idleCost.rssMiB.median;
    const idleAnon = idleCost.anonMiB.median;
    let dnsPeak = NaN;
    let qps = NaN;
    if (o.dnsSeconds > 0) {
      sampler = new ProcSampler(sc.child.pid, 500);
      qps = (await podTool<DnsLoadResult>(lab, DNS_LOAD, { server: lab.clusterDns, seconds: o.dnsSeconds, concurrency: 32 })).qps;
      dnsPeak = (await sampler.stop()).rssMiB.max;
    }
    return { idle, idleAnon, dnsPeak, qps };
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
    return { idle: c.rssMiB.median, idleAnon: c.anonMiB.median, dnsPeak: NaN, qps: NaN };
  } finally {
    await child.stop(500);
  }
}

export async function benchMemory(lab: Lab, runs: number, o: { idleSeconds: number; dnsSeconds: number }): Promise<Record<string, MemoryFigures>> {
  const variants: [string, string[] | undefined][] = [['sidecar (bin/mullvad-sidecar)', undefined], ['unbundled (dist/src/cli/main.js)', UNBUNDLED]];
  const raw: Record<string, RunFigures[]> = { 'bare node': [] };
  for (const [name] of variants) raw[name] = [];
  for (let i = 1; i <= runs; i++) {
    for (const [name, argv] of variants) raw[name]!.push(await oneRun(lab, argv, o));
    raw['bare node']!.push(await bareNode(lab, Math.min(o.idleSeconds, 5)));
    say(`  run ${i}: ${Object.entries(raw).map(([k, xs]) => `${k} idle ${xs.at(-1)!.idle.toFixed(1)} MiB (anon ${xs.at(-1)!.idleAnon.toFixed(1)})${Number.isFinite(xs.at(-1)!.dnsPeak) ? `, DNS load peak ${xs.at(-1)!.dnsPeak.toFixed(1)} MiB at ${xs.at(-1)!.qps.toFixed(0)} q/s` : ''}`).join('; ')}`);
  }
  const out = Object.fromEntries(Object.entries(raw).map(([k, xs]) => [k, { idle: summary(xs.map((x) => x.idle)), idleAnon: summary(xs.map((x) => x.idleAnon)), dnsPeak: summary(xs.map((x) => x.dnsPeak)), qps: summary(xs.map((x) => x.qps)) }]));
  for (const [k, f] of Object.entries(out)) say(`  ${k.padEnd(34)} idle ${fmt(f.idle, ' MiB', 1)}, of it anonymous ${fmt(f.idleAnon, ' MiB', 1)}${f.dnsPeak.n ? `, DNS load peak ${fmt(f.dnsPeak, ' MiB', 1)} at ${fmt(f.qps, ' q/s')}` : ''}`);
  return out;
}

await runStandalone(import.meta.url, (lab, argv) =>
  benchMemory(lab, Number(arg(argv, '--runs', '3')), { idleSeconds: Number(arg(argv, '--idle-seconds', '20')), dnsSeconds: Number(arg(argv, '--dns-seconds', '10')) }),
);
