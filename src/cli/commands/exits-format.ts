// What `mullvad-sidecar exits` prints: the relay list grouped by country and city,
// each relay's standing as an exit and, when the sidecar answered, its circuit
// breaker state and open connections. Pure (tests feed it fixtures).
import { summarizeCities } from '../../relays/match.js';
import type { Relay } from '../../relays/relay.js';
import { duration } from '../../health/format.js';

/** From the running sidecar's /status `proxy` section; undefined when it did not answer. */
export interface PoolState {
  readonly restingExits: readonly string[];
  readonly exitsInUse: Readonly<Record<string, number>>;
  readonly connected: string | undefined;
}

export type RelayStanding = 'exit' | 'resting' | 'inactive' | 'no-proxy';

export interface ExitsRelay {
  hostname: string;
  standing: RelayStanding;
  /** How the proxy reaches it: 10.64.0.1 for the connected relay, else its socks_name. */
  proxy: string | null;
  inUse: number;
}
export interface ExitsCity {
  code: string;
  name: string;
  exits: number;
  relays: ExitsRelay[];
}
export interface ExitsCountry {
  code: string;
  name: string;
  exits: number;
  cities: ExitsCity[];
}
export interface ExitsReport {
  source: string;
  fetchedAt: string;
  relays: number;
  exits: number;
  sidecar: 'answered' | 'not reachable';
  countries: ExitsCountry[];
}

function standing(r: Relay, pool: PoolState | undefined): RelayStanding {
  if (!r.active) return 'inactive';
  if (r.socksName === undefined && r.hostname !== pool?.connected) return 'no-proxy';
  return pool?.restingExits.includes(r.hostname) ? 'resting' : 'exit';
}

export function exitsReport(relays: readonly Relay[], meta: { source: string; fetchedAt: number }, pool: PoolState | undefined): ExitsReport {
  const countries: ExitsCountry[] = [];
  for (const c of summarizeCities(relays)) {
    const rs: ExitsRelay[] = c.relays.map((r) => ({
      hostname: r.hostname,
      standing: standing(r, pool),
      proxy: r.hostname === pool?.connected ? '10.64.0.1' : r.socksName ?? null,
      inUse: pool?.exitsInUse[r.hostname] ?? 0,
    }));
    const city: ExitsCity = { code: c.cityCode, name: c.cityName, exits: rs.filter((r) => r.standing === 'exit').length, relays: rs };
    let country = countries.at(-1);
    if (country?.code !== c.countryCode) countries.push((country = { code: c.countryCode, name: c.countryName, exits: 0, cities: [] }));
    country.cities.push(city);
    country.exits += city.exits;
  }
  return {
    source: meta.source,
    fetchedAt: new Date(meta.fetchedAt).toISOString(),
    relays: relays.length,
    exits: countries.reduce((n, c) => n + c.exits, 0),
    sidecar: pool ? 'answered' : 'not reachable',
    countries,
  };
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

function relayNote(r: ExitsRelay): string {
  const parts: string[] = [r.standing === 'no-proxy' ? 'no proxy' : r.standing];
  if (r.inUse > 0) parts.push(`${r.inUse} open`);
  if (r.proxy === '10.64.0.1') parts.push('connected relay, via 10.64.0.1');
  return parts.join(', ');
}

/** The human table. `now` for the list's age. */
export function formatExits(rep: ExitsReport, now: Date): string {
  const age = Math.max(0, Math.round((now.getTime() - Date.parse(rep.fetchedAt)) / 1000));
  const lines = [
    `relay list   ${rep.source}: ${plural(rep.relays, 'relay')}, fetched ${rep.fetchedAt} (${duration(age)} ago)`,
    `sidecar      ${rep.sidecar === 'answered' ? 'answered: breaker state and open connections shown' : 'not reachable: no breaker state'}`,
    '',
  ];
  for (const c of rep.countries) {
    lines.push(`${c.code.padEnd(4)}${c.name} (${plural(c.exits, 'exit')})`);
    for (const city of c.cities) {
      lines.push(`    ${city.code.padEnd(5)}${city.name} (${plural(city.exits, 'exit')})`);
      for (const r of city.relays) lines.push(`         ${r.hostname.padEnd(20)} ${relayNote(r)}`);
    }
  }
  const cities = rep.countries.reduce((n, c) => n + c.cities.length, 0);
  lines.push('', `${plural(rep.exits, 'exit')} in ${plural(cities, 'city', 'cities')} of ${plural(rep.countries.length, 'country', 'countries')}`);
  const ex = rep.countries[0]?.cities[0];
  if (ex) {
    const c = rep.countries[0]!.code;
    const r = ex.relays[0]!.hostname;
    lines.push(`usernames    NAME-country-${c}, NAME-country-${c}-city-${ex.code}, NAME-relay-${r}, add -session-ID to keep an exit`);
  }
  return lines.join('\n') + '\n';
}
