// The peers a lab relay's wireguard-go holds, read through its UAPI socket (PSKs and
// handshake times in ns, which `wg show` rounds to seconds): what the quantum-resistant
// e2e tests assert on. Not a test file.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import type { Lab } from '../../../src/lab/lab.js';

type Relay = Lab['relays'][0];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The device's tunnel address in every lab relay's config. */
export const CLIENT = '10.66.0.2';

/** The relay's peers through its UAPI socket: key (base64), PSK set or not, addresses, last handshake in ns. */
export async function relayPeers(relay: Relay): Promise<{ publicKey: string; psk: string | undefined; allowedIps: string[]; handshakeNs: bigint }[]> {
  const text = await new Promise<string>((resolve, reject) => {
    const sock = createConnection(`/var/run/wireguard/${relay.wgInterface}.sock`);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      if (/errno=\d+\n\n$/.test(buf)) sock.end();
    });
    sock.on('end', () => resolve(buf));
    sock.on('error', reject);
    sock.write('get=1\n\n');
  });
  const peers: { publicKey: string; psk: string | undefined; allowedIps: string[]; handshakeNs: bigint; sec: bigint; nsec: bigint }[] = [];
  for (const line of text.split('\n')) {
    const [k, v = ''] = line.split('=', 2) as [string, string?];
    const p = peers.at(-1);
    if (k === 'public_key') peers.push({ publicKey: Buffer.from(v, 'hex').toString('base64'), psk: undefined, allowedIps: [], handshakeNs: 0n, sec: 0n, nsec: 0n });
    else if (!p) continue;
    else if (k === 'preshared_key' && !/^0+$/.test(v)) p.psk = Buffer.from(v, 'hex').toString('base64');
    else if (k === 'allowed_ip') p.allowedIps.push(v);
    else if (k === 'last_handshake_time_sec') p.sec = BigInt(v);
    else if (k === 'last_handshake_time_nsec') p.nsec = BigInt(v);
  }
  return peers.map(({ sec, nsec, ...p }) => ({ ...p, handshakeNs: sec * 1_000_000_000n + nsec }));
}

/** The upgraded session on `relay`: its ephemeral peer holds the pod's address and a PSK; returns it. */
export async function upgradedPeer(relay: Relay, device: string, client = CLIENT) {
  let peers = await relayPeers(relay);
  for (let i = 0; i < 50 && !peers.some((p) => p.publicKey !== device && p.allowedIps.includes(`${client}/32`)); i++) {
    await sleep(100);
    peers = await relayPeers(relay);
  }
  const eph = peers.find((p) => p.publicKey !== device && p.allowedIps.includes(`${client}/32`));
  assert.ok(eph, `${relay.name}: an ephemeral peer holds ${client}: ${JSON.stringify(peers.map((p) => [p.publicKey, p.allowedIps]))}`);
  assert.ok(eph.psk, `${relay.name}: the ephemeral peer has a PSK`);
  assert.ok(eph.handshakeNs > 0n);
  assert.ok(!peers.find((p) => p.publicKey === device)?.allowedIps.includes(`${client}/32`), `${relay.name}: the parent peer is unloaded`);
  return eph;
}

