// Any location from one key, over time: the relay list is fetched through the
// tunnel (src/relays, never while it is down), cached in RELAY_LIST_CACHE, and
// every new list turns into new candidates for the next failover (the tunnel
// in use stays up). Only the choice is pure (config/candidates.ts); this file
// wires the fetcher to it.
import { chooseServers, type ServerSources } from '../config/candidates.js';
import type { Settings } from '../config/settings.js';
import type { ServerConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { RelayListSource } from '../relays/index.js';

export interface RelayServersOptions {
  settings: Settings;
  /** The facts of the start (mounted configs, device); the list part is replaced by each new list. */
  sources: ServerSources;
  /** The servers in use now (a new list that gives the same ones changes nothing). */
  current: readonly ServerConfig[];
  tunnelUp: () => boolean;
  log: Logger;
  /** Called with the new candidates; may throw (a bypass swallowing an endpoint): logged, the old ones stay. */
  onServers: (servers: ServerConfig[]) => void;
}

/** True when the relay list is worth fetching: a location, multihop, or a key file asked for it. */
export function wantsRelayList(settings: Settings): boolean {
  return settings.servers.length > 0 || settings.multihopEntry !== undefined || settings.wgPrivateKeyFile !== undefined;
}

export function startRelayServers(o: RelayServersOptions): RelayListSource {
  const source = new RelayListSource({ url: o.settings.relayListUrl, cachePath: o.settings.relayListCache, tunnelUp: o.tunnelUp, log: o.log });
  let current = fingerprint(o.current);
  source.onChange((list) => {
    try {
      const chosen = chooseServers(o.settings, { ...o.sources, relays: list.list.relays });
      const next = fingerprint(chosen.servers);
      if (next === current) return;
      for (const w of chosen.warnings) o.log.warn(w);
      o.onServers(chosen.servers);
      current = next;
      o.log.info('servers from the relay list', { source: chosen.source, servers: chosen.servers.map((s) => s.name), relays: list.list.relays.length });
    } catch (e) {
      o.log.warn('the new relay list gives no usable servers; keeping the current ones', { error: (e as Error).message });
    }
  });
  void source.start().catch((e: unknown) => o.log.error('the relay list loop failed', { error: String(e) }));
  return source;
}

/** Name, entry and endpoint of each server: what a failover would use. */
function fingerprint(servers: readonly ServerConfig[]): string {
  return servers.map((s) => `${s.name}>${s.entry ?? ''}@${s.peer.endpoint.ip ?? s.peer.endpoint.host}:${s.peer.endpoint.port}/${s.peer.publicKey}`).join(' ');
}
