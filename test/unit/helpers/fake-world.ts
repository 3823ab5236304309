// A fake system for the supervisor: relays whose behaviour the test scripts
// over (fake) time, a WireGuard tunnel whose counters and handshake follow
// them, and a recorder of every firewall policy, state change and effect.
import type { ServerConfig } from '../../../src/config/types.js';
import type { FirewallPolicy } from '../../../src/firewall/policy.js';
import type { ExitInfo, SidecarState } from '../../../src/health/status.js';
import { silentLogger } from '../../../src/log/logger.js';
import { FakeClock } from '../../../src/supervisor/clock.js';
import { Supervisor, type SupervisorDeps, type SupervisorTimings } from '../../../src/supervisor/supervisor.js';
import type { PeerStats } from '../../../src/tunnel/render.js';
import { fakeServer, policyFor } from './servers.js';

export const T0 = 1_700_000_000_000;

export const TIMINGS: SupervisorTimings = {
  checkIntervalMs: 5000,
  probeIntervalMs: 30_000,
  failoverAfterMs: 15_000,
  connectTimeoutMs: 15_000,
  verifyIntervalMs: 300_000,
  maxBackoffMs: 60_000,
  coolDownMs: 60_000,
  requireMullvadExit: true,
};

export interface Relay {
  /** The relay answers (handshakes, probes) at this fake time. */
  up: (t: number) => boolean;
  /** false = the relay does not know our key (revoked device): never a handshake. */
  knowsKey: boolean;
  /** What CHECK_URL reports through this relay. */
  exit: ExitInfo | 'error';
  /** How long a handshake with this relay takes (SERVER_SELECTION=fastest). */
  handshakeDelayMs?: number;
}

export interface StateRecord {
  t: number;
  state: SidecarState;
  reason: string;
  ready: boolean;
}

export class FakeWorld {
  readonly clock = new FakeClock(T0);
  readonly relays = new Map<string, Relay>();
  readonly servers: ServerConfig[];
  /** Everything in order, as short strings: "firewall connecting se1", "tunnel create se1", "state connected". */
  readonly events: string[] = [];
  readonly policies: FirewallPolicy[] = [];
  readonly states: StateRecord[] = [];
  readonly failovers: { reason: string; from: string; to: string; t: number }[] = [];
  /** Durations the supervisor slept, with its state at the time. */
  readonly sleeps: { ms: number; state: SidecarState }[] = [];
  readonly timeline: { at: number; fn: () => void }[] = [];
  /** Make tunnel.create (or setServer) throw for these servers. */
  readonly failCreate = new Set<string>();
  /** This many tunnel creations are followed at once by wireguard-go dying (crash loop). */
  crashAfterCreate = 0;
  /** Applications send traffic (tx grows every check; rx only while the relay answers). */
  appTraffic = true;
  sup!: Supervisor;
  /** The effects handed to the supervisor; tests may replace one before driving. */
  readonly deps: SupervisorDeps;

  // The tunnel as `wg show dump` would report it.
  private peer: string | undefined;
  private exists = false;
  private handshakeAt = 0;
  private rx = 0;
  private tx = 0;

  constructor(names: string[], timings: Partial<SupervisorTimings> = {}, reorder?: (measured: Map<string, number>) => string[]) {
    this.servers = names.map((n, i) => fakeServer(n, { endpointIp: `185.213.154.${60 + i}` }));
    for (const n of names) this.relays.set(n, { up: () => true, knowsKey: true, exit: exitVia(n) });
    const clock = this.clock;
    const sleep = clock.sleep.bind(clock);
    clock.sleep = (ms, signal) => {
      this.sleeps.push({ ms, state: this.sup.state });
      return sleep(ms, signal);
    };
    this.deps = this.makeDeps();
    this.sup = new Supervisor(this.deps, this.servers, names, { ...TIMINGS, ...timings }, reorder);
  }

  relay(name: string): Relay {
    const r = this.relays.get(name);
    if (!r) throw new Error(`no relay ${name}`);
    return r;
  }

  /** Runs `fn` at the first tunnel read at or after fake time `at`. */
  at(at: number, fn: () => void): void {
    this.timeline.push({ at, fn });
  }

  /** Runs the supervisor until `until()` holds or `horizonMs` of fake time passed, then stops it. */
  async drive(until: () => boolean, horizonMs: number): Promise<void> {
    const done = this.sup.run();
    let error: unknown;
    let finished = false;
    void done.then(
      () => (finished = true),
      (e: unknown) => ((error = e), (finished = true)),
    );
    const deadline = this.clock.t + horizonMs;
    for (let spins = 0; !finished && !until() && this.clock.t < deadline && spins < 2_000_000; spins++) {
      await new Promise((r) => setImmediate(r));
    }
    this.sup.stop();
    await done.catch(() => {});
    if (error) throw error;
  }

  stateNames(): SidecarState[] {
    return this.states.map((s) => s.state);
  }

