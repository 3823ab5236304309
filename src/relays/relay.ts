// Mullvad's public WireGuard relay list (https://api.mullvad.net/www/relays/wireguard/):
// a flat JSON array, one object per relay. It is input from the network, so
// every field is checked; a malformed entry is skipped and counted, never fatal,
// and fields we do not know are ignored (Mullvad adds some now and then).
import { isIP } from 'node:net';
import { SidecarError } from '../errors.js';

export class RelayListError extends SidecarError {
  override readonly code = 'E_RELAY_LIST';
}

export interface Relay {
  /** `se-got-wg-002`: lowercase, as in the list. */
  readonly hostname: string;
  /** ISO code, lowercase: `se`. */
  readonly countryCode: string;
  readonly countryName: string;
  /** Mullvad's city code, lowercase: `got`. */
  readonly cityCode: string;
  readonly cityName: string;
  /** Inactive relays are kept (the CLI lists them) but never chosen as exits. */
  readonly active: boolean;
  readonly ipv4AddrIn: string | undefined;
  readonly ipv6AddrIn: string | undefined;
  readonly pubkey: string | undefined;
  /** Port on the entry relay that forwards to this relay's WireGuard (multihop). */
  readonly multihopPort: number | undefined;
  /** `se-got-wg-socks5-002.relays.mullvad.net`, resolved through the tunnel resolver only. */
  readonly socksName: string | undefined;
  readonly socksPort: number;
}

export interface RelayList {
  readonly relays: readonly Relay[];
  /** Entries that were not relays we can use (missing or malformed fields). */
  readonly skipped: number;
}

/** Mullvad's list is ~0.5 MB; anything far bigger is not it. */
export const MAX_RELAY_LIST_BYTES = 8 * 1024 * 1024;
export const DEFAULT_SOCKS_PORT = 1080;

const CODE = /^[a-z]{2,3}$/;
const HOSTNAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
const PUBKEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/;

/** Parses the list's JSON text; throws RelayListError only when it is not a list at all. */
export function parseRelayList(text: string, source: string): RelayList {
  if (text.length > MAX_RELAY_LIST_BYTES) throw new RelayListError(`reading relay list from ${source}: ${text.length} bytes is too large`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new RelayListError(`reading relay list from ${source}: not JSON`, { cause: e });
  }
  if (!Array.isArray(data)) throw new RelayListError(`reading relay list from ${source}: expected a JSON array of relays`);
  return relaysFrom(data);
}

/** The same checks on an already parsed array (the cache file embeds one). */
export function relaysFrom(entries: readonly unknown[]): RelayList {
  const relays: Relay[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  for (const entry of entries) {
    const r = toRelay(entry);
    if (!r || seen.has(r.hostname)) skipped++;
    else {
      seen.add(r.hostname);
      relays.push(r);
    }
  }
  // An empty list would silently take every exit away: keep the previous one instead.
  if (relays.length === 0) throw new RelayListError(`reading relay list: none of ${entries.length} entries is a usable relay`);
  return { relays, skipped };
}

function toRelay(v: unknown): Relay | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  // The endpoint is WireGuard-only today; should it ever mix types, skip the others.
  if (o['type'] !== undefined && o['type'] !== 'wireguard') return undefined;
  const hostname = lower(o['hostname']);
  const countryCode = lower(o['country_code']);
  const cityCode = lower(o['city_code']);
  if (!hostname || !HOSTNAME.test(hostname) || !countryCode || !CODE.test(countryCode) || !cityCode || !CODE.test(cityCode)) return undefined;
  if (typeof o['active'] !== 'boolean') return undefined;
  const socksName = lower(o['socks_name']);
  return {
    hostname,
    countryCode,
    countryName: text(o['country_name']) ?? countryCode,
    cityCode,
    cityName: text(o['city_name']) ?? cityCode,
    active: o['active'],
    ipv4AddrIn: ip(o['ipv4_addr_in'], 4),
    ipv6AddrIn: ip(o['ipv6_addr_in'], 6),
    pubkey: typeof o['pubkey'] === 'string' && PUBKEY.test(o['pubkey']) ? o['pubkey'] : undefined,
    multihopPort: port(o['multihop_port']),
    socksName: socksName && DNS_NAME.test(socksName) ? socksName : undefined,
    socksPort: port(o['socks_port']) ?? DEFAULT_SOCKS_PORT,
  };
}

function lower(v: unknown): string | undefined {
  return typeof v === 'string' ? v.trim().toLowerCase() : undefined;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, 100) : undefined;
}

function ip(v: unknown, family: 4 | 6): string | undefined {
  return typeof v === 'string' && isIP(v) === family ? v : undefined;
}

function port(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : undefined;
}
