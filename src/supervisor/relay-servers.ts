// The relay list, once per process: one RelayListSource (src/relays) fetches it
// through the tunnel (never while it is down), caches it in RELAY_LIST_CACHE
// and refreshes it with If-None-Match. Its consumers subscribe to that one
// source: native server selection (every new list turns into new candidates
// for the next failover; the tunnel in use stays up) and the exit pool
// (src/proxy reads `current()`). Two fetchers on one cache file would race on
// its writes and double the requests. Only the choice is pure
// (config/candidates.ts); this file wires the source to it.
import { chooseServers, type ServerSources } from '../config/candidates.js';
import type { Settings } from '../config/settings.js';
import type { ServerConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { RelayListSource, type RelayFetch } from '../relays/index.js';

/** True when native server selection wants the list: a location, multihop, or a key file asked for it. */
export function wantsRelayList(settings: Settings): boolean {
  return settings.servers.length > 0 || settings.multihopEntry !== undefined || settings.wgPrivateKeyFile !== undefined;
}

export interface RelayListOptions {
  /** Asked before every fetch: only while the tunnel is up does the request leave through it. */
  tunnelUp: () => boolean;
  log: Logger;
  /** Node's global fetch unless injected (tests). */
  fetch?: RelayFetch;
}

/**
 * The process's one relay-list source, or undefined when nothing needs it
 * (neither native selection nor the exit pool). Subscribe first, then start():
 * loading the cache already notifies the subscribers.
 */
export function openRelayList(settings: Settings, o: RelayListOptions): RelayListSource | undefined {
  if (!wantsRelayList(settings) && settings.proxyListen.length === 0) return undefined;
  return new RelayListSource({
    url: settings.relayListUrl,
    cachePath: settings.relayListCache,
    refreshMs: settings.relayListRefreshMs,
    tunnelUp: o.tunnelUp,
    log: o.log,
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
}

export interface RelayServersOptions {
  settings: Settings;
  /** The facts of the start (mounted configs, device); the list part is replaced by each new list. */
  sources: ServerSources;
  /** The servers in use now (a new list that gives the same ones changes nothing). */
  current: readonly ServerConfig[];
  log: Logger;
  /** Called with the new candidates; may throw (a bypass swallowing an endpoint): logged, the old ones stay. */
  onServers: (servers: ServerConfig[]) => void;
}

/** Native server selection follows `source`: each new list that changes the candidates hands them on. */
export function followRelayServers(source: RelayListSource, o: RelayServersOptions): void {
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
}

/** Starts the source's loop (cache, then fetches while the tunnel is up); a crash of the loop is logged. */
export function runRelayList(source: RelayListSource, log: Logger): void {
  void source.start().catch((e: unknown) => log.error('the relay list loop failed', { error: String(e) }));
}

/** Name, entry and endpoint of each server: what a failover would use. */
function fingerprint(servers: readonly ServerConfig[]): string {
  return servers.map((s) => `${s.name}>${s.entry ?? ''}@${s.peer.endpoint.ip ?? s.peer.endpoint.host}:${s.peer.endpoint.port}/${s.peer.publicKey}`).join(' ');
}
