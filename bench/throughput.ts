// Throughput through the tunnel: iperf3 from the pod to the internet host (server
// in the internet namespace), both directions, sidecar-managed tunnel versus a
// wg-quick-managed one with the same wireguard-go and the MTU the sidecar chose,
// in one lab. The order alternates each round (neither side always runs first, right
// after the other's teardown) and each side settles before iperf3 starts (the
// sidecar's first seconds are start-up work, not its steady state). Besides Mbit/s,
// the CPU every process in the pod spent per MB carried (wireguard-go, iperf3, the
// sidecar's Node.js and the commands it ran): contention moves it far less.
//   node dist/bench/throughput.js [--runs N] [--seconds S] [--settle MS] [--node-stopped]
// --node-stopped adds a diagnostic variant: the sidecar's tunnel with its Node.js
// process stopped (SIGSTOP) during iperf3, i.e. without any of its periodic work.
import { readFile } from 'node:fs/promises';
import type { Lab, LabRelay } from '../src/lab/lab.js';
import { startSidecarInLab } from '../src/lab/run-sidecar.js';
import { ExecRunner } from '../src/system/runner.js';
import { makeBaseline } from './lib/baseline.js';
import { freshPod } from './lib/pod.js';
import { IPERF_PORT, iperfRun, waitTunnel } from './lib/iperf.js';
import { sidecarPid } from './lib/proc.js';
import { runStandalone } from './lib/standalone.js';
import { arg, fmt, say, sleep, summary, type Summary } from './lib/stats.js';

export interface ThroughputResult {
  seconds: number;
  runs: number;
  mtu: number;
  sidecarUp: Summary;
  sidecarDown: Summary;
  baselineUp: Summary;
  baselineDown: Summary;
  ratioUp: number;
  ratioDown: number;
  /** CPU of the pod's processes per MB carried, ms (upload). */
  sidecarCpuUp: Summary;
  baselineCpuUp: Summary;
  /** --node-stopped only. */
  nodeStoppedUp?: Summary;
}

export interface ThroughputOptions {
  /** ms between "ready" and the first iperf3 run. */
  settleMs?: number;
  nodeStopped?: boolean;
}

async function sidecarMtu(lab: Lab): Promise<number> {
  const r = await lab.podExec(['ip', '-j', 'link', 'show', 'dev', lab.sidecarInterface], { readOnly: true });
  return (JSON.parse(r.stdout) as { mtu: number }[])[0]!.mtu;
}

/** utime+stime of a process and of the children it has reaped (the commands it ran), seconds. */
async function cpuWithChildren(pid: string): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ');
  if (!f) return 0; // gone
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

async function podPids(lab: Lab): Promise<string[]> {
  const r = await new ExecRunner().run(['ip', 'netns', 'pids', lab.ns.pod], { allowFailure: true, readOnly: true });
  return r.stdout.split(/\s+/).filter(Boolean);
}

interface Run {
  mbit: number;
  /** ms of CPU per MB: every process in the pod before the run (+ iperf3's own client). */
  cpuMsPerMB: number;
  /** The same, by command name (node: the sidecar and the commands it ran). */
  byName: Record<string, number>;
}

async function measure(lab: Lab, seconds: number, reverse: boolean): Promise<Run> {
  const pids = await podPids(lab);
  const before = await Promise.all(pids.map(cpuWithChildren));
  const r = await iperfRun(lab, seconds, reverse);
  const after = await Promise.all(pids.map(cpuWithChildren));
  const mb = r.bytes / 1e6;
  const byName: Record<string, number> = { iperf3: (r.clientCpuSeconds * 1000) / mb };
  for (const [i, pid] of pids.entries()) {
    const name = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
    byName[name] = (byName[name] ?? 0) + (Math.max(0, after[i]! - before[i]!) * 1000) / mb;
  }
  return { mbit: r.mbit, cpuMsPerMB: Object.values(byName).reduce((a, b) => a + b, 0), byName };
}

