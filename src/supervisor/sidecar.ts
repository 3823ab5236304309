// Wires the sidecar together: the environment probe gathers facts, the pure
// plan (plan.ts) says what to do, and the bring-up applies it in small named
// steps, each pushing its undo (bringup.ts):
//   blocked (the lockdown is already in place: run.ts, verified while the
//   settings, facts and configs are read) → plan → at once: blocked with bypass
//   → endpoints resolved; conntrack flushed; RAs refused; stale state removed;
//   sysctls → the supervisor's first connecting ruleset, applied ahead while: route
//   MTU → tunnel interface started → DNS → supervisor (tunnel, routing) → health.
// A failing step unwinds the ones before it; stop() unwinds them all, in
// reverse, ending with the firewall blocked (or removed, when asked to: run.ts).
import { describeSettings, type Settings } from '../config/settings.js';
import { chooseServers } from '../config/candidates.js';
import { gatherSources } from '../config/sources.js';
import { exitRelayOf, publicView, type ServerConfig } from '../config/types.js';
import { ConfigErrors } from '../errors.js';
import { describeEnvironment } from '../environment/detect.js';
import { refuseRouterAdvertisements } from '../environment/ra.js';
import { warnDnsOff } from '../dns/index.js';
import type { Firewall } from '../firewall/apply.js';
import { scanLinksSync } from '../firewall/lockdown.js';
import { SidecarMetrics } from '../health/metrics.js';
import type { Logger } from '../log/logger.js';
import { Routing } from '../routing/apply.js';
import { ensureSrcValidMark } from '../routing/sysctl.js';
import type { CommandRunner } from '../system/runner.js';
import { Tunnel } from '../tunnel/wireguard.js';
import { BringUp } from './bringup.js';
import { probeEnvironment, resolveEndpointHosts, withEndpointMtu } from './facts.js';
import { planSidecar, uplinksOf, type SidecarPlan } from './plan.js';
import { startDns, type DnsHandle } from './dns-wiring.js';
import type { Supervisor } from './supervisor.js';
import { startHealth, startSupervisor } from './sidecar-wiring.js';
import { followRelayServers, openRelayList, runRelayList, wantsRelayList } from './relay-servers.js';
import { parseCidr } from '../config/cidr.js';
import { ClusterReach, discoverFromEnvironment, guardFor } from '../cluster/index.js';

