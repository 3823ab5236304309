// Whether to point resolv.conf at the forwarder, as a pure plan.
//
// Interception alone already sends every port-53 packet to the forwarder, so
// the rewrite is never what prevents a leak. It matters in one place: Docker
// Compose, where the app containers of `network_mode: service:vpn` get the
// vpn container's resolv.conf (the engine bind-mounts the same file) and the
// engine's own DNAT of 127.0.0.11:53 could race our redirect. Pointing the file
// at 127.0.0.1 takes that path out of play. Kubernetes: never (the kubelet owns
// the file; the manifests may set dnsConfig). Plain Linux: never (the host's file
// is not ours). Nothing is restored on exit: 127.0.0.1 with no forwarder fails
// closed, the original nameserver would be a leak.
import type { DnsMode } from '../config/settings.js';
import type { EnvironmentKind } from '../environment/detect.js';
import { parseResolvConf } from '../environment/resolv.js';

/** Where the original nameservers are kept, so a restarted sidecar still finds cluster DNS. */
export const MANAGED_MARKER = '# mullvad-sidecar: queries go to the local forwarder; original nameservers:';
export const FORWARDER_NAMESERVER = '127.0.0.1';

export interface ResolvConfFacts {
  readonly text: string;
  readonly mode: DnsMode;
  readonly environment: EnvironmentKind;
  /** The file is a mount point: the engine's per-container file, shared with `service:` containers. */
  readonly mounted: boolean;
  readonly writable: boolean;
}

export type ResolvConfPlan =
  | { readonly action: 'keep'; readonly reason: string }
  | { readonly action: 'rewrite'; readonly content: string; readonly reason: string };

/** What the forwarder needs from resolv.conf, whether or not we rewrote it earlier. */
export interface ClusterDnsConfig {
  /** Cluster DNS servers: the original ones when the file is already ours. */
  readonly nameservers: readonly string[];
  readonly search: readonly string[];
  readonly ndots: number;
  readonly managed: boolean;
}

function markerServers(text: string): string[] | undefined {
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith(MANAGED_MARKER)) return line.slice(MANAGED_MARKER.length).trim().split(/\s+/).filter(Boolean);
  }
  return undefined;
}

export function readClusterDnsConfig(text: string): ClusterDnsConfig {
  const conf = parseResolvConf(text);
  const original = markerServers(text);
  return {
    nameservers: original ?? conf.nameservers,
    search: conf.search,
    // glibc's default is 1 when the file says nothing.
    ndots: conf.options.ndots ?? 1,
    managed: original !== undefined,
  };
}

/** The file with every nameserver line replaced by the forwarder; search, options and comments kept. */
export function renderManagedResolvConf(text: string, original: readonly string[]): string {
  const kept = text
    .split(/\r?\n/)
    .filter((l) => !/^\s*nameserver\s/.test(l) && !l.startsWith(MANAGED_MARKER))
    .join('\n')
    .replace(/\n+$/, '');
  return `${MANAGED_MARKER} ${original.join(' ')}\nnameserver ${FORWARDER_NAMESERVER}\n${kept ? kept + '\n' : ''}`;
}

function restoreResolvConf(text: string, original: readonly string[]): string {
  const kept = text.split(/\r?\n/).filter((l) => !/^\s*nameserver\s/.test(l) && !l.startsWith(MANAGED_MARKER));
  return [...original.map((ip) => `nameserver ${ip}`), ...kept].join('\n').replace(/\n+$/, '') + '\n';
}

export function planResolvConfRewrite(f: ResolvConfFacts): ResolvConfPlan {
  const keep = (reason: string): ResolvConfPlan => ({ action: 'keep', reason });
  if (f.mode === 'off') {
    // An explicit off after an earlier managed run: hand the file back, as asked.
    const earlier = markerServers(f.text);
    if (earlier && f.writable) return { action: 'rewrite', content: restoreResolvConf(f.text, earlier), reason: 'DNS_MODE=off: restoring the original nameservers' };
    return keep('DNS_MODE=off: DNS is not managed');
  }
  if (f.environment === 'kubernetes') return keep('Kubernetes owns resolv.conf; interception redirects every query');
  if (f.environment === 'linux') return keep('not in a container: the host resolver file is not ours; interception redirects every query');
  if (!f.mounted) return keep('not an engine-provided file, so not shared with other containers; interception redirects every query');
  if (!f.writable) return keep('read-only; interception redirects every query');
  const conf = readClusterDnsConfig(f.text);
  const current = parseResolvConf(f.text).nameservers;
  if (conf.managed && current.length === 1 && current[0] === FORWARDER_NAMESERVER) return keep('already points at the forwarder');
  return {
    action: 'rewrite',
    content: renderManagedResolvConf(f.text, conf.nameservers),
    reason: 'shared with the containers of this network namespace (Compose network_mode: service:)',
  };
}
