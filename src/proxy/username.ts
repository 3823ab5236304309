// The exit is chosen by the username, in the convention of scraping proxies:
// <name>[-country-<cc>][-city-<city>][-relay-<hostname>][-session-<id>].
import type { Location } from '../relays/match.js';

export interface ProxyUsername {
  /** The user in PROXY_USERS_FILE. */
  readonly name: string;
  readonly location: Location;
  readonly session: string | undefined;
}

const GRAMMAR =
  /^([A-Za-z0-9_.-]+?)(?:-country-([A-Za-z]{2,3}))?(?:-city-([A-Za-z]{2,3}))?(?:-relay-([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?))?(?:-session-([A-Za-z0-9_.]{1,64}))?$/;
const KEYWORD = /-(country|city|relay|session)-/;

/** undefined when the username does not follow the grammar (treated like a wrong password). */
export function parseProxyUsername(raw: string): ProxyUsername | undefined {
  if (raw.length === 0 || raw.length > 255) return undefined;
  const m = GRAMMAR.exec(raw);
  if (!m) return undefined;
  const name = m[1]!;
  // A keyword left in the name means a part was malformed (`-country-sweden`) or out of order.
  if (KEYWORD.test(`${name}-`) || name.startsWith('-') || name.endsWith('-')) return undefined;
  const location: { country?: string; city?: string; relay?: string } = {};
  if (m[2]) location.country = m[2].toLowerCase();
  if (m[3]) location.city = m[3].toLowerCase();
  if (m[4]) location.relay = m[4].toLowerCase();
  return { name, location, session: m[5] };
}
