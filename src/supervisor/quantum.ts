// QUANTUM_RESISTANT: the upgrade of each new tunnel, wired to the real tunnel.
// The steps and their retries are src/quantum/upgrade.ts; this adds the effects:
// the negotiation inside the tunnel (src/quantum/client.ts), the switch to the
// ephemeral key + PSK on the same interface (`wg syncconf` through a FIFO, as
// every key), and the wait for the upgraded handshake, kicked by a TCP connect
// to the relay's service (the only packet the negotiating firewall lets in).
// A fresh ephemeral key and KEM key pair on every call: nothing is reused.
import type { ServerConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { EphemeralPeer } from '../quantum/client.js';
import { publicKeyOf } from '../quantum/keys.js';
import { upgradeTunnel } from '../quantum/upgrade.js';
import type { PeerStats } from '../tunnel/render.js';
import type { Clock } from './clock.js';

export interface QuantumUpgraderDeps {
  tunnel: { setServer(server: ServerConfig): Promise<void>; stats(): Promise<PeerStats | undefined> };
  /** One packet into the tunnel that the negotiating firewall lets through (WireGuard handshakes on demand). */
  kick(signal: AbortSignal): Promise<unknown>;
  clock: Clock;
  log: Logger;
  /** RegisterPeerV1 through the tunnel; the real client unless a test says otherwise. */
  negotiate?(parentPublicKey: string): Promise<EphemeralPeer>;
  negotiationTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
}

export class QuantumUpgrader {
  /** The ephemeral private key and PSK in use: for the health server's redaction only. */
  private current: string[] = [];

  constructor(private readonly d: QuantumUpgraderDeps) {}

  secrets(): readonly string[] {
    return this.current;
  }

  async upgrade(server: ServerConfig, signal: AbortSignal): Promise<{ readonly kems: readonly string[] }> {
    const { tunnel, clock } = this.d;
    // The gRPC client is loaded on the first upgrade only: @grpc/grpc-js costs
    // every sidecar without QUANTUM_RESISTANT several MiB (docs/performance.md).
    const negotiate =
      this.d.negotiate ??
      (async (parentPublicKey: string) => (await import('../quantum/client.js')).negotiateEphemeralPeer({ parentPublicKey, timeoutMs: this.d.negotiationTimeoutMs ?? 10_000 }));
    let before = 0;
    const r = await upgradeTunnel(
      server,
      {
        negotiate: (pk) => abortable(negotiate(pk), signal),
        apply: async (s) => {
          if (signal.aborted) throw new Error('stopping');
          before = (await tunnel.stats())?.latestHandshake ?? 0;
          // `wg` shows handshake times in whole seconds: switch in a later second
          // than the last handshake, so the upgraded one is told apart from it.
          const wait = (before + 1) * 1000 - clock.now();
          if (wait > 0) await clock.sleep(wait, signal);
          await tunnel.setServer(s);
          this.current = s === server ? [] : [s.privateKey, ...(s.peer.presharedKey ? [s.peer.presharedKey] : [])];
        },
        waitHandshake: async (timeoutMs) => {
          const start = clock.now();
          let lastKick = -Infinity;
          while (!signal.aborted && clock.now() - start < timeoutMs) {
            const st = await tunnel.stats();
            if (st && st.latestHandshake > before) return true;
            if (clock.now() - lastKick >= 1000) {
              lastKick = clock.now();
              // Only the handshake counts; the kick's own result does not.
              void this.d.kick(signal).catch((e: unknown) => this.d.log.debug('handshake kick failed', { server: server.name, error: String(e) }));
            }
            await clock.sleep(50, signal);
          }
          return false;
        },
        sleep: (ms) => clock.sleep(ms, signal),
      },
      { parentPublicKey: publicKeyOf(server.privateKey), ...(this.d.attempts ? { attempts: this.d.attempts } : {}), ...(this.d.backoffMs ? { backoffMs: this.d.backoffMs } : {}), handshakeTimeoutMs: this.d.handshakeTimeoutMs ?? 10_000 },
    );
    return { kems: r.kems };
  }
}

/** `p`, or a rejection as soon as `signal` aborts (stop must not wait for a negotiation's deadline). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('stopping'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('stopping'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
