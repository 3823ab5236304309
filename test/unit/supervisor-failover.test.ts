// The supervisor's failover with a fake clock and a fake system: a relay that
// goes dark, one that never handshakes, every relay dead (backoff), no flapping.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeWorld, T0 } from './helpers/fake-world.js';

const [A, B, C] = ['se-sto-wg-001', 'se-got-wg-002', 'de-fra-wg-003'] as const;
const readyNow = (w: FakeWorld) => w.sup.ready().ok;
const dark = (from: number, to = Infinity) => (t: number) => t < from || t >= to;

describe('supervisor: failover', () => {
  test('relay goes dark → degraded → failing-over → next server connected', async () => {
    const w = new FakeWorld([A, B]);
    const DARK = T0 + 120_000;
    w.relay(A).up = dark(DARK);
    await w.drive(() => w.sup.server?.name === B && readyNow(w), 600_000);

    assert.deepEqual(w.stateNames(), ['connecting', 'connected', 'degraded', 'failing-over', 'connecting', 'connected']);
    // The firewall sequence: A's endpoint and the tunnel stay open through
    // degraded and failing-over; connecting B swaps endpoint and closes the tunnel in one transaction.
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, `connected ${A}`, `connecting ${B}`, `connected ${B}`]);
    assert.deepEqual(w.failovers.map((f) => [f.reason, f.from, f.to]), [['probe-failed', A, B]]);
    assert.equal(w.sup.failovers, 1);
    // Dead only after FAILOVER_AFTER without rx and at least two failed probes.
    const degraded = w.states.find((s) => s.state === 'degraded')!;
    const failing = w.states.find((s) => s.state === 'failing-over')!;
    assert.ok(degraded.t >= DARK && degraded.t <= DARK + 5000, 'degraded at the first check after the relay went dark');
    assert.match(degraded.reason, /^probe failed \(transmit grows without receive\): timeout$/);
    // FAILOVER_AFTER counts from the sample before the last rx grew (the bytes came
    // after it), which is at most two checks before the relay went dark.
    assert.ok(failing.t - DARK >= 15_000 - 2 * 5000 && failing.t - DARK <= 15_000 + 5000, `failover ${(failing.t - DARK) / 1000} s after going dark`);
    const silent = Number(new RegExp(`^${A}: no answer through the tunnel for (\\d+) s \\(last error: timeout\\)$`).exec(failing.reason)?.[1]);
    assert.ok(silent >= 15 && silent <= 16, failing.reason);
    // Readiness: false from degraded until B is verified, true after.
    for (const s of w.states.slice(2, 5)) assert.equal(s.ready, false, `ready during ${s.state}`);
    assert.ok(readyNow(w));
    assert.equal(w.sup.exit?.hostname, B);
    // The interface is kept: only the peer changes.
    assert.deepEqual(w.events.filter((e) => e.startsWith('tunnel')), [`tunnel create ${A}`, `tunnel setServer ${B}`]);
  });

  test('tuned settings: dead once two probes failed and FAILOVER_AFTER of silence is complete — not a check interval and a probe timeout later', async () => {
    const PROBE_TIMEOUT = 500;
    const w = new FakeWorld([A, B], { checkIntervalMs: 1000, failoverAfterMs: 2000, probeIntervalMs: 10_000 });
    // A failed probe costs its timeout (the fake's probes otherwise take no time).
    const probe = w.deps.probe;
    w.deps.probe = async (s, signal) => {
      const r = await probe(s, signal);
      if (!r.ok) w.clock.t += PROBE_TIMEOUT;
      return r;
    };
    const DARK = T0 + 65_300; // between periodic probes (every 10 s from T0 + 20 ms)
    w.relay(A).up = dark(DARK);
    await w.drive(() => w.sup.server?.name === B && readyNow(w), 600_000);
    const failing = w.states.find((s) => s.state === 'failing-over')!;
    const probesWhileDegraded = w.sleeps.filter((s) => s.state === 'degraded').map((s) => s.ms);
    // The first check after DARK (≤ 1 s), its probe's timeout, a confirming probe
    // 100 ms later and its timeout: by then the silence exceeds FAILOVER_AFTER.
    assert.ok(failing.t - DARK <= 1000 + 2 * PROBE_TIMEOUT + 100, `failover ${failing.t - DARK} ms after going dark`);
    assert.deepEqual(probesWhileDegraded, [100], 'one confirming probe, 100 ms after the first failure');
    assert.match(failing.reason, /no answer through the tunnel for \d+ s \(last error: timeout\)$/);
  });

  test('a brief loss (one failed probe, rx back) degrades and recovers without failover', async () => {
    const w = new FakeWorld([A, B]);
    w.relay(A).up = dark(T0 + 120_000, T0 + 123_000);
    await w.drive(() => w.clock.t > T0 + 300_000, 600_000);
    assert.deepEqual(w.stateNames(), ['connecting', 'connected', 'degraded', 'connected']);
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, `connected ${A}`], 'degraded ⇄ connected never touches the firewall');
    assert.equal(w.sup.failovers, 0);
    assert.ok(readyNow(w));
  });

  test('a handshake that never comes → next server, with a diagnosis', async () => {
    const w = new FakeWorld([A, B]);
    w.relay(A).knowsKey = false;
    await w.drive(() => readyNow(w), 600_000);
    assert.deepEqual(w.stateNames(), ['connecting', 'failing-over', 'connecting', 'connected']);
    assert.deepEqual(w.firewallSequence(), [`connecting ${A}`, `connecting ${B}`, `connected ${B}`], 'the tunnel was never opened for A');
    assert.deepEqual(w.failovers.map((f) => [f.reason, f.from, f.to]), [['handshake-timeout', A, B]]);
    const f = w.states[1]!;
    assert.equal(f.t - T0, 15_000, 'after CONNECT_TIMEOUT');
    assert.match(f.reason, /no handshake within 15 s: the relay never answered \(wrong or revoked key, relay down, or UDP to 185\.213\.154\.60:51820 blocked on the way\)/);
    assert.equal(w.sup.server?.name, B);
  });

  test('every server dead → blocked with exponential backoff 1 s, 2 s, 4 s … capped', async () => {
    const w = new FakeWorld([A, B], { maxBackoffMs: 16_000 });
    for (const n of [A, B]) w.relay(n).up = () => false;
    await w.drive(() => w.states.filter((s) => s.state === 'blocked').length >= 7, 3_600_000);
    const backoffs = w.states.filter((s) => s.state === 'blocked').map((s) => s.reason);
    assert.deepEqual(backoffs, [1, 2, 4, 8, 16, 16, 16].map((n) => `every server failed; retrying in ${n} s`));
    assert.deepEqual(w.sleeps.filter((s) => s.state === 'blocked').map((s) => s.ms).slice(0, 6), [1000, 2000, 4000, 8000, 16_000, 16_000]);
    assert.ok(!w.policies.some((p) => p.state === 'connected'), 'the tunnel was never opened');
    // Between rounds both servers are tried, each once, alternating.
    const tried = w.firewallSequence().filter((f) => f !== 'blocked');
    for (let i = 0; i + 1 < tried.length; i++) assert.notEqual(tried[i], tried[i + 1], `server ${tried[i]} tried twice in a row: ${tried.join(' ')}`);
    assert.equal(w.sup.ready().ok, false);
  });

  test('the backoff starts over once a server worked again', async () => {
    const w = new FakeWorld([A], { maxBackoffMs: 60_000 });
    const RECOVER = T0 + 15_000 * 4 + 1000 + 2000 + 4000;
    w.relay(A).up = (t) => t >= RECOVER && t < RECOVER + 100_000;
    const connectedAt = () => w.states.findIndex((s) => s.state === 'connected');
    await w.drive(() => connectedAt() >= 0 && w.states.slice(connectedAt()).filter((s) => s.state === 'blocked').length >= 2, 3_600_000);
    const rounds = w.states.filter((s) => s.state === 'blocked' || s.state === 'connected').map((s) => (s.state === 'connected' ? 'connected' : s.reason.replace(/^every server failed; retrying in /, '')));
    const afterConnect = rounds.slice(rounds.indexOf('connected') + 1);
    assert.deepEqual(afterConnect.slice(0, 2), ['1 s', '2 s'], `rounds: ${rounds.join(', ')}`);
  });
});

