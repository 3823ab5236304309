// Controller cost: resident memory (VmRSS) and CPU (utime + stime) of the
// sidecar's Node.js process, from /proc, while idle, during failovers (relays
// alternately dark, tuned settings, an app making requests so the monitor sees
// tx without rx), during a DNS load through the forwarder, and while its health
// port is abused (with the probe latency seen meanwhile).
import { fileURLToPath } from 'node:url';
import type { Lab } from '../src/lab/lab.js';
import { startSidecarInLab, type RunningSidecar } from '../src/lab/run-sidecar.js';
import { startApp, typicalApp } from './lib/app.js';
import type { AbuseConfig, AbuseResult } from './lib/health-abuse-client.js';
import type { ProbeResult } from './lib/health-prober.js';
import type { DnsLoadResult } from './lib/dns-load.js';
import { freshPod } from './lib/pod.js';
import { CLUSTER, POD } from '../src/lab/plan.js';
import { ProcSampler, sidecarPid, type ProcCost } from './lib/proc.js';
import { fmt, percentile, say, sleep, summary, type Summary } from './lib/stats.js';

export const DNS_LOAD = fileURLToPath(new URL('./lib/dns-load.js', import.meta.url));
const ABUSE = fileURLToPath(new URL('./lib/health-abuse-client.js', import.meta.url));
const PROBER = fileURLToPath(new URL('./lib/health-prober.js', import.meta.url));

/**
 * Fast failover for the cost benches (controller, memory) and the soak: not README's "Failover speed"
 * recommendation (bench/failover.ts `tuned`, CHECK_INTERVAL 500ms, PROBE_TIMEOUT 500ms). Its 1 s probe timeout and
 * check interval hold on a loaded CI machine, where the soak must tell a leak or a growth from a slow probe.
 */
/** The node's address in the lab (the router, on the pod's network), as test/e2e/exhaustion.test.ts has it. */
const HOST_IP = POD.gw;

export const TUNED = { CHECK_INTERVAL: '1s', FAILOVER_AFTER: '3s', PROBE_TIMEOUT: '1s', CONNECT_TIMEOUT: '3s', MAX_BACKOFF: '2s' };

export interface ControllerOptions {
  idleSeconds: number;
  failovers: number;
  failoverSeconds: number;
  dnsSeconds: number;
  abuseSeconds: number;
}

export interface ProbeLatency {
  mode: string;
  probes: number;
  statuses: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
  cost: ProcCost;
}

export interface ControllerResult {
  idle: ProcCost;
  failover: { count: number; seconds: number; detectMs: Summary; cost: ProcCost };
  dns: { load: DnsLoadResult; cost: ProcCost } | undefined;
  health: ProbeLatency[];
}

export async function podTool<T>(lab: Lab, script: string, cfg: unknown, ns?: string): Promise<T> {
  const argv = [process.execPath, script, JSON.stringify(cfg)];
  const child = ns ? lab.nsSpawn(ns, argv) : lab.podSpawn(argv);
  await child.exited;
  const line = child.output().split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`${script}: no result: ${child.output().slice(-400)}`);
  return JSON.parse(line.slice(7)) as T;
}

export const costLine = (c: ProcCost) => `RSS ${fmt(c.rssMiB, ' MiB', 1)}, CPU ${c.cpuPercent.toFixed(1)}% of a core over ${c.seconds.toFixed(0)} s`;

async function failovers(lab: Lab, sc: RunningSidecar, pid: number, o: ControllerOptions): Promise<ControllerResult['failover']> {
  const app = startApp(lab, typicalApp(lab, { intervalMs: 200 }));
  const sampler = new ProcSampler(pid, 2000);
  const detect: number[] = [];
  const t0 = Date.now();
  try {
    while (detect.length < o.failovers && Date.now() - t0 < o.failoverSeconds * 1000) {
      const s = (await sc.get('/status')).json as { server?: { name?: string } };
      const from = lab.relays.find((r) => r.name === s.server?.name);
      if (!from) throw new Error(`no active relay: ${JSON.stringify(s)}`);
      const dark = Date.now();
      await lab.setRelayDark(from.index, true);
      try {
        await sc.waitFor((x) => x['state'] === 'connected' && (x['server'] as { name?: string } | undefined)?.name !== from.name, 60_000, 'failover');
        detect.push(Date.now() - dark);
      } finally {
        await lab.setRelayDark(from.index, false);
      }
    }
  } finally {
    await app.stop();
  }
  const cost = await sampler.stop();
  return { count: detect.length, seconds: (Date.now() - t0) / 1000, detectMs: summary(detect), cost };
}

