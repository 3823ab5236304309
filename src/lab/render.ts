// Pure renderers: the Mullvad-style .conf files, the nftables rulesets of the
// router and relays, the pod's resolv.conf and the topology as argv lists.
import { DEAD_SOCKS_IP, labSocksIp } from './servers/socks-addresses.js';
import type { LabPlan, RelayPlan } from './plan.js';
import { multihopPortRange } from './multihop.js';
import { CLIENT_TUNNEL, CLUSTER, INTERNET, MAX_RELAYS, NODE_SEARCH, POD, POD2, RELAY_TUNNEL, WG_PORT } from './plan.js';

/** Exactly the layout of a config downloaded from Mullvad's account page. */
export function renderMullvadConf(clientPrivateKey: string, relay: RelayPlan, relayPublicKey: string): string {
  return [
    '[Interface]',
    '# Device: Lab Device',
    `PrivateKey = ${clientPrivateKey}`,
    `Address = ${CLIENT_TUNNEL.ip}/32,${CLIENT_TUNNEL.ip6}/128`,
    `DNS = ${RELAY_TUNNEL.ip}`,
    '',
    '[Peer]',
    `PublicKey = ${relayPublicKey}`,
    'AllowedIPs = 0.0.0.0/0,::0/0',
    `Endpoint = ${relay.ip}:${WG_PORT}`,
    '',
  ].join('\n');
}

/** Like a GKE pod's resolv.conf: cluster DNS, the namespace search list, then the node's own domains, ndots:5. */
export function renderResolvConf(): string {
  return [
    `nameserver ${CLUSTER.dns}`,
    `search default.svc.${CLUSTER.domain} svc.${CLUSTER.domain} ${CLUSTER.domain} ${NODE_SEARCH.join(' ')}`,
    'options ndots:5',
    '',
  ].join('\n');
}

export const ROUTER_TABLE = 'lab';
/** Multihop ports (multihop.ts) are WireGuard to a relay too: a client's entry hop. */
const MULTIHOP = multihopPortRange(MAX_RELAYS);
export const COUNTERS = { v4: 'leak4', v6: 'leak6', dns: 'leakdns', relayDirect: 'relaydirect', stray: 'stray' } as const;

/** WireGuard's message types 1–4 (type byte, three reserved zero bytes): told apart from DNS on a relay's port 53. */
const WG_TYPES = '{ 0x01000000, 0x02000000, 0x03000000, 0x04000000 }';

/**
 * The router's accounting table. Counters come before the dark-relay drops so a
 * leak is counted even when it is also dropped. Policy accept: the router is the
 * "cluster network", it forwards everything; the sidecar alone must stop leaks.
 */
