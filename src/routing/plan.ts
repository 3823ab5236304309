// Pure: the policy routing wg-quick sets up for a full tunnel (add_default),
// plus "lookup main" rules for the bypass networks, with fixed priorities so a
// restarted sidecar recognises and replaces its own rules.
import type { Cidr } from '../config/cidr.js';

/** Our ip rules live in this priority band; anything there is ours to replace. */
// proxyReply shares the suppress rule's pref: both look up main, so their order does not matter.
export const RULE_PREF = { first: 5200, bypass: 5200, learned: 5289, proxyReply: 5290, suppress: 5290, tunnel: 5291, last: 5299 } as const;
export const MAX_BYPASS_RULES = RULE_PREF.learned - RULE_PREF.bypass;

export interface RuleSpec {
  readonly family: 4 | 6;
  readonly pref: number;
  /** Selector and action, as `ip rule add` arguments after `pref N`. */
  readonly args: readonly string[];
  readonly why: string;
}

export interface RouteSpec {
  readonly family: 4 | 6;
  readonly args: readonly string[];
}

export interface RoutePlan {
  readonly table: number;
  readonly rules: readonly RuleSpec[];
  readonly routes: readonly RouteSpec[];
}

export interface RoutePlanInput {
  readonly interface: string;
  readonly table: number;
  readonly fwmark: number;
  readonly bypass: readonly Cidr[];
  /** Route IPv6 into the tunnel only when the config has an IPv6 address; otherwise the firewall blocks it. */
  readonly ipv6: boolean;
  /** The exit pool's reply mark (firewall ProxyInbound.mark): those packets use the main table. */
  readonly proxyReplyMark?: number;
  /** Mark of packets to learned cluster addresses (src/cluster/nft.ts): one rule sends them all to main. */
  readonly learnedMark?: number;
}

export function planRouting(i: RoutePlanInput): RoutePlan {
  const rules: RuleSpec[] = [];
  const families: (4 | 6)[] = i.ipv6 ? [4, 6] : [4];
  const bypass = i.bypass;
  if (bypass.length > MAX_BYPASS_RULES) throw new Error(`too many bypass networks (${bypass.length}); at most ${MAX_BYPASS_RULES}`);
  bypass.forEach((c, n) => {
    rules.push({ family: c.family, pref: RULE_PREF.bypass + n, args: ['to', c.text, 'lookup', 'main'], why: 'bypass network stays on the main table' });
  });
  if (i.proxyReplyMark !== undefined) {
    const m = `0x${i.proxyReplyMark.toString(16)}`;
    for (const f of [4, 6] as const) rules.push({ family: f, pref: RULE_PREF.proxyReply, args: ['fwmark', `${m}/${m}`, 'lookup', 'main'], why: 'replies to exit pool clients leave the way the connection came in' });
  }
  if (i.learnedMark !== undefined) {
    const m = `0x${i.learnedMark.toString(16)}`;
    for (const f of [4, 6] as const) rules.push({ family: f, pref: RULE_PREF.learned, args: ['fwmark', `${m}/${m}`, 'lookup', 'main'], why: 'addresses the cluster named leave on the main table' });
  }
  for (const f of families) {
    rules.push({ family: f, pref: RULE_PREF.suppress, args: ['lookup', 'main', 'suppress_prefixlength', '0'], why: 'specific main routes (on-link networks) win over the tunnel' });
    rules.push({ family: f, pref: RULE_PREF.tunnel, args: ['not', 'fwmark', String(i.fwmark), 'lookup', String(i.table)], why: 'everything not from the WireGuard socket goes to the tunnel table' });
  }
  const routes: RouteSpec[] = families.map((f) => ({
    family: f,
    args: [f === 4 ? '0.0.0.0/0' : '::/0', 'dev', i.interface, 'table', String(i.table)],
  }));
  return { table: i.table, rules, routes };
}

/** wg-quick's MTU rule: the route's MTU minus WireGuard overhead (80), never below 1280. */
export function tunnelMtu(routeMtu: number): number {
  return Math.max(1280, routeMtu - 80);
}

/** A table is ours to use when it is empty or holds only routes through our interface (a previous run). */
export function isFreeFor(routes: readonly { dev?: string }[], ourInterface: string): boolean {
  return routes.every((r) => r.dev === ourInterface);
}
