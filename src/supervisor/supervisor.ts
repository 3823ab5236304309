// The supervisor: one loop that moves the namespace through the states of
// DESIGN.md §2 — blocked → connecting → connected ⇄ degraded → failing-over →
// connecting … until stop(), which leaves it blocked — applying the firewall policy of each state before
// anything else changes. Effects come in through SupervisorDeps, so the whole
// loop runs in unit tests with a fake clock and a fake system.
import type { ServerConfig } from '../config/types.js';
import { publicView } from '../config/types.js';
import type { FirewallPolicy } from '../firewall/policy.js';
import type { ExitInfo, ProbeSummary, SidecarState } from '../health/status.js';
import type { Logger } from '../log/logger.js';
import type { PeerStats } from '../tunnel/render.js';
import type { Clock } from './clock.js';
import { HANDSHAKE_STALE_MS, backoffMs, degradedWaitMs, isDead, needsProbe, type MonitorMemory } from './decide.js';
import { allFailedRecently, nextServer } from './selection.js';
import { SECURITY_EVENT } from '../audit/events.js';

export interface TunnelPort {
  create(server: ServerConfig): Promise<void>;
  setServer(server: ServerConfig): Promise<void>;
  stats(): Promise<PeerStats | undefined>;
  destroy(): Promise<void>;
}

export interface SupervisorDeps {
  clock: Clock;
  log: Logger;
  tunnel: TunnelPort;
  /** The full policy for a state; `server` is set for connecting/connected. */
  policy(state: 'blocked' | 'connecting' | 'connected', server?: ServerConfig): FirewallPolicy;
  applyFirewall(policy: FirewallPolicy): Promise<void>;
  /** Policy routing (after the interface exists; it vanishes with a wireguard-go TUN). */
  applyRouting(): Promise<void>;
  /**
   * Every in-flight check gets the supervisor's stop signal: stop() cancels it at
   * once, so a SIGTERM during a probe to a dark relay takes the orderly path
   * (routes and rules removed) instead of the shutdown deadline's.
   */
  probe(server: ServerConfig, signal: AbortSignal): Promise<{ ok: boolean; ms: number; error?: string }>;
  /**
   * While connecting: send one packet into the tunnel so WireGuard handshakes at
   * once. The connecting firewall lets in only the sidecar's own source ports
   * (DNS_UPSTREAM_PORTS), so this must be a DNS probe from that range even when
   * `probe` is a TCP probe (PROBE_TARGET). Defaults to `probe`.
   */
  kick?(server: ServerConfig, signal: AbortSignal): Promise<unknown>;
  /** A one-line diagnosis when the exit check fails although probes pass (e.g. MTU black hole). */
  diagnose?(server: ServerConfig, signal: AbortSignal): Promise<string | undefined>;
  checkExit(signal: AbortSignal): Promise<ExitInfo>;
  /**
   * QUANTUM_RESISTANT: upgrades each new tunnel (src/supervisor/quantum.ts)
   * after its first handshake and before it is declared connected; the
   * connecting firewall meanwhile lets only the negotiation in. Rejects with a
   * diagnosis when every attempt failed: the relay then counts as dead.
   */
  upgrade?(server: ServerConfig, signal: AbortSignal): Promise<{ readonly kems: readonly string[] }>;
  /** Observers (metrics, DNS forwarder). */
  onState?(state: SidecarState, reason: string): void;
  onFailover?(reason: string, from: string, to: string): void;
  onReconnect?(): void;
  onTunnelUp?(up: boolean, server: ServerConfig): void;
  onProbe?(r: ProbeSummary): void;
  onExit?(info: ExitInfo | null, server: ServerConfig): void;
}

export interface SupervisorTimings {
  checkIntervalMs: number;
  probeIntervalMs: number;
  failoverAfterMs: number;
  connectTimeoutMs: number;
  verifyIntervalMs: number;
  maxBackoffMs: number;
  /** A server that failed is retried only after the others or after this long. */
  coolDownMs: number;
  requireMullvadExit: boolean;
}

type Outcome = { kind: 'dead'; reason: string; diagnosis: string } | { kind: 'tunnel-lost'; reason: string } | { kind: 'stopped' };

