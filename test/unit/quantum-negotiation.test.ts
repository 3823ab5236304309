// The ephemeral-peer client against the lab's relay service, in-process over
// loopback HTTP/2: the relay and the client end with the same PSK, the relay
// refuses requests that did not come through the parent's tunnel or that carry
// malformed keys, and the relay's WireGuard adapter reads `wg show dump`. That the
// adapter moves the tunnel addresses to the ephemeral peer only once it has shaken
// hands (a real FIFO): test/integration/quantum-relay-wg.test.ts.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { negotiateEphemeralPeer } from '../../src/quantum/client.js';
import { generateKeyPair, publicKeyOf } from '../../src/quantum/keys.js';
import { ML_KEM_1024 } from '../../src/quantum/psk.js';
import { peerAddress, registerPeer, serveEphemeralPeer, type EphemeralPeerRelay } from '../../src/lab/servers/ephemeral-peer.js';
import { parseDump } from '../../src/lab/servers/ephemeral-peer-wg.js';

class FakeRelay implements EphemeralPeerRelay {
  readonly registered: { parent: string; ephemeral: string; psk: string | undefined }[] = [];
  constructor(private readonly owner: Record<string, string>) {}
  async peerForAddress(ip: string): Promise<string | undefined> {
    return this.owner[ip];
  }
  async registerEphemeralPeer(parent: string, ephemeral: string, psk: Buffer | undefined): Promise<void> {
    this.registered.push({ parent, ephemeral, psk: psk?.toString('base64') });
  }
}

const device = generateKeyPair();

describe('RegisterPeerV1 over loopback', () => {
  const relay = new FakeRelay({ '127.0.0.1': device.publicKey });
  let server: grpc.Server | undefined;
  let port = 0;
  after(() => server?.forceShutdown());

  test('client and relay derive the same PSK; the relay registers the client\'s fresh key', async () => {
    ({ server, port } = await serveEphemeralPeer({ host: '127.0.0.1', port: 0, relay }));
    const peer = await negotiateEphemeralPeer({ parentPublicKey: device.publicKey, address: '127.0.0.1', port, timeoutMs: 5000 });
    assert.equal(relay.registered.length, 1);
    const r = relay.registered[0]!;
    assert.equal(r.parent, device.publicKey);
    assert.equal(r.ephemeral, peer.publicKey);
    assert.equal(publicKeyOf(peer.privateKey), peer.publicKey);
    assert.notEqual(peer.publicKey, device.publicKey);
    assert.equal(r.psk, peer.presharedKey);
    assert.equal(Buffer.from(peer.presharedKey, 'base64').length, 32);
    assert.deepEqual(peer.kems, ['ML-KEM-1024']);
  });

  test('a second negotiation gives a new key and a new PSK', async () => {
    const a = relay.registered[0]!;
    const peer = await negotiateEphemeralPeer({ parentPublicKey: device.publicKey, address: '127.0.0.1', port, timeoutMs: 5000 });
    assert.notEqual(peer.publicKey, a.ephemeral);
    assert.notEqual(peer.presharedKey, a.psk);
  });

  test('a request for another device\'s key is refused (PERMISSION_DENIED), nothing registered', async () => {
    const before = relay.registered.length;
    await assert.rejects(
      negotiateEphemeralPeer({ parentPublicKey: generateKeyPair().publicKey, address: '127.0.0.1', port, timeoutMs: 5000 }),
      /registering an ephemeral peer at 127\.0\.0\.1:\d+: PERMISSION_DENIED/,
    );
    assert.equal(relay.registered.length, before);
  });

  test('no service: the error names the target and the gRPC status', async () => {
    await assert.rejects(
      negotiateEphemeralPeer({ parentPublicKey: device.publicKey, address: '127.0.0.1', port: 1, timeoutMs: 2000 }),
      /registering an ephemeral peer at 127\.0\.0\.1:1: (UNAVAILABLE|DEADLINE_EXCEEDED)/,
    );
  });
});

