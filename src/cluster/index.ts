// Reaching the cluster with nothing configured (DESIGN §5): the learned-address
// table, the addresses Kubernetes hands every container (<NAME>_SERVICE_HOST,
// the pod's own addresses, HOST_IP), and the known-cluster-address test that
// the DNS forwarder uses for reverse names.
import { parseCidr, type Cidr } from '../config/cidr.js';
import type { ServerConfig } from '../config/types.js';
import type { NetInterface } from '../environment/interfaces.js';
import type { Logger } from '../log/logger.js';
import type { CommandRunner } from '../system/runner.js';
import type { Registry } from '../health/prom-registry.js';
import { apiServerUrl } from './api.js';
import { ApiDiscovery } from './discovery.js';
import { readApiList } from './kube-client.js';
import { LearnedAddresses, type LearnedEntry } from './learned.js';
import { serviceHostsFromEnv, type LearnGuard, type LearnSource } from './rules.js';

export { LEARNED_MARK } from './nft.js';
export type { LearnedEntry } from './learned.js';

export interface ClusterReachOptions {
  readonly runner: CommandRunner;
  readonly log: Logger;
  readonly tunnelInterface: string;
  readonly floorSeconds: number;
  readonly registry?: Registry;
}

export interface Discovered {
  readonly text: string;
  readonly source: LearnSource;
  readonly reason: string;
}

/** What the environment names as cluster addresses: service links, the pod's own addresses, HOST_IP. */
export function discoverFromEnvironment(env: Readonly<Record<string, string | undefined>>, interfaces: readonly NetInterface[], hostIps: readonly string[], tunnelInterface: string): Discovered[] {
  const out: Discovered[] = serviceHostsFromEnv(env).map((s) => ({ text: s.ip, source: 'env', reason: s.variable }));
  for (const ifc of interfaces) {
    if (ifc.name === 'lo' || ifc.name === tunnelInterface || ifc.flags.includes('LOOPBACK')) continue;
    for (const a of ifc.addresses) {
      if (a.scope === 'host' || a.scope === 'link') continue;
      out.push({ text: a.local, source: 'pod', reason: `address of ${ifc.name}` });
    }
  }
  for (const ip of hostIps) out.push({ text: ip, source: 'env', reason: 'HOST_IP' });
  return out;
}

export function guardFor(servers: readonly ServerConfig[], tunnelResolvers: readonly string[]): LearnGuard {
  return {
    endpoints: servers.flatMap((s) => (s.peer.endpoint.ip ? [s.peer.endpoint.ip] : [])),
    tunnelResolvers: [...new Set(['10.64.0.1', ...tunnelResolvers, ...servers.flatMap((s) => s.dns)])],
  };
}

export class ClusterReach {
  private learnedSet: LearnedAddresses | undefined;
  private known: Cidr[] = [];
  private discovery: ApiDiscovery | undefined;

  constructor(private readonly o: ClusterReachOptions) {}

  /**
   * The table, before the first firewall state that carries LEARNED_MARK: its
   * learned sets empty, its static sets holding `items` (what the environment
   * names now), in one transaction.
   */
  async install(guard: LearnGuard, items: readonly Discovered[] = []): Promise<void> {
    this.learnedSet = new LearnedAddresses({ runner: this.o.runner, log: this.o.log, guard, tunnelInterface: this.o.tunnelInterface, floorSeconds: this.o.floorSeconds, ...(this.o.registry ? { registry: this.o.registry } : {}) });
    this.recordKnown(items, await this.learnedSet.install(items));
  }

  /** Adds what the environment (or the API) names; known addresses also make their PTR names cluster names. */
  async reach(items: readonly Discovered[]): Promise<void> {
    const set = this.learnedSet;
    if (!set) throw new Error('cluster reach used before install');
    this.recordKnown(items, await set.addStatic(items));
  }

  private recordKnown(items: readonly Discovered[], refused: readonly { text: string; why: string }[]): void {
    for (const r of refused) this.o.log.info('cluster address kept inside the tunnel', { address: r.text, why: r.why });
    for (const it of items) {
      const c = parseCidr(it.text);
      if (c && !refused.some((r) => r.text === it.text)) this.known.push(c);
    }
  }

  /** Static known networks (for RoutingConfig.clusterNetworks); learned ones come through isClusterAddress. */
  knownNetworks(extra: readonly Cidr[] = []): Cidr[] {
    return [...this.known, ...extra];
  }

  isClusterAddress = (ip: string): boolean => this.learnedSet?.knows(ip) ?? false;

  onClusterAnswer = async (name: string, records: { ip: string; ttl: number }[]): Promise<void> => {
    await this.learnedSet?.learnFromAnswer(name, records);
  };

  /**
   * KUBERNETES_DISCOVERY=api: the ServiceCIDRs' and nodes' networks through the
   * ServiceAccount, now (in the background) and every `intervalMs`. False when
   * the environment names no API server (KUBERNETES_SERVICE_HOST), said once.
   */
  discoverFromApi(o: { env: Readonly<Record<string, string | undefined>>; serviceAccountDir: string; intervalMs: number }): boolean {
    const set = this.learnedSet;
    if (!set) throw new Error('cluster reach used before install');
    const server = apiServerUrl(o.env);
    if (!server) {
      this.o.log.warn('cluster: KUBERNETES_DISCOVERY=api, but KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT name no API server; nothing is read');
      return false;
    }
    this.discovery = new ApiDiscovery({
      read: (list) => readApiList({ server, serviceAccountDir: o.serviceAccountDir }, list),
      apply: async (ranges) => {
        for (const r of await set.replaceApi(ranges)) this.o.log.info('cluster: network from the Kubernetes API kept inside the tunnel', { network: r.text, why: r.why });
      },
      log: this.o.log,
      intervalMs: o.intervalMs,
    });
    this.discovery.start();
    return true;
  }

  /** Stops reading the API (the networks already bypassed stay until remove()). */
  stop(): void {
    this.discovery?.stop();
  }

  entries(): LearnedEntry[] {
    return this.learnedSet?.entries() ?? [];
  }

  async remove(): Promise<void> {
    await this.learnedSet?.remove();
  }
}
