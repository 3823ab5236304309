// Pure: the nftables text of the learned-address path. A table of its own, so
// that the firewall's atomic swaps of table inet mullvad_sidecar never empty
// the sets. What it does:
// - output (route chain, before the filter): a packet to a learned address gets
//   LEARNED_MARK, and its flow keeps it in the conntrack mark; the kernel routes
//   the packet again, and one `ip rule fwmark LEARNED_MARK lookup main` sends it
//   out of the pod's own interface. The firewall accepts the mark (rule 3a).
//   A new flow refreshes the address's timeout (`update`), an established flow
//   keeps its path from the conntrack mark even after the address expired: an
//   open connection is never cut.
// - postrouting: the source address was chosen by the first route lookup (the
//   tunnel's); masquerade gives marked packets the interface's address.
// - prerouting: replies get the mark back from conntrack, so reverse-path
//   filtering (src_valid_mark) finds them on the interface they came in on.
// The sets are bounded (`size`); nothing here ever accepts a packet.

export const LEARNED_TABLE = 'mullvad_sidecar_learned';
/** One bit, far from the WireGuard fwmark (= the routing table number, < 2^16 by default). */
export const LEARNED_MARK = 0x00400000;
/** Addresses learned from DNS answers: timeouts, renewed by use. */
export const LEARNED_SETS = { 4: 'learned4', 6: 'learned6' } as const;
/** Addresses and networks for the life of the process (environment, API): intervals, no timeout. */
export const STATIC_SETS = { 4: 'static4', 6: 'static6' } as const;
/** Networks read from the Kubernetes API (ServiceCIDRs, nodes' podCIDRs): replaced whole on every refresh. */
export const API_SETS = { 4: 'api4', 6: 'api6' } as const;

export interface LearnedTableOptions {
  /** Elements per family at most. */
  readonly size: number;
  /** Seconds a new flow extends an address's life. */
  readonly refreshSeconds: number;
  /** The tunnel interface: its packets are never marked nor masqueraded. */
  readonly tunnelInterface: string;
}

const hex = (n: number): string => '0x' + n.toString(16).padStart(8, '0');

export function renderLearnedTable(o: LearnedTableOptions): string {
  const m = hex(LEARNED_MARK);
  const t = `${o.refreshSeconds}s`;
  return [
    `add table inet ${LEARNED_TABLE}`,
    `delete table inet ${LEARNED_TABLE}`,
    `table inet ${LEARNED_TABLE} {`,
    `\tset ${LEARNED_SETS[4]} {\n\t\ttype ipv4_addr\n\t\tsize ${o.size}\n\t\tflags dynamic,timeout\n\t}`,
    `\tset ${LEARNED_SETS[6]} {\n\t\ttype ipv6_addr\n\t\tsize ${o.size}\n\t\tflags dynamic,timeout\n\t}`,
    `\tset ${STATIC_SETS[4]} {\n\t\ttype ipv4_addr\n\t\tsize ${o.size}\n\t\tflags interval\n\t}`,
    `\tset ${STATIC_SETS[6]} {\n\t\ttype ipv6_addr\n\t\tsize ${o.size}\n\t\tflags interval\n\t}`,
    `\tset ${API_SETS[4]} {\n\t\ttype ipv4_addr\n\t\tsize ${o.size}\n\t\tflags interval\n\t}`,
    `\tset ${API_SETS[6]} {\n\t\ttype ipv6_addr\n\t\tsize ${o.size}\n\t\tflags interval\n\t}`,
    '',
    '\tchain output {',
    '\t\ttype route hook output priority mangle; policy accept;',
    '\t\t# established flows keep the path they started on',
    `\t\tct mark & ${m} == ${m} meta mark set meta mark | ${m} accept`,
    '\t\t# addresses from the environment and the API',
    `\t\tip daddr @${STATIC_SETS[4]} meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`,
    `\t\tip6 daddr @${STATIC_SETS[6]} meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`,
    `\t\tip daddr @${API_SETS[4]} meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`,
    `\t\tip6 daddr @${API_SETS[6]} meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`,
    '\t\t# a new flow to a learned address: direct, and the address lives on',
    `\t\tip daddr @${LEARNED_SETS[4]} update @${LEARNED_SETS[4]} { ip daddr timeout ${t} } meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`,
    `\t\tip6 daddr @${LEARNED_SETS[6]} update @${LEARNED_SETS[6]} { ip6 daddr timeout ${t} } meta mark set meta mark | ${m} ct mark set ct mark | ${m} accept`,
    '\t}',
    '',
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority mangle; policy accept;',
    `\t\tiifname != "${o.tunnelInterface}" ct mark & ${m} == ${m} meta mark set meta mark | ${m}`,
    '\t}',
    '',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    `\t\toifname != "${o.tunnelInterface}" meta mark & ${m} == ${m} masquerade`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

export interface LearnedElement {
  readonly ip: string;
  readonly family: 4 | 6;
  readonly timeoutSeconds: number;
}

/**
 * Adds or renews learned addresses in one transaction. `add` of an existing
 * element keeps its old timeout, so a renewal is add (no-op if present) +
 * delete + add: atomic, no packet ever sees the address missing.
 */
export function renderLearnedUpdate(elements: readonly LearnedElement[]): string {
  const lines: string[] = [];
  for (const e of elements) {
    const set = `inet ${LEARNED_TABLE} ${LEARNED_SETS[e.family]}`;
    lines.push(`add element ${set} { ${e.ip} }`, `delete element ${set} { ${e.ip} }`, `add element ${set} { ${e.ip} timeout ${e.timeoutSeconds}s }`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** Addresses or networks (`10.43.0.0/16`) for the life of the process. */
export function renderStaticUpdate(cidrs: readonly { text: string; family: 4 | 6 }[]): string {
  return cidrs.map((c) => `add element inet ${LEARNED_TABLE} ${STATIC_SETS[c.family]} { ${c.text} }\n`).join('');
}

/**
 * The API's networks, replacing the previous ones in one transaction: a
 * network in both keeps matching throughout. The caller gives networks that do
 * not overlap (an interval set refuses overlapping elements).
 */
export function renderApiReplace(cidrs: readonly { text: string; family: 4 | 6 }[]): string {
  const lines = ([4, 6] as const).map((f) => `flush set inet ${LEARNED_TABLE} ${API_SETS[f]}`);
  for (const f of [4, 6] as const) {
    const texts = cidrs.filter((c) => c.family === f).map((c) => c.text);
    if (texts.length) lines.push(`add element inet ${LEARNED_TABLE} ${API_SETS[f]} { ${texts.join(', ')} }`);
  }
  return lines.join('\n') + '\n';
}

export function renderLearnedRemoval(): string {
  return `add table inet ${LEARNED_TABLE}\ndelete table inet ${LEARNED_TABLE}\n`;
}
