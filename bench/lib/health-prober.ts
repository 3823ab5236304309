// A /healthz prober in a process of its own, as the kubelet or Docker's
// HEALTHCHECK is: the probe latency measured while another process abuses the
// health port is the server's, not the abusing client's own event loop.
// `node health-prober.js '{"host":"127.0.0.1","port":9999,"seconds":10,"everyMs":50}'`
// prints one line: RESULT <ProbeResult JSON>.
import { get } from './health-abuse-client.js';

export interface ProberConfig {
  host: string;
  port: number;
  seconds: number;
  everyMs: number;
  /** Connect from this address (another source than the abuser's, to see admission by source). */
  localAddress?: string;
  /** A probe slower than this counts as unanswered (the kubelet's default timeoutSeconds is 1). */
  timeoutMs?: number;
}

export interface ProbeResult {
  probes: number;
  statuses: Record<string, number>;
  ms: number[];
}

export async function probe(cfg: ProberConfig): Promise<ProbeResult> {
  const end = Date.now() + cfg.seconds * 1000;
  const r: ProbeResult = { probes: 0, statuses: {}, ms: [] };
  while (Date.now() < end) {
    const t0 = performance.now();
    const status = await get(cfg.host, cfg.port, '/healthz', cfg.timeoutMs ?? 5000, cfg.localAddress);
    r.ms.push(Math.round((performance.now() - t0) * 10) / 10);
    r.statuses[String(status)] = (r.statuses[String(status)] ?? 0) + 1;
    r.probes++;
    await new Promise((res) => setTimeout(res, cfg.everyMs));
  }
  return r;
}

if (process.argv[1]?.endsWith('health-prober.js') && process.argv[2])
  void probe(JSON.parse(process.argv[2]) as ProberConfig).then((r) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`, () => process.exit(0)));
