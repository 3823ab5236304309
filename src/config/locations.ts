// Any location from one key: Mullvad gives a device one private key and one
// pair of tunnel addresses for every relay, so the relay list alone turns
// SERVER=se-got (or a hostname, or a comma list) into WireGuard peers. With
// MULTIHOP_ENTRY the endpoint is an entry relay's ipv4_addr_in with the exit
// relay's multihop_port, and the peer is the exit (the session is end-to-end
// with the exit; the entry only forwards). Pure: list in, candidates out.
import { parseCidr, type Cidr } from './cidr.js';
import type { InterfaceAddress, ServerConfig } from './types.js';
import { matchRelays, parseLocation, type Location, type Relay } from '../relays/index.js';

/** What one mounted config (or WG_PRIVATE_KEY_FILE + WG_ADDRESS) contributes: the device. */
export interface Device {
  readonly privateKey: string;
  readonly addresses: readonly InterfaceAddress[];
  readonly dns: readonly string[];
  readonly mtu: number | undefined;
  /** Where the key came from, for messages (a file path or a variable name). */
  readonly source: string;
}

export function deviceOf(server: ServerConfig): Device {
  return { privateKey: server.privateKey, addresses: server.addresses, dns: server.dns, mtu: server.mtu, source: server.file };
}

export interface LocationCandidate {
  readonly server: ServerConfig;
  readonly exit: Relay;
  /** Set for multihop: the relay whose address the kill switch allows. */
  readonly entry: Relay | undefined;
}

export interface LocationPlan {
  readonly candidates: readonly LocationCandidate[];
  /** Locations (SERVER items, or MULTIHOP_ENTRY) that match no usable relay in the list. */
  readonly unmatched: readonly string[];
}

export const WIREGUARD_PORT = 51820;
const RELAY_SUFFIX = '.relays.mullvad.net';
const FULL_TUNNEL: readonly Cidr[] = ['0.0.0.0/0', '::/0'].map((c) => parseCidr(c)).filter((c): c is Cidr => !!c);

/** `se`, `se-got`, `se-got-wg-002` or `se-got-wg-002.relays.mullvad.net`; undefined when it is none of these. */
export function parseLocationItem(raw: string): Location | undefined {
  const t = raw.trim().toLowerCase();
  if (t === '') return undefined;
  return parseLocation(t.endsWith(RELAY_SUFFIX) ? t.slice(0, -RELAY_SUFFIX.length) : t);
}

/** A relay we can connect to: active, with a key and an IPv4 entry address. */
function usable(r: Relay): boolean {
  return r.active && r.pubkey !== undefined && r.ipv4AddrIn !== undefined;
}

function relaysFor(relays: readonly Relay[], items: readonly string[], unmatched: string[]): Relay[] {
  const out: Relay[] = [];
  for (const item of items) {
    const loc = parseLocationItem(item);
    const hits = loc ? matchRelays(relays, loc).filter(usable) : [];
    if (hits.length === 0) unmatched.push(item);
    for (const h of hits) if (!out.includes(h)) out.push(h);
  }
  return out;
}

function serverFor(device: Device, exit: Relay, entry: Relay | undefined): ServerConfig {
  const ip = (entry ?? exit).ipv4AddrIn ?? '';
  const port = entry ? (exit.multihopPort ?? 0) : WIREGUARD_PORT;
  return {
    // Multihop pairs one exit with several entries: the name tells them apart, `exit` keeps the relay.
    name: entry ? multihopName(exit.hostname, entry.hostname) : exit.hostname,
    file: entry ? `relay list (${entry.hostname} → ${exit.hostname})` : `relay list (${exit.hostname})`,
    privateKey: device.privateKey,
    addresses: device.addresses,
    dns: device.dns,
    mtu: device.mtu,
    peer: {
      publicKey: exit.pubkey ?? '',
      presharedKey: undefined,
      allowedIps: FULL_TUNNEL,
      endpoint: { host: ip, port, ip, family: 4 },
      persistentKeepalive: undefined,
    },
    warnings: [],
    ...(entry ? { entry: entry.hostname, exit: exit.hostname } : {}),
  };
}

/** `se-got-wg-002 via se-sto-wg-001`: the name of a multihop candidate (the exit first: it is where traffic appears). */
export function multihopName(exit: string, entry: string): string {
  return `${exit} via ${entry}`;
}

/** Entries tried per exit: enough to survive a dark entry or two without thousands of candidates for `MULTIHOP_ENTRY=se`. */
export const MAX_ENTRIES_PER_EXIT = 4;

/**
 * The candidates for `locations` (in the order given, then list order), each
 * paired with an entry when `multihopEntry` is set. In rounds: round k pairs
 * every exit with its k-th entry, rotated by the exit's position, so the first
 * round spreads the exits over the entries and each later round offers every
 * exit through another entry. A failover can so change either hop: a dark
 * entry moves to another entry (and, with several exits, the next exit of the
 * same SERVER locations); a dark exit to the next exit. An entry is never its
 * own exit, and an exit without a multihop port cannot be reached through one.
 */
export function planLocations(opts: { device: Device; relays: readonly Relay[]; locations: readonly string[]; multihopEntry?: string | undefined }): LocationPlan {
  const unmatched: string[] = [];
  const exits = relaysFor(opts.relays, opts.locations, unmatched);
  if (opts.multihopEntry === undefined || opts.multihopEntry.trim() === '') {
    return { candidates: exits.map((exit) => ({ server: serverFor(opts.device, exit, undefined), exit, entry: undefined })), unmatched };
  }
  const entryItems = opts.multihopEntry.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const entries = relaysFor(opts.relays, entryItems, unmatched);
  const reachable = exits
    .filter((exit) => exit.multihopPort !== undefined)
    .map((exit) => ({ exit, pool: entries.filter((e) => e.hostname !== exit.hostname) }))
    .filter((x) => x.pool.length > 0);
  const rounds = Math.min(MAX_ENTRIES_PER_EXIT, Math.max(0, ...reachable.map((x) => x.pool.length)));
  const candidates: LocationCandidate[] = [];
  for (let k = 0; k < rounds; k++) {
    reachable.forEach(({ exit, pool }, i) => {
      if (k >= pool.length) return;
      const entry = pool[(i + k) % pool.length]!;
      candidates.push({ server: serverFor(opts.device, exit, entry), exit, entry });
    });
  }
  return { candidates, unmatched };
}

/** For `validate`: SERVER / MULTIHOP_ENTRY items that match no usable relay in the cached list. */
export function unmatchedLocations(relays: readonly Relay[], locations: readonly string[], multihopEntry?: string): string[] {
  const unmatched: string[] = [];
  relaysFor(relays, locations, unmatched);
  if (multihopEntry) relaysFor(relays, multihopEntry.split(',').map((s) => s.trim()).filter((s) => s !== ''), unmatched);
  return unmatched;
}
