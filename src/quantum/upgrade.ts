// The quantum-resistant upgrade of one new tunnel, as a bring-up step: negotiate
// through the tunnel, switch the interface to the ephemeral key + PSK, wait for
// the upgraded handshake. Effects are passed in (the negotiation, the interface,
// the handshake wait, the clock), so the supervisor decides what the firewall
// allows meanwhile and tests drive every path. A failure after all attempts is
// a QuantumUpgradeError with a diagnosis; the caller keeps the namespace blocked.
import { SidecarError } from '../errors.js';
import type { ServerConfig } from '../config/types.js';
import type { EphemeralPeer } from './client.js';
import { CONFIG_SERVICE } from './service.js';

export class QuantumUpgradeError extends SidecarError {
  override readonly code = 'E_QUANTUM_UPGRADE';
}

/** What the firewall must let into a tunnel that is not yet quantum-resistant: this connection only. */
export const NEGOTIATION_ALLOW = { ip: CONFIG_SERVICE.address, port: CONFIG_SERVICE.port, protocol: 'tcp' } as const;

/** The same relay and endpoint with the ephemeral key and the PSK (pure). */
export function upgradedServer(server: ServerConfig, peer: EphemeralPeer): ServerConfig {
  return { ...server, privateKey: peer.privateKey, peer: { ...server.peer, presharedKey: peer.presharedKey } };
}

export interface UpgradeDeps {
  /** RegisterPeerV1 through the current (parent) tunnel. */
  negotiate(parentPublicKey: string): Promise<EphemeralPeer>;
  /** Reconfigures the interface for `server` without tearing it down. */
  apply(server: ServerConfig): Promise<void>;
  /** True once a handshake with the upgraded key has completed within the timeout. */
  waitHandshake(timeoutMs: number): Promise<boolean>;
  sleep(ms: number): Promise<void>;
}

export interface UpgradeOptions {
  parentPublicKey: string;
  attempts?: number;
  backoffMs?: number;
  handshakeTimeoutMs?: number;
}

export interface UpgradeResult {
  readonly server: ServerConfig;
  readonly kems: readonly string[];
  readonly attempts: number;
}

/**
 * Upgrades the tunnel to `server`'s relay. Between attempts the interface goes
 * back to the parent key (the relay may have unloaded the parent; a new
 * negotiation needs the parent tunnel).
 */
export async function upgradeTunnel(server: ServerConfig, deps: UpgradeDeps, opts: UpgradeOptions): Promise<UpgradeResult> {
  const attempts = opts.attempts ?? 3;
  const reasons: string[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const peer = await deps.negotiate(opts.parentPublicKey);
      const upgraded = upgradedServer(server, peer);
      await deps.apply(upgraded);
      if (await deps.waitHandshake(opts.handshakeTimeoutMs ?? 10_000)) return { server: upgraded, kems: peer.kems, attempts: attempt };
      reasons.push('no handshake with the ephemeral key (the relay did not load the ephemeral peer)');
      await deps.apply(server);
    } catch (err) {
      reasons.push(err instanceof Error ? err.message : String(err));
      // Back to the parent tunnel for the next try; its failure is part of the diagnosis.
      await deps.apply(server).catch((e: unknown) => reasons.push(`restoring the parent key: ${e instanceof Error ? e.message : String(e)}`));
    }
    if (attempt < attempts) await deps.sleep((opts.backoffMs ?? 1000) * 2 ** (attempt - 1));
  }
  throw new QuantumUpgradeError(`upgrading the tunnel to ${server.name} to a quantum-resistant one failed ${attempts} time(s): ${reasons[reasons.length - 1] ?? 'unknown'}`);
}
