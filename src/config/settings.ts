// Settings lifecycle (gluetun style): read (env, then --flags win) → defaults →
// validate (every problem, each naming its variable) → frozen object.
// All settings of the project are declared here, in one table.
import { isIP } from 'node:net';
import { ConfigError, ConfigErrors } from '../errors.js';
import { LEVELS, type Level } from '../log/logger.js';
import { parseCidr, type Cidr } from './cidr.js';
import { parseLocation, type Location } from '../relays/match.js';
import { shown } from './shown.js';
import type { InterfaceAddress } from './types.js';
import { parseAddresses } from './wgvalues.js';

export type WgImplementation = 'auto' | 'kernel' | 'userspace';
export type DnsMode = 'split' | 'tunnel' | 'off';
export type ServerSelection = 'ordered' | 'random' | 'spread' | 'fastest';

export interface Settings {
  readonly wgConfigDir: string;
  readonly wgConfig: string | undefined;
  readonly killSwitch: boolean;
  readonly bypassRoutes: boolean;
  readonly dnsConfig: boolean;
  readonly healthProbe: boolean;
  readonly bypassCidrs: readonly Cidr[];
  readonly wgInterface: string;
  readonly wgImplementation: WgImplementation;
  readonly wgMtu: number | undefined;
  /** undefined: 51820, or the next free one. */
  readonly fwmark: number | undefined;
  readonly routeTable: number | undefined;
  readonly killSwitchOnExit: 'block' | 'remove';
  readonly healthPort: number;
  readonly logFormat: 'json' | 'pretty';
  readonly logLevel: Level;
  /** Read by bin/mullvad-sidecar before Node.js starts (Node.js flags); here only to be declared, validated and reported. */
  readonly lowMemory: boolean;
  // DNS (issue: split DNS)
  readonly dnsMode: DnsMode;
  readonly clusterDomains: readonly string[] | undefined;
  /** Least time an address learned from a cluster DNS answer stays reachable directly without use. */
  readonly clusterLearnTtlMs: number;
  readonly kubernetesDiscovery: 'off' | 'api';
  readonly kubernetesServiceAccountDir: string;
  readonly kubernetesDiscoveryIntervalMs: number;
  readonly dnsUpstreams: readonly string[] | undefined;
  /** Unprivileged port the forwarder listens on; nftables redirects port 53 to it. */
  readonly dnsForwarderPort: number;
  readonly resolvConf: string;
  // Monitoring and failover
  readonly requireMullvadExit: boolean;
  readonly checkIntervalMs: number;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly probeTarget: string | undefined;
  readonly failoverAfterMs: number;
  readonly connectTimeoutMs: number;
  readonly checkUrl: string;
  readonly verifyIntervalMs: number;
  readonly maxBackoffMs: number;
  readonly servers: readonly string[];
  readonly serverSelection: ServerSelection;
  readonly podName: string;
  readonly hostIps: readonly string[];
  // Relay list and exit pool (issue: exit pool)
  readonly relayListUrl: string;
  readonly relayListCache: string;
  readonly relayListRefreshMs: number;
  // Mullvad-native tunnels (issue #11): one key, any location, multihop
  /** A file holding only the device's private key (instead of taking it from a mounted config). */
  readonly wgPrivateKeyFile: string | undefined;
  /** The device's tunnel addresses (with WG_PRIVATE_KEY_FILE). */
  readonly wgAddress: readonly InterfaceAddress[] | undefined;
  /** Entry relay location(s) for multihop; undefined: single hop. */
  readonly multihopEntry: string | undefined;
  /** Upgrade every new tunnel with Mullvad's ephemeral-peer protocol (ML-KEM-1024 PSK) before any app packet uses it. */
  readonly quantumResistant: boolean;
  /** Empty: the proxy is off. */
  readonly proxyListen: readonly string[];
  readonly proxyUsersFile: string | undefined;
  readonly proxyAllowedCidrs: readonly Cidr[];
  readonly proxyDefaultLocation: Location;
  readonly proxySessionTtlMs: number;
  readonly proxyConnectTimeoutMs: number;
}

type Source = Record<string, string | undefined>;

interface Spec<K extends keyof Settings> {
  env: string;
  key: K;
  help: string;
  def: (s: Source) => Settings[K];
  parse: (raw: string, env: string) => Settings[K];
}

