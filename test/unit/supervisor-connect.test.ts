// The supervisor with a fake clock and a fake system: bring-up, readiness,
// exit verification, recovery of a lost tunnel, bring-up errors and stop().
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeWorld, T0, exitVia } from './helpers/fake-world.js';

const A = 'se-sto-wg-001';
const B = 'se-got-wg-002';
const C = 'de-fra-wg-003';

/** Ready: connected, fresh handshake, probe passed, exit verified. */
const readyNow = (w: FakeWorld) => w.sup.ready().ok;

describe('supervisor: bring-up', () => {
  test('blocked → connecting → connected; the tunnel is opened only after a handshake', async () => {
    const w = new FakeWorld([A, B]);
    assert.equal(w.sup.state, 'blocked');
    assert.equal(w.sup.ready().ok, false);
    await w.drive(() => readyNow(w), 60_000);
    assert.deepEqual(w.stateNames(), ['connecting', 'connected']);
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, `connected ${A}`]);
    // Firewall before the tunnel, routing after the interface exists, connected only after the handshake.
    const order = w.events.filter((e) => !e.startsWith('exit'));
    assert.deepEqual(order.slice(0, 6), [`firewall connecting ${A}`, 'state connecting', `tunnel create ${A}`, 'routing', `firewall connected ${A}`, 'state connected']);
    assert.ok(w.sup.stats && w.sup.stats.latestHandshake > 0, 'a handshake was seen');
    assert.equal(w.states[1]!.ready, false, 'not ready at the moment of connecting: no probe, no exit check yet');
    assert.equal(w.sup.server?.name, A);
    assert.equal(w.sup.exit?.hostname, A);
    assert.deepEqual(w.sup.ready(), { ok: true, reason: `connected via ${A}` });
    assert.equal(w.sup.failovers, 0);
    assert.ok(w.clock.t - T0 < 5000, 'the handshake kick connects within seconds');
  });

  test('the handshake kick uses `kick` when given (a DNS probe the connecting firewall lets in), else `probe`', async () => {
    for (const withKick of [true, false]) {
      const w = new FakeWorld([A]);
      const probe = w.deps.probe;
      const kicks: string[] = [];
      const probes: string[] = [];
      w.deps.probe = (s, signal) => (probes.push(w.sup.state), probe(s, signal));
      if (withKick) w.deps.kick = (s, signal) => (kicks.push(w.sup.state), probe(s, signal));
      await w.drive(() => readyNow(w), 60_000);
      if (withKick) {
        assert.deepEqual(kicks, ['connecting']);
        assert.ok(!probes.includes('connecting'), 'no probe while connecting when a kick is given');
      } else {
        assert.equal(probes[0], 'connecting');
      }
    }
  });

  test('the kick\'s answer ends the handshake wait at once: the stats are read again without waiting for the next poll', async () => {
    const w = new FakeWorld([A]);
    const probe = w.deps.probe;
    // The kick is answered a few turns of the event loop after it is sent (while the supervisor waits).
    w.deps.kick = async (s, signal) => {
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      return probe(s, signal);
    };
    // While connecting, a poll interval never ends by itself: only a wake (the answer, or stop) ends the wait.
    const sleep = w.clock.sleep.bind(w.clock);
    w.clock.sleep = (ms, signal) =>
      w.sup.state === 'connecting' ? new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })) : sleep(ms, signal);
    await w.drive(() => w.sup.state === 'connected', 60_000);
    assert.deepEqual(w.stateNames(), ['connecting', 'connected']);
  });

  test('a kick answered while the stats are read skips the sleep: nothing is there to wake, so the stats are read again at once', async () => {
    const w = new FakeWorld([A]);
    const probe = w.deps.probe;
    let answer: () => void = () => {};
    const answered = new Promise<void>((r) => (answer = r));
    w.deps.kick = async (s, signal) => {
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      const r = await probe(s, signal);
      answer();
      return r;
    };
    // The first read while connecting is taken before the handshake and returns only after the answer came.
    const stats = w.deps.tunnel.stats.bind(w.deps.tunnel);
    let reads = 0;
    w.deps.tunnel.stats = async () => {
      const snapshot = await stats();
      if (w.sup.state === 'connecting' && reads++ === 0) await answered;
      return snapshot;
    };
    const sleep = w.clock.sleep.bind(w.clock);
    w.clock.sleep = (ms, signal) =>
      w.sup.state === 'connecting' ? new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })) : sleep(ms, signal);
    await w.drive(() => w.sup.state === 'connected', 60_000);
    assert.deepEqual(w.stateNames(), ['connecting', 'connected']);
    assert.equal(reads, 2, 'the second read saw the handshake');
  });

  test('a rejecting kick is not an unhandled rejection; the handshake timeout decides', async () => {
    const w = new FakeWorld([A, B]);
    w.relay(A).knowsKey = false;
    w.deps.kick = async () => {
      throw new Error('binding a DNS source port: every port of 10530-10561 is in use');
    };
    await w.drive(() => w.sup.server?.name === B && w.sup.state === 'connecting', 60_000);
    assert.deepEqual(w.failovers.map((f) => f.reason), ['handshake-timeout']);
  });

  test('the exit check gates readiness when REQUIRE_MULLVAD_EXIT=true', async () => {
    const cases = [
      { name: 'not a Mullvad exit, required', exit: exitVia(A, false), require: true, ready: false, reason: /exit 185\.65\.135\.1 is not a Mullvad exit/ },
      { name: 'not a Mullvad exit, not required', exit: exitVia(A, false), require: false, ready: true, reason: /connected via/ },
      { name: 'exit check fails, required', exit: 'error' as const, require: true, ready: false, reason: /exit not verified yet/ },
      { name: 'exit check fails, not required', exit: 'error' as const, require: false, ready: true, reason: /connected via/ },
    ];
    for (const c of cases) {
      const w = new FakeWorld([A], { requireMullvadExit: c.require });
      w.relay(A).exit = c.exit;
      await w.drive(() => false, 120_000);
      assert.equal(w.sup.state, 'connected', c.name);
      assert.equal(w.sup.ready().ok, c.ready, c.name);
      assert.match(w.sup.ready().reason, c.reason, c.name);
      assert.equal(w.sup.failovers, 0, `${c.name}: a bad exit is not a dead server`);
    }
  });

  test('readiness drops when the handshake goes stale', async () => {
    const w = new FakeWorld([A]);
    await w.drive(() => readyNow(w), 60_000);
    const hs = w.sup.stats!.latestHandshake * 1000;
    w.clock.t = hs + 181_000; // as if the loop had been stuck
    assert.deepEqual(w.sup.ready(), { ok: false, reason: 'no recent handshake' });
  });
});

