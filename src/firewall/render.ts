// Pure: FirewallPolicy → the text of one `nft -f -` transaction.
// The rule order in the output chain is the security argument; each
// order-sensitive rule says why. See README "Security model".
import type { Cidr } from '../config/cidr.js';
import { DNS_UPSTREAM_PORTS, TABLE, type FirewallPolicy } from './policy.js';
import { guardedDevices, renderPassedMarkChain, renderUplinkGuard } from './uplink.js';
import { renderAuditDefinitions, renderAuditRules } from '../audit/render.js';
import { renderHealthCapRules, renderHealthCapSets } from './health-cap.js';

/** Named counters: packets the kill switch refused (attempted leaks stopped). */
export const BLOCKED_COUNTERS = { ipv4: 'blocked_ipv4', ipv6: 'blocked_ipv6' } as const;

/**
 * The whole transaction: (add, delete, add) the inet table so the swap is
 * atomic whether or not it existed; the uplink guard's netdev table is never
 * deleted here, its chains are rewritten in place (uplink.ts). `obsoleteGuards`
 * names guard chains of devices no longer guarded. Nothing else in the ruleset
 * is touched.
 */
export function renderTransaction(policy: FirewallPolicy, obsoleteGuards: readonly string[] = []): string {
  return [`add table inet ${TABLE}`, `delete table inet ${TABLE}`, renderRuleset(policy), renderUplinkGuard(policy, obsoleteGuards)].join('\n');
}

/** Removes our tables (KILL_SWITCH_ON_EXIT=remove). Still one transaction. */
export function renderRemoval(): string {
  return [`add table inet ${TABLE}`, `delete table inet ${TABLE}`, `add table netdev ${TABLE}`, `delete table netdev ${TABLE}`, ''].join('\n');
}

