// Which addresses the sidecar may send around the tunnel because the cluster
// told it about them (DESIGN §5 "cluster answers open the way"). Pure: the
// learned set, the forwarder and the unit tests share these rules.
//
// Only private (RFC 1918), CGNAT (RFC 6598) and ULA (RFC 4193) addresses are
// ever learned, and never one inside Mullvad's in-tunnel ranges, a relay
// endpoint or a tunnel resolver: a cluster name that resolves to anything else
// (an ExternalName Service with a public address, a hostile answer) goes
// through the tunnel like any other destination.
import { cidrContains, parseCidr, type Cidr } from '../config/cidr.js';
import { byCodeUnit } from '../order.js';

const nets = (...texts: string[]): Cidr[] => texts.map((t) => parseCidr(t)!);

/** Where cluster Services and pods live: private, CGNAT and ULA space. */
export const LEARNABLE = nets('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7');
/** Mullvad's in-tunnel ranges (relay resolvers, SOCKS proxies, device addresses): never around the tunnel. */
export const MULLVAD_TUNNEL_RANGES = nets('10.64.0.0/10', 'fc00:bbbb::/32');

/** Why an address is reached directly: shown in /status and the debug log. */
export type LearnSource = 'dns' | 'env' | 'api' | 'pod';

export interface LearnGuard {
  /** Relay endpoints (addresses) of every configured server. */
  readonly endpoints: readonly string[];
  /** Tunnel resolvers (the configs' DNS lines, DNS_UPSTREAMS). */
  readonly tunnelResolvers: readonly string[];
}

export type Verdict = { readonly ok: true; readonly cidr: Cidr } | { readonly ok: false; readonly why: string };

/** May `text` (an address or a network) be reached around the tunnel? */
export function checkLearnable(text: string, guard: LearnGuard): Verdict {
  const cidr = parseCidr(text);
  if (!cidr) return { ok: false, why: 'not an address' };
  const inside = (outer: readonly Cidr[]): boolean =>
    outer.some((o) => o.family === cidr.family && o.prefix <= cidr.prefix && cidrContains(o, cidr.address));
  if (!inside(LEARNABLE)) return { ok: false, why: 'not a private, CGNAT or ULA address' };
  // Overlap either way: a learned network must not hold a Mullvad range, nor lie inside one.
  const overlaps = (o: Cidr): boolean => o.family === cidr.family && (cidrContains(o, cidr.address) || cidrContains(cidr, o.address));
  if (MULLVAD_TUNNEL_RANGES.some(overlaps)) return { ok: false, why: "inside Mullvad's in-tunnel ranges" };
  if (guard.endpoints.some((ip) => cidrContains(cidr, ip))) return { ok: false, why: 'holds a relay endpoint' };
  if (guard.tunnelResolvers.some((ip) => cidrContains(cidr, ip))) return { ok: false, why: 'holds a tunnel resolver' };
  return { ok: true, cidr };
}

/**
 * Kubernetes' service links (enableServiceLinks): `<NAME>_SERVICE_HOST` for
 * every Service of the namespace, KUBERNETES_SERVICE_HOST included. Only
 * values that are addresses; the variable name is the reason.
 */
export function serviceHostsFromEnv(env: Readonly<Record<string, string | undefined>>): { variable: string; ip: string }[] {
  const out: { variable: string; ip: string }[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Z0-9_]+_SERVICE_HOST$/.test(k) || !v) continue;
    const ip = v.trim();
    if (parseCidr(ip) && !ip.includes('/')) out.push({ variable: k, ip });
  }
  return out.sort((a, b) => byCodeUnit(a.variable, b.variable));
}

/** How long a learned address stays without use: the answer's TTL, never below the floor, never above a day. */
export function learnedTimeoutSeconds(ttl: number, floorSeconds: number): number {
  const t = Number.isFinite(ttl) ? Math.max(0, Math.floor(ttl)) : 0;
  return Math.min(86_400, Math.max(floorSeconds, t));
}
