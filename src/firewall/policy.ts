// The firewall policy as data: one value per supervisor state (Mullvad style).
// `renderRuleset(policy)` turns it into one nft transaction; nothing else
// decides what is allowed.
import type { Cidr } from '../config/cidr.js';
import type { InterfaceAddress } from '../config/types.js';

export const TABLE = 'mullvad_sidecar';

export interface EndpointAllow {
  readonly ip: string;
  readonly port: number;
  readonly family: 4 | 6;
}

export interface TunnelAllow {
  readonly interface: string;
  readonly addresses: readonly InterfaceAddress[];
}

/** DNS interception (split DNS issue). Absent = DNS not managed (DNS_MODE=off). */
export interface DnsPolicy {
  /** Local port of the forwarder; every port-53 packet not from the forwarder is redirected here. */
  readonly forwarderPort: number;
  /** Source ports the forwarder's own upstream sockets bind to: exempt from the redirect. */
  readonly upstreamSourcePorts: { readonly from: number; readonly to: number };
  /** Cluster DNS servers the forwarder may query directly (cluster names only). */
  readonly clusterResolvers: readonly string[];
  /**
   * The sidecar's own cgroup v2 (src/dns/identity.ts): the exempted ports count
   * only from sockets in it (`socket cgroupv2`, raw sockets included). Absent:
   * the source ports alone (no usable cgroup v2; README "Security model").
   */
  readonly cgroup?: { readonly path: string; readonly level: number };
}

/**
 * The exit pool's listener (PROXY_LISTEN). Inbound only from `clients`; the
 * connection is marked (conntrack mark `mark`) so its replies are routed back out
 * of the interface it came in on (ip rule fwmark → main), never into the tunnel.
 */
export interface ProxyInbound {
  readonly ports: readonly number[];
  readonly clients: readonly Cidr[];
  readonly mark: number;
}

/** Conntrack/packet mark bit of proxy client connections (distinct from FWMARK values and PASSED_MARK). */
export const PROXY_REPLY_MARK = 0x10000000;

/** The health port's cap per source address: the health server's own cap per address of the pod's network (src/health/server.ts). */
export const HEALTH_CAP_PER_SOURCE = 32;

/**
 * The health port (HEALTH_PORT): new connections to it from outside the namespace
 * are counted per source address (`ct count`) and dropped beyond `perSource`
 * before they reach the accept queue, so one address flooding the port cannot
 * queue ahead of the kubelet's probe from another. Loopback (the app, Docker's
 * HEALTHCHECK, `mullvad-sidecar status`) is accepted before and never capped.
 */
export interface HealthCap {
  readonly port: number;
  readonly perSource: number;
}

interface Common {
  /** false only with ENABLE_KILL_SWITCH=false: egress is not restricted (DNS interception still applies). */
  readonly killSwitch: boolean;
  /** Networks that stay outside the tunnel (cluster, Compose, BYPASS_CIDRS). */
  readonly bypass: readonly Cidr[];
  readonly fwmark: number;
  readonly dns: DnsPolicy | undefined;
  /**
   * The namespace's own interfaces, guarded at the netdev egress hook against
   * raw packet sockets (uplink.ts). Absent or empty: no guard (kernel < 5.16).
   */
  readonly uplinks?: readonly string[];
  /**
   * The tunnel interface's name, in every state: an interface left up while
   * blocked (backoff) must not let anything in either.
   */
  readonly tunnelName?: string;
  /** The exit pool's port, in every state: while the tunnel is down the proxy itself refuses at once. */
  readonly proxy?: ProxyInbound;
  /**
   * Packets carrying this mark go to addresses the cluster named (set by the
   * learned-address table, src/cluster/nft.ts) and are accepted like the bypass
   * networks. Absent: nothing learned is reachable (the lockdown).
   */
  readonly learnedMark?: number;
  /** Absent: no cap (the lockdown, or a kernel without nft_connlimit). */
  readonly healthCap?: HealthCap;
}

/**
 * QUANTUM_RESISTANT (src/quantum): while the tunnel is not yet quantum-resistant
 * ("negotiating"), the only packets let into it are the sidecar's own TCP to the
 * relay's ephemeral-peer service, from sockets of the sidecar's cgroup v2 (the
 * DNS forwarder's identity). Not its probes, not its DNS forwarder: nothing that
 * carries an app's data crosses a tunnel before the upgrade.
 */
export interface NegotiationAllow {
  readonly ip: string;
  readonly port: number;
  readonly cgroup: { readonly path: string; readonly level: number };
}

export type FirewallPolicy =
  | ({ readonly state: 'blocked' } & Common)
  | ({ readonly state: 'connecting'; readonly endpoint: EndpointAllow; readonly tunnel: TunnelAllow; readonly negotiation?: NegotiationAllow } & Common)
  | ({ readonly state: 'connected'; readonly endpoint: EndpointAllow; readonly tunnel: TunnelAllow } & Common);

export type FirewallState = FirewallPolicy['state'];

/**
 * Source ports of the sidecar's own DNS sockets (forwarder upstream queries and
 * in-tunnel DNS probes). Port-53 packets from these ports are neither redirected
 * to the forwarder nor rejected (when addressed to cluster DNS or sent into the
 * tunnel); every other port-53 packet is. Below Linux's ephemeral range
 * (32768–60999) so applications do not pick them by chance.
 */
export const DNS_UPSTREAM_PORTS = { from: 10530, to: 10561 } as const;
