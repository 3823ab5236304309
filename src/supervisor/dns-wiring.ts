// Starts the split DNS forwarder (src/dns) for the sidecar and adapts it to the
// supervisor's events. Kept here so sidecar.ts stays about order, not DNS.
import type { Settings } from '../config/settings.js';
import type { ResolvConf } from '../environment/resolv.js';
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
  resolv: ResolvConf;
  clusterResolvers: string[];
  tunnelResolvers: readonly string[];
  log: Logger;
  metrics: SidecarMetrics;
}

export async function startDns(o: DnsStartOptions): Promise<DnsHandle> {
  o.log.warn('DNS forwarder not available in this build yet: port 53 is redirected to it and refused');
  return { setTunnel: () => {}, flushCache: () => {}, stop: async () => {} };
}
