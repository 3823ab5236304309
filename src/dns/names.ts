// Which side answers a question: cluster DNS (through the bypass), the tunnel
// resolvers, or the forwarder itself. Pure: the forwarder asks this for every
// question, the unit tests pin every rule.
import { cidrContains, parseCidr, type Cidr } from '../config/cidr.js';

export type Side = 'cluster' | 'tunnel';
export type Route = Side | 'local';

export interface RoutingConfig {
  readonly mode: 'split' | 'tunnel';
  /** Normalised (see normaliseName): lowercase, no trailing dot. */
  readonly clusterDomains: readonly string[];
  /** PTR names of addresses inside these networks are cluster names (CoreDNS serves them). */
  readonly clusterNetworks: readonly Cidr[];
  /** Where dotless names go; see defaultSingleLabel. */
  readonly singleLabel: Side;
}

/** Lowercase, without the trailing dot; '' is the root. DNS names compare case-insensitively. */
export function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

/** `name` equals `domain` or lies below it on a label boundary (cluster.local, not notcluster.local). */
export function isUnder(name: string, domain: string): boolean {
  if (domain === '') return true;
  return name === domain || (name.length > domain.length && name.endsWith(domain) && name[name.length - domain.length - 1] === '.');
}

/**
 * Dotless names are relative names: glibc tries them with every search domain
 * first (all cluster names) and bare last. In Compose the engine's embedded DNS
 * answers bare service names (`db`), so they must reach it. In Kubernetes the
 * search list (`<ns>.svc.cluster.local ...`) has already been tried and CoreDNS
 * would only forward a bare label to the node's upstream resolver, outside the
 * tunnel: there it goes through the tunnel instead.
 */
export function defaultSingleLabel(searchDomains: readonly string[]): Side {
  return searchDomains.some((d) => /(^|\.)svc\./.test(normaliseName(d))) ? 'tunnel' : 'cluster';
}

/** Special-use names (RFC 6761, RFC 7686) answered by the forwarder: never sent anywhere. */
export function localAnswer(name: string): 'loopback' | 'nxdomain' | undefined {
  if (isUnder(name, 'localhost')) return 'loopback';
  if (isUnder(name, 'invalid') || isUnder(name, 'onion')) return 'nxdomain';
  return undefined;
}

/** The route of a normalised question name. */
export function routeName(name: string, cfg: RoutingConfig): Route {
  if (localAnswer(name) !== undefined) return 'local';
  if (cfg.mode === 'tunnel') return 'tunnel';
  if (name === '') return 'tunnel'; // root priming queries: nothing cluster-specific
  if (cfg.clusterDomains.some((d) => isUnder(name, d))) return 'cluster';
  const net = reverseNameNetwork(name);
  if (net && cfg.clusterNetworks.some((c) => c.family === net.family && c.prefix <= net.prefix && cidrContains(c, net.address)))
    return 'cluster';
  if (!name.includes('.')) return cfg.singleLabel;
  return 'tunnel';
}

/**
 * The network a reverse-zone name stands for: `4.3.2.10.in-addr.arpa` →
 * 10.2.3.4/32, `10.in-addr.arpa` → 10.0.0.0/8, nibble names under ip6.arpa
 * likewise. Undefined for anything else (including malformed labels).
 */
export function reverseNameNetwork(name: string): Cidr | undefined {
  if (isUnder(name, 'in-addr.arpa')) {
    const labels = name === 'in-addr.arpa' ? [] : name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length > 4 || !labels.every((l) => /^(0|[1-9]\d{0,2})$/.test(l) && Number(l) <= 255)) return undefined;
    const octets = [...labels].reverse();
    while (octets.length < 4) octets.push('0');
    return parseCidr(`${octets.join('.')}/${labels.length * 8}`);
  }
  if (isUnder(name, 'ip6.arpa')) {
    const labels = name === 'ip6.arpa' ? [] : name.slice(0, -'.ip6.arpa'.length).split('.');
    if (labels.length > 32 || !labels.every((l) => /^[0-9a-f]$/.test(l))) return undefined;
    const nibbles = [...labels].reverse().join('').padEnd(32, '0');
    const groups = nibbles.match(/.{4}/g) ?? [];
    return parseCidr(`${groups.join(':')}/${labels.length * 4}`);
  }
  return undefined;
}

/**
 * The names glibc's res_search tries for `name`, in order (for documentation
 * and tests of the search-list rule: every candidate but the bare one is under
 * a search domain, hence a cluster name by default).
 */
export function searchCandidates(name: string, search: readonly string[], ndots: number): string[] {
  if (name.endsWith('.')) return [normaliseName(name)];
  const n = normaliseName(name);
  const dots = n.split('.').length - 1;
  const expanded = search.map((d) => `${n}.${normaliseName(d)}`);
  return dots >= ndots ? [n, ...expanded] : [...expanded, n];
}
