// The proxy's only outgoing connections: to a Mullvad SOCKS5 proxy inside the
// tunnel (the `socks` package speaks the client side), asking it to connect to
// the target by name (SOCKS5 domain type), so target names resolve at the exit.
// Proxy names (socks_name) resolve through the tunnel resolver, never the system's.
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { SocksClient } from 'socks';
import { parseCidr, cidrContains, type Cidr } from '../config/cidr.js';
import { stubQuery } from '../dns/client.js';
import { SidecarError } from '../errors.js';
import { CONNECTED_EXIT_HOST } from './select.js';

/** The exit's proxy did not work (unreachable, timeout, bad handshake): try another relay. */
export class ExitFailedError extends SidecarError {
  override readonly code = 'E_EXIT_FAILED';
}

/** The exit worked but the target did not (RFC 1928 reply code): another relay would not help. */
export class TargetRejectedError extends SidecarError {
  override readonly code = 'E_TARGET_REJECTED';
  constructor(
    message: string,
    readonly reply: number,
  ) {
    super(message);
  }
}

/** Where Mullvad's in-tunnel proxies live: 10.64.0.1 (the connected relay) and 10.124.0.0/22 (every relay's). */
export const MULLVAD_PROXY_NETS: readonly Cidr[] = ['10.64.0.1/32', '10.124.0.0/22'].map((c) => parseCidr(c)!);

export function isMullvadProxyAddress(ip: string): boolean {
  return MULLVAD_PROXY_NETS.some((c) => cidrContains(c, ip));
}

/** A bypass network that covers a Mullvad proxy address would route the proxy's connections outside the tunnel. */
export function bypassCoveringProxies(bypass: readonly Cidr[]): Cidr | undefined {
  return bypass.find((b) => MULLVAD_PROXY_NETS.some((m) => cidrContains(b, m.address) || cidrContains(m, b.address)));
}

const REPLY_NAMES: Record<string, number> = {
  Failure: 1, NotAllowed: 2, NetworkUnreachable: 3, HostUnreachable: 4, ConnectionRefused: 5, TTLExpired: 6, CommandNotSupported: 7, AddressNotSupported: 8,
};

export interface DialOptions {
  timeoutMs: number;
}

/** Connects through the SOCKS5 proxy at `proxyIp:proxyPort` to `target`. */
export async function dialThroughExit(proxyIp: string, proxyPort: number, target: { host: string; port: number }, opts: DialOptions): Promise<Socket> {
  if (!isMullvadProxyAddress(proxyIp)) throw new ExitFailedError(`${proxyIp} is not a Mullvad in-tunnel proxy address`);
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: proxyIp, port: proxyPort, type: 5 },
      command: 'connect',
      destination: target,
      timeout: opts.timeoutMs,
    });
    return socket;
  } catch (e) {
    throw exitError(e, `${target.host}:${target.port}`, `connecting through ${proxyIp}:${proxyPort}`);
  }
}

/** A `socks` client error as ours: the exit's reply code (TargetRejectedError), else the exit failed. */
export function exitError(e: unknown, what: string, doing: string): TargetRejectedError | ExitFailedError {
  if (e instanceof ExitFailedError || e instanceof TargetRejectedError) return e;
  const msg = (e as Error).message;
  const m = /^Socks5 proxy rejected connection - (\w+)/.exec(msg);
  if (m) return new TargetRejectedError(`exit refused ${what}: ${m[1]}`, REPLY_NAMES[m[1]!] ?? 1);
  return new ExitFailedError(`${doing}: ${msg}`, { cause: e });
}

export interface TunnelResolverOptions {
  /** The tunnel resolver(s): DNS_UPSTREAMS or the config's DNS line. */
  servers: () => readonly string[];
  timeoutMs: number;
  now: () => number;
}

/** Resolves socks_name through the tunnel resolver, caching answers for their TTL (bounded). */
export class TunnelResolver {
  private readonly cache = new Map<string, { ip: string; until: number }>();
  constructor(private readonly opts: TunnelResolverOptions) {}

  async resolve(name: string): Promise<string> {
    if (isIP(name)) return name;
    if (name === CONNECTED_EXIT_HOST) return name;
    const hit = this.cache.get(name);
    if (hit && hit.until > this.opts.now()) return hit.ip;
    const errors: string[] = [];
    for (const server of this.opts.servers()) {
      try {
        const { packet } = await stubQuery({ name, type: 'A', server, port: 53, timeoutMs: this.opts.timeoutMs });
        const answers = (packet.answers ?? []) as { type: string; data?: unknown; ttl?: number }[];
        const a = answers.find((r) => r.type === 'A' && typeof r.data === 'string');
        if (!a) {
          errors.push(`${server}: ${(packet as { rcode?: string }).rcode ?? 'no A record'}`);
          continue;
        }
        const ip = a.data as string;
        // A resolver that points a proxy name anywhere else is not followed: the proxy only ever talks to Mullvad's proxies.
        if (!isMullvadProxyAddress(ip)) throw new ExitFailedError(`${name} resolved to ${ip}, outside Mullvad's proxy networks`);
        const ttl = Math.min(Math.max(a.ttl ?? 60, 10), 3600);
        if (this.cache.size > 4096) this.cache.clear();
        this.cache.set(name, { ip, until: this.opts.now() + ttl * 1000 });
        return ip;
      } catch (e) {
        if (e instanceof ExitFailedError) throw e;
        errors.push(`${server}: ${(e as Error).message}`);
      }
    }
    throw new ExitFailedError(`resolving ${name} through the tunnel resolver: ${errors.join('; ') || 'no resolver'}`);
  }
}
