// Switches a WireGuard interface to a negotiated ephemeral peer: its private key
// and the PSK for the relay's peer, in one `wg set`. Both secrets reach wg
// through FIFOs (system/secret-pipe.ts), never argv or disk. wg opens the files
// in argument order, so the two pipes are written one after the other.
import type { CommandRunner } from '../system/runner.js';
import { withSecretPipe } from '../system/secret-pipe.js';
import type { EphemeralPeer } from './client.js';

export async function applyEphemeralPeer(runner: CommandRunner, ifname: string, relayPublicKey: string, peer: EphemeralPeer): Promise<void> {
  await withSecretPipe(runner, peer.privateKey + '\n', (keyPath) =>
    withSecretPipe(runner, peer.presharedKey + '\n', (pskPath) =>
      runner.run(['wg', 'set', ifname, 'private-key', keyPath, 'peer', relayPublicKey, 'preshared-key', pskPath]),
    ),
  );
}
