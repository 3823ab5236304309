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
  /**
   * Known cluster addresses and networks (the *_SERVICE_HOST variables, the
   * pod's own addresses, cluster DNS, the API's ranges): PTR queries for
   * addresses inside them are cluster names. Never whole bypass subnets: an app
   * could pick the host bits of every reverse name (a covert channel).
   */
  readonly clusterNetworks: readonly Cidr[];
  /** Addresses learned at run time from cluster answers (PTR queries for them are cluster names). */
  readonly isClusterAddress?: ((ip: string) => boolean) | undefined;
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
export function defaultSingleLabel(searchDomains: readonly string[], engine?: { resolvers: readonly string[]; localNetworks: readonly Cidr[] }): Side {
  if (searchDomains.some((d) => /(^|\.)svc\./.test(normaliseName(d)))) return 'tunnel';
  if (!engine) return 'cluster';
  // Only an engine's own resolver answers service names: Docker's 127.0.0.11, or
  // aardvark-dns/dnsname on the network's gateway (a subnet of our own interfaces).
  // Any other nameserver (the host's, given to containers when the engine has no
  // DNS) would only pass a bare label on outside the tunnel.
  const isEngine = (ip: string): boolean => ip === ENGINE_RESOLVER || engine.localNetworks.some((n) => n.prefix > 0 && cidrContains(n, ip));
  return engine.resolvers.some(isEngine) ? 'cluster' : 'tunnel';
}

/** Docker's embedded resolver. */
export const ENGINE_RESOLVER = '127.0.0.11';

/** Special-use names (RFC 6761, RFC 7686) answered by the forwarder: never sent anywhere. */
export function localAnswer(name: string): 'loopback' | 'nxdomain' | undefined {
  if (isUnder(name, 'localhost')) return 'loopback';
  if (isUnder(name, 'invalid') || isUnder(name, 'onion')) return 'nxdomain';
  return undefined;
}

/**
 * The cluster's own domain: from the `svc.<domain>` entry of the search list
 * (Kubernetes writes `<ns>.svc.<domain> svc.<domain> <domain>`), else
 * cluster.local. The node's search domains that follow (GKE's
 * `c.<project>.internal`, EKS's `<region>.compute.internal`) are NOT cluster
 * domains: glibc tries `<name>.<domain>` for every external name first, and
 * cluster DNS would forward those upstream. Outside Kubernetes, podman's
 * aardvark-dns domain (`dns.podman`) is the engine's own: it answers names
 * under it and forwards none of them.
 */
export function defaultClusterDomains(searchDomains: readonly string[]): string[] {
  const search = searchDomains.map(normaliseName);
  const svc = search.find((d) => d.startsWith('svc.') && d.length > 4);
  if (svc) return [svc.slice(4)];
  return ['cluster.local', ...search.filter((d) => d === 'dns.podman')];
}

/** Query types a container engine's resolver answers for its container names; anything else is not a name lookup. */
const ADDRESS_TYPES = new Set(['A', 'AAAA']);

/** The route of a normalised question name (`type`: the question's type, e.g. 'A', 'PTR'). */
export function routeName(name: string, cfg: RoutingConfig, type = 'A'): Route {
  if (localAnswer(name) !== undefined) return 'local';
  if (cfg.mode === 'tunnel') return 'tunnel';
  if (name === '') return 'tunnel'; // root priming queries: nothing cluster-specific
  if (cfg.clusterDomains.some((d) => isUnder(name, d))) return 'cluster';
  const net = reverseNameNetwork(name);
  if (net) return type === 'PTR' && isKnownClusterAddress(net, cfg) ? 'cluster' : 'tunnel';
  // Dotless: a container or service name for the engine's resolver, asked as
  // A/AAAA only (`com NS`, `com TXT` are not name lookups: tunnel).
  if (!name.includes('.')) return cfg.singleLabel === 'cluster' && ADDRESS_TYPES.has(type) ? 'cluster' : 'tunnel';
  return 'tunnel';
}

/** Only a whole address (/32, /128) that is known: a partial reverse name covers addresses nobody vouched for. */
function isKnownClusterAddress(net: Cidr, cfg: RoutingConfig): boolean {
  if (net.prefix !== (net.family === 4 ? 32 : 128)) return false;
  if (cfg.clusterNetworks.some((c) => c.family === net.family && cidrContains(c, net.address))) return true;
  return cfg.isClusterAddress?.(net.address) ?? false;
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