export class Supervisor {
  state: SidecarState = 'blocked';
  since: number;
  reason = 'starting';
  server: ServerConfig | undefined;
  stats: PeerStats | undefined;
  exit: ExitInfo | null = null;
  lastProbe: ProbeSummary | null = null;
  /** The KEMs of the current tunnel's upgrade; undefined while it is not quantum-resistant. */
  quantum: { readonly kems: readonly string[] } | undefined;
  failovers = 0;
  reconnects = 0;
  fatal: string | undefined;
  private readonly failedAt = new Map<string, number>();
  private readonly abort = new AbortController();
  private lostReason: string | undefined;
  private wake: (() => void) | undefined;
  private tunnelExists = false;
  /** Backoff rounds since a server last worked (reached connected). */
  private failRound = 0;
  /** Tunnel losses in a row, each within the cool-down of the previous one. */
  private lostStreak = 0;
  private lastLostAt = -Infinity;

  constructor(
    private readonly deps: SupervisorDeps,
    private servers: readonly ServerConfig[],
    /** Server names in try order (SERVER_SELECTION). */
    private order: readonly string[],
    private readonly t: SupervisorTimings,
    /** SERVER_SELECTION=fastest: the try order from measured handshake times (ms by name). */
    private readonly reorder?: (measured: Map<string, number>) => string[],
  ) {
    this.since = deps.clock.now();
  }

  /**
   * Measures the handshake time to each server, one at a time, through the
   * same path as a connect (firewall connecting, peer swap, a kick), then
   * orders the servers by it. Measured, not guessed; unanswered servers last.
   */
  private async measure(reorder: (measured: Map<string, number>) => string[]): Promise<void> {
    const measured = new Map<string, number>();
    const timeout = Math.min(this.t.connectTimeoutMs, 3000);
    for (const name of this.order) {
      if (this.stopping) return;
      const server = this.byName(name);
      try {
        await this.enter('connecting', `measuring the handshake time of ${name}`, server);
        if (!this.tunnelExists) {
          await this.deps.tunnel.create(server);
          this.tunnelExists = true;
        } else await this.deps.tunnel.setServer(server);
        await this.deps.applyRouting();
        const start = this.deps.clock.now();
        // The kick only makes WireGuard handshake; the handshake time is what is measured, not the kick's result.
        void this.kick(server).catch((e: unknown) => this.deps.log.debug('handshake kick failed', { server: name, error: String(e) }));
        while (!this.stopping && this.deps.clock.now() - start < timeout) {
          const st = await this.deps.tunnel.stats();
          if (st && st.latestHandshake > 0) {
            measured.set(name, this.deps.clock.now() - start);
            break;
          }
          await this.sleep(10);
        }
      } catch (err) {
        this.deps.log.warn('measuring a server failed', { server: name, error: err instanceof Error ? err.message : String(err) });
        await this.removeTunnel();
        this.tunnelExists = false;
      }
    }
    this.order = reorder(measured);
    this.deps.log.info('servers ordered by measured handshake time', { order: this.order, ms: Object.fromEntries(measured) });
  }

  get stopping(): boolean {
    return this.abort.signal.aborted;
  }

  /** Readiness per DESIGN.md §6: connected, fresh handshake, last probe passed, Mullvad exit. */
  ready(): { ok: boolean; reason: string } {
    if (this.state !== 'connected') return { ok: false, reason: `state is ${this.state}: ${this.reason}` };
    if (this.lostReason) return { ok: false, reason: `tunnel lost: ${this.lostReason}` };
    const hs = this.stats?.latestHandshake ?? 0;
    if (hs === 0 || this.deps.clock.now() - hs * 1000 > HANDSHAKE_STALE_MS) return { ok: false, reason: 'no recent handshake' };
    if (!this.lastProbe?.ok) return { ok: false, reason: `last in-tunnel probe failed${this.lastProbe?.error ? `: ${this.lastProbe.error}` : ''}` };
    if (this.t.requireMullvadExit) {
      if (!this.exit) return { ok: false, reason: 'exit not verified yet' };
      if (!this.exit.mullvadExitIp) return { ok: false, reason: `exit ${this.exit.ip} is not a Mullvad exit` };
    }
    return { ok: true, reason: `connected via ${this.server?.name}` };
  }

