// The upgrade step: switch to the ephemeral key + PSK once negotiated, retry with
// backoff on the parent tunnel, and a diagnosis when every attempt failed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { upgradeTunnel, upgradedServer, QuantumUpgradeError, type UpgradeDeps } from '../../src/quantum/upgrade.js';
import type { EphemeralPeer } from '../../src/quantum/client.js';
import type { ServerConfig } from '../../src/config/types.js';
import { generateKeyPair } from '../../src/quantum/keys.js';

const parent = generateKeyPair();
const server: ServerConfig = {
  name: 'se-got-wg-002', file: 'x', privateKey: parent.privateKey, addresses: [], dns: [], mtu: undefined, warnings: [],
  peer: { publicKey: generateKeyPair().publicKey, presharedKey: undefined, allowedIps: [], endpoint: { host: '192.0.2.2', port: 51820, ip: '192.0.2.2', family: 4 }, persistentKeepalive: undefined },
};
const eph = generateKeyPair();
const peer: EphemeralPeer = { ...eph, presharedKey: Buffer.alloc(32, 9).toString('base64'), kems: ['ML-KEM-1024'] };

function deps(script: { negotiate: (() => Promise<EphemeralPeer>)[]; handshake: boolean[] }) {
  const applied: string[] = [];
  const sleeps: number[] = [];
  const d: UpgradeDeps = {
    negotiate: async () => (script.negotiate.shift() ?? (async () => peer))(),
    apply: async (s) => void applied.push(s.privateKey === parent.privateKey ? 'parent' : `ephemeral psk=${s.peer.presharedKey ? 'yes' : 'no'}`),
    waitHandshake: async () => script.handshake.shift() ?? false,
    sleep: async (ms) => void sleeps.push(ms),
  };
  return { d, applied, sleeps };
}

describe('quantum upgrade', () => {
  test('upgradedServer keeps relay and endpoint, takes the ephemeral key and the PSK', () => {
    const u = upgradedServer(server, peer);
    assert.equal(u.privateKey, eph.privateKey);
    assert.equal(u.peer.presharedKey, peer.presharedKey);
    assert.deepEqual(u.peer.endpoint, server.peer.endpoint);
    assert.equal(u.peer.publicKey, server.peer.publicKey);
    assert.equal(server.peer.presharedKey, undefined, 'the parent config is not modified');
  });

  test('first attempt: negotiate, switch, handshake', async () => {
    const { d, applied, sleeps } = deps({ negotiate: [], handshake: [true] });
    const r = await upgradeTunnel(server, d, { parentPublicKey: parent.publicKey });
    assert.equal(r.attempts, 1);
    assert.deepEqual(r.kems, ['ML-KEM-1024']);
    assert.deepEqual(applied, ['ephemeral psk=yes']);
    assert.deepEqual(sleeps, []);
  });

  test('a failed negotiation and a missing handshake are retried on the parent key with backoff', async () => {
    const { d, applied, sleeps } = deps({ negotiate: [async () => { throw new Error('UNAVAILABLE: no route'); }], handshake: [false, true] });
    const r = await upgradeTunnel(server, d, { parentPublicKey: parent.publicKey, backoffMs: 100 });
    assert.equal(r.attempts, 3);
    assert.deepEqual(applied, ['parent', 'ephemeral psk=yes', 'parent', 'ephemeral psk=yes']);
    assert.deepEqual(sleeps, [100, 200]);
  });

  test('every attempt failing: an error with the last diagnosis, the interface left on the parent key', async () => {
    const fail = async (): Promise<EphemeralPeer> => { throw new Error('DEADLINE_EXCEEDED: the relay did not answer'); };
    const { d, applied } = deps({ negotiate: [fail, fail], handshake: [] });
    await assert.rejects(upgradeTunnel(server, d, { parentPublicKey: parent.publicKey, attempts: 2 }), (e: unknown) =>
      e instanceof QuantumUpgradeError && /se-got-wg-002 .* failed 2 time\(s\): DEADLINE_EXCEEDED/.test(e.message));
    assert.deepEqual(applied, ['parent', 'parent']);
  });
});