describe('the relay service on hostile requests', () => {
  const relay = new FakeRelay({ '10.66.0.2': device.publicKey });
  const parent = Buffer.from(device.publicKey, 'base64');
  const eph = Buffer.from(generateKeyPair().publicKey, 'base64');
  const kemKey = Buffer.from(ML_KEM_1024.keygen().publicKey);
  const pq = (algorithm_name: string, key_data: Buffer) => ({ kem_pubkeys: [{ algorithm_name, key_data }] });

  const cases: [string, Parameters<typeof registerPeer>[0], RegExp][] = [
    ['short parent key', { wg_parent_pubkey: parent.subarray(1), wg_ephemeral_peer_pubkey: eph, post_quantum: pq('ML-KEM-1024', kemKey) }, /wg_parent_pubkey/],
    ['ephemeral = parent', { wg_parent_pubkey: parent, wg_ephemeral_peer_pubkey: parent, post_quantum: pq('ML-KEM-1024', kemKey) }, /equals the parent/],
    ['unknown KEM', { wg_parent_pubkey: parent, wg_ephemeral_peer_pubkey: eph, post_quantum: pq('Kyber512', kemKey) }, /unsupported KEM algorithm 'Kyber512'/],
    ['short KEM key', { wg_parent_pubkey: parent, wg_ephemeral_peer_pubkey: eph, post_quantum: pq('ML-KEM-1024', kemKey.subarray(0, 800)) }, /800 bytes, not 1568/],
    ['too many KEM keys', { wg_parent_pubkey: parent, wg_ephemeral_peer_pubkey: eph, post_quantum: { kem_pubkeys: Array(5).fill({ algorithm_name: 'ML-KEM-1024', key_data: kemKey }) } }, /5 KEM keys/],
    ['the same KEM twice', { wg_parent_pubkey: parent, wg_ephemeral_peer_pubkey: eph, post_quantum: { kem_pubkeys: Array(2).fill({ algorithm_name: 'ML-KEM-1024', key_data: kemKey }) } }, /given twice/],
  ];
  for (const [name, req, re] of cases) {
    test(`${name}: refused, nothing registered`, async () => {
      await assert.rejects(registerPeer(req, '10.66.0.2', relay), re);
      assert.equal(relay.registered.length, 0);
    });
  }

  test('gRPC peer strings: v4 and v6 sources, anything else is no source', () => {
    assert.equal(peerAddress('10.66.0.2:41234'), '10.66.0.2');
    assert.equal(peerAddress('ipv4:10.66.0.2:41234'), '10.66.0.2');
    assert.equal(peerAddress('fc00:bbbb:bbbb:bb01::2:41234'), 'fc00:bbbb:bbbb:bb01::2');
    assert.equal(peerAddress('ipv6:[fc00:bbbb:bbbb:bb01::2]:41234'), 'fc00:bbbb:bbbb:bb01::2');
    assert.equal(peerAddress('::ffff:10.66.0.2:41234'), '10.66.0.2');
    assert.equal(peerAddress('unix:/tmp/x'), undefined);
  });
});

describe('the relay WireGuard adapter', () => {
  const line = (key: string, psk: string, ips: string, hs: number) => `${key}\t${psk}\t172.20.0.2:5\t${ips}\t${hs}\t0\t0\toff`;
  const eph = generateKeyPair().publicKey;
  const ADDRS = '10.66.0.2/32,fc00:bbbb:bbbb:bb01::2/128';

  test('parseDump skips the interface line and reads allowed-ips, PSK and handshake', () => {
    const peers = parseDump(`PRIV\tPUB\t51820\toff\n${line(device.publicKey, '(none)', ADDRS, 100)}\n${line(eph, 'PSK', '(none)', 0)}\n`);
    assert.deepEqual(peers, [
      { publicKey: device.publicKey, presharedKey: undefined, latestHandshake: 100, allowedIps: ['10.66.0.2/32', 'fc00:bbbb:bbbb:bb01::2/128'] },
      { publicKey: eph, presharedKey: 'PSK', latestHandshake: 0, allowedIps: [] },
    ]);
  });

});
