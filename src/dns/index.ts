// Split DNS: the forwarder `run` starts, the firewall's view of it, and the
// resolv.conf plan. See docs in README "DNS" and DESIGN.md §5.
//
// Routing (split mode), first match wins:
//   localhost, *.localhost → loopback, answered here; *.invalid, *.onion → NXDOMAIN here
//   a cluster domain or below (case-insensitive, label boundary)      → cluster DNS
//   PTR queries for a known cluster address (clusterNetworks, learned) → cluster DNS
//   any other reverse name (in-addr/ip6.arpa), any type               → tunnel resolvers
//   a dotless name, A/AAAA, when singleLabel is 'cluster' (Compose, an engine resolver) → cluster DNS
//   everything else, the root included                                → tunnel resolvers
// Tunnel mode: everything but the special-use names goes through the tunnel.
import { networkInterfaces } from 'node:os';
import { parseCidr, type Cidr } from '../config/cidr.js';
import { DNS_UPSTREAM_PORTS, type DnsPolicy } from '../firewall/policy.js';
import type { Logger } from '../log/logger.js';
import { DEFAULT_CACHE_LIMITS, DnsCache, type CacheLimits } from './cache.js';
import { Forwarder, type ForwarderStats, type QueryResult, type QueryUpstream } from './forwarder.js';
import { defaultSingleLabel, normaliseName, type Side } from './names.js';
import { detectedDnsIdentity, type DnsIdentity } from './identity.js';
import { listen, type BoundSocket } from './server.js';
import { UpstreamTransport, type PortRange, type UpstreamExchange } from './upstream.js';

export { planResolvConfRewrite, readClusterDnsConfig, type ResolvConfPlan, type ResolvConfFacts } from './resolvconf.js';
export { prepareResolvConf, type PreparedResolvConf } from './resolvconf-apply.js';
export type { QueryResult, QueryUpstream } from './forwarder.js';
export { currentDnsIdentity, detectedDnsIdentity, type DnsIdentity } from './identity.js';

export interface DnsServiceOptions {
  /** 'off' means the service is not started at all (call warnDnsOff instead). */
  readonly mode: 'split' | 'tunnel';
  /** settings.dnsForwarderPort; 0 = any free port (tests). */
  readonly listenPort: number;
  /** Nameservers of resolv.conf at start (prepareResolvConf gives the originals after a rewrite). */
  readonly clusterResolvers: readonly string[];
  /** defaultClusterDomains(searchDomains) + settings.clusterDomains. */
  readonly clusterDomains: readonly string[];
  readonly searchDomains: readonly string[];
  /** Informational: the client's stub applies the search list before a query reaches us. */
  readonly ndots: number;
  /** settings.dnsUpstreams ?? the active server's DNS line. */
  readonly tunnelResolvers: readonly string[];
  /** settings.probeTimeoutMs: the longest a client waits for SERVFAIL. */
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly onQuery?: (upstream: QueryUpstream, result: QueryResult) => void;
  /** Known cluster addresses whose PTR names cluster DNS answers (see RoutingConfig). Default none. */
  readonly clusterNetworks?: readonly Cidr[];
  /** Run-time known cluster addresses (the learned set). */
  readonly isClusterAddress?: (ip: string) => boolean;
  /** Awaited with every cluster answer before the client gets it (the learned set). */
  readonly onClusterAnswer?: (name: string, records: { ip: string; ttl: number }[]) => Promise<void>;
  /** Subnets of the namespace's own interfaces (where an engine's resolver sits). Default: os.networkInterfaces(). */
  readonly localNetworks?: readonly Cidr[];
  /** Side for dotless names. Default: defaultSingleLabel(searchDomains, the resolvers, localNetworks). */
  readonly singleLabel?: Side;
  /** Whether the tunnel is up at start. Default false: external names SERVFAIL until setTunnelUp(true). */
  readonly tunnelUp?: boolean;
  /** Default ['127.0.0.1', '::1']. */
  readonly listenAddresses?: readonly string[];
  /** Default 53; tests point it at fake servers. */
  readonly upstreamPort?: number;
  /** Default DNS_UPSTREAM_PORTS; must match the firewall's exemption. */
  readonly upstreamSourcePorts?: PortRange;
  readonly cacheLimits?: Partial<CacheLimits>;
  /** Injected for tests: replaces the real sockets to upstreams. */
  readonly exchange?: UpstreamExchange;
}

export interface DnsStats extends ForwarderStats {
  readonly mode: 'split' | 'tunnel';
  readonly listen: readonly BoundSocket[];
  /** How the firewall tells the forwarder's own packets (for /status). */
  readonly identity?: DnsIdentity;
}

export interface DnsService {
  /** Down: external names answer SERVFAIL at once, no packet sent, the tunnel side of the cache is dropped. */
  setTunnelUp(up: boolean): void;
  /** On failover to a server with another DNS line (ignored when DNS_UPSTREAMS is set: just don't call it). */
  setTunnelResolvers(ips: readonly string[]): void;
  /** On failover. */
  flushCache(): void;
  stats(): DnsStats;
  /** The bound port (listenPort, or the chosen one when 0). */
  readonly port: number;
  stop(): Promise<void>;
}