describe('supervisor: recovery', () => {
  test('wireguard-go lost → same server, tunnel recreated, reconnect counted, no failover', async () => {
    const w = new FakeWorld([A, B]);
    w.at(T0 + 60_000, () => w.loseTunnel('wireguard-go exited (SIGKILL)'));
    const readyWhileLost: string[] = [];
    const reconnect = w.deps.onReconnect!;
    w.deps.onReconnect = () => (readyWhileLost.push(w.sup.ready().reason), reconnect());
    await w.drive(() => w.sup.reconnects === 1 && readyNow(w), 300_000);
    assert.deepEqual(readyWhileLost, ['tunnel lost: wireguard-go exited (SIGKILL)'], 'not ready while the tunnel is gone');
    assert.equal(w.sup.reconnects, 1);
    assert.equal(w.sup.failovers, 0);
    assert.deepEqual(w.stateNames(), ['connecting', 'connected', 'connecting', 'connected']);
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, `connected ${A}`, `connecting ${A}`, `connected ${A}`]);
    const afterLoss = w.events.slice(w.events.indexOf('tunnel lost'));
    assert.deepEqual(afterLoss.slice(0, 7), ['tunnel lost', 'tunnel destroy', 'reconnect', `firewall connecting ${A}`, 'state connecting', `tunnel create ${A}`, 'routing']);
    assert.ok(readyNow(w));
  });

  test('bring-up error → blocked, server treated as failed, next server connects', async () => {
    const w = new FakeWorld([A, B]);
    w.failCreate.add(A);
    await w.drive(() => readyNow(w), 120_000);
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, 'blocked', `connecting ${B}`, `connected ${B}`]);
    assert.deepEqual(w.stateNames(), ['connecting', 'blocked', 'failing-over', 'connecting', 'connected']);
    assert.match(w.states[1]!.reason, /^bring-up failed: configuring wg0: .*Unable to modify interface/);
    assert.deepEqual(w.failovers.map((f) => [f.reason, f.from, f.to]), [['bring-up-error', A, B]]);
    // The half-made interface is removed; B gets a new one.
    assert.deepEqual(w.events.filter((e) => e.startsWith('tunnel')), [`tunnel create ${A}`, 'tunnel destroy', `tunnel create ${B}`]);
    assert.equal(w.sup.server?.name, B);
  });

  test('wireguard-go lost while still handshaking → recreated, same server', async () => {
    const w = new FakeWorld([A, B]);
    w.relay(A).up = (t) => t >= T0 + 3000; // the first kicks go unanswered
    w.at(T0 + 1000, () => w.loseTunnel('wireguard-go exited (1)'));
    await w.drive(() => readyNow(w), 120_000);
    assert.deepEqual(w.stateNames(), ['connecting', 'connecting', 'connected']);
    assert.deepEqual(w.events.filter((e) => e.startsWith('tunnel')), [`tunnel create ${A}`, 'tunnel lost', 'tunnel destroy', `tunnel create ${A}`]);
    assert.equal(w.sup.reconnects, 1);
    assert.equal(w.sup.failovers, 0);
  });

  test('wireguard-go dying right after every start: recreated with growing waits, blocked meanwhile, never a hot loop', async () => {
    const w = new FakeWorld([A]);
    w.crashAfterCreate = 5;
    const readyWhileLost: boolean[] = [];
    w.deps.onReconnect = () => readyWhileLost.push(w.sup.ready().ok);
    await w.drive(() => readyNow(w), 600_000);
    assert.equal(w.sup.reconnects, 5);
    assert.deepEqual(readyWhileLost, [false, false, false, false, false], 'never ready while the tunnel is being recreated');
    // The first loss is recreated at once; repeated losses back off.
    assert.deepEqual(w.sleeps.filter((x) => x.state === 'blocked').map((x) => x.ms), [1000, 2000, 4000, 8000]);
    assert.equal(w.sup.failovers, 0, 'still the same server');
    assert.equal(w.sup.server?.name, A);
  });

  test('the interface vanishing under a connected tunnel (kernel link deleted) is a tunnel loss', async () => {
    const w = new FakeWorld([A]);
    w.at(T0 + 60_000, () => w.vanishInterface());
    await w.drive(() => w.sup.reconnects === 1 && readyNow(w), 300_000);
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, `connected ${A}`, `connecting ${A}`, `connected ${A}`]);
    assert.equal(w.sup.failovers, 0);
  });

  test('a failing peer swap during failover → blocked, interface recreated for the next server', async () => {
    const w = new FakeWorld([A, B, C]);
    w.relay(A).up = (t) => t < T0 + 60_000;
    w.failCreate.add(B);
    await w.drive(() => w.sup.server?.name === C && readyNow(w), 600_000);
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, `connected ${A}`, `connecting ${B}`, 'blocked', `connecting ${C}`, `connected ${C}`]);
    assert.deepEqual(w.failovers.map((f) => [f.reason, f.from, f.to]), [['probe-failed', A, B], ['bring-up-error', B, C]]);
    assert.deepEqual(w.events.filter((e) => e.startsWith('tunnel')), [`tunnel create ${A}`, `tunnel setServer ${B}`, 'tunnel destroy', `tunnel create ${C}`]);
  });

  test('stop() ends run() promptly in every phase', async () => {
    for (const phase of ['before run', 'connecting', 'connected', 'backoff'] as const) {
      const w = new FakeWorld([A], { maxBackoffMs: 3_600_000 });
      if (phase === 'before run') w.sup.stop();
      if (phase === 'connecting' || phase === 'backoff') w.relay(A).knowsKey = false;
      const start = w.clock.t;
      const until = {
        'before run': () => false,
        connecting: () => w.sup.state === 'connecting' && w.clock.t > start + 2000,
        connected: () => readyNow(w),
        backoff: () => w.sup.state === 'blocked' && (w.sleeps.at(-1)?.ms ?? 0) >= 4000,
      }[phase];
      const spins = Date.now();
      await w.drive(until, 24 * 3_600_000);
      assert.ok(Date.now() - spins < 2000, `${phase}: run() returned promptly`);
      assert.ok(w.clock.t - start < 3_600_000, `${phase}: stop did not wait out a sleep`);
      const applied = w.policies.length;
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(w.policies.length, applied, `${phase}: nothing happens after stop`);
    }
  });
});
