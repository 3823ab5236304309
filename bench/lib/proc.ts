// Resident memory and CPU time of one process, from /proc (no tools needed), and
// finding the sidecar's own Node.js process among the lab pod's processes.
import { readFile } from 'node:fs/promises';
import type { Lab } from '../../src/lab/lab.js';
import { ExecRunner } from '../../src/system/runner.js';
import { summary, type Summary } from './stats.js';

const CLK_TCK = 100; // Linux USER_HZ on every architecture we run on (getconf CLK_TCK)

export interface ProcSample {
  t: number;
  rssKiB: number;
  /** The anonymous part of the RSS: what this process alone costs. The rest is file pages
   *  (the node binary) that every process of the same image on a node shares. */
  anonKiB: number;
  /** utime + stime in seconds. */
  cpuSeconds: number;
}

export async function sampleProc(pid: number): Promise<ProcSample | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
    const anon = Number(/^RssAnon:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { t: Date.now(), rssKiB: rss, anonKiB: anon, cpuSeconds: ticks / CLK_TCK };
  } catch {
    return undefined; // the process is gone
  }
}

/** The PID of `mullvad-sidecar run` in the lab's pod (ip netns pids: never a host-wide search). */
export async function sidecarPid(lab: Lab): Promise<number> {
  const r = await new ExecRunner().run(['ip', 'netns', 'pids', lab.ns.pod], { allowFailure: true, readOnly: true });
  for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    // bin/mullvad-sidecar is a sh launcher that execs node on bin/mullvad-sidecar.mjs (same pid).
    if (cmd.some((a) => a.endsWith('mullvad-sidecar') || a.endsWith('mullvad-sidecar.mjs')) && cmd.includes('run') && !cmd.includes('--pdeathsig') && !cmd.includes('netns')) return Number(pid);
  }
  throw new Error(`no mullvad-sidecar run process in ${lab.ns.pod}`);
}

/** Samples a process every `everyMs` until stop() is called. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  constructor(readonly pid: number, everyMs = 1000) {
    const take = async () => {
      const s = await sampleProc(pid);
      if (s) this.samples.push(s);
    };
    void take();
    this.timer = setInterval(() => void take(), everyMs);
  }
  async stop(): Promise<ProcCost> {
    clearInterval(this.timer);
    const s = await sampleProc(this.pid);
    if (s) this.samples.push(s);
    return procCost(this.samples);
  }
}

export interface ProcCost {
  rssMiB: Summary;
  anonMiB: Summary;
  /** Average CPU over the window, % of one core. */
  cpuPercent: number;
  seconds: number;
}

export function procCost(samples: readonly ProcSample[]): ProcCost {
  const first = samples[0];
  const last = samples.at(-1);
  const seconds = first && last ? (last.t - first.t) / 1000 : 0;
  return {
    rssMiB: summary(samples.map((s) => s.rssKiB / 1024)),
    anonMiB: summary(samples.map((s) => s.anonKiB / 1024)),
    cpuPercent: first && last && seconds > 0 ? ((last.cpuSeconds - first.cpuSeconds) / seconds) * 100 : NaN,
    seconds,
  };
}