// --- value parsers: each throws ConfigError naming the variable -------------
const bool = (raw: string, env: string): boolean => {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(env, `expected true or false, got ${shown(raw)}`);
};
const oneOf =
  <T extends string>(...allowed: T[]) =>
  (raw: string, env: string): T => {
    const v = raw.trim().toLowerCase() as T;
    if (allowed.includes(v)) return v;
    throw new ConfigError(env, `expected one of ${allowed.join(' | ')}, got ${shown(raw)}`);
  };
const int =
  (min: number, max: number) =>
  (raw: string, env: string): number => {
    const v = raw.trim();
    const n = /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max)
      throw new ConfigError(env, `expected an integer from ${min} to ${max}, got ${shown(raw)}`);
    return n;
  };
/** The kernel's own routing tables (rt_names): routes there are the system's, never ours to add to or flush. */
export const RESERVED_TABLES: Readonly<Record<number, string>> = { 253: 'default', 254: 'main', 255: 'local' };
function reservedTableError(env: string, n: number, hint: string): ConfigError {
  return new ConfigError(env, `${n} is the kernel's reserved table '${RESERVED_TABLES[n]}' (253 default, 254 main, 255 local)`, hint);
}
/** A policy routing table of our own: 1 to 2^32-1 (0 is "unspecified"), none of the reserved ones. */
const routeTable = (raw: string, env: string): number => {
  const n = int(1, 0xffffffff)(raw, env);
  if (RESERVED_TABLES[n]) throw reservedTableError(env, n, 'pick a table of our own, e.g. 51820');
  return n;
};
/** "5", "5s", "500ms", "2m" → milliseconds. */
export const duration =
  (minMs: number, maxMs: number) =>
  (raw: string, env: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/i.exec(raw);
    if (!m) throw new ConfigError(env, `expected a duration such as 5, 5s or 500ms, got ${shown(raw)}`);
    const unit = (m[2] ?? 's').toLowerCase();
    const ms = Number(m[1]) * (unit === 'ms' ? 1 : unit === 'm' ? 60_000 : 1000);
    if (ms < minMs || ms > maxMs)
      throw new ConfigError(env, `expected a duration from ${minMs / 1000}s to ${maxMs / 1000}s, got ${shown(raw)}`);
    return Math.round(ms);
  };
const list = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
const cidrs = (raw: string, env: string): Cidr[] =>
  list(raw).map((c) => {
    const p = parseCidr(c);
    if (!p) throw new ConfigError(env, `${shown(c)} is not an IPv4 or IPv6 network`, 'use forms like 10.96.0.0/12 or fd00::/8');
    return p;
  });
const ifname = (raw: string, env: string): string => {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(raw) || raw === '.' || raw === '..')
    throw new ConfigError(env, `${shown(raw)} is not a valid interface name`, '1 to 15 letters, digits, _ . -');
  return raw;
};
const ips = (raw: string, env: string): string[] =>
  list(raw).map((a) => {
    if (!isIP(a)) throw new ConfigError(env, `${shown(a)} is not an IP address`);
    return a;
  });
const domains = (raw: string, env: string): string[] =>
  list(raw).map((d) => {
    const n = d.toLowerCase().replace(/\.$/, '');
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(n)) throw new ConfigError(env, `${shown(d)} is not a domain name`);
    return n;
  });
const str = (raw: string): string => raw;
const addresses = (raw: string, env: string): InterfaceAddress[] => {
  const r = parseAddresses(raw);
  if (!r.ok) throw new ConfigError(env, r.problem.replace(/^Address /, ''), r.hint);
  return r.value;
};
const locations = (raw: string, env: string): string => {
  const items = list(raw).map((s) => s.toLowerCase());
  for (const i of items) if (!parseLocation(i.replace(/\.relays\.mullvad\.net$/, ''))) throw new ConfigError(env, `${shown(i)} is not a location`, 'a country (se), a city (se-got) or a relay hostname (se-got-wg-002), comma-separated');
  return items.join(',');
};
const listenAddrs = (raw: string, env: string): string[] =>
  list(raw).map((a) => {
    const hp = hostPort(a, env);
    const host = hp.slice(0, hp.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    if (!isIP(host)) throw new ConfigError(env, `${shown(a)}: the host must be an IP address`, 'for example 0.0.0.0:1080 or [::]:1080');
    return hp;
  });
const location = (raw: string, env: string): Location => {
  const loc = parseLocation(raw);
  if (!loc) throw new ConfigError(env, `${shown(raw)} is not a location`, 'a country (se), a city (se-got) or a relay hostname (se-got-wg-002)');
  return loc;
};
const url = (raw: string, env: string): string => {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    return raw;
  } catch {
    throw new ConfigError(env, `expected an http(s) URL, got ${shown(raw)}`);
  }
};
const hostPort = (raw: string, env: string): string => {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/i.exec(raw.trim());
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535)
    throw new ConfigError(env, `expected host:port or [v6]:port, got ${shown(raw)}`);
  return raw.trim();
};