  /** Called by the tunnel when wireguard-go dies: the monitor loop recreates it. */
  tunnelLost(reason: string): void {
    this.lostReason = reason;
    this.tunnelExists = false;
    this.wake?.();
  }

  /**
   * New candidates (a fresh relay list): the next failover or reconnect picks
   * from them. The tunnel in use stays up; its server stays known until then.
   */
  setServers(servers: readonly ServerConfig[], order: readonly string[]): void {
    if (order.length === 0) return;
    const keep = this.server && !servers.some((s) => s.name === this.server!.name) ? [this.server] : [];
    this.servers = [...servers, ...keep];
    this.order = [...order];
  }

  /** Server names in the order they are tried now. */
  get tryOrder(): readonly string[] {
    return this.order;
  }

  stop(): void {
    this.abort.abort();
    this.wake?.();
  }

  /** Runs until stop(). Never returns with the firewall open. */
  async run(): Promise<void> {
    if (this.reorder && this.order.length > 1) await this.measure(this.reorder);
    let current: string | undefined;
    while (!this.stopping) {
      const now = this.deps.clock.now();
      if (current === undefined) {
        current = nextServer(this.order, undefined, this.failedAt, now, this.t.coolDownMs);
      } else if (now - (this.failedAt.get(current) ?? -Infinity) < this.t.coolDownMs) {
        // `current` failed recently (it is the least recently failed one): back off
        // first when every server did, else take a fresh one.
        if (allFailedRecently(this.order, this.failedAt, now, this.t.coolDownMs)) {
          this.failRound++;
          const wait = backoffMs(this.failRound, this.t.maxBackoffMs);
          await this.enter('blocked', `every server failed; retrying in ${Math.round(wait / 1000)} s`, undefined);
          await this.deps.clock.sleep(wait, this.abort.signal);
          // `current` is already the least recently failed server: start the new round with it.
          this.failedAt.clear();
          if (this.stopping) break;
        } else {
          current = nextServer(this.order, current, this.failedAt, now, this.t.coolDownMs);
        }
      }
      const server = this.byName(current);
      let outcome: Outcome;
      try {
        outcome = await this.connectAndWatch(server);
      } catch (err) {
        // A failed bring-up (wg, ip) leaves nothing half-open: block, remove the
        // interface, and treat the server as failed.
        const msg = err instanceof Error ? err.message : String(err);
        this.deps.log.error('bringing up the tunnel failed', { server: server.name, error: msg });
        await this.enter('blocked', `bring-up failed: ${msg}`, undefined);
        await this.removeTunnel();
        this.tunnelExists = false;
        outcome = { kind: 'dead', reason: 'bring-up-error', diagnosis: msg };
      }
      if (outcome.kind === 'stopped') break;
      if (outcome.kind === 'tunnel-lost') {
        this.lostReason = outcome.reason; // not ready from now until connected again
        this.tunnelExists = false;
        await this.removeTunnel();
        this.reconnects++;
        this.deps.onReconnect?.();
        this.deps.log.warn('tunnel lost, recreating it', { reason: outcome.reason, server: server.name });
        await this.pauseAfterRepeatedLoss(outcome.reason);
        continue;
      }
      this.failedAt.set(server.name, this.deps.clock.now());
      const next = nextServer(this.order, server.name, this.failedAt, this.deps.clock.now(), this.t.coolDownMs);
      // Retrying the same (only) server is a reconnect, not a failover.
      if (next === server.name) {
        this.reconnects++;
        this.deps.onReconnect?.();
      } else {
        this.failovers++;
        this.deps.onFailover?.(outcome.reason, server.name, next);
      }
      this.deps.log.error('server is dead, failing over', { server: server.name, next, reason: outcome.reason, diagnosis: outcome.diagnosis });
      await this.enter('failing-over', `${server.name}: ${outcome.diagnosis}`, server);
      current = next;
    }
  }

