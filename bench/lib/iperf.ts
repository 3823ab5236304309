// iperf3 from the lab's pod to the internet host (server on port 5201 there), and
// waiting until a tunnel carries HTTP: shared by the throughput and data-path benchmarks.
import type { Lab } from '../../src/lab/lab.js';
import { sleep } from './stats.js';

export const IPERF_PORT = 5201;

export interface IperfRun {
  /** Received, Mbit/s. */
  mbit: number;
  bytes: number;
  /** CPU seconds (user + system) of the iperf3 client in the pod, from its own report. */
  clientCpuSeconds: number;
}

/** Mbit/s received; reverse = internet → pod. */
export async function iperf(lab: Lab, seconds: number, reverse: boolean): Promise<number> {
  return (await iperfRun(lab, seconds, reverse)).mbit;
}

export async function iperfRun(lab: Lab, seconds: number, reverse: boolean): Promise<IperfRun> {
  const argv = ['iperf3', '-c', lab.internet.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-J', ...(reverse ? ['-R'] : [])];
  for (let attempt = 1; ; attempt++) {
    const r = await lab.podExec(argv, { allowFailure: true, readOnly: true, timeoutMs: seconds * 1000 + 20_000 });
    let doc: IperfJson;
    try {
      doc = JSON.parse(r.stdout) as IperfJson;
    } catch {
      doc = { error: `no JSON: ${r.stderr.trim()}` };
    }
    const recv = doc.end?.sum_received;
    if (recv?.bits_per_second !== undefined) {
      const secs = doc.end?.sum_sent?.seconds ?? recv.seconds ?? seconds;
      return { mbit: recv.bits_per_second / 1e6, bytes: recv.bytes ?? 0, clientCpuSeconds: ((doc.end?.cpu_utilization_percent?.host_total ?? NaN) / 100) * secs };
    }
    if (attempt >= 3) throw new Error(`iperf3 ${reverse ? '-R ' : ''}failed: ${doc.error ?? 'no result'}`);
    await sleep(500); // "the server is busy": the previous test is still closing
  }
}

interface IperfJson {
  end?: {
    sum_received?: { bits_per_second?: number; bytes?: number; seconds?: number };
    sum_sent?: { seconds?: number };
    cpu_utilization_percent?: { host_total?: number };
  };
  error?: string;
}

export async function waitTunnel(lab: Lab): Promise<void> {
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    const r = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 1000 });
    if (r.ok && lab.relays.some((x) => x.ip === (r.json as { ip?: string }).ip)) return;
    await sleep(100);
  }
  throw new Error('wg-quick tunnel did not carry traffic');
}
