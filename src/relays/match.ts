// Locations in Mullvad's codes: a country (`se`), a city in it (`se-got`), or one
// relay (`se-got-wg-002`). The proxy's usernames, PROXY_DEFAULT_LOCATION and the
// `exits` CLI all go through here, so "where" means the same everywhere.
import type { Relay } from './relay.js';
import { byCodeUnit } from '../order.js';

export interface Location {
  readonly country?: string;
  readonly city?: string;
  readonly relay?: string;
}

const CODE = /^[a-z]{2,3}$/;
const HOSTNAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * `se` → country, `se-got` → city, anything longer → a relay hostname.
 * Returns undefined for text that is none of these.
 */
export function parseLocation(raw: string): Location | undefined {
  const t = raw.trim().toLowerCase();
  if (t === '') return {};
  const parts = t.split('-');
  if (parts.length === 1) return CODE.test(t) ? { country: t } : undefined;
  if (parts.length === 2) return CODE.test(parts[0]!) && CODE.test(parts[1]!) ? { country: parts[0]!, city: parts[1]! } : undefined;
  return HOSTNAME.test(t) ? { relay: t } : undefined;
}

/** `se-got`, `relay se-got-wg-002`, `anywhere`: for logs, errors and headers. */
export function describeLocation(loc: Location): string {
  const parts: string[] = [];
  if (loc.country) parts.push(loc.country);
  if (loc.city) parts.push(loc.city);
  const place = parts.join('-');
  if (loc.relay) return place ? `${place} relay ${loc.relay}` : `relay ${loc.relay}`;
  return place || 'anywhere';
}

/** Narrows `base` by `extra` (a username's location inside PROXY_DEFAULT_LOCATION); undefined when they contradict. */
export function combineLocations(base: Location, extra: Location): Location | undefined {
  const out: { country?: string; city?: string; relay?: string } = { ...base };
  for (const k of ['country', 'city', 'relay'] as const) {
    const v = extra[k];
    if (v === undefined) continue;
    if (out[k] !== undefined && out[k] !== v) return undefined;
    out[k] = v;
  }
  return out;
}

/** Whether `relay` lies in `loc` (every given part must agree). */
export function relayInLocation(relay: Relay, loc: Location): boolean {
  if (loc.country !== undefined && relay.countryCode !== loc.country) return false;
  if (loc.city !== undefined && relay.cityCode !== loc.city) return false;
  if (loc.relay !== undefined && relay.hostname !== loc.relay) return false;
  return true;
}

/** Active relays in `loc`, in list order. Pass `includeInactive` to list the others too. */
export function matchRelays(relays: readonly Relay[], loc: Location, opts: { includeInactive?: boolean } = {}): Relay[] {
  return relays.filter((r) => (opts.includeInactive || r.active) && relayInLocation(r, loc));
}

export interface CitySummary {
  readonly countryCode: string;
  readonly countryName: string;
  readonly cityCode: string;
  readonly cityName: string;
  /** Active relays with an in-tunnel SOCKS5 proxy: the exits this city offers. */
  readonly exits: number;
  readonly relays: readonly Relay[];
}

/** Relays grouped by city, sorted by country then city code (for the `exits` CLI). */
export function summarizeCities(relays: readonly Relay[]): CitySummary[] {
  const byCity = new Map<string, Relay[]>();
  for (const r of relays) {
    const key = `${r.countryCode}-${r.cityCode}`;
    const list = byCity.get(key) ?? [];
    list.push(r);
    byCity.set(key, list);
  }
  return [...byCity.entries()]
    .sort(([a], [b]) => byCodeUnit(a, b))
    .map(([, rs]) => {
      const first = rs[0]!;
      return {
        countryCode: first.countryCode,
        countryName: first.countryName,
        cityCode: first.cityCode,
        cityName: first.cityName,
        exits: rs.filter(isExit).length,
        relays: rs,
      };
    });
}

/** A relay the proxy may use as an exit: active, with a proxy name to reach it by. */
export function isExit(r: Relay): boolean {
  return r.active && r.socksName !== undefined;
}