// DNS_MODE's default follows ENABLE_DNS_CONFIG; a bad value there is reported
// once, under its own name, not again under DNS_MODE.
const dnsConfigOff = (raw: string | undefined): boolean => {
  try {
    return raw !== undefined && raw.trim() !== '' && !bool(raw, 'ENABLE_DNS_CONFIG');
  } catch {
    return false; // a bad ENABLE_DNS_CONFIG is reported by its own parser in the same load
  }
};

const SPECS: Spec<keyof Settings>[] = [
  { env: 'WG_CONFIG_DIR', key: 'wgConfigDir', help: 'directory of Mullvad wg-quick .conf files, one per server', def: () => '/etc/wireguard', parse: str },
  { env: 'WG_CONFIG', key: 'wgConfig', help: 'one .conf file instead of the directory', def: () => undefined, parse: str },
  { env: 'ENABLE_KILL_SWITCH', key: 'killSwitch', help: 'block all egress outside the tunnel', def: () => true, parse: bool },
  { env: 'ENABLE_BYPASS_ROUTES', key: 'bypassRoutes', help: 'keep cluster/Compose networks outside the tunnel', def: () => true, parse: bool },
  { env: 'ENABLE_DNS_CONFIG', key: 'dnsConfig', help: 'manage DNS (false = DNS_MODE=off)', def: () => true, parse: bool },
  { env: 'ENABLE_HEALTH_PROBE', key: 'healthProbe', help: 'serve /healthz /readyz /status /metrics', def: () => true, parse: bool },
  { env: 'BYPASS_CIDRS', key: 'bypassCidrs', help: 'extra networks outside the tunnel, comma-separated', def: () => [], parse: cidrs },
  { env: 'WG_INTERFACE', key: 'wgInterface', help: 'tunnel interface name', def: () => 'wg0', parse: ifname },
  { env: 'WG_IMPLEMENTATION', key: 'wgImplementation', help: 'auto | kernel | userspace', def: () => 'auto', parse: oneOf('auto', 'kernel', 'userspace') },
  { env: 'WG_MTU', key: 'wgMtu', help: 'tunnel MTU (overrides the config)', def: () => undefined, parse: int(1280, 9000) },
  { env: 'FWMARK', key: 'fwmark', help: 'fwmark of the WireGuard socket (default 51820 or next free)', def: () => undefined, parse: int(1, 0xffffffff) },
  { env: 'ROUTE_TABLE', key: 'routeTable', help: 'policy routing table, 1 to 2^32-1 except the reserved 253–255 (default = FWMARK)', def: () => undefined, parse: routeTable },
  { env: 'KILL_SWITCH_ON_EXIT', key: 'killSwitchOnExit', help: 'block | remove', def: () => 'block', parse: oneOf('block', 'remove') },
  { env: 'HEALTH_PORT', key: 'healthPort', help: 'health and metrics HTTP port', def: () => 9999, parse: int(1, 65535) },
  { env: 'LOG_FORMAT', key: 'logFormat', help: 'json | pretty', def: () => (process.stderr.isTTY ? 'pretty' : 'json'), parse: oneOf('json', 'pretty') },
  { env: 'LOG_LEVEL', key: 'logLevel', help: LEVELS.join(' | '), def: () => 'info', parse: oneOf(...LEVELS) },
  { env: 'LOW_MEMORY', key: 'lowMemory', help: 'true: node without TurboFan, memory-saving heap (--max-opt=1 --optimize-for-size): ~4 MiB less idle, ~9 MiB less under DNS load, twice the CPU per DNS query and per health request (docs/performance.md)', def: () => false, parse: bool },
  { env: 'DNS_MODE', key: 'dnsMode', help: 'split | tunnel | off', def: (s) => (dnsConfigOff(s['ENABLE_DNS_CONFIG']) ? 'off' : 'split'), parse: oneOf('split', 'tunnel', 'off') },
  { env: 'CLUSTER_DOMAINS', key: 'clusterDomains', help: "more domains resolved by cluster DNS, besides the cluster's own", def: () => undefined, parse: domains },
  { env: 'CLUSTER_LEARN_TTL', key: 'clusterLearnTtlMs', help: 'least time an address from a cluster DNS answer stays direct without use', def: () => 600_000, parse: duration(1000, 86_400_000) },
  { env: 'KUBERNETES_DISCOVERY', key: 'kubernetesDiscovery', help: "off | api: read ServiceCIDRs and nodes' podCIDRs through the ServiceAccount and bypass those networks (needs RBAC: get/list servicecidrs, nodes)", def: () => 'off', parse: oneOf('off', 'api') },
  { env: 'KUBERNETES_SERVICEACCOUNT_DIR', key: 'kubernetesServiceAccountDir', help: 'where the ServiceAccount token and ca.crt are (KUBERNETES_DISCOVERY=api)', def: () => '/var/run/secrets/kubernetes.io/serviceaccount', parse: str },
  { env: 'KUBERNETES_DISCOVERY_INTERVAL', key: 'kubernetesDiscoveryIntervalMs', help: 'how often the networks are read again from the API', def: () => 300_000, parse: duration(1000, 86_400_000) },
  { env: 'DNS_UPSTREAMS', key: 'dnsUpstreams', help: 'tunnel resolvers (default: the config DNS line)', def: () => undefined, parse: ips },
  { env: 'DNS_FORWARDER_PORT', key: 'dnsForwarderPort', help: 'local port of the DNS forwarder (port 53 is redirected to it)', def: () => 1053, parse: int(1, 65535) },
  { env: 'RESOLV_CONF', key: 'resolvConf', help: 'resolver file to read (and rewrite when shared and writable)', def: () => '/etc/resolv.conf', parse: str },
  { env: 'REQUIRE_MULLVAD_EXIT', key: 'requireMullvadExit', help: 'ready only when the exit check says mullvad_exit_ip: true', def: () => true, parse: bool },
  { env: 'CHECK_INTERVAL', key: 'checkIntervalMs', help: 'how often to read tunnel counters', def: () => 5000, parse: duration(100, 3_600_000) },
  { env: 'PROBE_INTERVAL', key: 'probeIntervalMs', help: 'how often to probe inside the tunnel', def: () => 30_000, parse: duration(100, 3_600_000) },
  { env: 'PROBE_TIMEOUT', key: 'probeTimeoutMs', help: 'timeout of one in-tunnel probe', def: () => 2000, parse: duration(50, 60_000) },
  { env: 'PROBE_TARGET', key: 'probeTarget', help: 'host:port for a TCP probe instead of a DNS query to the tunnel resolver', def: () => undefined, parse: hostPort },
  { env: 'FAILOVER_AFTER', key: 'failoverAfterMs', help: 'failing probes for this long = server dead', def: () => 15_000, parse: duration(100, 3_600_000) },
  { env: 'CONNECT_TIMEOUT', key: 'connectTimeoutMs', help: 'no handshake within this long = try the next server', def: () => 15_000, parse: duration(100, 3_600_000) },
  { env: 'CHECK_URL', key: 'checkUrl', help: 'exit verification URL', def: () => 'https://am.i.mullvad.net/json', parse: url },
  { env: 'VERIFY_INTERVAL', key: 'verifyIntervalMs', help: 'how often to re-verify the exit', def: () => 300_000, parse: duration(1000, 86_400_000) },
  { env: 'MAX_BACKOFF', key: 'maxBackoffMs', help: 'longest wait when every server failed', def: () => 60_000, parse: duration(100, 3_600_000) },
  { env: 'SERVER', key: 'servers', help: 'server(s) by file stem, hostname or location prefix (se, se-sto, se-sto-wg-001)', def: () => [], parse: (raw) => list(raw).map((s) => s.toLowerCase()) },
  { env: 'SERVER_SELECTION', key: 'serverSelection', help: 'ordered | random | spread | fastest', def: () => 'ordered', parse: oneOf('ordered', 'random', 'spread', 'fastest') },
  { env: 'HOST_IP', key: 'hostIps', help: "the node's address(es), e.g. from the downward API status.hostIP: kubelet probes come from there, so it is bypassed", def: () => [], parse: ips },
  { env: 'POD_NAME', key: 'podName', help: 'replica name for SERVER_SELECTION=spread (default HOSTNAME)', def: (s) => s['HOSTNAME'] ?? 'localhost', parse: str },
  { env: 'RELAY_LIST_URL', key: 'relayListUrl', help: "Mullvad's relay list (fetched through the tunnel only)", def: () => 'https://api.mullvad.net/www/relays/wireguard/', parse: url },
  { env: 'RELAY_LIST_CACHE', key: 'relayListCache', help: 'where the relay list is kept across restarts', def: () => '/var/cache/mullvad-sidecar/relays.json', parse: str },
  { env: 'RELAY_LIST_REFRESH', key: 'relayListRefreshMs', help: 'how often the relay list is fetched again (If-None-Match)', def: () => 3_600_000, parse: duration(1000, 86_400_000) },
  { env: 'WG_PRIVATE_KEY_FILE', key: 'wgPrivateKeyFile', help: 'file holding only the private key (with WG_ADDRESS: no mounted config needed once the relay list is cached)', def: () => undefined, parse: str },
  { env: 'WG_ADDRESS', key: 'wgAddress', help: "the device's tunnel addresses (with WG_PRIVATE_KEY_FILE), e.g. 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128", def: () => undefined, parse: addresses },
  { env: 'MULTIHOP_ENTRY', key: 'multihopEntry', help: 'multihop: entry relay location(s); the SERVER relays are the exits', def: () => undefined, parse: locations },
  { env: 'QUANTUM_RESISTANT', key: 'quantumResistant', help: 'upgrade every tunnel to a quantum-resistant one (ML-KEM-1024 PSK) before any app packet may use it; needs the sidecar\'s own cgroup v2', def: () => false, parse: bool },
  { env: 'PROXY_LISTEN', key: 'proxyListen', help: 'exit pool proxy (SOCKS5 + HTTP on one port): host:port list; unset = off', def: () => [], parse: listenAddrs },
  { env: 'PROXY_USERS_FILE', key: 'proxyUsersFile', help: 'file of name:password lines (required with PROXY_LISTEN)', def: () => undefined, parse: str },
  { env: 'PROXY_ALLOWED_CIDRS', key: 'proxyAllowedCidrs', help: 'clients allowed to reach the proxy port', def: () => DEFAULT_PROXY_CLIENTS.map((c) => parseCidr(c)!), parse: cidrs },
  { env: 'PROXY_DEFAULT_LOCATION', key: 'proxyDefaultLocation', help: 'exits used when a username names no location (se, se-got, a relay)', def: () => ({}), parse: location },
  { env: 'PROXY_SESSION_TTL', key: 'proxySessionTtlMs', help: 'idle time after which a -session- forgets its exit', def: () => 600_000, parse: duration(1000, 86_400_000) },
  { env: 'PROXY_CONNECT_TIMEOUT', key: 'proxyConnectTimeoutMs', help: "how long the proxy waits for an exit's SOCKS5 proxy before trying another relay", def: () => 10_000, parse: duration(100, 120_000) },
];

