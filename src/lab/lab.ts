// The lab: a pod, a router that is also the "cluster", fake Mullvad relays and an
// "internet" host, each a network namespace on this host (see src/lab/README.md).
// labUp() writes the state file first, so a failure midway (or a crash) is undone
// by the same teardown that `lab down` uses.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import type { CommandResult, CommandRunner, RunOptions } from '../system/runner.js';
import { ExecRunner } from '../system/runner.js';
import type { ChildHandle } from '../system/process.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { ConfigError, wrap } from '../errors.js';
import { generateKeyPair } from './keys.js';
import type { CLUSTER, LabPlan } from './plan.js';
import { allNamespaces, planLab } from './plan.js';
import { addressCommands, namespaceSetupCommands, renderMullvadConf, renderResolvConf, renderRouterNft, vethCommands } from './render.js';
import { startRelay } from './relay.js';
import { renderMultihopNft } from './multihop.js';
import { labRelayListPath, renderRelayList } from './relay-list.js';
import { startServers } from './servers-start.js';
import type { RoleConfig } from './servers/roles.js';
import type { LabState } from './state.js';
import { processStart, readState, writeState } from './state.js';
import { cleanupStaleLabs, listNamespaces, teardown } from './teardown.js';
import { makeLab } from './handle.js';
import { waitLinksReady } from './links.js';
import type { Leaks } from './counters.js';

export type { Leaks } from './counters.js';

export { labDown, cleanupStaleLabs } from './teardown.js';
export { labAttach } from './handle.js';

export interface LabOptions {
  prefix?: string;
  relays?: number;
  /** Relay indexes (1-based) whose server does not know the client's key: a revoked device. */
  unknownClient?: number[];
  log?: Logger;
  runner?: CommandRunner;
  /**
   * Start the fake servers and relays in their own sessions so they outlive this
   * process (`lab up`). The lab is then stale only when its router server dies.
   */
  detached?: boolean;
  /** First remove labs whose owner died (crashed test runs); default true. */
  cleanupStale?: boolean;
  /** How long the lab's servers and links may take to come up (default 20 s); longer under emulation. */
  readyTimeoutMs?: number;
  /** The relays' WireGuard: wireguard-go (default) or kernel links (needs a kernel with WireGuard). */
  relayImplementation?: 'userspace' | 'kernel';
}

export interface LabRelay {
  index: number;
  name: string;
  ns: string;
  ip: string;
  ip6: string;
  port: number;
  publicKey: string;
  confFile: string;
  wgInterface: string;
  /** false for a relay listed in unknownClient. */
  knowsClient: boolean;
}

export interface DnsLogEntry {
  source: string;
  name: string;
  type: string;
  tcp: boolean;
  rcode?: string;
  time?: string;
}

export interface HttpResult {
  ok: boolean;
  status?: number;
  body?: string;
  json?: unknown;
  error?: string;
  ms: number;
}

export interface DnsResult {
  /** true only for a complete (not truncated) answer with rcode NOERROR; rcode tells NXDOMAIN/SERVFAIL apart. */
  ok: boolean;
  rcode?: string;
  answers: string[];
  truncated?: boolean;
  error?: string;
  ms: number;
}

