// Wires the sidecar together in the order that keeps the namespace closed:
// firewall blocked (before any config is read) → settings → environment and
// bypass discovery → blocked with bypass → configs → stale state of an earlier
// run removed → DNS, health → supervisor. Teardown runs the other way and
// always ends with the firewall blocked (or removed, when asked to).
import { readFile } from 'node:fs/promises';
import { parseCidr, type Cidr } from '../config/cidr.js';
import { describeSettings, type Settings } from '../config/settings.js';
import { loadServers, resolveEndpoints } from '../config/servers.js';
import { exchangeResolver } from '../config/resolve-upstream.js';
import { UpstreamTransport } from '../dns/upstream.js';
import { orderServers } from './selection.js';
import type { ServerConfig } from '../config/types.js';
import { publicView } from '../config/types.js';
import { ConfigErrors, SidecarError } from '../errors.js';
import { planBypass } from '../environment/bypass.js';
import { detectEnvironment, describeEnvironment } from '../environment/detect.js';
import { readInterfaces } from '../environment/interfaces.js';
import { fsProbe } from '../environment/probe.js';
import { parseResolvConf, type ResolvConf } from '../environment/resolv.js';
import { dnsPolicy as buildDnsPolicy, readClusterDnsConfig, warnDnsOff } from '../dns/index.js';
import { Firewall } from '../firewall/apply.js';
import { scanLinksSync } from '../firewall/lockdown.js';
import type { DnsPolicy, FirewallPolicy } from '../firewall/policy.js';
import { checkExit } from '../health/exit-check.js';
import { SidecarMetrics } from '../health/metrics.js';
import { probeDns, probeTcp } from '../health/probe.js';
import { diagnoseMtu } from '../health/mtu.js';
import { startHealthServer, type HealthServer } from '../health/server.js';
import { DNS_UPSTREAM_PORTS, PROXY_REPLY_MARK } from '../firewall/policy.js';
import type { Logger } from '../log/logger.js';
import { Routing } from '../routing/apply.js';
import { planRouting, tunnelMtu } from '../routing/plan.js';
import { ensureSrcValidMark } from '../routing/sysctl.js';
import type { CommandRunner } from '../system/runner.js';
import { Tunnel } from '../tunnel/wireguard.js';
import { systemClock } from './clock.js';
import { buildStatus } from './status.js';
import { prepareExitPool, startExitPool } from '../proxy/index.js';
import { Supervisor } from './supervisor.js';
import { startDns, type DnsHandle } from './dns-wiring.js';
import { RefusedAudit } from '../audit/audit.js';
import { ClusterReach, LEARNED_MARK, discoverFromEnvironment, guardFor } from '../cluster/index.js';