/** RFC 1918, CGNAT (RFC 6598) and ULA: cluster and LAN clients, nobody from the internet. */
export const DEFAULT_PROXY_CLIENTS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'];

/** Defaults that depend on the environment, described instead of computed. */
const DEFAULT_TEXT: Record<string, string> = {
  LOG_FORMAT: 'pretty on a TTY, else json',
  POD_NAME: '$HOSTNAME',
  DNS_MODE: 'split (off when ENABLE_DNS_CONFIG=false)',
  FWMARK: '51820, or the next free table',
  ROUTE_TABLE: 'FWMARK',
  DNS_UPSTREAMS: "the config's DNS line",
  CLUSTER_DOMAINS: "(none; the cluster's own domain is always one)",
  PROXY_DEFAULT_LOCATION: 'any active exit',
  RELAY_LIST_REFRESH: '1h',
  PROXY_ALLOWED_CIDRS: DEFAULT_PROXY_CLIENTS.join(','),
};

export const SETTING_SPECS: readonly { env: string; help: string; flag: string; default: string }[] = SPECS.map((s) => ({
  env: s.env,
  help: s.help,
  flag: flagName(s.env),
  default: DEFAULT_TEXT[s.env] ?? showDefault(s.def({}), s.env),
}));

function showDefault(v: unknown, env: string): string {
  if (v === undefined) return '(unset)';
  if (Array.isArray(v)) return v.length ? v.join(',') : '(none)';
  if (typeof v === 'number' && /INTERVAL|TIMEOUT|AFTER|BACKOFF|TTL/.test(env)) return env.endsWith('TTL') && v % 60_000 === 0 ? `${v / 60_000}m` : v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`;
  return String(v);
}

/** The README's settings table (a unit test keeps the README in step). */
export function settingsMarkdown(): string {
  const rows = SETTING_SPECS.map((s) => `| \`${s.env}\` | \`${s.flag}\` | ${s.default.replace(/\|/g, '\\|')} | ${s.help.replace(/\|/g, '\\|')} |`);
  return ['| Variable | Flag | Default | Meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function flagName(env: string): string {
  return '--' + env.toLowerCase().replace(/_/g, '-');
}

