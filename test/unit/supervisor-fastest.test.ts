// SERVER_SELECTION=fastest: handshake times are measured, one server at a time,
// through the same path as a connect, and the fastest is used first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { orderServers } from '../../src/supervisor/selection.js';
import { FakeWorld } from './helpers/fake-world.js';

const [A, B, C] = ['se-sto-wg-001', 'se-got-wg-002', 'de-fra-wg-003'] as const;

test('fastest: measured handshake times order the servers; the fastest serves', async () => {
  const names = [A, B, C];
  const w = new FakeWorld(names, {}, (measured) => orderServers(names.map((name) => ({ name })), { mode: 'fastest', podName: 'p', measurements: measured }));
  w.relay(A).handshakeDelayMs = 300;
  w.relay(B).handshakeDelayMs = 40;
  w.relay(C).knowsKey = false; // never answers: measured as unreachable, tried last
  await w.drive(() => w.sup.state === 'connected', 120_000);
  assert.equal(w.sup.server?.name, B);
  // Each server was measured through the connecting firewall for its own endpoint, one at a time.
  assert.deepEqual(w.firewallSequence().slice(0, 3), [`connecting ${A}`, `connecting ${B}`, `connecting ${C}`]);
  assert.deepEqual(w.firewallSequence().slice(3), [`connecting ${B}`, `connected ${B}`]);
});