export interface SidecarHandle {
  /** Resolves when the supervisor loop ends (after stop()). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * `lockedDown`: run's verified lockdown, applied while the facts and configs are read
 * (they only read); awaited before the first step that changes the namespace.
 */
export async function startSidecar(settings: Settings, runner: CommandRunner, firewall: Firewall, log: Logger, version: string, lockedDown: Promise<void> = Promise.resolve()): Promise<SidecarHandle> {
  const started = Date.now();
  log.info('effective settings', { settings: describeSettings(settings) });
  // LOW_MEMORY acts through the launcher's node flags only: say so when node was started another way.
  if (settings.lowMemory && !process.execArgv.some((a) => a.startsWith('--max-opt'))) log.warn('LOW_MEMORY=true has no effect: Node.js was not started by bin/mullvad-sidecar (which adds --max-opt=1 --optimize-for-size)');
  if (!settings.killSwitch) log.warn('!!! ENABLE_KILL_SWITCH=false: traffic WILL leak outside the tunnel whenever it is down. Do not use this in production. !!!');
  const up = new BringUp(log);
  const routing = new Routing(runner);

  // --- facts and configs -----------------------------------------------------
  let facts = await up.step('environment probe', () => probeEnvironment(settings, runner, routing));
  log.info('environment detected', { environment: describeEnvironment(facts.env), reasons: facts.env.reasons });
  // Mounted configs, the device key and the cached relay list → the servers (SERVER applied: config/candidates.ts).
  const gathered = await up.step('configs', async () => {
    const g = await gatherSources(settings);
    for (const w of g.warnings) log.warn(w.message, { file: w.file, line: w.line });
    if (g.errors.length) throw g.errors.length === 1 ? g.errors[0]! : new ConfigErrors(g.errors);
    const chosen = chooseServers(settings, g.sources);
    for (const w of chosen.warnings) log.warn(w);
    log.info('servers chosen', { source: chosen.source, count: chosen.servers.length, relay_list_age_s: g.cached ? Math.round((Date.now() - g.cached.fetchedAt) / 1000) : null });
    return { sources: g.sources, servers: chosen.servers };
  });
  let servers = gathered.servers;
  // Checked again once hostnames are resolved: a bypass must never swallow an endpoint.
  let plan = planSidecar(settings, facts, servers);
  for (const b of plan.bypass) log.info('bypass network', { cidr: b.cidr.text, reason: b.reason });
  for (const n of plan.notes) log.warn(n);
  if (plan.dnsMode === 'off') warnDnsOff(log, plan.clusterResolvers);
  await up.step('lockdown verified', () => lockedDown);
  const proxyUsers = await up.step('exit pool users', async () => (settings.proxyListen.length === 0 ? undefined : (await loadProxy()).prepareExitPool(settings, plan.bypass.map((b) => b.cidr))));

  // --- blocked, with bypass and the guard; the link watcher keeps the guard current
  const links = { uplinks: plan.uplinks };
  const policy: SidecarPlan['policyFor'] = (state, server) => plan.policyFor(state, server, links.uplinks);
  const tunnel = new Tunnel(runner, log, { interface: settings.wgInterface, implementation: settings.wgImplementation, fwmark: plan.fwmark });
  // Independent of each other, so concurrent (the lockdown is in: none of them can open
  // anything): the blocked ruleset with bypass, then the endpoint hostnames resolved
  // through it; flows from before the kill switch flushed; RAs refused; an earlier run's
  // leftovers (crash, SIGKILL) removed — replaced, never duplicated; src_valid_mark.
  [servers] = await up.steps([
    ['firewall blocked, endpoints resolved', async () => {
      await firewall.apply(policy('blocked'));
      return resolveEndpointHosts(servers, plan.clusterResolvers, log);
    }, () => (firewall.state === 'blocked' ? Promise.resolve() : firewall.apply(policy('blocked')))],
    ['conntrack flushed', async () => {
      // Flows that existed before the kill switch must not live on in conntrack.
      const r = await runner.run(['conntrack', '-F'], { allowFailure: true }).catch((e: unknown) => ({ code: -1, stderr: String(e) }));
      if (r.code !== 0) log.debug('conntrack not available: no entries flushed', { error: r.stderr.trim() });
    }],
    ['router advertisements refused', () => refuseRouterAdvertisements(plan.uplinks, log)],
    ['stale state removed', async () => {
      if (await tunnel.removeStale()) log.warn('removed a leftover tunnel interface of an earlier run', { interface: settings.wgInterface });
      await routing.remove(plan.table);
    }],
    ['src_valid_mark', () => ensureSrcValidMark(log)],
  ] as const);
  // The endpoints are resolved: checked against the bypass networks (throws) before any ruleset names them.
  plan = planSidecar(settings, facts, servers);
  applyConnectingAhead(settings, plan, servers, firewall, policy, up, log);
  // After the leftovers are gone: a stale tunnel's routes would answer for the endpoint.
  facts = await up.step('endpoint route MTU', () => withEndpointMtu(facts, servers, routing));
  plan = planSidecar(settings, facts, servers);
  log.info('servers', { order: plan.order, servers: servers.map((s) => ({ ...publicView(s) })) });
  // The interface is created (wireguard-go started) while the cluster addresses, DNS and
  // the connecting ruleset are set up: it has no peer and no route yet, so it sends nothing.
  await up.step('tunnel interface prepared', () => Promise.resolve(tunnel.prepare()), async () => {
    await tunnel.destroy().catch((e: unknown) => log.warn('removing the tunnel interface failed', { error: String(e) }));
    await routing.remove(plan.table);
  });
  log.info('tunnel parameters', { interface: settings.wgInterface, mtu: plan.mtu, table: plan.table, fwmark: `0x${plan.fwmark.toString(16)}`, ipv6: plan.ipv6 });

  // --- DNS, supervisor, health -----------------------------------------------------
  const metrics = new SidecarMetrics({ version });
  // Cluster addresses reached directly (src/cluster): what the environment names now, what cluster DNS answers later.
  const reach = plan.learnedMark === undefined
    ? undefined
    : await up.step('cluster addresses', async () => {
        const r = new ClusterReach({ runner, log, tunnelInterface: settings.wgInterface, floorSeconds: Math.round(settings.clusterLearnTtlMs / 1000), registry: metrics.registry });
        // The table and what the environment names: one transaction.
        await r.install(guardFor(servers, settings.dnsUpstreams ?? []), discoverFromEnvironment(process.env, facts.interfaces, settings.hostIps ?? [], settings.wgInterface));
        if (settings.kubernetesDiscovery === 'api') r.discoverFromApi({ env: process.env, serviceAccountDir: settings.kubernetesServiceAccountDir, intervalMs: settings.kubernetesDiscoveryIntervalMs });
        return r;
      }, async (r) => {
        r.stop();
        // Kept otherwise: a table that only marks packets opens nothing (rule 3a accepts them only while the sidecar's ruleset says so).
        if (settings.killSwitchOnExit === 'remove') await r.remove();
      });
  const dnsMode = plan.dnsMode;
  let dns: DnsHandle | undefined;
  if (dnsMode !== 'off') {
    dns = await up.step(
      'DNS forwarder',
      () => startDns({ settings, mode: dnsMode, environment: facts.env.kind, clusterResolvers: plan.clusterResolvers, searchDomains: facts.search, ndots: facts.ndots, tunnelResolvers: settings.dnsUpstreams ?? servers[0]!.dns, clusterNetworks: reach?.knownNetworks(plan.clusterResolvers.flatMap((r) => parseCidr(r) ?? [])) ?? [], reach, log, metrics }),
      (d) => d.stop(),
    );
  }
  // The relay list, once for the process (relay-servers.ts): native selection and the exit pool share it; fetched only while the tunnel is up.
  const tunnelUp = { now: false };
  const relayList = openRelayList(settings, { tunnelUp: () => tunnelUp.now, log });
  // The exit pool (PROXY_LISTEN): refuses everything until onTunnelUp says the tunnel is up.
  const supRef: { current?: Supervisor } = {};
  const pool = proxyUsers && relayList ? await up.step('exit pool', async () => (await loadProxy()).startExitPool({ settings, users: proxyUsers, log, registry: metrics.registry, relays: relayList, connected: () => (supRef.current?.server ? exitRelayOf(supRef.current.server) : undefined), tunnelState: () => supRef.current?.state }), (p) => p.stop()) : undefined;
  const sup = await up.step('supervisor', () => Promise.resolve(startSupervisor({ settings, plan, servers, tunnel, routing, firewall, policy, metrics, dns, runner, log, onTunnelUp: (isUp, s) => {
    tunnelUp.now = isUp;
    pool?.tunnelChanged(isUp, settings.dnsUpstreams ?? s.dns);
    relayList?.tunnelChanged();
  } })), async (s) => {
    s.stop();
    await s.done.catch(() => undefined); // its failure was logged where it happened (startSupervisor)
    await firewall.apply(policy('blocked')).catch((e: unknown) => log.error('re-applying blocked failed', { error: String(e) }));
  });

  supRef.current = sup.supervisor;
  // Every new relay list: new candidates for the next failover (relay-servers.ts). Subscribed before the loop loads the cache.
  if (relayList) {
    await up.step('relay list', () => {
      if (wantsRelayList(settings)) {
        followRelayServers(relayList, {
          settings, sources: gathered.sources, current: servers, log,
          onServers: (next) => sup.supervisor.setServers(next, planSidecar(settings, facts, next).order), // throws on a bypass swallowing an endpoint
        });
      }
      runRelayList(relayList, log);
      return Promise.resolve(relayList);
    }, (r) => r.stop());
  }
  await up.step('link watcher', () => Promise.resolve(watchLinks(settings, links, firewall, log, sup.sampleMs, () => sup.sample())), (t) => Promise.resolve(clearInterval(t)));
  if (settings.healthProbe) {
    await up.step('health server', () => startHealth({ settings, sup: sup.supervisor, firewall, metrics, plan, servers, started, version, blocked: () => sup.blocked, audit: sup.audit, runtimeSecrets: sup.secrets, cluster: () => reach?.entries(), ...(pool ? { extraStatus: () => ({ proxy: pool.status() }) } : {}), updateTunnelMetrics: sup.updateTunnelMetrics, log }), (h) => h.close());
  }

  let stopping: Promise<void> | undefined;
  return {
    done: sup.done,
    // Stop accepting probes first (the last step's undo): the pod must not look ready while we tear down.
    stop: () => (stopping ??= up.unwind()),
  };
}

/**
 * The supervisor's first state is connecting to the first server of the plan's order
 * (unless SERVER_SELECTION=fastest measures first): its ruleset is applied now, while
 * the endpoint's route MTU is read and the tunnel interface, the cluster addresses, the
 * DNS forwarder and the supervisor start, instead of after them; the supervisor's own
 * apply of the same transaction then finds it in place (Firewall.applyAhead; the route
 * MTU changes nothing in a ruleset). Safe this early: the stale state is gone, the
 * tunnel interface has no peer and no route until `wg setconf`, which stays after it,
 * and the ruleset adds to blocked only the WireGuard socket's packets to this relay (its
 * fwmark) and the sidecar's own ports into that interface. A failure is left to the
 * supervisor's apply.
 */
function applyConnectingAhead(settings: Settings, plan: SidecarPlan, servers: readonly ServerConfig[], firewall: Firewall, policy: SidecarPlan['policyFor'], up: BringUp, log: Logger): void {
  if (settings.serverSelection === 'fastest' && plan.order.length > 1) return;
  const first = servers.find((s) => s.name === plan.order[0]);
  if (!first) return;
  const ahead = firewall.applyAhead(policy('connecting', first)).catch((e: unknown) => {
    log.debug('applying the connecting ruleset ahead failed; the supervisor applies it', { error: e instanceof Error ? e.message : String(e) });
  });
  // A bring-up that fails before the supervisor takes over leaves the namespace blocked.
  up.defer('connecting ruleset applied ahead', async () => {
    await ahead;
    if (firewall.state !== 'blocked') await firewall.apply(policy('blocked'));
  });
}

/**
 * Interfaces that appear later (a CNI adding one, an app with NET_ADMIN) get the
 * guard within one tick: sysfs is read each tick, no process spawned. Also runs
 * the supervisor's sampling on the same timer.
 */
function watchLinks(settings: Settings, links: { uplinks: readonly string[] }, firewall: Firewall, log: Logger, everyMs: number, sample: () => void): NodeJS.Timeout {
  let watched = links.uplinks.join(' ');
  // sysfs shows the namespace it was mounted in: entered with nsenter, it may show another one.
  const seen = scanLinksSync();
  const trusted = seen !== undefined && links.uplinks.every((u) => seen.includes(u));
  if (!trusted) log.warn('/sys/class/net does not show this network namespace: interfaces that appear later are not guarded until a restart', { uplinks: links.uplinks, sysfs: seen });
  const tick = (): void => {
    const names = trusted ? scanLinksSync() : undefined;
    if (names) {
      const now = uplinksOf(names, settings.wgInterface);
      if (now.join(' ') !== watched) {
        log.info('interfaces changed; the uplink guard follows', { uplinks: now, before: links.uplinks });
        watched = now.join(' ');
        links.uplinks = now;
        void refuseRouterAdvertisements(now, log);
        firewall.setUplinks(now).catch((e: unknown) => {
          watched = ''; // retried at the next tick
          log.error('guarding the changed interfaces failed; retrying at the next check', { error: String(e) });
        });
      }
    }
    sample();
  };
  const t = setInterval(tick, everyMs);
  t.unref();
  return t;
}


/** The exit pool's modules (SOCKS5 server, `socks` client, exits), loaded only with PROXY_LISTEN: a few MiB a sidecar without it does not pay. */
function loadProxy(): Promise<typeof import('../proxy/index.js')> {
  return import('../proxy/index.js');
}
