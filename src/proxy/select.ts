// Which exits a connection may use, in the order to try them. Pure: the relay
// list, the session's exit, resting relays and a random source come in.
// Never returns an exit outside the requested location.
import { isExit, matchRelays, parseLocation, relayInLocation, type Location } from '../relays/match.js';
import type { Relay } from '../relays/relay.js';

/** Mullvad's proxy at the relay this tunnel is connected to. */
export const CONNECTED_EXIT_HOST = '10.64.0.1';
export const MULLVAD_SOCKS_PORT = 1080;

export interface Exit {
  readonly relay: string;
  /** `10.64.0.1` for the connected relay, else the relay's socks_name (resolved through the tunnel resolver). */
  readonly host: string;
  readonly port: number;
  readonly country: string;
  readonly city: string;
}

export type SelectFailure = 'unknown-location' | 'no-exit' | 'no-relay-list';

export interface SelectInput {
  /** undefined before the first relay list. */
  readonly relays: readonly Relay[] | undefined;
  /** Hostname of the relay the tunnel is connected to (a config file stem such as se-sto-wg-001). */
  readonly connected: string | undefined;
  readonly location: Location;
  /** Whether the username names a session. */
  readonly session: boolean;
  /** The exit that session used last, if it is still alive. */
  readonly sessionRelay: string | undefined;
  readonly resting: (relay: string) => boolean;
  /** Sessions already on a relay; new sessions go where there are fewest. */
  readonly load: (relay: string) => number;
  readonly random: () => number;
  /** How many exits to try before giving up (all in the location). */
  readonly maxAttempts: number;
}

export type SelectResult = { readonly exits: readonly Exit[] } | { readonly failure: SelectFailure; readonly detail: string };

export function selectExits(inp: SelectInput): SelectResult {
  if (!inp.relays) return beforeList(inp);
  const known = inp.relays.filter((r) => relayInLocation(r, inp.location));
  if (known.length === 0) return { failure: 'unknown-location', detail: 'no relay in the relay list is there' };
  const usable = matchRelays(inp.relays, inp.location).filter((r) => isExit(r) || r.hostname === inp.connected);
  if (usable.length === 0) return { failure: 'no-exit', detail: 'no active relay with a SOCKS5 proxy there' };
  const awake = usable.filter((r) => !inp.resting(r.hostname));
  if (awake.length === 0) return { failure: 'no-exit', detail: `every exit there failed recently (${usable.length} resting)` };
  const shuffled = shuffle(awake, inp.random);
  // A live session keeps its exit; a new one (or one whose exit is gone) takes the
  // least loaded exit, ties broken by the shuffle; no session: any, at random.
  const first =
    shuffled.find((r) => r.hostname === inp.sessionRelay) ??
    (inp.session ? shuffled.reduce((best, r) => (inp.load(r.hostname) < inp.load(best.hostname) ? r : best)) : shuffled[0]!);
  const ordered = [first, ...shuffled.filter((r) => r !== first)].slice(0, Math.max(1, inp.maxAttempts));
  return { exits: ordered.map((r) => toExit(r, inp.connected)) };
}

function toExit(r: Relay, connected: string | undefined): Exit {
  const here = r.hostname === connected || r.socksName === undefined;
  return { relay: r.hostname, host: here ? CONNECTED_EXIT_HOST : r.socksName!, port: here ? MULLVAD_SOCKS_PORT : r.socksPort, country: r.countryCode, city: r.cityCode };
}

/** Until the first list arrives only the connected relay's exit is offered: if it is in the location. */
function beforeList(inp: SelectInput): SelectResult {
  const c = inp.connected ? connectedPlace(inp.connected) : undefined;
  const loc = inp.location;
  const wantsPlace = loc.country !== undefined || loc.city !== undefined || loc.relay !== undefined;
  if (wantsPlace) {
    const fits = c !== undefined && (loc.country === undefined || loc.country === c.country) && (loc.city === undefined || loc.city === c.city) && (loc.relay === undefined || loc.relay === c.relay);
    if (!fits) return { failure: 'no-relay-list', detail: 'the relay list has not arrived yet; only the connected relay exits until then' };
  }
  if (inp.resting(inp.connected ?? CONNECTED_EXIT_HOST)) return { failure: 'no-exit', detail: 'the connected relay\'s exit failed recently' };
  return { exits: [{ relay: inp.connected ?? 'connected', host: CONNECTED_EXIT_HOST, port: MULLVAD_SOCKS_PORT, country: c?.country ?? '', city: c?.city ?? '' }] };
}

/** se-sto-wg-001 → se, sto (Mullvad's hostnames carry their location). */
function connectedPlace(hostname: string): { country: string; city: string; relay: string } | undefined {
  const h = hostname.toLowerCase().replace(/^mlvd-/, '');
  const parts = h.split('-');
  if (parts.length < 3) return undefined;
  const loc = parseLocation(`${parts[0]}-${parts[1]}`);
  return loc?.country && loc.city ? { country: loc.country, city: loc.city, relay: h } : undefined;
}

function shuffle<T>(xs: readonly T[], random: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