  /**
   * A tunnel lost once is recreated at once; lost again within the cool-down
   * (wireguard-go crashing at every start: OOM kill, no /dev/net/tun) it waits
   * 1 s, 2 s, 4 s … blocked, instead of a hot loop of nft and spawns.
   */
  private async pauseAfterRepeatedLoss(reason: string): Promise<void> {
    const now = this.deps.clock.now();
    this.lostStreak = now - this.lastLostAt < this.t.coolDownMs ? this.lostStreak + 1 : 1;
    this.lastLostAt = now;
    if (this.lostStreak < 2) return;
    const wait = backoffMs(this.lostStreak - 1, this.t.maxBackoffMs);
    await this.enter('blocked', `tunnel lost ${this.lostStreak} times in a row (${reason}); recreating in ${Math.round(wait / 1000)} s`, undefined);
    await this.deps.clock.sleep(wait, this.abort.signal);
  }

  private async connectAndWatch(server: ServerConfig): Promise<Outcome> {
    const started = this.deps.clock.now();
    // Connecting: only the WireGuard socket may reach this relay; the app stays blocked.
    await this.enter('connecting', `handshaking with ${server.name}`, server);
    this.lostReason = undefined;
    if (!this.tunnelExists) {
      await this.deps.tunnel.create(server);
      this.tunnelExists = true;
    } else {
      // Failover: swap the peer, keep the interface (and its routes) up.
      await this.deps.tunnel.setServer(server);
    }
    this.server = server;
    this.exit = null;
    this.lastProbe = null;
    this.quantum = undefined; // a new tunnel: a new negotiation
    await this.deps.applyRouting();

    // Handshake: a probe makes wireguard-go initiate one at once.
    let hs = false;
    let lastKick = -Infinity;
    /** Kicks answered so far: one that grows while the stats are read skips the poll's sleep. */
    let answers = 0;
    while (!this.stopping && !this.lostReason) {
      if (this.deps.clock.now() - lastKick >= 1000 && this.deps.clock.now() - started < this.t.connectTimeoutMs) {
        lastKick = this.deps.clock.now();
        // A packet to send makes WireGuard handshake at once; sent before the stats
        // are read, so the handshake runs while they are. Its own result only
        // wakes the wait below (an answer through the tunnel means a handshake: the
        // stats are read at once instead of at the next poll), and a rejection must
        // not become an unhandled one.
        void this.kick(server).then(
          () => {
            answers++;
            if (this.state === 'connecting') this.wake?.();
          },
          (e: unknown) => this.deps.log.debug('handshake kick failed', { server: server.name, error: String(e) }),
        );
      }
      const answersBefore = answers;
      const s = await this.deps.tunnel.stats();
      this.stats = s;
      if (s && s.latestHandshake > 0 && s.latestHandshake * 1000 >= started - 1000) {
        hs = true;
        break;
      }
      if (this.deps.clock.now() - started >= this.t.connectTimeoutMs) break;
      // An answer that came while the stats were read found no sleep to wake: read again at once.
      if (answers === answersBefore) await this.sleep(Math.min(20, this.t.checkIntervalMs));
    }
    if (this.stopping) return { kind: 'stopped' };
    if (this.lostReason) return { kind: 'tunnel-lost', reason: this.lostReason };
    if (!hs) {
      return {
        kind: 'dead',
        reason: 'handshake-timeout',
        diagnosis: `no handshake within ${this.t.connectTimeoutMs / 1000} s: the relay never answered (wrong or revoked key, relay down, or UDP to ${publicView(server).endpoint} blocked on the way)`,
      };
    }
    if (this.deps.upgrade) {
      const failed = await this.upgradeTunnel(server);
      if (failed) return failed;
    }
    await this.enter('connected', `handshake with ${server.name}${this.quantum ? ' (quantum-resistant)' : ''}`, server);
    this.failRound = 0; // a relay answered: the next all-dead streak backs off from 1 s again
    this.deps.onTunnelUp?.(true, server);
    return this.watch(server);
  }

