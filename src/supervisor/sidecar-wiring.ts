// The long-running parts the bring-up starts: the supervisor (wired to the
// tunnel, routing, firewall and probes of the plan) and the health server.
import { RefusedAudit } from '../audit/audit.js';
import type { LearnedEntry } from '../cluster/index.js';
import type { Settings } from '../config/settings.js';
import type { CommandRunner } from '../system/runner.js';
import { exitRelayOf, type ServerConfig } from '../config/types.js';
import type { Firewall } from '../firewall/apply.js';
import { checkExit } from '../health/exit-check.js';
import type { SidecarMetrics } from '../health/metrics.js';
import { diagnoseMtu } from '../health/mtu.js';
import { probeDns, probeTcp } from '../health/probe.js';
import { startHealthServer, type HealthServer } from '../health/server.js';
import { DNS_UPSTREAM_PORTS } from '../firewall/policy.js';
import type { Logger } from '../log/logger.js';
import type { Routing } from '../routing/apply.js';
import type { Tunnel } from '../tunnel/wireguard.js';
import { systemClock } from './clock.js';
import type { DnsHandle } from './dns-wiring.js';
import type { SidecarPlan } from './plan.js';
import { orderServers } from './selection.js';
import { buildStatus } from './status.js';
import { Supervisor } from './supervisor.js';
import { QuantumUpgrader } from './quantum.js';
import { NEGOTIATION_ALLOW } from '../quantum/upgrade.js';

export interface SupervisorWiring {
  settings: Settings;
  plan: SidecarPlan;
  servers: readonly ServerConfig[];
  tunnel: Tunnel;
  routing: Routing;
  firewall: Firewall;
  policy: SidecarPlan['policyFor'];
  metrics: SidecarMetrics;
  dns: DnsHandle | undefined;
  runner: CommandRunner;
  log: Logger;
  /** Also told when the tunnel goes up or down (the exit pool). */
  onTunnelUp?: (up: boolean, server: ServerConfig) => void;
}

export interface RunningSupervisor {
  readonly supervisor: Supervisor;
  /** Rejects when the supervisor fails (the namespace is blocked again first). */
  readonly done: Promise<void>;
  readonly sampleMs: number;
  /** Blocked-packet counts as last sampled. */
  readonly blocked: { ipv4: number; ipv6: number };
  /** Refused destinations the kill switch remembers (audit). */
  readonly audit: RefusedAudit;
  /** Keys that exist only at run time (the quantum upgrade's ephemeral key and PSK): redacted like the configured ones. */
  secrets(): readonly string[];
  sample(): void;
  updateTunnelMetrics(): void;
  stop(): void;
}