export async function benchThroughput(lab: Lab, runs: number, seconds: number, o: ThroughputOptions = {}): Promise<ThroughputResult> {
  const relay: LabRelay = lab.relays[0]!;
  const settleMs = o.settleMs ?? 2000;
  const server = lab.nsSpawn(lab.ns.internet, ['iperf3', '-s', '-p', String(IPERF_PORT)]);
  const sc = { up: [] as Run[], down: [] as Run[], stopped: [] as Run[] };
  const base = { up: [] as Run[], down: [] as Run[] };
  let mtu = 0;
  const sidecarSide = async (): Promise<void> => {
    await freshPod(lab);
    const s = startSidecarInLab(lab, { SERVER: relay.name, LOG_LEVEL: 'warn' });
    try {
      await s.waitReady(30_000);
      mtu = await sidecarMtu(lab);
      await sleep(settleMs);
      sc.up.push(await measure(lab, seconds, false));
      sc.down.push(await measure(lab, seconds, true));
      if (o.nodeStopped) {
        const node = await sidecarPid(lab);
        process.kill(node, 'SIGSTOP');
        try {
          sc.stopped.push(await measure(lab, seconds, false));
        } finally {
          process.kill(node, 'SIGCONT');
        }
      }
    } finally {
      await s.stop('SIGTERM');
      await freshPod(lab);
    }
  };
  const baselineSide = async (): Promise<void> => {
    // The sidecar's MTU: known after its first run, which therefore comes first once.
    const b = await makeBaseline(lab, relay, mtu);
    try {
      await b.up();
      await waitTunnel(lab);
      await sleep(settleMs);
      base.up.push(await measure(lab, seconds, false));
      base.down.push(await measure(lab, seconds, true));
    } finally {
      await b.cleanup();
    }
  };
  try {
    await sleep(300);
    for (let i = 1; i <= runs; i++) {
      // Round 1 (and every odd round): sidecar first; even rounds: wg-quick first.
      const order = i % 2 === 1 || mtu === 0 ? [sidecarSide, baselineSide] : [baselineSide, sidecarSide];
      for (const side of order) await side();
      const u = (x: Run[]) => `${x.at(-1)!.mbit.toFixed(0)} (${x.at(-1)!.cpuMsPerMB.toFixed(2)} ms/MB: ${Object.entries(x.at(-1)!.byName).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})`;
      say(`  run ${i}${i % 2 === 0 ? ' (wg-quick first)' : ''}: sidecar ↑ ${u(sc.up)} ↓ ${sc.down.at(-1)!.mbit.toFixed(0)}${o.nodeStopped ? `, Node.js stopped ↑ ${u(sc.stopped)}` : ''}; wg-quick ↑ ${u(base.up)} ↓ ${base.down.at(-1)!.mbit.toFixed(0)} Mbit/s (MTU ${mtu})`);
    }
  } finally {
    await server.stop(500);
  }
  const m = (x: Run[]) => summary(x.map((r) => r.mbit));
  const c = (x: Run[]) => summary(x.map((r) => r.cpuMsPerMB));
  const r: ThroughputResult = {
    seconds,
    runs,
    mtu,
    sidecarUp: m(sc.up),
    sidecarDown: m(sc.down),
    baselineUp: m(base.up),
    baselineDown: m(base.down),
    ratioUp: m(sc.up).median / m(base.up).median,
    ratioDown: m(sc.down).median / m(base.down).median,
    sidecarCpuUp: c(sc.up),
    baselineCpuUp: c(base.up),
    ...(o.nodeStopped ? { nodeStoppedUp: m(sc.stopped) } : {}),
  };
  say(`  pod → internet: sidecar ${fmt(r.sidecarUp, ' Mbit/s')}, wg-quick ${fmt(r.baselineUp, ' Mbit/s')}, ratio ${r.ratioUp.toFixed(2)}`);
  say(`    CPU in the pod per MB: sidecar ${fmt(r.sidecarCpuUp, ' ms', 2)}, wg-quick ${fmt(r.baselineCpuUp, ' ms', 2)}, ratio ${(r.sidecarCpuUp.median / r.baselineCpuUp.median).toFixed(2)}`);
  if (r.nodeStoppedUp) say(`    sidecar with Node.js stopped: ${fmt(r.nodeStoppedUp, ' Mbit/s')}, ratio ${(r.nodeStoppedUp.median / r.baselineUp.median).toFixed(2)}; CPU per MB ${fmt(c(sc.stopped), ' ms', 2)}`);
  say(`  internet → pod: sidecar ${fmt(r.sidecarDown, ' Mbit/s')}, wg-quick ${fmt(r.baselineDown, ' Mbit/s')}, ratio ${r.ratioDown.toFixed(2)}`);
  return r;
}

await runStandalone(import.meta.url, async (lab, argv) => {
  const runs = Number(arg(argv, '--runs', '5'));
  const seconds = Number(arg(argv, '--seconds', '10'));
  say(`throughput, iperf3 ${seconds} s each way, ${runs} rounds, order alternating`);
  await benchThroughput(lab, runs, seconds, { settleMs: Number(arg(argv, '--settle', '2000')), nodeStopped: argv.includes('--node-stopped') });
});
