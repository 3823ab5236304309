// Pure: the nftables pieces of the refused-traffic audit, spliced into the kill
// switch's table by firewall/render.ts. The refuse chain remembers every refused
// destination in a bounded set (address . protocol . port, with a per-element
// counter and a timeout that `update` refreshes on every packet), and counts
// refusals by family and protocol in named counters. A full set adds nothing
// more, but the packet is still refused: the rules after it run regardless.

export type AuditFamily = 'ipv4' | 'ipv6';
export const AUDIT_FAMILIES: readonly AuditFamily[] = ['ipv4', 'ipv6'];
/** Protocols counted on their own; everything else is `other`. */
export const AUDIT_PROTOCOLS = ['tcp', 'udp', 'icmp', 'other'] as const;
export type AuditProtocol = (typeof AUDIT_PROTOCOLS)[number];

/** Distinct destinations remembered per family (the kernel refuses more). */
export const REFUSED_SET_SIZE = 1024;
/** A destination not refused again for this long is forgotten by the kernel. */
export const REFUSED_SET_TIMEOUT_S = 600;

export const REFUSED_SETS: Readonly<Record<AuditFamily, string>> = { ipv4: 'refused4', ipv6: 'refused6' };

/** Protocols that carry a port (`th dport` is valid for them); others are recorded with port 0. */
const PORTED = '{ tcp, udp, sctp, udplite, dccp }';

export function refusedCounterName(family: AuditFamily, protocol: AuditProtocol): string {
  return `refused_${family}_${protocol}`;
}

/** Table-level definitions: two sets and eight named counters, one line each or in the counter style of render.ts. */
export function renderAuditDefinitions(): string[] {
  const sets = AUDIT_FAMILIES.map((f) => {
    const addr = f === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr';
    // One line: firewall/apply.ts counts rule lines by their indentation.
    return `\tset ${REFUSED_SETS[f]} { type ${addr} . inet_proto . inet_service; flags dynamic,timeout; size ${REFUSED_SET_SIZE}; timeout ${REFUSED_SET_TIMEOUT_S}s; counter; }`;
  });
  const counters = AUDIT_FAMILIES.flatMap((f) => AUDIT_PROTOCOLS.map((p) => `\tcounter ${refusedCounterName(f, p)} {\n\t}`));
  return [...sets, ...counters];
}

/** Rules at the top of the refuse chain (before the reject verdicts). */
export function renderAuditRules(): string[] {
  const map = AUDIT_FAMILIES.flatMap((f) =>
    (['tcp', 'udp', 'icmp'] as const).map((p) => `${f} . ${p === 'icmp' && f === 'ipv6' ? 'icmpv6' : p} : "${refusedCounterName(f, p)}"`),
  );
  return [
    `counter name meta nfproto . meta l4proto map { ${map.join(', ')} }`,
    `meta nfproto ipv4 meta l4proto != { tcp, udp, icmp } counter name ${refusedCounterName('ipv4', 'other')}`,
    `meta nfproto ipv6 meta l4proto != { tcp, udp, icmpv6 } counter name ${refusedCounterName('ipv6', 'other')}`,
    `meta nfproto ipv4 meta l4proto ${PORTED} update @${REFUSED_SETS.ipv4} { ip daddr . meta l4proto . th dport }`,
    `meta nfproto ipv4 meta l4proto != ${PORTED} update @${REFUSED_SETS.ipv4} { ip daddr . meta l4proto . 0 }`,
    `meta nfproto ipv6 meta l4proto ${PORTED} update @${REFUSED_SETS.ipv6} { ip6 daddr . meta l4proto . th dport }`,
    `meta nfproto ipv6 meta l4proto != ${PORTED} update @${REFUSED_SETS.ipv6} { ip6 daddr . meta l4proto . 0 }`,
  ];
}