export function startSupervisor(w: SupervisorWiring): RunningSupervisor {
  const { settings, plan, servers, tunnel, routing, firewall, metrics, dns, log } = w;
  const probeOf = (s: ServerConfig, signal: AbortSignal) => {
    const t = plan.probeTarget(s);
    return t.kind === 'tcp' ? probeTcp({ target: t.target, timeoutMs: settings.probeTimeoutMs, signal }) : probeDns({ resolver: t.resolver, timeoutMs: settings.probeTimeoutMs, sourcePorts: DNS_UPSTREAM_PORTS, signal });
  };
  // QUANTUM_RESISTANT: while connecting, the only packet the firewall lets into the tunnel is the negotiation's TCP.
  const knock = (signal?: AbortSignal): Promise<unknown> => probeTcp({ target: `${NEGOTIATION_ALLOW.ip}:${NEGOTIATION_ALLOW.port}`, timeoutMs: settings.probeTimeoutMs, ...(signal ? { signal } : {}) });
  const quantum = settings.quantumResistant
    ? new QuantumUpgrader({ tunnel: { setServer: (s) => tunnel.setServer(s), stats: () => tunnel.stats() }, kick: knock, clock: systemClock, log, handshakeTimeoutMs: settings.connectTimeoutMs })
    : undefined;
  const sup: Supervisor = new Supervisor(
    {
      clock: systemClock,
      log,
      tunnel: { create: (s) => tunnel.create(s, plan.mtu), setServer: (s) => tunnel.setServer(s), stats: () => tunnel.stats(), destroy: () => tunnel.destroy() },
      policy: (state, s) => w.policy(state, s),
      applyFirewall: (p) => firewall.apply(p),
      applyRouting: () => routing.apply(plan.routes),
      probe: probeOf,
      // The handshake kick while connecting must leave from the sidecar's own
      // ports (the only traffic the connecting firewall lets into the tunnel),
      // whatever PROBE_TARGET says.
      kick: (s, signal) => (quantum ? knock(signal) : probeDns({ resolver: plan.tunnelResolver(s), timeoutMs: settings.probeTimeoutMs, sourcePorts: DNS_UPSTREAM_PORTS, signal })),
      ...(quantum ? { upgrade: (s: ServerConfig, signal: AbortSignal) => quantum.upgrade(s, signal) } : {}),
      diagnose: async (s, signal) => {
        const d = await diagnoseMtu({ resolver: plan.tunnelResolver(s), mtu: plan.mtu, timeoutMs: settings.probeTimeoutMs, sourcePorts: DNS_UPSTREAM_PORTS, signal });
        return d.verdict === 'ok' ? undefined : d.message;
      },
      checkExit: (signal) => checkExit(settings.checkUrl, { timeoutMs: Math.max(settings.probeTimeoutMs, 5000), signal }),
      onState: (s) => metrics.setState(s),
      onFailover: (reason) => {
        metrics.failover(reason);
        dns?.flushCache();
      },
      onReconnect: () => metrics.reconnect(),
      onTunnelUp: (isUp, s) => {
        metrics.setTunnel(isUp ? { exit: exitRelayOf(s), entry: s.entry } : undefined);
        metrics.setQuantumResistant(isUp && sup.quantum !== undefined);
        dns?.setTunnel(isUp, settings.dnsUpstreams ?? s.dns);
        w.onTunnelUp?.(isUp, s);
      },
      onProbe: (p) => metrics.observeProbe(p.ms / 1000, p.ok),
      onExit: (info, s) => metrics.setExit(info, s.name),
    },
    [...servers],
    [...plan.order],
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
  tunnel.onUnexpectedExit((reason) => sup.tunnelLost(reason));

  // A peer swap or a new wireguard-go restarts the raw counters: the generation tells.
  const updateTunnelMetrics = (): void => {
    const st = sup.stats;
    metrics.setTunnelStats({ up: sup.state === 'connected' || sup.state === 'degraded', handshakeAgeSeconds: st?.latestHandshake ? Date.now() / 1000 - st.latestHandshake : null, rxBytes: st?.rxBytes ?? 0, txBytes: st?.txBytes ?? 0, generation: sup.reconnects + sup.failovers });
  };
  let sampling: Promise<unknown> | undefined;
  const sampleMs = Math.min(settings.checkIntervalMs, 2000);
  const readEvery = ticksPerRead(settings.checkIntervalMs, sampleMs);
  let ticks = 0;
  const running: RunningSupervisor = {
    supervisor: sup,
    done: sup.run().catch(async (err: unknown) => {
      sup.fatal = err instanceof Error ? err.message : String(err);
      log.fatal('supervisor failed', { error: sup.fatal });
      await firewall.apply(w.policy('blocked')).catch((e: unknown) => log.error('re-applying blocked after the supervisor failed did not work; the last ruleset stays', { error: String(e) }));
      throw err;
    }),
    // The firewall's counters are read on a timer (a command), not per request: probes must stay fast.
    sampleMs,
    blocked: { ipv4: 0, ipv6: 0 },
    audit: new RefusedAudit({ runner: w.runner, log, sink: metrics }),
    secrets: () => quantum?.secrets() ?? [],
    sample: () => {
      updateTunnelMetrics();
      // One sample at a time: on a starved machine (an emulated kernel under load) an
      // nft read outlasts the tick, and readers piling up slow down the supervisor's own
      // nft transactions past their 10 s timeout.
      if (sampling) return;
      if (ticks++ % readEvery !== 0) return;
      // One nft read per sample: the audit's listing of our table also holds the
      // blocked counters (a second `nft` per tick cost CPU the tunnel needs: docs/performance.md).
      sampling = running.audit
        .sample()
        .catch((e: unknown) => {
          log.debug('reading the refused-traffic audit failed', { error: String(e) });
          return undefined;
        })
        .then((listing) => firewall.blockedPackets(listing))
        .then((b) => {
          running.blocked.ipv4 = b.ipv4;
          running.blocked.ipv6 = b.ipv6;
          metrics.setBlocked(b);
        })
        .finally(() => {
          sampling = undefined;
        });
    },
    updateTunnelMetrics,
    stop: () => sup.stop(),
  };
  return running;
}

/**
 * Ticks of the sampling timer per nft read. The tick (at most 2 s) also runs the
 * link watcher, which guards a new interface within one tick and spawns nothing;
 * the firewall's counters (blocked counts, the audit) need reading only every
 * CHECK_INTERVAL, and each read is a process competing with the tunnel for the
 * node's cores (docs/performance.md, Data path). Never less often than CHECK_INTERVAL.
 */
export function ticksPerRead(checkIntervalMs: number, sampleMs: number): number {
  return Math.max(1, Math.floor(checkIntervalMs / sampleMs));
}

export interface HealthWiring {
  settings: Settings;
  sup: Supervisor;
  firewall: Firewall;
  metrics: SidecarMetrics;
  plan: SidecarPlan;
  servers: readonly ServerConfig[];
  started: number;
  version: string;
  blocked: () => { ipv4: number; ipv6: number };
  audit: RefusedAudit;
  /** Keys made at run time (quantum upgrade), redacted like the configured ones. */
  runtimeSecrets?: () => readonly string[];
  /** Addresses reached directly because the cluster named them. */
  cluster?: () => readonly LearnedEntry[] | undefined;
  /** More sections of /status (the exit pool's). */
  extraStatus?: () => Record<string, unknown>;
  updateTunnelMetrics: () => void;
  log: Logger;
}

export function startHealth(h: HealthWiring): Promise<HealthServer> {
  const { settings, sup, firewall, metrics, plan, servers, log } = h;
  return startHealthServer({
    port: settings.healthPort,
    source: {
      status: () => (h.updateTunnelMetrics(), { ...buildStatus({ sup, settings, firewall, blocked: h.blocked(), bypass: plan.bypass.map((b) => b.cidr), dnsMode: plan.dnsMode, dnsIdentity: plan.dnsIdentity, started: h.started, version: h.version, totals: metrics.totals(), refused: h.audit.status(), cluster: h.cluster?.() }), ...h.extraStatus?.() }),
      healthy: () => (sup.fatal ? { ok: false, reason: sup.fatal } : { ok: true, reason: `alive, state ${sup.state}` }),
      ready: () => sup.ready(),
    },
    metrics,
    log,
    trustedSources: settings.hostIps,
    secrets: () => [...servers.flatMap((s) => [s.privateKey, ...(s.peer.presharedKey ? [s.peer.presharedKey] : [])]), ...(h.runtimeSecrets?.() ?? [])],
  });
}