  /** The quantum-resistant upgrade, still connecting (the firewall lets only the negotiation in); an outcome when it did not succeed. */
  private async upgradeTunnel(server: ServerConfig): Promise<Outcome | undefined> {
    this.reason = `negotiating a quantum-resistant tunnel with ${server.name}`;
    this.deps.log.info('negotiating a quantum-resistant tunnel', { server: server.name });
    try {
      this.quantum = await this.deps.upgrade!(server, this.abort.signal);
    } catch (err) {
      if (this.stopping) return { kind: 'stopped' };
      if (this.lostReason) return { kind: 'tunnel-lost', reason: this.lostReason };
      const msg = err instanceof Error ? err.message : String(err);
      this.deps.log.error('the quantum-resistant upgrade failed; the namespace stays blocked', { server: server.name, error: msg });
      // The parent session would otherwise live on, and a retry on the same relay
      // would see no new handshake: the next try starts from a new interface.
      await this.removeTunnel();
      this.tunnelExists = false;
      return { kind: 'dead', reason: 'quantum-upgrade-failed', diagnosis: msg };
    }
    if (this.stopping) return { kind: 'stopped' };
    if (this.lostReason) return { kind: 'tunnel-lost', reason: this.lostReason };
    this.stats = await this.deps.tunnel.stats();
    this.deps.log.info('the tunnel is quantum-resistant', { server: server.name, kems: this.quantum.kems });
    return undefined;
  }

  /** Cheap counter reads every CHECK_INTERVAL; probes only when needed. */
  private async watch(server: ServerConfig): Promise<Outcome> {
    const now = this.deps.clock.now();
    const m: MonitorMemory = { lastRx: this.stats?.rxBytes ?? 0, lastTx: this.stats?.txBytes ?? 0, aliveAt: now, lastProbeAt: -Infinity, consecutiveFailures: 0 };
    let lastSampleAt = now;
    let nextVerify = now;
    let verifyFailures = 0;
    let lastError = 'timeout';
    // The first exit check runs while the first probe is in flight: both gate readiness.
    let verifying: Promise<boolean> | undefined = this.verifyExit(server);
    try {
      while (!this.stopping) {
        if (this.lostReason) return { kind: 'tunnel-lost', reason: this.lostReason };
        const s = await this.deps.tunnel.stats();
        const t = this.deps.clock.now();
        // (wireguard-go's exit reason, when it already came, says more)
        if (!s) return { kind: 'tunnel-lost', reason: this.lostReason ?? 'the tunnel interface is gone' };
        this.stats = s;
        // The bytes arrived at some point after the previous sample: count from
        // there (two failed probes are still needed before a failover), so a dead
        // relay is declared FAILOVER_AFTER after its last sign of life, not later.
        const rxGrew = s.rxBytes > m.lastRx;
        if (rxGrew) m.aliveAt = Math.max(m.aliveAt, lastSampleAt);
        lastSampleAt = t;
        // Two probes already failed and nothing came back since: the silence alone
        // completes the verdict, without waiting for a third probe's timeout.
        if (!rxGrew && isDead(m, t, this.t)) return this.deadRelay(m, t, lastError);
        const why = needsProbe(m, { now: t, rxBytes: s.rxBytes, txBytes: s.txBytes, latestHandshakeMs: s.latestHandshake * 1000 }, this.t);
        m.lastRx = s.rxBytes;
        m.lastTx = s.txBytes;
        if (why) {
          const r = await this.deps.probe(server, this.abort.signal);
          // Cancelled by stop(): says nothing about the relay.
          if (this.stopping) break;
          m.lastProbeAt = this.deps.clock.now();
          this.lastProbe = { ok: r.ok, at: new Date(m.lastProbeAt).toISOString(), ms: r.ms, ...(r.error ? { error: r.error } : {}) };
          this.deps.onProbe?.(this.lastProbe);
          if (r.ok) {
            m.consecutiveFailures = 0;
            m.aliveAt = m.lastProbeAt;
            if (this.state === 'degraded') await this.enter('connected', 'probe passed again', server);
          } else {
            m.consecutiveFailures++;
            if (this.state === 'connected') await this.enter('degraded', `probe failed (${why}): ${r.error ?? 'no answer'}`, server);
            lastError = r.error ?? 'timeout';
            if (isDead(m, this.deps.clock.now(), this.t)) return this.deadRelay(m, this.deps.clock.now(), lastError);
          }
        }
        if (verifying || (this.state === 'connected' && this.deps.clock.now() >= nextVerify)) {
          const ok = await (verifying ?? this.verifyExit(server));
          verifying = undefined;
          verifyFailures = ok ? 0 : verifyFailures + 1;
          nextVerify = this.deps.clock.now() + (ok ? this.t.verifyIntervalMs : Math.min(this.t.verifyIntervalMs, 1000 * 2 ** Math.min(verifyFailures, 5)));
        }
        // While degraded, confirm quickly; otherwise the cheap cadence.
        await this.sleep(this.state === 'degraded' ? degradedWaitMs(m, this.deps.clock.now(), this.t) : this.t.checkIntervalMs);
      }
      return { kind: 'stopped' };
    } finally {
      this.deps.onTunnelUp?.(false, server);
    }
  }