export interface SidecarHandle {
  /** Resolves when the supervisor loop ends (after stop()). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export async function startSidecar(settings: Settings, runner: CommandRunner, firewall: Firewall, log: Logger, version: string): Promise<SidecarHandle> {
  const started = Date.now();
  log.info('effective settings', { settings: describeSettings(settings) });
  if (!settings.killSwitch) log.warn('!!! ENABLE_KILL_SWITCH=false: traffic WILL leak outside the tunnel whenever it is down. Do not use this in production. !!!');

  // --- environment and bypass ------------------------------------------------
  const env = await detectEnvironment(fsProbe(process.env));
  log.info('environment detected', { environment: describeEnvironment(env), reasons: env.reasons });
  // After a rewrite by an earlier run, resolv.conf names the forwarder; the
  // cluster's own nameservers are kept in a marker comment (readClusterDnsConfig).
  const resolvText = await readFile(settings.resolvConf, 'utf8').catch(() => '');
  const cluster = readClusterDnsConfig(resolvText);
  const parsed = parseResolvConf(resolvText);
  const resolv: ResolvConf = { ...parsed, nameservers: cluster.nameservers };
  const interfaces = await readInterfaces(runner);

  // --- configs -------------------------------------------------------------------
  const loaded = await loadServers(settings); // SERVER is applied here
  for (const w of loaded.warnings) log.warn(w.message, { file: w.file, line: w.line });
  if (loaded.errors.length) throw loaded.errors.length === 1 ? loaded.errors[0]! : new ConfigErrors(loaded.errors);
  let servers: ServerConfig[] = loaded.servers;
  // Checked again once hostnames are resolved: a bypass must never swallow an endpoint.
  const bypassPlan = planBypass({ env, interfaces, resolv, settings, servers });
  for (const b of bypassPlan.cidrs) log.info('bypass network', { cidr: b.cidr.text, reason: b.reason });
  for (const n of bypassPlan.notes) log.warn(n);
  const bypass: Cidr[] = bypassPlan.cidrs.map((b) => b.cidr);
  const proxyUsers = await prepareExitPool(settings, bypass);
  const proxyInbound = proxyUsers ? { ports: [...new Set(settings.proxyListen.map((a) => Number(a.slice(a.lastIndexOf(':') + 1))))], clients: settings.proxyAllowedCidrs, mark: PROXY_REPLY_MARK } : undefined;

  // --- DNS policy and fwmark/table (needed by every later firewall state) --------------
  const dnsMode = settings.dnsConfig ? settings.dnsMode : 'off';
  // The forwarder's own address is not a cluster resolver; Docker's 127.0.0.11 is.
  const clusterResolvers = resolv.nameservers.filter((n) => n !== '127.0.0.1' && n !== '::1');
  if (dnsMode === 'off') warnDnsOff(log, clusterResolvers);
  const dnsPolicy: DnsPolicy | undefined = dnsMode === 'off' ? undefined : buildDnsPolicy({ listenPort: settings.dnsForwarderPort, clusterResolvers, mode: dnsMode });
  const routing = new Routing(runner);
  const table = await routing.chooseTable(settings.routeTable, settings.wgInterface);
  const fwmark = settings.fwmark ?? table;

  // The pod's own interfaces get the netdev egress guard against raw sockets;
  // the link watcher below keeps the list current.
  // Set once the learned-address table exists (below); every later state carries it.
  let learnedMark: number | undefined;
  const uplinksOf = (names: readonly string[]): string[] => names.filter((n) => n !== 'lo' && n !== settings.wgInterface).sort();
  let uplinks = uplinksOf(interfaces.filter((i) => !i.flags.includes('LOOPBACK')).map((i) => i.name));
  const policy = (state: 'blocked' | 'connecting' | 'connected', server?: ServerConfig): FirewallPolicy => {
    const common = { killSwitch: settings.killSwitch, bypass, fwmark, dns: dnsPolicy, uplinks, tunnelName: settings.wgInterface, ...(proxyInbound ? { proxy: proxyInbound } : {}), ...(learnedMark !== undefined ? { learnedMark } : {}) };
    if (state === 'blocked' || !server) return { state: 'blocked', ...common };
    const ep = server.peer.endpoint;
    return { state, ...common, endpoint: { ip: ep.ip!, port: ep.port, family: ep.family ?? (ep.ip!.includes(':') ? 6 : 4) }, tunnel: { interface: settings.wgInterface, addresses: server.addresses } };
  };
  // An old kernel's refusal of the egress hook is handled (and logged) by the Firewall.
  await firewall.apply(policy('blocked'));
  // Flows that existed before the kill switch must not live on in conntrack.
  await runner.run(['conntrack', '-F'], { allowFailure: true }).catch(() => log.debug('conntrack not available: no entries flushed'));

  // Endpoint hostnames: resolved once, through cluster DNS only, then pinned.
  // The blocked ruleset lets port-53 packets out only from DNS_UPSTREAM_PORTS,
  // so the query goes through the forwarder's upstream transport, not node:dns.
  if (servers.some((s) => !s.peer.endpoint.ip)) {
    const transport = await UpstreamTransport.create({ port: 53, sourcePorts: DNS_UPSTREAM_PORTS, poolSize: 2, log });
    try {
      const r = await resolveEndpoints(servers, clusterResolvers, { resolver: exchangeResolver(transport, clusterResolvers) });
      if (r.errors.length) throw r.errors.length === 1 ? r.errors[0]! : new ConfigErrors(r.errors);
      servers = r.servers;
    } finally {
      await transport.close();
    }
    planBypass({ env, interfaces, resolv, settings, servers });
  }
  const order = orderServers(servers, { mode: settings.serverSelection, podName: settings.podName });
  log.info('servers', { order, servers: servers.map((s) => ({ ...publicView(s) })) });

  // --- leftovers of an earlier run (crash, SIGKILL): replace, never duplicate ---
  const tunnel = new Tunnel(runner, log, { interface: settings.wgInterface, implementation: settings.wgImplementation, fwmark });
  if (await tunnel.removeStale()) log.warn('removed a leftover tunnel interface of an earlier run', { interface: settings.wgInterface });
  await routing.remove(table);

  const first = servers[0]!;
  const mtu = settings.wgMtu ?? first.mtu ?? tunnelMtu(await routing.routeMtu(first.peer.endpoint.ip!));
  const ipv6 = servers.some((s) => s.addresses.some((a) => a.family === 6));
  const routePlan = planRouting({ interface: settings.wgInterface, table, fwmark, bypass: settings.bypassRoutes ? bypass : [], ipv6, ...(proxyInbound ? { proxyReplyMark: proxyInbound.mark } : {}), ...(settings.bypassRoutes ? { learnedMark: LEARNED_MARK } : {}) });
  await ensureSrcValidMark(log);
  log.info('tunnel parameters', { interface: settings.wgInterface, mtu, table, fwmark: `0x${fwmark.toString(16)}`, ipv6 });

  // --- DNS and health ---------------------------------------------------------------
  const metrics = new SidecarMetrics({ version });
  // Cluster addresses reached directly (src/cluster): what the environment names now, what cluster DNS answers later.
  let reach: ClusterReach | undefined;
  if (settings.bypassRoutes) {
    reach = new ClusterReach({ runner, log, tunnelInterface: settings.wgInterface, floorSeconds: Math.round(settings.clusterLearnTtlMs / 1000), registry: metrics.registry });
    await reach.install(guardFor(servers, settings.dnsUpstreams ?? []));
    await reach.reach(discoverFromEnvironment(process.env, interfaces, settings.hostIps ?? [], settings.wgInterface));
    learnedMark = LEARNED_MARK;
    await firewall.apply(policy('blocked'));
  }
  let dns: DnsHandle | undefined;
  if (dnsMode !== 'off') {
    dns = await startDns({ settings, mode: dnsMode, environment: env.kind, clusterResolvers, searchDomains: cluster.search, ndots: cluster.ndots, tunnelResolvers: settings.dnsUpstreams ?? first.dns, clusterNetworks: reach?.knownNetworks(clusterResolvers.flatMap((r) => parseCidr(r) ?? [])) ?? [], reach, log, metrics });
  }

  // The exit pool (PROXY_LISTEN): refuses everything until onTunnelUp says the tunnel is up.
  const supRef: { current?: Supervisor } = {};
  const pool = proxyUsers
    ? await startExitPool({ settings, users: proxyUsers, log, registry: metrics.registry, connected: () => supRef.current?.server?.name })
    : undefined;

  const sup: Supervisor = new Supervisor(
    {
      clock: systemClock,
      log,
      tunnel: { create: (s) => tunnel.create(s, mtu), setServer: (s) => tunnel.setServer(s), stats: () => tunnel.stats(), destroy: () => tunnel.destroy() },
      policy,
      applyFirewall: (p) => firewall.apply(p),
      applyRouting: () => routing.apply(routePlan),
      probe: (s) => {
        if (settings.probeTarget) return probeTcp({ target: settings.probeTarget, timeoutMs: settings.probeTimeoutMs });
        const resolver = settings.dnsUpstreams?.[0] ?? s.dns[0];
        if (!resolver) return Promise.resolve({ ok: true, ms: 0 });
        return probeDns({ resolver, timeoutMs: settings.probeTimeoutMs, sourcePorts: DNS_UPSTREAM_PORTS });
      },
      // The handshake kick while connecting must leave from the sidecar's own
      // ports (the only traffic the connecting firewall lets into the tunnel),
      // whatever PROBE_TARGET says.
      kick: (s) => {
        const resolver = settings.dnsUpstreams?.[0] ?? s.dns[0] ?? '10.64.0.1';
        return probeDns({ resolver, timeoutMs: settings.probeTimeoutMs, sourcePorts: DNS_UPSTREAM_PORTS });
      },
      diagnose: async (s) => {
        const resolver = settings.dnsUpstreams?.[0] ?? s.dns[0];
        if (!resolver) return undefined;
        const d = await diagnoseMtu({ resolver, mtu, timeoutMs: settings.probeTimeoutMs, sourcePorts: DNS_UPSTREAM_PORTS });
        return d.verdict === 'ok' ? undefined : d.message;
      },
      checkExit: () => checkExit(settings.checkUrl, { timeoutMs: Math.max(settings.probeTimeoutMs, 5000) }),
      onState: (s) => metrics.setState(s),
      onFailover: (reason) => {
        metrics.failover(reason);
        dns?.flushCache();
      },
      onReconnect: () => metrics.reconnect(),
      onTunnelUp: (up, s) => {
        dns?.setTunnel(up, settings.dnsUpstreams ?? s.dns);
        pool?.tunnelChanged(up, settings.dnsUpstreams ?? s.dns);
      },
      onProbe: (p) => metrics.observeProbe(p.ms / 1000, p.ok),
      onExit: (info, s) => metrics.setExit(info, s.name),
    },
    servers,
    order,
    {
      checkIntervalMs: settings.checkIntervalMs,
      probeIntervalMs: settings.probeIntervalMs,
      failoverAfterMs: settings.failoverAfterMs,
      connectTimeoutMs: settings.connectTimeoutMs,
      verifyIntervalMs: settings.verifyIntervalMs,
      maxBackoffMs: settings.maxBackoffMs,
      coolDownMs: Math.max(60_000, settings.failoverAfterMs * 4),
      requireMullvadExit: settings.requireMullvadExit,
    },
    settings.serverSelection === 'fastest' ? (measurements) => orderServers(servers, { mode: 'fastest', podName: settings.podName, measurements }) : undefined,
  );
  supRef.current = sup;
  tunnel.onUnexpectedExit((reason) => sup.tunnelLost(reason));

  // A peer swap or a new wireguard-go restarts the raw counters: the generation tells.
  const updateTunnelMetrics = (): void => {
    const st = sup.stats;
    metrics.setTunnelStats({ up: sup.state === 'connected' || sup.state === 'degraded', handshakeAgeSeconds: st?.latestHandshake ? Date.now() / 1000 - st.latestHandshake : null, rxBytes: st?.rxBytes ?? 0, txBytes: st?.txBytes ?? 0, generation: sup.reconnects + sup.failovers });
  };
  // The firewall's counters are read on a timer (a command), not per request: probes must stay fast.
  let blocked = { ipv4: 0, ipv6: 0 };
  // Interfaces that appear later (a CNI adding one, an app with NET_ADMIN) get
  // the guard within one tick: sysfs is read each tick, no process spawned.
  let watched = uplinks.join(' ');
  const watchLinks = (): void => {
    const names = scanLinksSync();
    if (!names) return;
    const now = uplinksOf(names);
    if (now.join(' ') === watched) return;
    log.info('interfaces changed; the uplink guard follows', { uplinks: now, before: uplinks });
    watched = now.join(' ');
    uplinks = now;
    firewall.setUplinks(now).catch((e: unknown) => {
      watched = ''; // retried at the next tick
      log.error('guarding the changed interfaces failed; retrying at the next check', { error: String(e) });
    });
  };
  const audit = new RefusedAudit({ runner, log, sink: metrics });
  const sampler = setInterval(() => {
    watchLinks();
    void firewall.blockedPackets().then((b) => {
      blocked = b;
      metrics.setBlocked(b);
    });
    void audit.sample().catch((e: unknown) => log.debug('reading the refused-traffic audit failed', { error: String(e) }));
    updateTunnelMetrics();
  }, Math.min(settings.checkIntervalMs, 2000));
  sampler.unref();

  let health: HealthServer | undefined;
  if (settings.healthProbe) {
    health = await startHealthServer({
      port: settings.healthPort,
      source: {
        status: () => (updateTunnelMetrics(), { ...buildStatus({ sup, settings, firewall, blocked, bypass, dnsMode, started, version, totals: metrics.totals(), refused: audit.status(), cluster: reach?.entries() }), ...(pool ? { proxy: pool.status() } : {}) }),
        healthy: () => (sup.fatal ? { ok: false, reason: sup.fatal } : { ok: true, reason: `alive, state ${sup.state}` }),
        ready: () => sup.ready(),
      },
      metrics,
      log,
      trustedSources: settings.hostIps,
      secrets: () => servers.flatMap((s) => [s.privateKey, ...(s.peer.presharedKey ? [s.peer.presharedKey] : [])]),
    });
  }

  const done = sup.run().catch(async (err: unknown) => {
    sup.fatal = err instanceof Error ? err.message : String(err);
    log.fatal('supervisor failed', { error: sup.fatal });
    await firewall.apply(policy('blocked')).catch(() => {});
    throw err;
  });

  let stopped = false;
  return {
    done,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(sampler);
      // Stop accepting probes first: the pod must not look ready while we tear down.
      await health?.close().catch(() => {});
      await pool?.stop().catch(() => {});
      sup.stop();
      await done.catch(() => {});
      await firewall.apply(policy('blocked')).catch((e: unknown) => log.error('re-applying blocked failed', { error: String(e) }));
      await tunnel.destroy().catch(() => {});
      await routing.remove(table).catch(() => {});
      await dns?.stop().catch(() => {});
      if (settings.killSwitchOnExit === 'remove') await reach?.remove().catch((e: unknown) => log.warn('removing the learned-address table failed', { error: String(e) }));
    },
  };
}

export class StartupError extends SidecarError {
  override readonly code = 'E_STARTUP';
}
