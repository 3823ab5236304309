// The exit pool, assembled: the shared relay list (read only here), tunnel
// resolver for proxy names, exit selection with sessions and a circuit breaker,
// and the SOCKS5/HTTP listener. The sidecar calls tunnelChanged() on every
// tunnel up/down: down closes every proxied connection and refuses new ones.
import type { Registry } from '../health/prom-registry.js';
import type { Cidr } from '../config/cidr.js';
import type { Settings } from '../config/settings.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { RelayListSource } from '../relays/fetcher.js';
import { ExitBreaker } from './breaker.js';
import { ExitPool, type ExitPoolDeps } from './exits.js';
import { ProxyMetrics } from './metrics.js';
import { ProxyServer, type ProxyLimitOptions } from './server.js';
import { ProxySessions } from './sessions.js';
import { bypassCoveringProxies, dialThroughExit, TunnelResolver } from './upstream.js';
import { associateThroughExit } from './upstream-udp.js';
import { ProxyUsers } from './users.js';

export interface ExitPoolStatus {
  listen: readonly string[];
  relayList: { relays: number; exits: number; ageSeconds: number | null; source: string; fetches: number; failures: number; lastError: string | null };
  activeConnections: number;
  sessions: number;
  exitsInUse: Record<string, number>;
  restingExits: string[];
  exitFailures: number;
  connections: Record<string, number>;
  /** SOCKS5 UDP associations open now. */
  udpAssociations: number;
  /** Datagrams dropped by the UDP relay, by reason. */
  udpDropped: Record<string, number>;
}

export interface ExitPoolHandle {
  tunnelChanged(up: boolean, resolvers: readonly string[]): void;
  status(): ExitPoolStatus;
  stop(): Promise<void>;
}

export interface ExitPoolOptions {
  settings: Settings;
  /** PROXY_USERS_FILE, loaded (and validated) early, with the other configuration. */
  users: ProxyUsers;
  log: Logger;
  registry: Registry | undefined;
  /** Config name of the relay the tunnel is connected to (se-sto-wg-001). */
  connected: () => string | undefined;
  /** The process's one relay list (supervisor/relay-servers.ts), shared with native server selection; its owner starts and stops it. */
  relays: RelayListSource;
  /**
   * The supervisor's state: new connections are served only while it is
   * 'connected'. Degraded (probes failing), failing over or blocked: refused at
   * once with tunnel-down instead of dialling into a dark tunnel until the timeout.
   */
  tunnelState?: () => string | undefined;
  limits?: ProxyLimitOptions;
  /** Tests: the exits' side (default: dialThroughExit, PROXY_CONNECT_TIMEOUT). */
  dial?: ExitPoolDeps['dial'];
  /** Tests: UDP ASSOCIATE at an exit (default: associateThroughExit, PROXY_CONNECT_TIMEOUT). */
  associate?: ExitPoolDeps['associate'];
}

/** Whether the proxy may open new connections: the tunnel is up and, when the supervisor's state is known, connected. */
export function tunnelUsable(up: boolean, state: (() => string | undefined) | undefined): boolean {
  return up && (state === undefined || state() === 'connected');
}

/**
 * Reads PROXY_USERS_FILE and checks that no bypass network covers Mullvad's proxy
 * addresses; ConfigError (exit 78) otherwise. Undefined when the proxy is off.
 */
export async function prepareExitPool(settings: Settings, bypass: readonly Cidr[]): Promise<ProxyUsers | undefined> {
  if (settings.proxyListen.length === 0) return undefined;
  const users = await ProxyUsers.load(settings.proxyUsersFile!);
  const clash = bypassCoveringProxies(bypass);
  if (clash)
    throw new ConfigError('PROXY_LISTEN', `bypass network ${clash.text} covers Mullvad's in-tunnel proxies (10.64.0.1, 10.124.0.0/22): the proxy could reach them outside the tunnel`, 'narrow BYPASS_CIDRS or the detected cluster network');
  return users;
}

/** Starts the exit pool (listener, relay list loop). */
export async function startExitPool(o: ExitPoolOptions): Promise<ExitPoolHandle> {
  const { settings, log: parent, users } = o;
  const log = parent.child({ component: 'proxy' });
  let up = false;
  let resolvers: readonly string[] = [];
  const { relays } = o;
  const metrics = o.registry ? new ProxyMetrics(o.registry, () => relays.ageSeconds()) : undefined;
  const now = (): number => Date.now();
  const breaker = new ExitBreaker({ restMs: 30_000, maxRestMs: 10 * 60_000, now });
  const sessions = new ProxySessions({ ttlMs: settings.proxySessionTtlMs, now });
  const resolver = new TunnelResolver({ servers: () => resolvers, timeoutMs: 3000, now });
  let exitFailures = 0;
  const pool = new ExitPool({
    relays: () => relays.current()?.list.relays,
    connected: o.connected,
    tunnelUp: () => tunnelUsable(up, o.tunnelState),
    defaultLocation: settings.proxyDefaultLocation,
    sessions,
    breaker,
    resolve: (n) => resolver.resolve(n),
    dial: o.dial ?? ((ip, port, target) => dialThroughExit(ip, port, target, { timeoutMs: settings.proxyConnectTimeoutMs })),
    associate: o.associate ?? ((ip, port) => associateThroughExit(ip, port, { timeoutMs: settings.proxyConnectTimeoutMs })),
    onExitFailure: (relay, error) => {
      exitFailures++;
      metrics?.exitFailures.inc({ relay });
      log.warn('exit failed; resting it', { relay, error });
    },
    log,
  });
  const server = new ProxyServer({ listen: settings.proxyListen, users, allowedCidrs: settings.proxyAllowedCidrs, pool, metrics, log, ...(o.limits ? { limits: o.limits } : {}) });
  await server.start();
  return {
    tunnelChanged: (isUp, r) => {
      up = isUp;
      resolvers = r;
      if (!isUp) server.closeAll();
    },
    status: () => {
      const c = relays.current();
      const s = server.stats();
      const age = relays.ageSeconds();
      return {
        listen: s.listen,
        relayList: {
          relays: c?.list.relays.length ?? 0,
          exits: c?.list.relays.filter((r) => r.active && r.socksName).length ?? 0,
          ageSeconds: age === undefined ? null : Math.round(age),
          source: c ? c.url || settings.relayListUrl : 'none yet (only the connected relay exits)',
          fetches: relays.stats.fetches,
          failures: relays.stats.failures,
          lastError: relays.stats.lastError ?? null,
        },
        activeConnections: s.active,
        sessions: sessions.size,
        exitsInUse: s.exitsInUse,
        restingExits: breaker.restingNow(),
        exitFailures,
        connections: s.results,
        udpAssociations: s.udp.associations,
        udpDropped: s.udp.dropped,
      };
    },
    stop: () => server.stop(),
  };
}
