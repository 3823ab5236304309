// Which servers `run` tries: the pure choice between the relay list (any
// location from one key, multihop) and the mounted configs. Facts in (mounted
// configs, the device, the cached relay list), servers out; the effects that
// gather the facts are sources.ts.
import { ConfigError } from '../errors.js';
import type { Relay } from '../relays/index.js';
import { deviceOf, parseLocationItem, planLocations, type Device } from './locations.js';
import type { Settings } from './settings.js';
import { filterServers } from './select.js';
import type { ServerConfig } from './types.js';

export interface ServerSources {
  /** Every mounted config, SERVER not applied. */
  readonly mounted: readonly ServerConfig[];
  /** WG_PRIVATE_KEY_FILE + WG_ADDRESS, when set (else the first mounted config is the device). */
  readonly device: Device | undefined;
  /** The cached or fetched relay list; undefined before the first fetch. */
  readonly relays: readonly Relay[] | undefined;
}

export interface ChosenServers {
  /** In SERVER order (SERVER_SELECTION orders them later). */
  readonly servers: ServerConfig[];
  readonly source: 'relay list' | 'configs';
  /** What the operator should know (logged, printed by validate). */
  readonly warnings: string[];
}

type Choice = Pick<Settings, 'servers' | 'multihopEntry'>;

const FIRST_START_HINT = 'mount one Mullvad config for the first start (the relay list is then fetched through its tunnel and cached in RELAY_LIST_CACHE), or seed RELAY_LIST_CACHE';

/** Throws ConfigError when nothing can be tried. */
export function chooseServers(settings: Choice, src: ServerSources): ChosenServers {
  const native = settings.servers.length > 0 || settings.multihopEntry !== undefined;
  const device = src.device ?? (src.mounted[0] ? deviceOf(src.mounted[0]) : undefined);
  if (native && src.relays && device) return fromRelayList(settings, src.relays, device, src.mounted);
  if (src.mounted.length === 0 && src.relays)
    throw new ConfigError('WG_PRIVATE_KEY_FILE', 'is unset and no config is mounted: there is no key to connect with', "set WG_PRIVATE_KEY_FILE and WG_ADDRESS (your device's key and addresses), or mount one Mullvad config");
  return fromMounted(settings, src.mounted, native && !src.relays);
}

function fromRelayList(settings: Choice, relays: readonly Relay[], device: Device, mounted: readonly ServerConfig[]): ChosenServers {
  const warnings: string[] = [];
  const locations = settings.servers.length > 0 ? settings.servers : [...new Set(relays.map((r) => r.countryCode))];
  const plan = planLocations({ device, relays, locations, multihopEntry: settings.multihopEntry });
  const servers = plan.candidates.map((c) => c.server);
  let unmatched = plan.unmatched;
  // A mounted file still counts for a single hop (a relay newer than the cached list).
  if (settings.multihopEntry === undefined) {
    unmatched = unmatched.filter((item) => {
      const hits = mountedMatching(mounted, item);
      for (const h of hits) if (!servers.some((s) => s.name === h.name)) servers.push(h);
      return hits.length === 0;
    });
  }
  if (servers.length === 0) {
    const entryBad = settings.multihopEntry !== undefined && settings.multihopEntry.split(',').every((e) => plan.unmatched.includes(e));
    throw new ConfigError(
      entryBad ? 'MULTIHOP_ENTRY' : 'SERVER',
      entryBad ? `'${settings.multihopEntry}' matches no active relay in the relay list` : `${quote(unmatched.length ? unmatched : locations)} ${settings.multihopEntry !== undefined ? 'gives no multihop exit (an active relay with a multihop port other than the entry)' : 'matches no active relay in the relay list nor a mounted config'}`,
      'use a country (se), a city (se-got) or a relay hostname (se-got-wg-002) that mullvad.net lists as active',
    );
  }
  if (unmatched.length) warnings.push(`${quote(unmatched)} ${unmatched.length === 1 ? 'matches' : 'match'} no active relay in the relay list: ignored`);
  return { servers, source: 'relay list', warnings };
}

function fromMounted(settings: Choice, mounted: readonly ServerConfig[], waitingForList: boolean): ChosenServers {
  if (mounted.length === 0) throw new ConfigError('SERVER', 'no relay list is cached yet and no config is mounted: there is nothing to connect to', FIRST_START_HINT);
  const warnings: string[] = [];
  if (waitingForList && settings.multihopEntry !== undefined) warnings.push('MULTIHOP_ENTRY applies once the relay list is fetched: this first start is single-hop through the mounted configs');
  if (settings.servers.length === 0) return { servers: [...mounted], source: 'configs', warnings };
  const servers: ServerConfig[] = [];
  const unmatched: string[] = [];
  for (const item of settings.servers) {
    const hits = mountedMatching(mounted, item);
    if (hits.length === 0) unmatched.push(item);
    for (const h of hits) if (!servers.includes(h)) servers.push(h);
  }
  // Only a location can wait for the relay list; anything else is a typo now.
  const hopeless = waitingForList ? unmatched.filter((u) => !parseLocationItem(u)) : unmatched;
  if (hopeless.length) throw new ConfigError('SERVER', `${quote(hopeless)} ${hopeless.length === 1 ? 'matches' : 'match'} no server`, `available: ${mounted.map((s) => s.name).sort().join(', ')}`);
  if (servers.length === 0) {
    warnings.push(`${quote(unmatched)} ${unmatched.length === 1 ? 'matches' : 'match'} no mounted config: starting with every mounted config until the relay list is fetched through the tunnel`);
    return { servers: [...mounted], source: 'configs', warnings };
  }
  if (unmatched.length) warnings.push(`${quote(unmatched)} ${unmatched.length === 1 ? 'matches' : 'match'} no mounted config: used once the relay list is fetched through the tunnel`);
  return { servers, source: 'configs', warnings };
}

function mountedMatching(mounted: readonly ServerConfig[], item: string): ServerConfig[] {
  try {
    return filterServers(mounted, [item]);
  } catch (e) {
    if (e instanceof ConfigError) return [];
    throw e;
  }
}

const quote = (items: readonly string[]): string => items.map((u) => `'${u}'`).join(', ');