/**
 * Turns `--wg-config-dir=/x` or `--wg-config-dir /x` into { WG_CONFIG_DIR: '/x' }.
 * Unknown flags are configuration errors. A bare boolean flag means true.
 */
export function flagsToSource(argv: readonly string[]): { source: Source; rest: string[] } {
  const byFlag = new Map(SPECS.map((s) => [flagName(s.env), s]));
  const source: Source = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      rest.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq === -1 ? a : a.slice(0, eq);
    const spec = byFlag.get(name);
    if (!spec) throw new ConfigError(name, 'unknown flag', `see 'mullvad-sidecar help' for the list`);
    if (eq !== -1) source[spec.env] = a.slice(eq + 1);
    else if (spec.parse === (bool as unknown) && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) source[spec.env] = 'true';
    else {
      const v = argv[++i];
      if (v === undefined) throw new ConfigError(name, 'expected a value after the flag');
      source[spec.env] = v;
    }
  }
  return { source, rest };
}

/** Reads every setting from `env` (flags already merged in), collecting all problems. */
export function loadSettings(env: Source): Settings {
  const out: Record<string, unknown> = {};
  const errors: ConfigError[] = [];
  for (const spec of SPECS) {
    const raw = env[spec.env];
    try {
      // Unset and empty differ: an empty value is a mistake worth naming, except
      // for list settings where empty means "none".
      if (raw === undefined) out[spec.key] = spec.def(env);
      else if (raw.trim() === '' && !['BYPASS_CIDRS', 'SERVER', 'WG_CONFIG', 'HOST_IP', 'PROXY_LISTEN'].includes(spec.env))
        throw new ConfigError(spec.env, 'is set but empty', `unset it to use the default`);
      else if (raw.trim() === '') out[spec.key] = spec.def(env);
      else out[spec.key] = spec.parse(raw, spec.env);
    } catch (e) {
      if (e instanceof ConfigError) errors.push(e);
      else throw e;
    }
  }
  if (errors.length === 0) {
    if (out['dnsConfig'] === false && env['DNS_MODE'] !== undefined && out['dnsMode'] !== 'off')
      errors.push(new ConfigError('DNS_MODE', `is '${String(out['dnsMode'])}' but ENABLE_DNS_CONFIG=false means off`, 'set only one of them'));
    if (out['fwmark'] !== undefined && out['routeTable'] === undefined) {
      const mark = out['fwmark'] as number;
      if (RESERVED_TABLES[mark]) errors.push(reservedTableError('FWMARK', mark, 'the routing table defaults to FWMARK: set ROUTE_TABLE to a table of our own, e.g. 51820'));
      else out['routeTable'] = mark;
    }
    if ((out['wgPrivateKeyFile'] === undefined) !== (out['wgAddress'] === undefined))
      errors.push(new ConfigError(out['wgAddress'] === undefined ? 'WG_ADDRESS' : 'WG_PRIVATE_KEY_FILE', 'is required with ' + (out['wgAddress'] === undefined ? 'WG_PRIVATE_KEY_FILE' : 'WG_ADDRESS'), "set both (the key and the device's addresses from mullvad.net), or neither to take them from a mounted config"));
    // The proxy is never open: no users file, no proxy.
    if ((out['proxyListen'] as string[]).length > 0 && out['proxyUsersFile'] === undefined)
      errors.push(new ConfigError('PROXY_USERS_FILE', 'is required when PROXY_LISTEN is set', 'mount a file of name:password lines and set PROXY_USERS_FILE to its path'));
  }
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new ConfigErrors(errors);
  return Object.freeze(out) as unknown as Settings;
}

/** The effective settings as flat env-name → value pairs for the start-up log (no secrets live here). */
export function describeSettings(s: Settings): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  for (const spec of SPECS) {
    const v = s[spec.key];
    d[spec.env] = Array.isArray(v) ? v.map((x) => (typeof x === 'object' && x && 'text' in x ? (x as Cidr).text : typeof x === 'object' && x && 'prefix' in x ? `${(x as InterfaceAddress).address}/${(x as InterfaceAddress).prefix}` : x)).join(',') : v ?? '(auto)';
  }
  return d;
}