export interface Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly configDir: string;
  readonly logDir: string;
  readonly ns: { pod: string; pod2: string; router: string; internet: string };
  readonly relays: LabRelay[];
  readonly pod: { ip: string; ip6: string; netnsPath: string };
  /** A second client pod on another node's subnet (no servers of its own: use nsExec). */
  readonly pod2: { ip: string; ip6: string; netnsPath: string };
  readonly clusterDns: string;
  readonly internalService: string;
  /** The cluster's shape: domain, Service and pod networks, the headless pods, the public Service address. */
  readonly cluster: typeof CLUSTER;
  /**
   * What kubelet gives a container of namespace `default` (enableServiceLinks):
   * KUBERNETES_SERVICE_HOST/PORT and <NAME>_SERVICE_HOST/PORT of every Service
   * with a cluster IP. startSidecarInLab passes them to the sidecar.
   */
  readonly kubernetesEnv: Readonly<Record<string, string>>;
  readonly internet: { ip: string; ip6: string };
  readonly checkUrl: string;
  /** The same check over IPv6: http://[fd30::2]/json */
  readonly checkUrl6: string;
  readonly sidecarInterface: string;
  podExec(argv: string[], opts?: RunOptions): Promise<CommandResult>;
  /** Any command in any lab namespace (e.g. `wg show` on a relay). */
  nsExec(ns: string, argv: string[], opts?: RunOptions): Promise<CommandResult>;
  /** `cgroup`: run it like a container's process, in that cgroup and a cgroup namespace (src/lab/cgroup.ts). */
  podSpawn(argv: string[], env?: NodeJS.ProcessEnv, opts?: { cgroup?: string | undefined }): ChildHandle;
  /** A long-running process in any lab namespace (e.g. `iperf3 -s` on the internet host); teardown kills it. */
  nsSpawn(ns: string, argv: string[], env?: NodeJS.ProcessEnv): ChildHandle;
  /**
   * A GET from the pod by a small node tool: `timeoutMs` bounds the request, `startMs`
   * (default 5 s) the tool's own start on top of it (an emulated kernel needs far more).
   */
  httpFromPod(url: string, opts?: { timeoutMs?: number; family?: 4 | 6; startMs?: number }): Promise<HttpResult>;
  dnsFromPod(name: string, opts?: { type?: 'A' | 'AAAA' | 'TXT' | 'PTR' | 'NS'; server?: string; tcp?: boolean; timeoutMs?: number }): Promise<DnsResult>;
  leaks(): Promise<Leaks>;
  /**
   * Packets from the pod that crossed the router and were not WireGuard to a relay
   * (to any address: the internet host, a relay's other ports, anything routable).
   * Reset with resetLeaks().
   */
  strayPackets(): Promise<number>;
  resetLeaks(): Promise<void>;
  setRelayDark(index: number, dark: boolean): Promise<void>;
  /**
   * An MTU black hole on relay `index`'s path: IP packets longer than `maxPacket`
   * bytes to or from its uplink are dropped without ICMP; null removes it. WireGuard
   * adds 60 (IPv4 outer) bytes, so 1280 passes tunnelled packets up to 1220.
   */
  setRelayBlackhole(index: number, maxPacket: number | null): Promise<void>;
  publicDnsLog(): Promise<DnsLogEntry[]>;
  /** Every query cluster DNS received. */
  clusterDnsLog(): Promise<DnsLogEntry[]>;
  /** Every query cluster DNS forwarded to the node's resolver (outside any tunnel: each one a leak). */
  clusterDnsForwardLog(): Promise<DnsLogEntry[]>;
  relayDnsLog(index: number): Promise<DnsLogEntry[]>;
  /** Requests the internet host's HTTP server saw: { source, method, path }. */
  internetHttpLog(): Promise<{ source: string; method: string; path: string }[]>;
  down(): Promise<void>;
}