describe('supervisor: no flapping', () => {
  test('a recovered server does not cause a switch back', async () => {
    const w = new FakeWorld([A, B]);
    w.relay(A).up = dark(T0 + 60_000, T0 + 120_000);
    await w.drive(() => w.clock.t > T0 + 3_600_000, 4_000_000);
    assert.deepEqual(w.failovers.map((f) => [f.from, f.to]), [[A, B]]);
    assert.equal(w.sup.server?.name, B);
    assert.deepEqual(w.firewallSequence().slice(-1), [`connected ${B}`]);
    assert.ok(readyNow(w));
  });

  test('a failed server is retried only after the others', async () => {
    const w = new FakeWorld([A, B, C]);
    // A dies; B dies soon after (A still cooling down): C is next, not A.
    w.relay(A).up = dark(T0 + 60_000);
    w.relay(B).up = dark(T0 + 120_000);
    await w.drive(() => w.sup.server?.name === C && readyNow(w), 600_000);
    assert.deepEqual(w.failovers.map((f) => [f.from, f.to]), [[A, B], [B, C]]);
  });

  test('a server whose cool-down is over is taken again, before servers that failed recently', async () => {
    const w = new FakeWorld([A, B, C], { coolDownMs: 60_000 });
    w.relay(A).up = dark(T0 + 30_000, T0 + 45_000);
    w.relay(B).up = dark(T0 + 200_000);
    w.relay(C).knowsKey = false;
    const aTries = () => w.firewallSequence().filter((f) => f === `connecting ${A}`).length;
    await w.drive(() => aTries() >= 2 && readyNow(w), 600_000);
    assert.deepEqual(w.failovers.map((f) => [f.reason, f.from, f.to]), [['probe-failed', A, B], ['probe-failed', B, C], ['handshake-timeout', C, A]]);
    assert.deepEqual(w.firewallSequence().filter((f) => f.startsWith('connecting')), [A, B, C, A].map((n) => `connecting ${n}`));
    assert.ok(!w.stateNames().includes('blocked'), 'no backoff while a server is outside its cool-down');
  });

  test('with two servers, a failed one comes back only after a backoff or its cool-down', async () => {
    const w = new FakeWorld([A, B], { coolDownMs: 60_000 });
    w.relay(A).up = dark(T0 + 30_000, T0 + 45_000);
    w.relay(B).up = dark(T0 + 60_000);
    const aTries = () => w.firewallSequence().filter((f) => f === `connecting ${A}`).length;
    await w.drive(() => aTries() >= 2 && readyNow(w), 600_000);
    const seq = w.states.map((s) => s.state);
    const secondA = w.firewallSequence().lastIndexOf(`connecting ${A}`);
    assert.ok(secondA > 0);
    const firstFailure = w.failovers[0]!;
    const t = w.states.filter((s) => s.state === 'connecting').at(-1)!.t;
    assert.ok(seq.includes('blocked') || t - firstFailure.t >= 60_000, `A retried ${(t - firstFailure.t) / 1000} s after it failed, without a backoff`);
  });
});

describe('supervisor: new candidates from a fresh relay list', () => {
  test('setServers while connected keeps the tunnel; the next failover moves to the new candidates without tearing the interface down', async () => {
    const { Supervisor } = await import('../../src/supervisor/supervisor.js');
    const { TIMINGS } = await import('./helpers/fake-world.js');
    const w = new FakeWorld([A, C]);
    // The first start knows only A (the mounted config); C comes from the relay list.
    w.sup = new Supervisor(w.deps, [w.servers[0]!], [A], TIMINGS);
    const DARK = T0 + 120_000;
    w.relay(A).up = dark(DARK);
    w.at(T0 + 60_000, () => w.sup.setServers([w.servers[1]!], [C]));
    await w.drive(() => w.sup.server?.name === C && readyNow(w), 600_000);
    assert.deepEqual(w.sup.tryOrder, [C]);
    assert.deepEqual(w.stateNames(), ['connecting', 'connected', 'degraded', 'failing-over', 'connecting', 'connected']);
    assert.deepEqual(w.events.filter((e) => e.startsWith('tunnel')), [`tunnel create ${A}`, `tunnel setServer ${C}`]);
    assert.deepEqual(w.failovers.map((f) => [f.from, f.to]), [[A, C]]);
  });
});
