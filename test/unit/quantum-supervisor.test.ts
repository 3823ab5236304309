// QUANTUM_RESISTANT in the supervisor (fake clock, fake system): every new
// tunnel is upgraded while the firewall is still connecting (the negotiating
// ruleset), before connected; a failed upgrade counts as a dead relay and the
// namespace is never opened; every new tunnel negotiates again.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerConfig } from '../../src/config/types.js';
import { FakeWorld, T0 } from './helpers/fake-world.js';

const A = 'se-sto-wg-001';
const B = 'se-got-wg-002';

interface Upgrades {
  calls: { server: string; state: string; firewall: string | undefined }[];
  fail: Set<string>;
}

function withUpgrade(w: FakeWorld): Upgrades {
  const u: Upgrades = { calls: [], fail: new Set() };
  w.deps.upgrade = async (s: ServerConfig) => {
    u.calls.push({ server: s.name, state: w.sup.state, firewall: w.firewallSequence().at(-1) });
    w.events.push(`upgrade ${s.name}`);
    await w.clock.sleep(500);
    if (u.fail.has(s.name)) throw new Error('upgrading the tunnel failed 3 time(s): UNAVAILABLE: connection refused');
    return { kems: ['ML-KEM-1024'] };
  };
  return u;
}

describe('supervisor: quantum-resistant upgrade', () => {
  test('the upgrade runs after the handshake, still connecting, and only then is the tunnel opened', async () => {
    const w = new FakeWorld([A, B]);
    const u = withUpgrade(w);
    await w.drive(() => w.sup.ready().ok, 60_000);
    assert.deepEqual(u.calls, [{ server: A, state: 'connecting', firewall: `connecting ${A}` }]);
    const order = w.events.filter((e) => !e.startsWith('exit'));
    assert.deepEqual(order.slice(0, 7), [`firewall connecting ${A}`, 'state connecting', `tunnel create ${A}`, 'routing', `upgrade ${A}`, `firewall connected ${A}`, 'state connected']);
    assert.deepEqual(w.sup.quantum, { kems: ['ML-KEM-1024'] });
    assert.match(w.sup.reason, /quantum-resistant/);
  });

  test('a failed upgrade is a dead relay: never connected to it, failover counts it, the next relay negotiates', async () => {
    const w = new FakeWorld([A, B]);
    const u = withUpgrade(w);
    u.fail.add(A);
    await w.drive(() => w.sup.ready().ok, 120_000);
    assert.deepEqual(u.calls.map((c) => c.server), [A, B]);
    assert.deepEqual(w.failovers.map((f) => [f.reason, f.from, f.to]), [['quantum-upgrade-failed', A, B]]);
    assert.ok(!w.firewallSequence().includes(`connected ${A}`), `never opened for ${A}: ${w.firewallSequence().join(', ')}`);
    assert.equal(w.sup.server?.name, B);
  });

  test('every relay failing the upgrade: blocked with backoff, retried, never connected', async () => {
    const w = new FakeWorld([A]);
    const u = withUpgrade(w);
    u.fail.add(A);
    await w.drive(() => u.calls.length >= 3, 300_000);
    assert.ok(!w.firewallSequence().some((f) => f.startsWith('connected')), w.firewallSequence().join(', '));
    assert.ok(w.sleeps.some((s) => s.state === 'blocked' && s.ms >= 1000), 'backs off blocked between rounds');
    assert.equal(w.sup.quantum, undefined);
    // Each retry starts from a new interface (a fresh handshake, a fresh negotiation).
    assert.ok(w.events.filter((e) => e === `tunnel create ${A}`).length >= 3, w.events.join(', '));
  });

  test('a new tunnel negotiates again after wireguard-go died', async () => {
    const w = new FakeWorld([A, B]);
    const u = withUpgrade(w);
    let lost = false;
    await w.drive(() => {
      if (!lost && w.sup.ready().ok) {
        lost = true;
        w.loseTunnel('wireguard-go exited (2)');
      }
      return lost && u.calls.length >= 2 && w.sup.ready().ok;
    }, 120_000);
    assert.deepEqual(u.calls.map((c) => [c.server, c.firewall]), [[A, `connecting ${A}`], [A, `connecting ${A}`]]);
  });

  test('a failover to another relay negotiates with that relay', async () => {
    const w = new FakeWorld([A, B]);
    const u = withUpgrade(w);
    w.relay(A).up = (t) => t < T0 + 60_000;
    await w.drive(() => w.sup.server?.name === B && w.sup.ready().ok, 300_000);
    assert.deepEqual(u.calls, [{ server: A, state: 'connecting', firewall: `connecting ${A}` }, { server: B, state: 'connecting', firewall: `connecting ${B}` }]);
    assert.equal(w.sup.failovers, 1);
    assert.deepEqual(w.sup.quantum, { kems: ['ML-KEM-1024'] });
  });
});
