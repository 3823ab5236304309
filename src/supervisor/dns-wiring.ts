// Starts the split DNS forwarder (src/dns) for the sidecar and adapts it to the
// supervisor's events. Kept here so sidecar.ts stays about order, not DNS.
import type { Cidr } from '../config/cidr.js';
import type { Settings } from '../config/settings.js';
import { prepareResolvConf, startDnsService, type DnsService } from '../dns/index.js';
import { defaultClusterDomains } from '../dns/names.js';
import type { ClusterReach } from '../cluster/index.js';
import type { EnvironmentKind } from '../environment/detect.js';
import type { SidecarMetrics } from '../health/metrics.js';
import type { Logger } from '../log/logger.js';

export interface DnsHandle {
  setTunnel(up: boolean, resolvers: readonly string[]): void;
  flushCache(): void;
  stop(): Promise<void>;
}

export interface DnsStartOptions {
  settings: Settings;
  mode: 'split' | 'tunnel';
  environment: EnvironmentKind;
  clusterResolvers: readonly string[];
  searchDomains: readonly string[];
  ndots: number;
  tunnelResolvers: readonly string[];
  clusterNetworks: readonly Cidr[];
  /** Cluster answers open the way (learned addresses); absent with ENABLE_BYPASS_ROUTES=false. */
  reach?: ClusterReach | undefined;
  log: Logger;
  metrics: SidecarMetrics;
}

export async function startDns(o: DnsStartOptions): Promise<DnsHandle> {
  // Compose with a shared, writable resolv.conf: point it at the forwarder. In
  // Kubernetes the nftables redirect alone catches every query.
  await prepareResolvConf({ path: o.settings.resolvConf, mode: o.mode, environment: o.environment, log: o.log });
  const svc: DnsService = await startDnsService({
    mode: o.mode,
    listenPort: o.settings.dnsForwarderPort,
    clusterResolvers: o.clusterResolvers,
    clusterDomains: [...defaultClusterDomains(o.searchDomains), ...(o.settings.clusterDomains ?? [])],
    searchDomains: o.searchDomains,
    ndots: o.ndots,
    tunnelResolvers: o.tunnelResolvers,
    timeoutMs: o.settings.probeTimeoutMs,
    clusterNetworks: o.clusterNetworks,
    ...(o.reach ? { isClusterAddress: o.reach.isClusterAddress, onClusterAnswer: o.reach.onClusterAnswer } : {}),
    log: o.log,
    onQuery: (upstream, result) => o.metrics.dnsQuery(upstream, result),
  });
  const fixedUpstreams = o.settings.dnsUpstreams !== undefined;
  return {
    setTunnel: (up, resolvers) => {
      if (up && !fixedUpstreams && resolvers.length) svc.setTunnelResolvers(resolvers);
      svc.setTunnelUp(up);
    },
    flushCache: () => svc.flushCache(),
    stop: () => svc.stop(),
  };
}
