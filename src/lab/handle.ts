// The Lab object: what tests, the demo and benchmarks use to act inside the lab
// and read what its servers and counters saw.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { CommandRunner, RunOptions } from '../system/runner.js';
import { ExecRunner } from '../system/runner.js';
import type { ChildHandle } from '../system/process.js';
import { startChild } from '../system/process.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { ConfigError } from '../errors.js';
import type { DnsLogEntry, DnsResult, HttpResult, Lab, LabRelay } from './lab.js';
import { CLUSTER, INTERNET, POD, POD2, WG_PORT, kubernetesEnv } from './plan.js';
import { readLeaks, readStray, resetLeaks } from './counters.js';
import { setBlackhole, setDark } from './impair.js';
import type { LabState } from './state.js';
import { readState } from './state.js';
import { teardown } from './teardown.js';
import { asContainer } from './cgroup.js';

const HTTP_TOOL = fileURLToPath(new URL('./tools/http-get.js', import.meta.url));
const DNS_TOOL = fileURLToPath(new URL('./tools/dns-query.js', import.meta.url));

/** The tool prints one JSON line; anything else (a crash) becomes an error result. */
function parseToolOutput<T extends { ok: boolean; ms: number }>(stdout: string, stderr: string, ms: number, extra: Partial<T>): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    return { ...extra, ok: false, error: `no result from pod tool: ${(stderr || stdout).trim().slice(0, 300)}`, ms } as unknown as T;
  }
}

async function readJsonl<T>(file: string): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // a line being written right now
    }
  }
  return out;
}

export function makeLab(state: LabState, runner: CommandRunner, log: Logger, children: ChildHandle[] = []): Lab {
  const { plan } = state;
  const relays: LabRelay[] = plan.relays.map((r) => ({
    index: r.index,
    name: r.name,
    ns: r.ns,
    ip: r.ip,
    ip6: r.ip6,
    port: WG_PORT,
    publicKey: state.relayPublicKeys[r.index] ?? '',
    confFile: `${plan.configDir}/${r.name}.conf`,
    wgInterface: r.wgInterface,
    knowsClient: r.knowsClient,
  }));
  const relayPlan = (index: number) => {
    const r = plan.relays.find((x) => x.index === index);
    if (!r) throw new ConfigError('relay index', `lab ${plan.prefix} has no relay ${index}`);
    return r;
  };
  const nsExec = (ns: string, argv: string[], opts?: RunOptions) => runner.run(['ip', 'netns', 'exec', ns, ...argv], opts);
  const podExec = (argv: string[], opts?: RunOptions) => nsExec(plan.ns.pod, argv, opts);
  // Whatever a test starts in the lab dies with the test process, even if it is SIGKILLed.
  const spawnIn = (ns: string, argv: string[], env?: NodeJS.ProcessEnv, cgroup?: string) =>
    startChild(cgroup ? asContainer(cgroup, ns, argv) : ['ip', 'netns', 'exec', ns, ...argv], { env: env ?? process.env, log, dieWithParent: true });
  const dnsLog = (name: string) => readJsonl<DnsLogEntry>(`${plan.logDir}/${name}.jsonl`);

  return {
    prefix: plan.prefix,
    dir: plan.dir,
    configDir: plan.configDir,
    logDir: plan.logDir,
    ns: { ...plan.ns },
    relays,
    pod: { ip: POD.ip, ip6: POD.ip6, netnsPath: `/run/netns/${plan.ns.pod}` },
    pod2: { ip: POD2.ip, ip6: POD2.ip6, netnsPath: `/run/netns/${plan.ns.pod2}` },
    clusterDns: CLUSTER.dns,
    internalService: CLUSTER.internalService,
    cluster: CLUSTER,
    kubernetesEnv: kubernetesEnv(),
    internet: { ip: INTERNET.ip, ip6: INTERNET.ip6 },
    checkUrl: `http://${INTERNET.ip}/json`,
    checkUrl6: `http://[${INTERNET.ip6}]/json`,
    sidecarInterface: plan.sidecarInterface,
    podExec,
    nsExec,
    podSpawn: (argv, env, opts) => spawnIn(plan.ns.pod, argv, env, opts?.cgroup),
    nsSpawn: (ns, argv, env) => spawnIn(ns, argv, env),

    async httpFromPod(url, opts = {}): Promise<HttpResult> {
      const timeoutMs = opts.timeoutMs ?? 5000;
      const t0 = Date.now();
      try {
        const r = await podExec([process.execPath, HTTP_TOOL, url, String(timeoutMs), String(opts.family ?? 0)], {
          allowFailure: true,
          readOnly: true,
          timeoutMs: timeoutMs + (opts.startMs ?? 5000),
        });
        return parseToolOutput<HttpResult>(r.stdout, r.stderr, Date.now() - t0, {});
      } catch (err) {
        return { ok: false, error: err instanceof Error ? err.message : String(err), ms: Date.now() - t0 };
      }
    },

    async dnsFromPod(name, opts = {}): Promise<DnsResult> {
      const timeoutMs = opts.timeoutMs ?? 3000;
      const t0 = Date.now();
      try {
        const argv = [process.execPath, DNS_TOOL, name, opts.type ?? 'A', opts.server ?? '-', opts.tcp ? 'tcp' : 'udp', String(timeoutMs)];
        const r = await podExec(argv, { allowFailure: true, readOnly: true, timeoutMs: timeoutMs + 5000 });
        return parseToolOutput<DnsResult>(r.stdout, r.stderr, Date.now() - t0, { answers: [] });
      } catch (err) {
        return { ok: false, answers: [], error: err instanceof Error ? err.message : String(err), ms: Date.now() - t0 };
      }
    },

    leaks: () => readLeaks(runner, plan),
    strayPackets: () => readStray(runner, plan),
    resetLeaks: () => resetLeaks(runner, plan),
    setRelayDark: (index, dark) => setDark(runner, plan, relayPlan(index), dark),
    setRelayBlackhole: (index, maxPacket) => setBlackhole(runner, plan, relayPlan(index), maxPacket),
    publicDnsLog: () => dnsLog('public-dns'),
    clusterDnsLog: () => dnsLog('cluster-dns'),
    clusterDnsForwardLog: () => dnsLog('cluster-dns-forwarded'),
    relayDnsLog: (index) => dnsLog(`relay${relayPlan(index).index}-dns`),
    internetHttpLog: () => readJsonl(`${plan.logDir}/internet-http.jsonl`),

    async down(): Promise<void> {
      await teardown(plan.prefix, plan, runner, log);
      // Processes were killed by namespace; wait for our own children's exit events.
      await Promise.all(children.map((c) => c.stop(200)));
    },
  };
}

/** A Lab handle for a lab another process brought up (`lab up`, the demo). */
export async function labAttach(prefix: string, opts: { runner?: CommandRunner; log?: Logger } = {}): Promise<Lab> {
  const state = await readState(prefix);
  if (!state) throw new ConfigError('lab prefix', `no lab named '${prefix}'`, 'list labs with: mullvad-sidecar lab status');
  const log = opts.log ?? silentLogger;
  return makeLab(state, opts.runner ?? new ExecRunner(log), log);
}
