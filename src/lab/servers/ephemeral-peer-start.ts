// Starts a lab relay's ephemeral-peer service on 10.64.0.1:1337 (inside its
// tunnel, as on Mullvad's relays), driving the relay's own wireguard-go.
import { RELAY_TUNNEL } from '../plan.js';
import { ExecRunner } from '../../system/runner.js';
import { CONFIG_SERVICE } from '../../quantum/proto.js';
import { serveEphemeralPeer } from './ephemeral-peer.js';
import { RelayWireGuard } from './ephemeral-peer-wg.js';
import type { JsonlWriter } from './jsonl.js';

export async function startRelayEphemeralPeer(wgInterface: string, log: JsonlWriter): Promise<void> {
  const relay = new RelayWireGuard(new ExecRunner(), wgInterface, { onError: (err) => log({ error: `watching handshakes: ${err.message}` }) });
  await serveEphemeralPeer({
    host: RELAY_TUNNEL.ip,
    port: CONFIG_SERVICE.port,
    relay,
    onEvent: (e) => log({ ...e }),
  });
}