export function renderRouterNft(plan: LabPlan): string {
  const relays4 = plan.relays.map((r) => r.ip).join(', ');
  const relays6 = plan.relays.map((r) => r.ip6).join(', ');
  return `table inet ${ROUTER_TABLE}
delete table inet ${ROUTER_TABLE}
table inet ${ROUTER_TABLE} {
  counter ${COUNTERS.v4} {}
  counter ${COUNTERS.v6} {}
  counter ${COUNTERS.dns} {}
  counter ${COUNTERS.relayDirect} {}
  counter ${COUNTERS.stray} {}
  set relays4 { type ipv4_addr; elements = { ${relays4} } }
  set relays6 { type ipv6_addr; elements = { ${relays6} } }
  set dark4 { type ipv4_addr; }
  set dark6 { type ipv6_addr; }
  set blackhole4 { typeof ip daddr . meta length; flags interval; }
  set blackhole6 { typeof ip6 daddr . meta length; flags interval; }
  # Everything the pod sends past the router except WireGuard to a relay: the strictest leak measure.
  chain pod_egress {
    ip daddr @relays4 udp dport { ${WG_PORT}, ${MULTIHOP} } return
    ip6 daddr @relays6 udp dport { ${WG_PORT}, ${MULTIHOP} } return
    ip daddr @relays4 udp dport 53 @ih,0,32 ${WG_TYPES} return
    ip6 daddr @relays6 udp dport 53 @ih,0,32 ${WG_TYPES} return
    counter name "${COUNTERS.stray}"
  }
  # WireGuard to a relay's port 53: not a DNS leak, nor a relay reached directly; a dark relay still drops it.
  chain wireguard53 {
    ip daddr @dark4 drop
    ip6 daddr @dark6 drop
    accept
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip saddr ${POD.net} jump pod_egress
    ip6 saddr ${POD.net6} jump pod_egress
    # pod straight to the internet host (or its public Service address): a leak past the tunnel
    ip saddr ${POD.net} ip daddr { ${INTERNET.net}, ${CLUSTER.publicService} } counter name "${COUNTERS.v4}"
    ip6 saddr ${POD.net6} ip6 daddr ${INTERNET.net6} counter name "${COUNTERS.v6}"
    ip saddr ${POD.net} ip daddr @relays4 udp dport 53 @ih,0,32 ${WG_TYPES} jump wireguard53
    ip6 saddr ${POD.net6} ip6 daddr @relays6 udp dport 53 @ih,0,32 ${WG_TYPES} jump wireguard53
    # pod to any resolver outside the cluster: a DNS leak
    ip saddr ${POD.net} meta l4proto { tcp, udp } th dport 53 counter name "${COUNTERS.dns}"
    ip6 saddr ${POD.net6} meta l4proto { tcp, udp } th dport 53 counter name "${COUNTERS.dns}"
    # pod to a relay's address other than its WireGuard port
    ip saddr ${POD.net} ip daddr @relays4 meta l4proto != udp counter name "${COUNTERS.relayDirect}"
    ip saddr ${POD.net} ip daddr @relays4 udp dport != { ${WG_PORT}, ${MULTIHOP} } counter name "${COUNTERS.relayDirect}"
    ip6 saddr ${POD.net6} ip6 daddr @relays6 meta l4proto != udp counter name "${COUNTERS.relayDirect}"
    ip6 saddr ${POD.net6} ip6 daddr @relays6 udp dport != { ${WG_PORT}, ${MULTIHOP} } counter name "${COUNTERS.relayDirect}"
    # dark relays and MTU black holes: after the counters, silent (no ICMP)
    ip daddr @dark4 drop
    ip saddr @dark4 drop
    ip6 daddr @dark6 drop
    ip6 saddr @dark6 drop
    ip daddr . meta length @blackhole4 drop
    ip saddr . meta length @blackhole4 drop
    ip6 daddr . meta length @blackhole6 drop
    ip6 saddr . meta length @blackhole6 drop
  }
}
`;
}

/** A relay masquerades the tunnel addresses out of its uplink, as Mullvad's exits do. */
export function renderRelayNft(relay: RelayPlan): string {
  return `table inet labnat
delete table inet labnat
table inet labnat {
  # WireGuard on port 53 too, as Mullvad's relays take it (a port past networks that allow only DNS).
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${relay.uplink}" udp dport 53 redirect to :${WG_PORT}
    iifname "${relay.uplink}" ip6 nexthdr udp udp dport 53 redirect to :${WG_PORT}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${relay.uplink}" ip saddr 10.64.0.0/10 masquerade
    oifname "${relay.uplink}" ip6 saddr fc00:bbbb::/32 masquerade
  }
}
`;
}

type Argv = string[];