  /** "connecting se-1" etc.: the firewall transactions in order. */
  firewallSequence(): string[] {
    return this.policies.map((p) => (p.state === 'blocked' ? 'blocked' : `${p.state} ${this.nameByEndpoint(p.endpoint.ip)}`));
  }

  private nameByEndpoint(ip: string): string {
    return this.servers.find((s) => s.peer.endpoint.ip === ip)?.name ?? ip;
  }

  private runTimeline(): void {
    for (const e of [...this.timeline]) {
      if (this.clock.t >= e.at) {
        this.timeline.splice(this.timeline.indexOf(e), 1);
        e.fn();
      }
    }
  }

  private relayAnswers(): boolean {
    if (!this.peer || !this.exists) return false;
    const r = this.relay(this.peer);
    return r.knowsKey && r.up(this.clock.t);
  }

  private setPeer(s: ServerConfig): void {
    // wg syncconf replaces the peer: a new peer starts without a session or counters.
    this.peer = s.name;
    this.handshakeAt = 0;
    this.rx = 0;
    this.tx = 0;
  }

  /** The interface is gone without any exit event (a kernel link deleted): only a counter read notices. */
  vanishInterface(): void {
    this.exists = false;
    this.events.push('interface gone');
  }

  /** The tunnel vanished (wireguard-go killed): nothing to read until it is recreated. */
  loseTunnel(reason: string): void {
    this.exists = false;
    this.events.push('tunnel lost');
    this.sup.tunnelLost(reason);
  }

  private makeDeps(): SupervisorDeps {
    return {
      clock: this.clock,
      log: silentLogger,
      tunnel: {
        create: async (s) => {
          this.events.push(`tunnel create ${s.name}`);
          if (this.failCreate.has(s.name)) throw new Error(`configuring wg0: wg setconf wg0 /tmp/x: exited 1: Unable to modify interface`);
          this.exists = true;
          this.setPeer(s);
          if (this.crashAfterCreate > 0) {
            this.crashAfterCreate--;
            queueMicrotask(() => this.loseTunnel('wireguard-go exited (2): ERROR: failed to create TUN device'));
          }
        },
        setServer: async (s) => {
          this.events.push(`tunnel setServer ${s.name}`);
          if (this.failCreate.has(s.name)) throw new Error('wg syncconf wg0 /tmp/x: exited 1');
          this.setPeer(s);
        },
        stats: async (): Promise<PeerStats | undefined> => {
          this.runTimeline();
          if (!this.exists || !this.peer) return undefined;
          if (this.appTraffic && this.handshakeAt > 0) {
            this.tx += 1000;
            if (this.relayAnswers()) this.rx += 1000;
          }
          const s = this.servers.find((x) => x.name === this.peer)!;
          return { publicKey: s.peer.publicKey, endpoint: `${s.peer.endpoint.ip}:${s.peer.endpoint.port}`, latestHandshake: this.handshakeAt <= this.clock.t ? Math.floor(this.handshakeAt / 1000) : 0, rxBytes: this.rx, txBytes: this.tx };
        },
        destroy: async () => {
          this.events.push('tunnel destroy');
          this.exists = false;
          this.peer = undefined;
        },
      },
      policy: (state, server) => policyFor(state, server),
      applyFirewall: async (p) => {
        this.policies.push(p);
        this.events.push(`firewall ${this.firewallSequence().at(-1)}`);
      },
      applyRouting: async () => {
        this.events.push('routing');
      },
      probe: async (s) => {
        // A packet into the tunnel: WireGuard handshakes first when it has no session.
        this.tx += 148;
        if (s.name !== this.peer || !this.relayAnswers()) return { ok: false, ms: 2000, error: 'timeout' };
        if (this.handshakeAt === 0 || this.clock.t - this.handshakeAt > 120_000) this.handshakeAt = this.clock.t + (this.relay(s.name).handshakeDelayMs ?? 0);
        this.rx += 92;
        return { ok: true, ms: 12 };
      },
      checkExit: async () => {
        const r = this.peer ? this.relay(this.peer).exit : 'error';
        if (r === 'error' || !this.relayAnswers()) throw new Error('checking the exit: timeout');
        return r;
      },
      onState: (state, reason) => {
        this.events.push(`state ${state}`);
        this.states.push({ t: this.clock.t, state, reason, ready: this.sup.ready().ok });
      },
      onFailover: (reason, from, to) => {
        this.failovers.push({ reason, from, to, t: this.clock.t });
      },
      onReconnect: () => {
        this.events.push('reconnect');
      },
      onExit: () => {
        this.events.push(`exit verified ready=${this.sup.ready().ok}`);
      },
    };
  }
}

export function exitVia(name: string, mullvad = true): ExitInfo {
  return { ip: '185.65.135.1', country: 'Sweden', city: 'Stockholm', mullvadExitIp: mullvad, hostname: name, checkedAt: new Date(T0).toISOString() };
}
