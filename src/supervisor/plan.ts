// Pure: settings + environment facts + servers → everything the sidecar will
// do. No effect, no clock: the bring-up (bringup.ts) applies it step by step,
// and the golden tests render every firewall state from it.
import type { Settings } from '../config/settings.js';
import type { ServerConfig } from '../config/types.js';
import { dnsPolicy as buildDnsPolicy, type DnsIdentity } from '../dns/index.js';
import { planBypass, type BypassEntry } from '../environment/bypass.js';
import { HEALTH_CAP_PER_SOURCE, PROXY_REPLY_MARK, type DnsPolicy, type FirewallPolicy } from '../firewall/policy.js';
import { planRouting, tunnelMtu, type RoutePlan } from '../routing/plan.js';
import type { SidecarFacts } from './facts.js';
import { orderServers } from './selection.js';
import { LEARNED_MARK } from '../cluster/index.js';
import { negotiationAllow } from './quantum-plan.js';

/** Mullvad's resolver inside every tunnel: the probe's target when nothing else is named. */
export const MULLVAD_TUNNEL_RESOLVER = '10.64.0.1';

export type ProbeTarget = { readonly kind: 'tcp'; readonly target: string } | { readonly kind: 'dns'; readonly resolver: string };
export type PlannedState = 'blocked' | 'connecting' | 'connected';

export interface SidecarPlan {
  /** Networks kept outside the tunnel, each with why. */
  readonly bypass: readonly BypassEntry[];
  /** What the operator should know about the plan (logged as warnings). */
  readonly notes: readonly string[];
  readonly dnsMode: Settings['dnsMode'];
  /** How the forwarder's own DNS packets are told from an app's (facts: the cgroup self-test). */
  readonly dnsIdentity: DnsIdentity;
  /** DNS interception; undefined with DNS_MODE=off. */
  readonly dns: DnsPolicy | undefined;
  /** Cluster resolvers the forwarder may ask (the forwarder's own address excluded). */
  readonly clusterResolvers: readonly string[];
  /** Policy routing table of the tunnel routes. */
  readonly table: number;
  /** Mark of the WireGuard socket (FWMARK, else the table). */
  readonly fwmark: number;
  /** Mark of packets to addresses the cluster named (undefined with ENABLE_BYPASS_ROUTES=false). */
  readonly learnedMark: number | undefined;
  /** The namespace's own interfaces, guarded against raw sockets. */
  readonly uplinks: readonly string[];
  readonly routes: RoutePlan;
  readonly mtu: number;
  readonly ipv6: boolean;
  /** Server names in the order they are tried. */
  readonly order: readonly string[];
  /** The in-tunnel health probe of a server. */
  probeTarget(server: ServerConfig): ProbeTarget;
  /** The resolver the handshake kick and the MTU diagnosis ask inside the tunnel. */
  tunnelResolver(server: ServerConfig): string;
  /** The firewall of every state; `uplinks` overrides the planned ones (interfaces changed since). */
  policyFor(state: PlannedState, server?: ServerConfig, uplinks?: readonly string[]): FirewallPolicy;
}

/** The interfaces to guard: all but loopback and the tunnel itself. */
export function uplinksOf(names: readonly string[], tunnel: string): string[] {
  return names.filter((n) => n !== 'lo' && n !== tunnel).sort();
}