/** veth pairs, each created straight into its two namespaces (no host-side names). */
export function vethCommands(plan: LabPlan): Argv[] {
  const veth = (a: string, nsA: string, b: string, nsB: string): Argv =>
    ['ip', 'link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB];
  return [
    veth(plan.ifs.pod, plan.ns.pod, plan.ifs.routerPod, plan.ns.router),
    veth(plan.ifs.pod2, plan.ns.pod2, plan.ifs.routerPod2, plan.ns.router),
    veth(plan.ifs.internet, plan.ns.internet, plan.ifs.routerInternet, plan.ns.router),
    ...plan.relays.map((r) => veth(r.uplink, r.ns, r.routerSide, plan.ns.router)),
  ];
}

function link(ns: string, dev: string, v4: string, v6: string): Argv[] {
  // nodad: an IPv6 address is usable (bindable) at once instead of after ~1 s of DAD.
  // Up first: the carrier (applied by the kernel's rate-limited linkwatch work) comes sooner.
  return [
    ['ip', '-n', ns, 'link', 'set', dev, 'up'],
    ['ip', '-n', ns, 'addr', 'add', v4, 'dev', dev],
    ['ip', '-n', ns, 'addr', 'add', v6, 'dev', dev, 'nodad'],
  ];
}

function defaults(ns: string, gw: string, gw6: string): Argv[] {
  return [
    ['ip', '-n', ns, 'route', 'add', 'default', 'via', gw],
    ['ip', '-n', ns, '-6', 'route', 'add', 'default', 'via', gw6],
  ];
}

/**
 * One sysctl call per namespace, before any veth exists: no duplicate address
 * detection (it holds every IPv6 address, link-local too, tentative for a second;
 * `default` is what the veths inherit), and forwarding where the namespace routes.
 * Writing `all.forwarding` also sets `default`, so later interfaces forward too.
 */
export function sysctlCommand(ns: string, routes: boolean): Argv {
  const dad = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'];
  const fwd = routes ? ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'] : [];
  return ['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...dad, ...fwd];
}

/** Per namespace: loopback up and sysctls. */
export function namespaceSetupCommands(plan: LabPlan): Argv[][] {
  const routes = new Set([plan.ns.router, ...plan.relays.map((r) => r.ns)]);
  return [plan.ns.router, plan.ns.pod, plan.ns.pod2, plan.ns.internet, ...plan.relays.map((r) => r.ns)].map((ns) => [
    ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
    sysctlCommand(ns, routes.has(ns)),
  ]);
}

/** Per namespace, the commands that run in order; namespaces are independent of each other. */
export function addressCommands(plan: LabPlan): Argv[][] {
  const r = plan.ns.router;
  const router: Argv[] = [
    // The Service network and node 3's pods live on the router's lo, apart from every pod subnet.
    ...[CLUSTER.dns, CLUSTER.internalService, CLUSTER.kubernetesApi, ...CLUSTER.headless].map((ip): Argv => ['ip', '-n', r, 'addr', 'add', `${ip}/32`, 'dev', 'lo']),
    ...link(r, plan.ifs.routerPod, `${POD.gw}/24`, `${POD.gw6}/64`),
    ...link(r, plan.ifs.routerPod2, `${POD2.gw}/24`, `${POD2.gw6}/64`),
    ...link(r, plan.ifs.routerInternet, `${INTERNET.gw}/24`, `${INTERNET.gw6}/64`),
    ['ip', '-n', r, 'route', 'add', `${CLUSTER.publicService}/32`, 'via', INTERNET.ip],
    ...plan.relays.flatMap((x) => link(r, x.routerSide, `${x.gw}/24`, `${x.gw6}/64`)),
    // Each relay's in-tunnel SOCKS5 proxy address (10.124.0.N), reachable from every other relay.
    ...plan.relays.map((x): Argv => ['ip', '-n', r, 'route', 'add', `${labSocksIp(x.index)}/32`, 'via', x.ip]),
    ['ip', '-n', r, 'route', 'add', `${DEAD_SOCKS_IP}/32`, 'via', plan.relays[1]?.ip ?? plan.relays[0]!.ip],
  ];
  const pod: Argv[] = [
    ...link(plan.ns.pod, plan.ifs.pod, `${POD.ip}/24`, `${POD.ip6}/64`),
    ...defaults(plan.ns.pod, POD.gw, POD.gw6),
  ];
  const pod2: Argv[] = [
    ...link(plan.ns.pod2, plan.ifs.pod2, `${POD2.ip}/24`, `${POD2.ip6}/64`),
    ...defaults(plan.ns.pod2, POD2.gw, POD2.gw6),
  ];
  const inet: Argv[] = [
    ['ip', '-n', plan.ns.internet, 'addr', 'add', `${CLUSTER.publicService}/32`, 'dev', 'lo'],
    ...link(plan.ns.internet, plan.ifs.internet, `${INTERNET.ip}/24`, `${INTERNET.ip6}/64`),
    ...defaults(plan.ns.internet, INTERNET.gw, INTERNET.gw6),
  ];
  const relays = plan.relays.map((x): Argv[] => [
    ['ip', '-n', x.ns, 'addr', 'add', `${labSocksIp(x.index)}/32`, 'dev', 'lo'],
    ...(x.index === 2 ? [['ip', '-n', x.ns, 'addr', 'add', `${DEAD_SOCKS_IP}/32`, 'dev', 'lo']] : []),
    ...link(x.ns, x.uplink, `${x.ip}/24`, `${x.ip6}/64`),
    ...defaults(x.ns, x.gw, x.gw6),
  ]);
  return [router, pod, pod2, inet, ...relays];
}

/** After wireguard-go created the TUN device and `wg set` configured it. */
export function relayTunnelCommands(relay: RelayPlan): Argv[] {
  const { ns, wgInterface: dev } = relay;
  return [
    ['ip', '-n', ns, 'addr', 'add', `${RELAY_TUNNEL.ip}/32`, 'dev', dev],
    ['ip', '-n', ns, 'addr', 'add', `${RELAY_TUNNEL.ip6}/128`, 'dev', dev, 'nodad'],
    ['ip', '-n', ns, 'link', 'set', dev, 'up'],
    ['ip', '-n', ns, 'route', 'add', `${CLIENT_TUNNEL.ip}/32`, 'dev', dev],
    ['ip', '-n', ns, '-6', 'route', 'add', `${CLIENT_TUNNEL.ip6}/128`, 'dev', dev],
  ];
}