export function renderRuleset(p: FirewallPolicy): string {
  const tunnel = p.state === 'blocked' ? undefined : p.tunnel;
  const endpoint = p.state === 'blocked' ? undefined : p.endpoint;
  const connected = p.state === 'connected';
  const v4 = p.bypass.filter((c) => c.family === 4);
  const v6 = p.bypass.filter((c) => c.family === 6);
  const L: string[] = [];
  const rule = (comment: string | undefined, r: string): void => {
    if (comment) L.push(`\t\t# ${comment}`);
    L.push(`\t\t${r}`);
  };

  L.push(`# mullvad-sidecar: state ${p.state}${p.killSwitch ? '' : ' (KILL SWITCH DISABLED)'}`);
  L.push(`table inet ${TABLE} {`);
  L.push(set('bypass4', 'ipv4_addr', v4), set('bypass6', 'ipv6_addr', v6));
  L.push(`\tcounter ${BLOCKED_COUNTERS.ipv4} {\n\t}`, `\tcounter ${BLOCKED_COUNTERS.ipv6} {\n\t}`);
  L.push(...renderAuditDefinitions()); // the refused-traffic audit (src/audit)
  const px = p.proxy;
  if (p.healthCap) L.push(...renderHealthCapSets());
  if (px) L.push(set('proxy_clients4', 'ipv4_addr', px.clients.filter((c) => c.family === 4)), set('proxy_clients6', 'ipv6_addr', px.clients.filter((c) => c.family === 6)));

  // ---- output: what may leave this namespace -------------------------------
  L.push('', `\tchain output {`, `\t\ttype filter hook output priority filter; policy ${p.killSwitch ? 'drop' : 'accept'};`);
  rule('1. loopback: the DNS forwarder, health server and local services', 'oif "lo" accept');
  if (p.dns) {
    // oif here is the device routed BEFORE the nat redirect: a query redirected
    // to the forwarder still looks like port 53 to eth0 or wg0 at this point.
    rule('1a. DNS already redirected to the forwarder on loopback', `meta l4proto { tcp, udp } th dport ${p.dns.forwarderPort} ip daddr 127.0.0.1 accept`);
    rule(undefined, `meta l4proto { tcp, udp } th dport ${p.dns.forwarderPort} ip6 daddr ::1 accept`);
  }
  const ports = `${DNS_UPSTREAM_PORTS.from}-${DNS_UPSTREAM_PORTS.to}`;
  // The sidecar's sockets: the ports AND, where usable, its cgroup (an app can bind or forge a port).
  const cg = p.dns?.cgroup;
  const own = `th sport ${ports}${cg ? ` socket cgroupv2 level ${cg.level} "${cg.path}"` : ''}`;
  const negotiation = p.state === 'connecting' ? p.negotiation : undefined;
  if (tunnel && negotiation) {
    // QUANTUM_RESISTANT: until the upgraded handshake, the tunnel carries the
    // negotiation only (it is also the packet that makes WireGuard handshake).
    // No probe and no forwarder query: their packets would carry app data (DNS
    // names) through a tunnel that is not yet quantum-resistant.
    const ng = negotiation.cgroup;
    rule(`1b. negotiating: only the sidecar's own TCP (its cgroup) to the relay's ephemeral-peer service may use the tunnel`, `ip daddr ${negotiation.ip} tcp dport ${negotiation.port} socket cgroupv2 level ${ng.level} "${ng.path}" oifname "${tunnel.interface}" accept`);
  } else if (tunnel) {
    // Also in connecting: WireGuard starts a handshake only when a packet is
    // sent into the tunnel, and Mullvad's files have no PersistentKeepalive; the
    // sidecar's probe is that packet (Mullvad's app likewise lets its own
    // connectivity check into the tunnel while connecting). Only the sidecar's
    // sockets bind these ports, and the packet leaves encrypted to the relay.
    // Before the DNS reject: the forwarder's external queries go this way too.
    rule(`1b. the sidecar's own sockets (source ports ${ports}${cg ? ' of its cgroup' : ''}: probes, forwarder) may use the tunnel`, `meta l4proto { tcp, udp } ${own} oifname "${tunnel.interface}" accept`);
  }
  if (endpoint) {
    const fam = endpoint.family === 4 ? 'ip' : 'ip6';
    // The mark is set only on the WireGuard socket (FWMARK, SO_MARK needs
    // CAP_NET_ADMIN): applications cannot reach the relay's address directly, not
    // even on its port. Before the DNS rules: Mullvad's relays take WireGuard on
    // port 53 too, and the tunnel's own packets are not DNS.
    rule('1c. only the WireGuard socket may reach the selected relay', `meta mark ${hex(p.fwmark)} ${fam} daddr ${endpoint.ip} udp dport ${endpoint.port} accept`);
  }
  if (p.dns) {
    const cluster4 = p.dns.clusterResolvers.filter((a) => !a.includes(':'));
    const cluster6 = p.dns.clusterResolvers.filter((a) => a.includes(':'));
    // Before the bypass sets: otherwise an external name sent to cluster DNS
    // would pass as "cluster traffic" and be forwarded upstream outside the tunnel.
    if (cluster4.length)
      rule(`2. DNS: only the forwarder (source ports ${ports}${cg ? ' of the sidecar\'s cgroup' : ''}) may query cluster DNS, for cluster names`, `meta l4proto { tcp, udp } ${own} th dport 53 ip daddr { ${cluster4.join(', ')} } accept`);
    if (cluster6.length) rule(undefined, `meta l4proto { tcp, udp } ${own} th dport 53 ip6 daddr { ${cluster6.join(', ')} } accept`);
    rule('   every other DNS packet is refused, before any bypass rule', `meta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 counter name ${BLOCKED_COUNTERS.ipv4} jump refuse`);
    rule(undefined, `meta nfproto ipv6 meta l4proto { tcp, udp } th dport 53 counter name ${BLOCKED_COUNTERS.ipv6} jump refuse`);
  }
  // IPv6 needs neighbour discovery on the uplink to reach bypass networks at all.
  rule('IPv6 neighbour discovery on the local link only', 'ip6 daddr { fe80::/10, ff02::/16 } icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept');
  if (px) {
    // Only replies on connections a proxy client opened to us (ct mark set in
    // input), wherever the client sits: its own network, another node's subnet.
    // The route chain below sends them to the main table, out of the interface they came in on.
    rule('2a. replies to exit pool clients, on their own connections only', `ct direction reply ct mark & ${hex(px.mark)} == ${hex(px.mark)} accept`);
    // A UDP association outlives conntrack's UDP timeout: once the entry is gone an
    // exit's late datagram to the client would be a new flow routed into the
    // tunnel. The proxy's UDP port only ever answers; before rule 3 and 5.
    rule('2b. the exit pool\'s UDP port sends replies only (2a), nothing else', `udp sport { ${px.ports.join(', ')} } ct direction original drop`);
  }
  rule('3. bypass networks (cluster, Compose, BYPASS_CIDRS) stay outside the tunnel', 'ip daddr @bypass4 accept');
  rule(undefined, 'ip6 daddr @bypass6 accept');
  if (p.learnedMark !== undefined) {
    // Marked only by the learned table's route chain, for addresses cluster DNS,
    // the environment or the API named; after the DNS rules like the sets above.
    const m = hex(p.learnedMark);
    rule('3a. addresses the cluster named (marked by table mullvad_sidecar_learned)', `meta mark & ${m} == ${m} accept`);
  }
  // An unsolicited packet from outside the bypass networks draws an ICMP error
  // (port unreachable): it answers nobody we talk to, so it goes nowhere, not
  // even into the tunnel.
  rule('4b. ICMP errors about flows that came in from outside the bypass networks', 'ct state related ct direction reply drop');
  if (connected && tunnel) rule('5. everything else goes through the tunnel', `oifname "${tunnel.interface}" accept`);
  // No "established" accept at all: a flow opened through the tunnel must not
  // continue out of eth0 when the tunnel goes away, and replies to connections
  // that came in go only to the bypass networks (rule 3): kubelet, Services,
  // HOST_IP. Anything else would answer a stranger with the pod's own address.
  if (p.killSwitch) {
    rule('7. everything else is refused (fast failure for the app) and counted', `meta nfproto ipv4 counter name ${BLOCKED_COUNTERS.ipv4} jump refuse`);
    rule(undefined, `meta nfproto ipv6 counter name ${BLOCKED_COUNTERS.ipv6} jump refuse`);
  }
  L.push('\t}');

  L.push('', '\tchain refuse {');
  rule('the audit: which destinations were refused, and how often (src/audit)', renderAuditRules()[0]!);
  for (const r of renderAuditRules().slice(1)) rule(undefined, r);
  rule('TCP gets a reset, everything else ICMP admin-prohibited: no hanging connects', 'meta l4proto tcp reject with tcp reset');
  rule(undefined, 'reject with icmpx type admin-prohibited');
  L.push('\t}');

  // ---- input: what may arrive ----------------------------------------------
  L.push('', '\tchain input {', `\t\ttype filter hook input priority filter; policy ${p.killSwitch ? 'drop' : 'accept'};`);
  rule(undefined, 'iif "lo" accept');
  rule(undefined, 'ct state established,related accept');
  rule(undefined, 'ct state invalid drop');
  const tunnelIf = tunnel?.interface ?? p.tunnelName;
  if (tunnelIf) rule('nothing may open a connection to us through the tunnel', `iifname "${tunnelIf}" drop`);
  rule('IPv6 neighbour discovery', 'icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept');
  if (px) {
    const ports = `{ ${px.ports.join(', ')} }`;
    // Before the bypass accept: the proxy port is for PROXY_ALLOWED_CIDRS only, even from a bypass network.
    // TCP (SOCKS5, HTTP) and UDP (SOCKS5 UDP ASSOCIATE datagrams) on the same port number.
    rule('the exit pool port: PROXY_ALLOWED_CIDRS only; the connection is marked for reply routing', `meta l4proto { tcp, udp } th dport ${ports} ip saddr @proxy_clients4 ct state new ct mark set ct mark | ${hex(px.mark)} accept`);
    rule(undefined, `meta l4proto { tcp, udp } th dport ${ports} ip6 saddr @proxy_clients6 ct state new ct mark set ct mark | ${hex(px.mark)} accept`);
    rule('   nobody else reaches it', `meta l4proto { tcp, udp } th dport ${ports} drop`);
  }
  if (p.healthCap) {
    // Before the bypass accept: one address's flood would fill the accept queue ahead of the kubelet's probe (health-cap.ts).
    const [v4, v6] = renderHealthCapRules(p.healthCap);
    rule(`the health port: at most ${p.healthCap.perSource} connections per source address reach the accept queue`, v4);
    rule(undefined, v6);
  }
  // Only peers we may answer (output rule 3): a connection from anywhere else
  // could not get a reply outside the tunnel anyway.
  rule('cluster side: Services, kubelet probes (HOST_IP), the health port', 'ip saddr @bypass4 accept');
  rule(undefined, 'ip6 saddr @bypass6 accept');
  L.push('\t}');

  if (tunnel) {
    // wg-quick's CVE-2019-14899 guard: packets for the tunnel address that arrive
    // on another interface from a non-local source are spoofed.
    L.push('', '\tchain preraw {', '\t\ttype filter hook prerouting priority raw; policy accept;');
    for (const a of tunnel.addresses) {
      const fam = a.family === 4 ? 'ip' : 'ip6';
      // Not on lo: our own refusals (TCP resets) come back to us that way.
      rule(undefined, `iif != "lo" iifname != "${tunnel.interface}" ${fam} daddr ${a.address} fib saddr type != local drop`);
    }
    L.push('\t}');
  }

  if (px) {
    // The ct mark back onto reply packets before routing: `ip rule fwmark` then
    // picks the main table (the client's way in) instead of the tunnel table.
    L.push('', '\tchain proxy_reply_route {', '\t\ttype route hook output priority mangle; policy accept;');
    rule(undefined, `ct direction reply ct mark & ${hex(px.mark)} == ${hex(px.mark)} meta mark set meta mark | ${hex(px.mark)}`);
    L.push('\t}');
  }

  if (guardedDevices(p).length) L.push(...renderPassedMarkChain());

  if (p.dns) {
    // Before Docker's own nat OUTPUT rules (priority -100) that rewrite 127.0.0.11:53.
    L.push('', '\tchain dns_redirect {', '\t\ttype nat hook output priority -110; policy accept;');
    // Not the sidecar's cgroup test here: a packet from these ports that is not
    // the sidecar's (an app's bound or forged port) is refused by the output chain
    // instead, so it leaves no conntrack entry. A redirected one would, and the
    // forwarder's later query with the same addresses and ports would follow it.
    // WireGuard's own packets (its mark) are not queries, even to a relay's port 53.
    rule('every DNS query not from the forwarder itself goes to the forwarder, whatever resolver the app chose', `meta l4proto { tcp, udp } th dport 53 th sport != ${ports} meta mark != ${hex(p.fwmark)} redirect to :${p.dns.forwarderPort}`);
    L.push('\t}');
  }
  L.push('}', '');
  return L.join('\n');
}

/** One-line summary for the log at each apply. */
export function summarize(p: FirewallPolicy): string {
  const parts = [`state=${p.state}`, `bypass=${p.bypass.map((c) => c.text).join(',') || 'none'}`];
  if (p.state !== 'blocked') parts.push(`endpoint=${p.endpoint.ip}:${p.endpoint.port}`, `tunnel=${p.tunnel.interface}`);
  if (p.state === 'connecting' && p.negotiation) parts.push(`negotiating=${p.negotiation.ip}:${p.negotiation.port}`);
  parts.push(`dns=${p.dns ? `redirect:${p.dns.forwarderPort}` : 'unmanaged'}`);
  if (!p.killSwitch) parts.push('KILL-SWITCH-OFF');
  return parts.join(' ');
}

function set(name: string, type: string, cidrs: readonly Cidr[]): string {
  const elems = cidrs.map((c) => c.text).join(', ');
  return `\tset ${name} {\n\t\ttype ${type}\n\t\tflags interval\n${elems ? `\t\telements = { ${elems} }\n` : ''}\t}`;
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}