/** Like Promise.all, but waits for every branch before failing: rollback must not race a step still running. */
export async function settleAll<T>(tasks: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

async function runAll(runner: CommandRunner, groups: string[][][]): Promise<void> {
  await settleAll(groups.map(async (g) => {
    for (const argv of g) await runner.run(argv);
  }));
}

async function writeFiles(plan: LabPlan, clientPrivate: string, relayPublic: Record<number, string>): Promise<void> {
  await mkdir(plan.configDir, { recursive: true, mode: 0o700 });
  await mkdir(plan.logDir, { recursive: true, mode: 0o700 });
  await chmod(plan.configDir, 0o700);
  await Promise.all(plan.relays.map((r) =>
    writeFile(`${plan.configDir}/${r.name}.conf`, renderMullvadConf(clientPrivate, r, relayPublic[r.index] ?? ''), { mode: 0o600 }),
  ));
  await writeFile(labRelayListPath(plan.dir), JSON.stringify(renderRelayList(plan, relayPublic), null, 2), { mode: 0o644 });
  await mkdir(plan.netnsEtc, { recursive: true });
  await writeFile(`${plan.netnsEtc}/resolv.conf`, renderResolvConf(), { mode: 0o644 });
}

async function buildNetwork(plan: LabPlan, runner: CommandRunner): Promise<void> {
  // Sequential: the first `ip netns add` sets up the /run/netns mount, concurrent ones could race it.
  for (const ns of allNamespaces(plan)) await runner.run(['ip', 'netns', 'add', ns]);
  await runAll(runner, namespaceSetupCommands(plan));
  await runAll(runner, vethCommands(plan).map((argv) => [argv]));
  await runAll(runner, addressCommands(plan));
  await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', '-f', '-'], { stdin: renderRouterNft(plan) });
}

export async function labUp(opts: LabOptions = {}): Promise<Lab> {
  const log = opts.log ?? silentLogger;
  const runner = opts.runner ?? new ExecRunner(log);
  const detached = opts.detached ?? false;
  const plan = planLab(opts);
  if (opts.cleanupStale ?? true) {
    const removed = await cleanupStaleLabs(runner, log);
    if (removed.length) log.info('removed stale labs', { prefixes: removed });
  }
  const taken = (await listNamespaces(runner)).some((n) => n.startsWith(`${plan.prefix}-`));
  if (taken || (await readState(plan.prefix))) {
    throw new ConfigError('lab prefix', `a lab named '${plan.prefix}' exists already`, `remove it with: mullvad-sidecar lab down ${plan.prefix}`);
  }
  const started = Date.now();
  const client = generateKeyPair();
  const relayKeys = new Map(plan.relays.map((r) => [r.index, generateKeyPair()]));
  const relayPublicKeys = Object.fromEntries([...relayKeys].map(([i, k]) => [i, k.publicKey]));
  const state: LabState = {
    version: 1,
    plan,
    owner: { pid: process.pid, start: processStart(process.pid) ?? '' },
    detached,
    createdAt: new Date().toISOString(),
    relayPublicKeys,
    pids: {},
  };
  await writeState(state);
  const children: ChildHandle[] = [];
  try {
    await settleAll([buildNetwork(plan, runner), writeFiles(plan, client.privateKey, relayPublicKeys)]);
    const exits = plan.relays.map((r) => ({ index: r.index, name: r.name, ip: r.ip, ip6: r.ip6 }));
    const role = (r: RoleConfig['role'], index?: number): RoleConfig => ({
      role: r, logDir: plan.logDir, relays: exits, index, wgInterface: plan.relays.find((x) => x.index === index)?.wgInterface,
    });
    const sopts = { log, detached };
    const track = (name: string, c: ChildHandle): ChildHandle => {
      children.push(c);
      state.pids[name] = c.pid;
      return c;
    };
    await settleAll<unknown>([
      waitLinksReady(runner, plan, opts.readyTimeoutMs),
      startServers(plan.ns.router, role('router'), sopts, opts.readyTimeoutMs).then((c) => track('router-servers', c)),
      startServers(plan.ns.internet, role('internet'), sopts, opts.readyTimeoutMs).then((c) => track('internet-servers', c)),
      ...plan.relays.map(async (r) => {
        const keys = relayKeys.get(r.index);
        if (!keys) throw new Error(`no keys for relay ${r.index}`);
        const wg = await startRelay(r, { runner, log, detached, clientPublicKey: client.publicKey, keys, keyDir: `${plan.dir}/keys`, implementation: opts.relayImplementation });
        if (wg) track(`relay${r.index}-wireguard`, wg);
        await runner.run(['ip', 'netns', 'exec', r.ns, 'nft', '-f', '-'], { stdin: renderMultihopNft(r, plan.relays) });
        track(`relay${r.index}-servers`, await startServers(r.ns, role('relay', r.index), sopts, opts.readyTimeoutMs));
      }),
    ]);
    if (detached) {
      const pid = state.pids['router-servers'] ?? 0;
      state.owner = { pid, start: processStart(pid) ?? '' };
    }
    await writeState(state);
    log.info('lab up', { prefix: plan.prefix, relays: plan.relays.length, ms: Date.now() - started });
    return makeLab(state, runner, log, children);
  } catch (err) {
    log.warn('lab bring-up failed, removing what was created', { prefix: plan.prefix, error: err as Error });
    await teardown(plan.prefix, plan, runner, log).catch((e: unknown) => log.error('rolling back lab', { error: e as Error }));
    await Promise.all(children.map((c) => c.stop(200)));
    throw wrap(`bringing up lab ${plan.prefix}`, err);
  }
}