/** /healthz latency from a prober of its own while another process abuses the health port, per mode. */
async function healthPort(lab: Lab, sc: RunningSidecar, pid: number, o: Pick<ControllerOptions, 'abuseSeconds'>): Promise<ProbeLatency[]> {
  const health: ProbeLatency[] = [];
  const modes: [string, Partial<AbuseConfig>][] = [
    ['quiet (probes only)', { slowloris: 0, flood: 0, malformed: false }],
    ['burst: 1,000 concurrent every 2 s + 200 slowloris + malformed', { slowloris: 200, flood: 1000, floodMode: 'burst', burstEveryMs: 2000 }],
    ['sustained: 1,000 in flight + 200 slowloris + malformed', { slowloris: 200, flood: 1000, floodMode: 'sustained' }],
  ];
  // The kubelet's case: a flood from one cluster address (in the router's namespace, through the pod's
  // interface), probed from HOST_IP; the sidecar's ruleset caps the flooding address before the accept queue.
  const cluster = { host: POD.ip, abuser: CLUSTER.dns, prober: HOST_IP };
  modes.push(['sustained from one cluster address, probed from HOST_IP (the kubelet)', { slowloris: 200, flood: 1000, floodMode: 'sustained' }]);
  for (const [mode, cfg] of modes) {
    const sampler = new ProcSampler(pid, 1000);
    // The figure is the separate prober's (like the kubelet or Docker's HEALTHCHECK, its own
    // process, from loopback: the same class as the abusing app); the abusing process's own
    // probes wait behind its own event loop too and are shown for comparison.
    const fromCluster = mode.includes('HOST_IP');
    const host = fromCluster ? cluster.host : '127.0.0.1';
    const ns = fromCluster ? lab.ns.router : undefined;
    const [r, own] = await Promise.all([
      podTool<AbuseResult>(lab, ABUSE, { host, port: sc.healthPort, seconds: o.abuseSeconds, probeEveryMs: 50, ...cfg, ...(fromCluster ? { localAddress: cluster.abuser } : {}) }, ns),
      podTool<ProbeResult>(lab, PROBER, { host, port: sc.healthPort, seconds: o.abuseSeconds, everyMs: 50, ...(fromCluster ? { localAddress: cluster.prober } : {}) }, ns),
    ]);
    const p: ProbeLatency = { mode, probes: own.probes, statuses: own.statuses, p50: percentile(own.ms, 50), p99: percentile(own.ms, 99), max: Math.max(...own.ms), cost: await sampler.stop() };
    health.push(p);
    say(`  /healthz under ${mode}: ${p.probes} probes ${JSON.stringify(p.statuses)}, p50 ${p.p50} ms, p99 ${p.p99} ms, max ${p.max} ms; ${costLine(p.cost)}`);
    say(`    (probes from the abusing process itself: ${r.probes} ${JSON.stringify(r.probeStatuses)}, p99 ${percentile(r.probeMs, 99)} ms)`);
    await sleep(7000); // let slowloris connections time out before the next mode
  }
  return health;
}

/** A ready sidecar on a fresh pod, settled (start-up garbage and JIT), for `fn`; stopped and the pod cleaned after. */
async function withSettledSidecar<T>(lab: Lab, fn: (sc: RunningSidecar, pid: number) => Promise<T>): Promise<T> {
  await freshPod(lab);
  // HOST_IP: the router's address on the pod's network plays the node (the health port's kubelet class).
  const sc = startSidecarInLab(lab, { ...TUNED, LOG_LEVEL: 'info', HOST_IP });
  try {
    await sc.waitReady(30_000);
    const pid = await sidecarPid(lab);
    await sleep(5000);
    return await fn(sc, pid);
  } finally {
    if (sc.child.running) await sc.stop('SIGTERM');
    await freshPod(lab);
  }
}

/** `--only health`: the health port part of the controller benchmark alone, on a fresh sidecar. */
export function benchHealth(lab: Lab, o: Pick<ControllerOptions, 'abuseSeconds'>): Promise<ProbeLatency[]> {
  return withSettledSidecar(lab, (sc, pid) => healthPort(lab, sc, pid, o));
}

export function benchController(lab: Lab, o: ControllerOptions): Promise<ControllerResult> {
  return withSettledSidecar(lab, async (sc, pid) => {
    let sampler = new ProcSampler(pid, 1000);
    await sleep(o.idleSeconds * 1000);
    const idle = await sampler.stop();
    say(`  idle: ${costLine(idle)}`);

    const fo = await failovers(lab, sc, pid, o);
    say(`  ${fo.count} failovers in ${fo.seconds.toFixed(0)} s (relay dark → connected elsewhere ${fmt(fo.detectMs, ' ms')}): ${costLine(fo.cost)}`);
    await sc.waitReady(60_000);

    let dns: ControllerResult['dns'];
    if (o.dnsSeconds > 0) {
      sampler = new ProcSampler(pid, 1000);
      const load = await podTool<DnsLoadResult>(lab, DNS_LOAD, { server: lab.clusterDns, seconds: o.dnsSeconds, concurrency: 32 });
      dns = { load, cost: await sampler.stop() };
      say(`  DNS load through the forwarder (cold names, through the tunnel, 32 outstanding): ${load.qps.toFixed(0)} q/s, p50 ${load.p50.toFixed(1)} ms, p99 ${load.p99.toFixed(1)} ms, lost ${load.lost}: ${costLine(dns.cost)}`);
    }

    const health = await healthPort(lab, sc, pid, o);
    return { idle, failover: fo, dns, health };
  });
}