  private deadRelay(m: MonitorMemory, now: number, lastError: string): Outcome {
    return { kind: 'dead', reason: 'probe-failed', diagnosis: `no answer through the tunnel for ${Math.round((now - m.aliveAt) / 1000)} s (last error: ${lastError})` };
  }

  private async verifyExit(server: ServerConfig): Promise<boolean> {
    try {
      const exit = await this.deps.checkExit(this.abort.signal);
      // A check that outlived its server (failover meanwhile) must not vouch for the next one.
      if (this.server !== server || this.state === 'failing-over') return false;
      this.exit = exit;
      this.deps.onExit?.(exit, server);
      if (!this.exit.mullvadExitIp) this.deps.log.error('exit is not a Mullvad exit', { ip: this.exit.ip, server: server.name });
      else this.deps.log.info('exit verified', { ip: this.exit.ip, hostname: this.exit.hostname, country: this.exit.country, city: this.exit.city });
      return true;
    } catch (err) {
      // Cancelled by stop(): nothing to diagnose or warn about.
      if (this.stopping) return false;
      const error = err instanceof Error ? err.message : String(err);
      // Probes pass but a full-size HTTP exchange does not: the classic MTU black hole.
      // A diagnosis that fails itself adds nothing to the warning below: said at debug level only.
      const diagnosis = this.lastProbe?.ok && this.deps.diagnose ? await this.deps.diagnose(server, this.abort.signal).catch((e: unknown) => void this.deps.log.debug('the MTU diagnosis failed', { error: String(e) })) : undefined;
      this.deps.log.warn('exit check failed', { error, ...(diagnosis ? { diagnosis } : {}) });
      return false;
    }
  }

  /**
   * Enters a state: firewall first (one transaction), then the bookkeeping.
   * degraded and failing-over keep the rules they have: the tunnel is still the
   * only way out, and the next connecting swaps the endpoint rule in one go.
   */
  private async enter(state: SidecarState, reason: string, server: ServerConfig | undefined): Promise<void> {
    if (state === 'blocked' || !server) await this.deps.applyFirewall(this.deps.policy('blocked'));
    else if (state === 'connecting') await this.deps.applyFirewall(this.deps.policy('connecting', server));
    else if (state === 'connected' && this.state !== 'degraded') await this.deps.applyFirewall(this.deps.policy('connected', server));
    const from = this.state;
    this.state = state;
    this.reason = reason;
    this.since = this.deps.clock.now();
    this.deps.log.info(`state ${from} → ${state}`, { event: SECURITY_EVENT.stateChanged, state, from, reason, ...(server ? { server: server.name } : {}) });
    this.deps.onState?.(state, reason);
  }

  /** A packet into the tunnel so WireGuard handshakes at once (the kick, or a probe). */
  private kick(server: ServerConfig): Promise<unknown> {
    return this.deps.kick ? this.deps.kick(server, this.abort.signal) : this.deps.probe(server, this.abort.signal);
  }

  private byName(name: string): ServerConfig {
    const s = this.servers.find((x) => x.name === name);
    if (!s) throw new Error(`unknown server ${name}`);
    return s;
  }

  /** After a failure the interface goes; if removing it fails too, that is logged (the namespace is blocked either way). */
  private async removeTunnel(): Promise<void> {
    await this.deps.tunnel.destroy().catch((e: unknown) => this.deps.log.warn('removing the tunnel interface failed', { error: String(e) }));
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      void this.deps.clock.sleep(ms, this.abort.signal).then(resolve);
    });
    this.wake = undefined;
  }
}
