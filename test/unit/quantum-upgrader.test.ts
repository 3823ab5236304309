// The upgrader's effects with a fake tunnel: the switch waits for a later second
// than the last handshake (wg reports whole seconds), the upgraded handshake is
// kicked and awaited, the runtime secrets are known for redaction and dropped
// when the parent key is back, and every upgrade negotiates a fresh key.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerConfig } from '../../src/config/types.js';
import type { EphemeralPeer } from '../../src/quantum/client.js';
import { generateKeyPair } from '../../src/quantum/keys.js';
import { silentLogger } from '../../src/log/logger.js';
import { FakeClock } from '../../src/supervisor/clock.js';
import { QuantumUpgrader } from '../../src/supervisor/quantum.js';
import type { PeerStats } from '../../src/tunnel/render.js';
import { fakeServer } from './helpers/servers.js';

function world(opts: { answers: boolean }) {
  const clock = new FakeClock(1_700_000_000_400);
  const parent = generateKeyPair();
  const server: ServerConfig = { ...fakeServer('se-got-wg-002'), privateKey: parent.privateKey };
  let handshake = Math.floor(clock.now() / 1000); // the parent's handshake, this very second
  let key = server.privateKey;
  const applied: { at: number; ephemeral: boolean }[] = [];
  const negotiated: string[] = [];
  let kicks = 0;
  const upgrader = new QuantumUpgrader({
    clock,
    log: silentLogger,
    attempts: 2,
    backoffMs: 100,
    handshakeTimeoutMs: 3000,
    tunnel: {
      setServer: async (s) => {
        key = s.privateKey;
        applied.push({ at: clock.now(), ephemeral: s.privateKey !== server.privateKey });
      },
      stats: async (): Promise<PeerStats> => ({ publicKey: server.peer.publicKey, endpoint: '', latestHandshake: handshake, rxBytes: 0, txBytes: 0 }),
    },
    kick: async () => {
      kicks++;
      if (opts.answers || key === server.privateKey) handshake = Math.floor(clock.now() / 1000);
    },
    negotiate: async (pk): Promise<EphemeralPeer> => {
      assert.equal(pk, parent.publicKey, 'the request names the parent key');
      const eph = generateKeyPair();
      negotiated.push(eph.publicKey);
      return { ...eph, presharedKey: Buffer.alloc(32, negotiated.length).toString('base64'), kems: ['ML-KEM-1024'] };
    },
  });
  return { clock, server, upgrader, applied, negotiated, kicks: () => kicks };
}

describe('the quantum upgrader (supervisor wiring)', () => {
  test('switches in a later second than the last handshake, kicks, and waits for the upgraded handshake', async () => {
    const w = world({ answers: true });
    const r = await w.upgrader.upgrade(w.server, new AbortController().signal);
    assert.deepEqual(r, { kems: ['ML-KEM-1024'] });
    assert.equal(w.applied.length, 1);
    assert.ok(w.applied[0]!.ephemeral);
    assert.ok(w.applied[0]!.at >= 1_700_000_001_000, `switched at ${w.applied[0]!.at}, in the parent handshake's second`);
    assert.ok(w.kicks() >= 1);
    const secrets = w.upgrader.secrets();
    assert.equal(secrets.length, 2, 'the ephemeral private key and the PSK are known for redaction');
    assert.ok(!secrets.includes(w.server.privateKey));
  });

  test('no upgraded handshake: back to the parent key, a fresh negotiation each attempt, then a diagnosis', async () => {
    const w = world({ answers: false });
    await assert.rejects(w.upgrader.upgrade(w.server, new AbortController().signal), /failed 2 time\(s\): no handshake with the ephemeral key/);
    assert.deepEqual(w.applied.map((a) => a.ephemeral), [true, false, true, false]);
    assert.equal(new Set(w.negotiated).size, 2, 'a fresh ephemeral key per attempt');
    assert.deepEqual(w.upgrader.secrets(), [], 'nothing runtime-secret left once the parent key is back');
  });

  test('stop aborts a negotiation at once', async () => {
    const w = world({ answers: true });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(w.upgrader.upgrade(w.server, ac.signal), /stopping/);
  });
});
