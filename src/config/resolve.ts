// Endpoint hostnames are resolved once, before the tunnel, and pinned: the
// firewall allows exactly one IP:port for the WireGuard socket. Queries go only
// to the given (cluster) nameservers: never getaddrinfo, never a public resolver.
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { shown } from './shown.js';
import type { ServerConfig } from './types.js';
import { keepSourceLines, sourceLine } from './wgconf.js';

/** The two queries we need; node:dns's Resolver satisfies it. */
export interface HostResolver {
  resolve4(host: string): Promise<string[]>;
  resolve6(host: string): Promise<string[]>;
}

export interface ResolveOptions {
  /** Per query attempt; default 2000 ms. */
  readonly timeoutMs?: number;
  /** Attempts per nameserver; default 2. */
  readonly tries?: number;
  /** Replaces the node:dns Resolver (tests, or a resolver bound to the firewall's DNS source ports). */
  readonly resolver?: HostResolver;
}

export interface ResolveResult {
  /** Every server whose endpoint has an IP, in input order. */
  readonly servers: ServerConfig[];
  /** One per endpoint that could not be resolved, naming file:line of the Endpoint. */
  readonly errors: ConfigError[];
}

export async function resolveEndpoints(
  servers: readonly ServerConfig[],
  nameservers: readonly string[],
  opts: ResolveOptions = {},
): Promise<ResolveResult> {
  const pending = servers.filter((s) => s.peer.endpoint.ip === undefined);
  if (pending.length === 0) return { servers: [...servers], errors: [] };
  if (!opts.resolver && nameservers.length === 0)
    return {
      servers: servers.filter((s) => s.peer.endpoint.ip !== undefined),
      errors: pending.map(
        (s) =>
          new ConfigError(
            endpointWhere(s),
            `Endpoint host ${shown(s.peer.endpoint.host)} cannot be resolved: there is no nameserver to ask (the system resolver is never used)`,
            'write the relay IP in Endpoint, or give the sidecar a resolv.conf naming the cluster DNS',
          ),
      ),
    };
  const resolver = opts.resolver ?? (await clusterResolver(nameservers, opts));
  const out: ServerConfig[] = [];
  const errors: ConfigError[] = [];
  // Several files usually name distinct relays: resolve them concurrently.
  const results = await Promise.all(servers.map((s) => (s.peer.endpoint.ip === undefined ? pin(s, resolver, nameservers) : Promise.resolve(s))));
  for (const r of results) {
    if (r instanceof ConfigError) errors.push(r);
    else out.push(r);
  }
  return { servers: out, errors };
}

function endpointWhere(s: ServerConfig): string {
  const line = sourceLine(s, 'Endpoint');
  return line === undefined ? s.file : `${s.file}:${line}`;
}

async function clusterResolver(nameservers: readonly string[], opts: ResolveOptions): Promise<HostResolver> {
  const { promises } = await import('node:dns');
  const r = new promises.Resolver({ timeout: opts.timeoutMs ?? 2000, tries: opts.tries ?? 2 });
  if (nameservers.length > 0) r.setServers([...nameservers]);
  return r;
}

async function pin(s: ServerConfig, resolver: HostResolver, nameservers: readonly string[]): Promise<ServerConfig | ConfigError> {
  const ep = s.peer.endpoint;
  const where = endpointWhere(s);
  let ip: string | undefined;
  let family: 4 | 6 | undefined;
  let reason = '';
  // IPv4 first: most pods have no IPv6 uplink even when the tunnel has IPv6.
  for (const fam of [4, 6] as const) {
    try {
      const list = await (fam === 4 ? resolver.resolve4(ep.host) : resolver.resolve6(ep.host));
      const first = list.find((a) => isIP(a) === fam);
      if (first) {
        ip = first;
        family = fam;
        break;
      }
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (!reason || code !== 'ENODATA') reason = typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
    }
  }
  if (!ip || !family)
    return new ConfigError(
      where,
      `Endpoint host ${shown(ep.host)} could not be resolved through ${nameservers.join(', ') || 'the given resolver'}${reason ? ` (${reason})` : ''}`,
      'check the cluster DNS, or write the relay IP in Endpoint (mullvad.net lists it)',
    );
  const pinned: ServerConfig = { ...s, peer: { ...s.peer, endpoint: { ...ep, ip, family } } };
  return keepSourceLines(s, pinned);
}