/** Subnets of this namespace's interfaces, loopback excluded. */
function localNetworks(): Cidr[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((a) => (a && !a.internal && a.cidr ? [parseCidr(a.cidr)] : []))
    .filter((c): c is Cidr => c !== undefined);
}

export async function startDnsService(opts: DnsServiceOptions): Promise<DnsService> {
  const log = opts.log.child({ component: 'dns' });
  const clusterDomains = [...new Set(opts.clusterDomains.map(normaliseName).filter((d) => d !== ''))];
  const singleLabel = opts.singleLabel ?? defaultSingleLabel(opts.searchDomains, { resolvers: opts.clusterResolvers, localNetworks: opts.localNetworks ?? localNetworks() });
  if (opts.mode === 'split' && opts.clusterResolvers.length === 0) log.warn('dns: no cluster nameserver in resolv.conf; cluster names will answer SERVFAIL');
  if (opts.tunnelResolvers.length === 0) log.warn('dns: no tunnel resolver (DNS line or DNS_UPSTREAMS); external names will answer SERVFAIL');

  const exchange =
    opts.exchange ??
    (await UpstreamTransport.create({ port: opts.upstreamPort ?? 53, sourcePorts: opts.upstreamSourcePorts ?? DNS_UPSTREAM_PORTS, poolSize: 8, log }));
  const forwarder = new Forwarder({
    routing: { mode: opts.mode, clusterDomains, clusterNetworks: opts.clusterNetworks ?? [], isClusterAddress: opts.isClusterAddress, singleLabel },
    onClusterAnswer: opts.onClusterAnswer,
    clusterResolvers: opts.mode === 'split' ? [...opts.clusterResolvers] : [],
    tunnelResolvers: [...opts.tunnelResolvers],
    timeoutMs: opts.timeoutMs,
    exchange,
    cache: new DnsCache({ ...DEFAULT_CACHE_LIMITS, ...opts.cacheLimits }),
    log,
    tunnelUp: opts.tunnelUp ?? false,
    onQuery: opts.onQuery,
  });
  let listener;
  try {
    listener = await listen({ addresses: opts.listenAddresses ?? ['127.0.0.1', '::1'], port: opts.listenPort, handle: (m, via) => forwarder.handle(m, via), log });
  } catch (e) {
    await exchange.close();
    throw e;
  }
  log.info('dns: forwarder listening', {
    mode: opts.mode,
    port: listener.port,
    clusterDomains: opts.mode === 'split' ? clusterDomains : [],
    clusterResolvers: opts.mode === 'split' ? opts.clusterResolvers : [],
    tunnelResolvers: opts.tunnelResolvers,
    singleLabel: opts.mode === 'split' ? singleLabel : 'tunnel',
    ndots: opts.ndots,
  });
  // Said once: whether an app in the pod could pass for the forwarder (README "Security model").
  const identity = detectedDnsIdentity();
  if (identity?.kind === 'cgroup') log.info('dns: the forwarder is identified by its cgroup and source ports', { cgroupLevel: identity.level, cgroup: identity.path });
  else if (identity) log.warn(`dns: the forwarder is identified by its source ports only (${identity.reason}): an app with NET_RAW or NET_BIND_SERVICE in this pod could query cluster DNS directly`);
  const l = listener;
  return {
    port: l.port,
    setTunnelUp: (up) => forwarder.setTunnelUp(up),
    setTunnelResolvers: (ips) => forwarder.setTunnelResolvers(ips),
    flushCache: () => forwarder.flushCache(),
    stats: () => ({ ...forwarder.stats(), mode: opts.mode, listen: l.sockets, ...(identity ? { identity } : {}) }),
    stop: async () => {
      await l.close();
      await exchange.close();
    },
  };
}

/**
 * The firewall's part (DESIGN §3 rule 2, §5): redirect port 53 to the forwarder,
 * exempt its upstream source ports, allow cluster DNS for them. Tunnel mode
 * never asks cluster DNS, so it gets no exemption there.
 */
export function dnsPolicy(opts: { listenPort: number; clusterResolvers: readonly string[]; mode?: 'split' | 'tunnel'; identity: DnsIdentity }): DnsPolicy {
  // Detected by the environment probe (a self-test with nft: currentDnsIdentity), so the plan stays pure.
  const identity = opts.identity;
  return {
    forwarderPort: opts.listenPort,
    upstreamSourcePorts: { from: DNS_UPSTREAM_PORTS.from, to: DNS_UPSTREAM_PORTS.to },
    clusterResolvers: opts.mode === 'tunnel' ? [] : [...opts.clusterResolvers],
    ...(identity.kind === 'cgroup' ? { cgroup: { path: identity.path, level: identity.level } } : {}),
  };
}

/** DNS_MODE=off (or ENABLE_DNS_CONFIG=false): say loudly what that means. */
export function warnDnsOff(log: Logger, clusterResolvers: readonly string[]): void {
  log.warn(
    'DNS_MODE=off: DNS is not managed. Applications resolve through ' +
      (clusterResolvers.length ? clusterResolvers.join(', ') : 'their own resolvers') +
      ', which forwards external names outside the tunnel: every external name leaks to the network. Use DNS_MODE=split (default) to keep names inside the tunnel.',
  );
}