export function planSidecar(settings: Settings, facts: SidecarFacts, servers: readonly ServerConfig[]): SidecarPlan {
  // Throws ConfigError(s) for a bypass that would swallow an endpoint or the tunnel resolver.
  const bypassPlan = planBypass({ env: facts.env, interfaces: facts.interfaces, resolv: facts.resolv, settings, servers });
  const bypass = bypassPlan.cidrs.map((b) => b.cidr);
  const dnsMode = settings.dnsConfig ? settings.dnsMode : 'off';
  // The forwarder's own address is not a cluster resolver; Docker's 127.0.0.11 is.
  const clusterResolvers = facts.resolv.nameservers.filter((n) => n !== '127.0.0.1' && n !== '::1');
  const dns = dnsMode === 'off' ? undefined : buildDnsPolicy({ listenPort: settings.dnsForwarderPort, clusterResolvers, mode: dnsMode, identity: facts.dnsIdentity });
  const table = facts.table;
  const fwmark = settings.fwmark ?? table;
  const uplinks = uplinksOf(facts.interfaces.filter((i) => !i.flags.includes('LOOPBACK')).map((i) => i.name), settings.wgInterface);
  const ipv6 = servers.some((s) => s.addresses.some((a) => a.family === 6));
  const first = servers[0];
  const mtu = settings.wgMtu ?? first?.mtu ?? tunnelMtu(facts.endpointRouteMtu ?? 1500);
  // The exit pool's port (PROXY_LISTEN) admits PROXY_ALLOWED_CIDRS; its replies leave the way they came in.
  const proxyInbound = settings.proxyListen.length ? { ports: [...new Set(settings.proxyListen.map((a) => Number(a.slice(a.lastIndexOf(':') + 1))))], clients: settings.proxyAllowedCidrs, mark: PROXY_REPLY_MARK } : undefined;
  // Addresses the cluster names (src/cluster) carry LEARNED_MARK: one ip rule, one firewall rule.
  const learnedMark = settings.bypassRoutes ? LEARNED_MARK : undefined;
  const routes = planRouting({ interface: settings.wgInterface, table, fwmark, bypass: settings.bypassRoutes ? bypass : [], ipv6, ...(proxyInbound ? { proxyReplyMark: proxyInbound.mark } : {}), ...(learnedMark !== undefined ? { learnedMark } : {}) });
  // QUANTUM_RESISTANT: connecting lets only the sidecar's negotiation into the tunnel (throws without a cgroup identity).
  const negotiation = settings.quantumResistant ? negotiationAllow(facts.dnsIdentity) : undefined;
  // The health port: one address's flood must not fill the accept queue ahead of the kubelet (firewall/health-cap.ts).
  const healthCap = { port: settings.healthPort, perSource: HEALTH_CAP_PER_SOURCE };
  const tunnelResolver = (s: ServerConfig): string => settings.dnsUpstreams?.[0] ?? s.dns[0] ?? MULLVAD_TUNNEL_RESOLVER;

  const policyFor = (state: PlannedState, server?: ServerConfig, now: readonly string[] = uplinks): FirewallPolicy => {
    const common = { killSwitch: settings.killSwitch, bypass, fwmark, dns, uplinks: now, tunnelName: settings.wgInterface, healthCap, ...(proxyInbound ? { proxy: proxyInbound } : {}), ...(learnedMark !== undefined ? { learnedMark } : {}) };
    if (state === 'blocked' || !server) return { state: 'blocked', ...common };
    const ep = server.peer.endpoint;
    if (!ep.ip) return { state: 'blocked', ...common }; // never reached: endpoints are resolved before connecting
    const allow = { endpoint: { ip: ep.ip, port: ep.port, family: ep.family ?? (ep.ip.includes(':') ? 6 : 4) }, tunnel: { interface: settings.wgInterface, addresses: server.addresses } } as const;
    if (state === 'connecting') return { state, ...common, ...allow, ...(negotiation ? { negotiation } : {}) };
    return { state, ...common, ...allow };
  };

  return {
    bypass: bypassPlan.cidrs,
    notes: bypassPlan.notes,
    dnsMode,
    dnsIdentity: facts.dnsIdentity,
    dns,
    clusterResolvers,
    table,
    fwmark,
    learnedMark,
    uplinks,
    routes,
    mtu,
    ipv6,
    order: orderServers(servers, { mode: settings.serverSelection, podName: settings.podName }),
    probeTarget: (s) => (settings.probeTarget ? { kind: 'tcp', target: settings.probeTarget } : { kind: 'dns', resolver: tunnelResolver(s) }),
    tunnelResolver,
    policyFor,
  };
}
