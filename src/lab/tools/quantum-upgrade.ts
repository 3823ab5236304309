// `node quantum-upgrade.js IFNAME RELAY_PUBKEY PARENT_PUBKEY`, run inside a lab
// namespace that has a WireGuard tunnel to a lab relay: negotiates an ephemeral
// peer with the relay's service (10.64.0.1:1337, through that tunnel) and
// switches the interface to it, as a hand-made Mullvad client would. One JSON
// line on stdout: { ok, publicKey, kems } or { ok: false, error }; no secret.
import { ExecRunner } from '../../system/runner.js';
import { applyEphemeralPeer } from '../../quantum/apply.js';
import { negotiateEphemeralPeer } from '../../quantum/client.js';

const [ifname = '', relayPublicKey = '', parentPublicKey = ''] = process.argv.slice(2);

try {
  const peer = await negotiateEphemeralPeer({ parentPublicKey, timeoutMs: 10_000 });
  await applyEphemeralPeer(new ExecRunner(), ifname, relayPublicKey, peer);
  process.stdout.write(JSON.stringify({ ok: true, publicKey: peer.publicKey, kems: peer.kems }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: err instanceof Error ? err.message : String(err) }) + '\n');
}
