// Value parsers for wg-quick keys. Each returns the parsed value or a problem
// text (with an optional hint); the parser adds file:line. No problem text ever
// includes a key, and values are echoed only through `shown()`.
import { isIPv4, isIPv6 } from 'node:net';
import { parseCidr, type Cidr } from './cidr.js';
import type { Endpoint, InterfaceAddress } from './types.js';
import { shown } from './shown.js';

export { shown };

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string; hint?: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = (problem: string, hint?: string): Parsed<never> => (hint ? { ok: false, problem, hint } : { ok: false, problem });

export const REFETCH_HINT = 'copy the file again from mullvad.net/account/wireguard-config';

/** A Curve25519 key: base64 of exactly 32 bytes (43 characters, one '=' of padding). */
export function isWireGuardKey(s: string): boolean {
  // The 43rd character carries only 4 data bits, so its low 2 bits must be zero.
  return /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(s);
}

export function parseKey(raw: string, name: string): Parsed<string> {
  if (isWireGuardKey(raw)) return ok(raw);
  return bad(`${name} is not a valid WireGuard key (expected 44 characters of base64 encoding 32 bytes)`, REFETCH_HINT);
}

export function parseAddresses(raw: string): Parsed<InterfaceAddress[]> {
  const out: InterfaceAddress[] = [];
  for (const item of splitList(raw)) {
    const [ip, len, extra] = item.split('/');
    const family = ip && isIPv4(ip) ? 4 : ip && isIPv6(ip) ? 6 : 0;
    const max = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || (len !== undefined && !/^\d{1,3}$/.test(len)) || Number(len ?? max) > max)
      return bad(`Address ${shown(item)} is not an IPv4 or IPv6 address with an optional /prefix`, 'Mullvad writes e.g. 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128');
    const prefix = len === undefined ? max : Number(len);
    // Canonical text keeps the host bits: parse as a host route.
    const address = parseCidr(`${ip}/${max}`)!.address;
    if (!out.some((a) => a.address === address)) out.push({ family, address, prefix });
  }
  if (out.length === 0) return bad('Address has no value', 'Mullvad writes e.g. 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128');
  return ok(out);
}

export interface DnsValue {
  ips: string[];
  /** Search domains written in DNS (wg-quick passes them to resolvconf). */
  names: string[];
}

export function parseDns(raw: string): Parsed<DnsValue> {
  const out: DnsValue = { ips: [], names: [] };
  for (const item of splitList(raw)) {
    if (isIPv4(item) || isIPv6(item)) {
      const canon = parseCidr(item)!.address;
      if (!out.ips.includes(canon)) out.ips.push(canon);
    } else if (isDomain(item)) out.names.push(item.toLowerCase().replace(/\.$/, ''));
    else return bad(`DNS ${shown(item)} is neither an IP address nor a search domain`, 'Mullvad writes DNS = 10.64.0.1');
  }
  return ok(out);
}

export function parseMtu(raw: string): Parsed<number> {
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1280 && n <= 9000))
    return bad(`MTU ${shown(raw)} is not an integer from 1280 to 9000`, 'remove the line to let the sidecar choose, or set WG_MTU');
  return ok(n);
}

export function parseAllowedIps(raw: string): Parsed<Cidr[]> {
  const out: Cidr[] = [];
  for (const item of splitList(raw)) {
    const c = parseCidr(item);
    if (!c) return bad(`AllowedIPs ${shown(item)} is not an IPv4 or IPv6 network`, 'Mullvad writes AllowedIPs = 0.0.0.0/0,::0/0');
    if (!out.some((o) => o.text === c.text)) out.push(c);
  }
  if (out.length === 0) return bad('AllowedIPs has no value', 'Mullvad writes AllowedIPs = 0.0.0.0/0,::0/0');
  return ok(out);
}

const ENDPOINT_HINT = 'expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820';

export function parseEndpoint(raw: string): Parsed<Endpoint> {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw);
  if (!m) {
    if (isIPv6(raw) || /^[0-9a-f:]+:\d+$/i.test(raw))
      return bad(`Endpoint ${shown(raw)} has an IPv6 address without brackets`, 'write it as [address]:port');
    return bad(`Endpoint ${shown(raw)} is not host:port`, ENDPOINT_HINT);
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return bad(`Endpoint port ${shown(m[3]!)} is not from 1 to 65535`, ENDPOINT_HINT);
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) return bad(`Endpoint ${shown(raw)} has brackets around something that is not an IPv6 address`, ENDPOINT_HINT);
    const ip = parseCidr(m[1])!.address;
    return ok({ host: ip, port, ip, family: 6 });
  }
  const host = m[2]!;
  if (isIPv4(host)) return ok({ host, port, ip: host, family: 4 });
  if (!isDomain(host) || /^[\d.]+$/.test(host)) return bad(`Endpoint host ${shown(host)} is neither an IP address nor a hostname`, ENDPOINT_HINT);
  return ok({ host: host.toLowerCase().replace(/\.$/, ''), port, ip: undefined, family: undefined });
}

/** 0–65535 seconds or "off"; 0 and "off" both mean no keepalive. */
export function parseKeepalive(raw: string): Parsed<number | undefined> {
  if (raw.toLowerCase() === 'off') return ok(undefined);
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 0 && n <= 65535)) return bad(`PersistentKeepalive ${shown(raw)} is not 0 to 65535 seconds or off`, 'Mullvad files usually omit it; 25 is common');
  return ok(n === 0 ? undefined : n);
}

export function isDomain(s: string): boolean {
  const n = s.replace(/\.$/, '');
  return n.length > 0 && n.length <= 253 && n.split('.').every((l) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
