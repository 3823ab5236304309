// Throughput through the tunnel: iperf3 from the pod to the internet host (server
// in the internet namespace), both directions, sidecar-managed tunnel versus a
// wg-quick-managed one with the same wireguard-go and the MTU the sidecar chose,
// alternating in one lab. The ratio compares medians of the same invocation.
import type { Lab, LabRelay } from '../src/lab/lab.js';
import { startSidecarInLab } from '../src/lab/run-sidecar.js';
import { makeBaseline } from './lib/baseline.js';
import { freshPod } from './lib/pod.js';
import { IPERF_PORT, iperf, waitTunnel } from './lib/iperf.js';
import { fmt, say, sleep, summary, type Summary } from './lib/stats.js';

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
}

async function sidecarMtu(lab: Lab): Promise<number> {
  const r = await lab.podExec(['ip', '-j', 'link', 'show', 'dev', lab.sidecarInterface], { readOnly: true });
  return (JSON.parse(r.stdout) as { mtu: number }[])[0]!.mtu;
}

export async function benchThroughput(lab: Lab, runs: number, seconds: number): Promise<ThroughputResult> {
  const relay: LabRelay = lab.relays[0]!;
  const server = lab.nsSpawn(lab.ns.internet, ['iperf3', '-s', '-p', String(IPERF_PORT)]);
  const sc = { up: [] as number[], down: [] as number[] };
  const base = { up: [] as number[], down: [] as number[] };
  let mtu = 0;
  try {
    await sleep(300);
    for (let i = 1; i <= runs; i++) {
      await freshPod(lab);
      const s = startSidecarInLab(lab, { SERVER: relay.name, LOG_LEVEL: 'warn' });
      try {
        await s.waitReady(30_000);
        mtu = await sidecarMtu(lab);
        sc.up.push(await iperf(lab, seconds, false));
        sc.down.push(await iperf(lab, seconds, true));
      } finally {
        await s.stop('SIGTERM');
        await freshPod(lab);
      }
      const b = await makeBaseline(lab, relay, mtu);
      try {
        await b.up();
        await waitTunnel(lab);
        base.up.push(await iperf(lab, seconds, false));
        base.down.push(await iperf(lab, seconds, true));
      } finally {
        await b.cleanup();
      }
      say(`  run ${i}: sidecar ↑ ${sc.up.at(-1)!.toFixed(0)} ↓ ${sc.down.at(-1)!.toFixed(0)} Mbit/s; wg-quick ↑ ${base.up.at(-1)!.toFixed(0)} ↓ ${base.down.at(-1)!.toFixed(0)} Mbit/s (MTU ${mtu})`);
    }
  } finally {
    await server.stop(500);
  }
  const r: ThroughputResult = {
    seconds,
    runs,
    mtu,
    sidecarUp: summary(sc.up),
    sidecarDown: summary(sc.down),
    baselineUp: summary(base.up),
    baselineDown: summary(base.down),
    ratioUp: summary(sc.up).median / summary(base.up).median,
    ratioDown: summary(sc.down).median / summary(base.down).median,
  };
  say(`  pod → internet: sidecar ${fmt(r.sidecarUp, ' Mbit/s')}, wg-quick ${fmt(r.baselineUp, ' Mbit/s')}, ratio ${r.ratioUp.toFixed(2)}`);
  say(`  internet → pod: sidecar ${fmt(r.sidecarDown, ' Mbit/s')}, wg-quick ${fmt(r.baselineDown, ' Mbit/s')}, ratio ${r.ratioDown.toFixed(2)}`);
  return r;
}
